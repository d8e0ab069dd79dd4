"""What a contract check can end in, strictness, and the report of a whole run.

A check raises :class:`Failed` (the plugin breaks the contract), :class:`Missing` (a suite
has nothing to check because the plugin lacks something it should have: fixtures, a fake)
or :class:`NotApplicable` (the check does not apply, e.g. a plugin without actions has no
action suite). Strictness decides what ``Missing`` becomes: a skip at ``low``, a failure at
``high``. ``NotApplicable`` is always a skip. Every skip carries its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Strictness(StrEnum):
    """How the harness treats a suite that has nothing to check (Airbyte's test strictness)."""

    LOW = "low"
    """A missing suite is skipped, with its reason."""
    HIGH = "high"
    """A missing suite fails, with its reason."""


class Status(StrEnum):
    """The end of one check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class CheckEnded(Exception):
    """Base of the ways a check ends other than passing; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Failed(CheckEnded):
    """The plugin breaks the contract; the message names the fixture, the field, expected
    and actual values where there are such."""


class Missing(CheckEnded):
    """The suite has nothing to check: the message says what the author must add."""


class NotApplicable(CheckEnded):
    """The check does not apply to this plugin (and never fails)."""


@dataclass(frozen=True)
class Outcome:
    """How one check ended: ``case`` is ``suite::name``; ``message`` is empty for a pass."""

    case: str
    status: Status
    message: str = ""


def outcome_of(case: str, ended: CheckEnded | None, strictness: Strictness) -> Outcome:
    """The outcome of a check that ended with ``ended`` (None: it passed)."""
    if ended is None:
        return Outcome(case, Status.PASSED)
    if isinstance(ended, Failed):
        return Outcome(case, Status.FAILED, ended.message)
    if isinstance(ended, Missing):
        if strictness is Strictness.HIGH:
            return Outcome(case, Status.FAILED, f"missing (strictness high): {ended.message}")
        return Outcome(case, Status.SKIPPED, f"missing: {ended.message}")
    return Outcome(case, Status.SKIPPED, f"not applicable: {ended.message}")


@dataclass(frozen=True)
class Report:
    """The outcomes of a contract run on one plugin."""

    plugin: str
    strictness: Strictness
    heading: str
    outcomes: Sequence[Outcome]

    @property
    def counts(self) -> Counter[Status]:
        """How many checks ended each way."""
        return Counter(outcome.status for outcome in self.outcomes)

    @property
    def passed(self) -> bool:
        """Whether no check failed."""
        return self.counts[Status.FAILED] == 0

    def lines(self, *, verbose: bool = False) -> Iterable[str]:
        """The report as text lines: failures and skips with their reasons (and, verbose,
        the passes), then the totals."""
        yield self.heading
        for outcome in self.outcomes:
            if outcome.status is Status.PASSED and not verbose:
                continue
            yield f"{outcome.status.upper():8} {outcome.case}"
            for line in outcome.message.splitlines():
                yield f"         {line}"
        counts = self.counts
        yield (
            f"{self.plugin}: {counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
            f"{counts[Status.SKIPPED]} skipped (strictness {self.strictness})"
        )
