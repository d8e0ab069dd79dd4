"""What a plugin contributes to ``waimai-bridge demo``: a *demo channel*.

A plugin offers one through the entry-point group :data:`ENTRY_POINT_GROUP`, named like its
platform plugin, pointing at an object that satisfies :class:`DemoChannel`::

    [project.entry-points."waimai_bridge.demo"]
    acme = "waimai_bridge_acme.demo:channel"

The channel knows its platform; the demo knows none. The demo asks each channel for its
config tables, its fake API, its SKU mapping and its share of a lunch service, then plays
the orders through the real HTTP endpoints on a schedule of its own (SPEC §5's accept hold
decides it), asking the channel to build each push when it is due.

The channel speaks plain data, so that a plugin needs nothing from the core beyond the
plugin API: :meth:`DemoChannel.lunch` returns mappings of the :class:`DemoOrder` shape and
:meth:`DemoChannel.push` a mapping of the :class:`DemoPush` shape (instances of these models
are accepted too); the demo validates both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from waimai_bridge.models import Action, OrderState

ENTRY_POINT_GROUP = "waimai_bridge.demo"
"""The entry-point group of demo channels; each entry is named like its platform."""


class DemoAction(BaseModel):
    """An action the chain's own system asks of the platform once the order's service steps
    are sent (``POST /api/v1/orders/{id}/actions``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    reason: str | None = None
    transient_failures: int = Field(
        default=0, ge=0, description="How many calls the fake platform fails first (then ok)."
    )
    then: list[str] = Field(
        default_factory=list,
        description="Steps the platform pushes once the action is done (e.g. refund agreed).",
    )


class DemoOrder(BaseModel):
    """One order of the lunch service: its steps and where it must end.

    A step is a name the channel chooses (a native code, say); the demo hands it back to
    :meth:`DemoChannel.push` with the time it is due. ``placing`` steps are sent as the
    order comes in (creation, acceptance, and a cancel meant to land within the accept
    hold); ``service`` steps once every accept hold is over (kitchen, riders, completion,
    cancel and refund requests and their answers); then the ``action``, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform_order_id: str = Field(min_length=1, max_length=64)
    store_id: str
    story: str = Field(description="A few words on what happens to the order, for reports.")
    placing: list[str] = Field(min_length=1)
    service: list[str] = Field(default_factory=list)
    action: DemoAction | None = None
    expected_state: OrderState | None = Field(
        description="The order's state at the end; None: it must never be stored."
    )
    details: dict[str, Any] = Field(
        default_factory=dict, description="Whatever the channel needs to build the pushes."
    )


class DemoPush(BaseModel):
    """One HTTP request as the platform sends it (signed), to the bridge's webhooks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["POST", "GET"] = "POST"
    path: str = Field(pattern=r"^/webhooks/")
    body: bytes = b""
    headers: dict[str, str] = Field(default_factory=dict)


@runtime_checkable
class DemoFake(Protocol):
    """A running fake of the platform's API."""

    @property
    def api_base(self) -> str:
        """The ``api_base`` that points the plugin at the fake."""
        ...

    def fail_next(self, action: Action, times: int) -> None:
        """Answer the next ``times`` calls that perform ``action`` with a transient error
        (a 5xx, say), and the ones after normally."""
        ...

    def calls(self, action: Action) -> Sequence[bool]:
        """Each call received that performs ``action``, in order: whether it succeeded."""
        ...


class DemoChannel(Protocol):
    """A platform's part in the demo (see the module docstring)."""

    platform: str
    """The platform plugin's name (the entry-point name)."""

    def settings(self, api_base: str | None) -> Mapping[str, Any]:
        """The ``[platforms.NAME]`` table of the demo (demo secrets), pointing at
        ``api_base`` (None: the channel has no fake API)."""
        ...

    def binding(self, store_id: str, number: int) -> Mapping[str, Any]:
        """The store's ``[stores.ID].NAME`` table; ``number`` counts the stores from 1."""
        ...

    def skus(self) -> Sequence[tuple[str, str]]:
        """The SKU mapping to import: ``(sku_code, product_id)`` rows of the menu."""
        ...

    def fake(self) -> AbstractContextManager[DemoFake] | None:
        """The fake platform API to start for the demo, or None when there is none."""
        ...

    def lunch(
        self,
        store_id: str,
        number: int,
        count: int,
        rng: random.Random,
        *,
        run: int,
        refund_approval: bool,
        unmapped_sku: bool,
    ) -> Sequence[Mapping[str, Any] | DemoOrder]:
        """``count`` orders of store ``store_id`` (the ``number``-th) of a lunch service.

        ``run`` is unique to this run (epoch seconds): fold it into the order ids so that a
        kept database never sees an id twice. With ``refund_approval``, one order's refund
        request is approved through the API (an ``agree_refund`` action the fake fails once
        first); with ``unmapped_sku``, exactly one stored order has a dish that
        :meth:`skus` leaves unmapped. Ignore what the platform cannot do.
        """
        ...

    def push(
        self, order: Mapping[str, Any], step: str, at_ms: int, public_base_url: str
    ) -> Mapping[str, Any] | DemoPush:
        """The signed push of ``order``'s ``step`` (``order`` as :meth:`lunch` returned it,
        as a mapping), dated ``at_ms`` (epoch ms, the platform's time of the change);
        ``public_base_url`` is where the bridge is reached (some platforms sign it)."""
        ...


def discover(platforms: Sequence[str]) -> tuple[list[DemoChannel], list[str]]:
    """The demo channels of the loaded ``platforms``, sorted by name, and a problem line for
    each channel that could not be loaded."""
    channels: list[DemoChannel] = []
    problems: list[str] = []
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        if entry_point.name not in platforms:
            continue
        try:
            channel = entry_point.load()
        except Exception as exc:
            problems.append(f"{entry_point.name}: cannot be loaded ({type(exc).__name__}: {exc})")
            continue
        if getattr(channel, "platform", None) != entry_point.name:
            problems.append(
                f"{entry_point.name}: its channel's platform is not {entry_point.name!r}"
            )
            continue
        channels.append(channel)
    return channels, problems
