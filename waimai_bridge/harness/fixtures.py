"""Reading a plugin's fixture folder (the format is documented in docs/plugin-authors.md).

A folder holds ``config.json`` and any number of fixture files, in sub-folders or not. A
file's kind follows from its shape, not its name:

- ``steps``  → a scenario: pushes in arrival order and the order they fold into;
- ``answer`` → an error fixture: an action, the platform's scripted answer, the outcome;
- ``action`` → an action fixture: an action and the API request it must become;
- ``request``→ a push fixture: a raw request and what ``parse_event`` etc. make of it.

A fixture is named by its path in the folder without ``.json`` (``status-12``,
``push/order_paid``); scenarios refer to push fixtures by that name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from waimai_bridge.models import ActionRequest, InboundRequest, PluginConfig

DEFAULT_RECEIVED_AT_MS = 1_716_181_300_000
"""When a push fixture's request counts as received, unless it says ``received_at_ms``."""

CONFIG_FILE = "config.json"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawRequest(_Closed):
    """A push as recorded: the request to ``/webhooks/{platform}[/{kind}]``."""

    method: str = "POST"
    kind: str | None = None
    query: list[tuple[str, str]] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    received_at_ms: int = DEFAULT_RECEIVED_AT_MS

    def inbound(
        self, platform: str, config: PluginConfig, body: str | None = None
    ) -> InboundRequest:
        """The request as the web receiver hands it to ``parse_event``."""
        path = f"/webhooks/{platform}" + (f"/{self.kind}" if self.kind else "")
        return InboundRequest(
            method=self.method,
            url=config.public_base_url + path,
            kind=self.kind,
            query=list(self.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=(self.body if body is None else body).encode("utf-8"),
            received_at_ms=self.received_at_ms,
        )


class ExpectedReply(_Closed):
    """The answer the platform must get."""

    status: int = 200
    body: str | None = None


class Tamper(_Closed):
    """How to tamper with a push for the signature check, where the harness cannot guess."""

    replace: str = Field(min_length=1)
    with_: str = Field(alias="with")


class ExpectedPush(_Closed):
    """What a push fixture must produce."""

    reply: ExpectedReply
    refused: str | None = Field(
        default=None, description="The exception parse_event must raise (e.g. BadSignature)."
    )
    events: list[dict[str, Any]] = Field(default_factory=list)
    states: list[dict[str, Any]] = Field(default_factory=list)
    price: dict[str, Any] | None = None
    price_waivers: dict[str, str] = Field(
        default_factory=dict, description="Price invariant → why it does not hold here."
    )


class PushFixture(_Closed):
    """A recorded push and its expected outcome."""

    description: str = ""
    request: RawRequest
    expect: ExpectedPush
    tamper: Tamper | None = None


class ExpectedCall(_Closed):
    """The API request an action must become, and the result of the fake's answer."""

    method: str
    path: str
    params: dict[str, Any]
    result: dict[str, Any]


class ActionFixture(_Closed):
    """An action and the request the plugin must send for it."""

    description: str = ""
    action: ActionRequest
    expect: ExpectedCall


class ExpectedResult(_Closed):
    """The outcome an action must have when the platform answers so."""

    result: dict[str, Any]


class ErrorFixture(_Closed):
    """An action, the platform's (scripted) answer, and how the plugin must classify it."""

    description: str = ""
    action: ActionRequest
    answer: dict[str, Any] = Field(description="Handed to the fake's script(); plugin-specific.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Settings overrides, e.g. a short time-out."
    )
    expect: ExpectedResult


class Step(_Closed):
    """One push of a scenario given inline."""

    request: RawRequest


class ScenarioFixture(_Closed):
    """A sequence of pushes (push fixture names or inline requests) and the order after."""

    description: str = ""
    steps: list[str | Step] = Field(min_length=1)
    expect: dict[str, Any]


FIXTURE_KINDS: dict[str, type[BaseModel]] = {
    "steps": ScenarioFixture,
    "answer": ErrorFixture,
    "action": ActionFixture,
    "request": PushFixture,
}
"""The key that marks a fixture's kind, most specific first, and its model."""

ORDER_FIELDS = frozenset({"state", "rider_state", "saved_state", "platform_state",
                          "refunded_amount_fen"})  # fmt: skip
"""What a scenario may expect of the folded order."""


@dataclass
class FixtureSet:
    """The fixtures of one folder; ``problems`` are files that could not be read, by name."""

    folder: Path
    config: PluginConfig | None = None
    pushes: dict[str, PushFixture] = field(default_factory=dict)
    actions: dict[str, ActionFixture] = field(default_factory=dict)
    errors: dict[str, ErrorFixture] = field(default_factory=dict)
    scenarios: dict[str, ScenarioFixture] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the folder holds no fixture at all (a config alone does not count)."""
        return not (self.pushes or self.actions or self.errors or self.scenarios or self.problems)


def _pydantic_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top)"
    return f"{where}: {first['msg']}"


def load_fixtures(folder: Path, platform: str) -> FixtureSet:
    """Every fixture of ``folder``; a file that cannot be read becomes a problem, not an
    exception, so the rest still runs."""
    found = FixtureSet(folder)
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*.json")):
        name = path.relative_to(folder).with_suffix("").as_posix()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            found.problems[name] = f"not valid JSON: {exc}"
            continue
        if path.parent == folder and path.name == CONFIG_FILE:
            try:
                found.config = PluginConfig.model_validate({"platform": platform, **document})
            except (ValidationError, TypeError) as exc:
                problem = _pydantic_problem(exc) if isinstance(exc, ValidationError) else str(exc)
                found.problems[name] = f"not a plugin config: {problem}"
            continue
        _add(found, name, document)
    return found


def _add(found: FixtureSet, name: str, document: object) -> None:
    kind = next((key for key in FIXTURE_KINDS if isinstance(document, dict) and key in document),
                None)  # fmt: skip
    if kind is None:
        found.problems[name] = "not a fixture: a fixture has one of the keys " + ", ".join(
            repr(key) for key in FIXTURE_KINDS
        )
        return
    try:
        fixture = FIXTURE_KINDS[kind].model_validate(document)
    except ValidationError as exc:
        found.problems[name] = f"not a valid {kind} fixture: {_pydantic_problem(exc)}"
        return
    if isinstance(fixture, ScenarioFixture):
        unknown = sorted(set(fixture.expect) - ORDER_FIELDS)
        if unknown:
            found.problems[name] = (
                f"expect has unknown fields {unknown}; a scenario may expect {sorted(ORDER_FIELDS)}"
            )
            return
        found.scenarios[name] = fixture
    elif isinstance(fixture, ErrorFixture):
        found.errors[name] = fixture
    elif isinstance(fixture, ActionFixture):
        found.actions[name] = fixture
    elif isinstance(fixture, PushFixture):
        found.pushes[name] = fixture
