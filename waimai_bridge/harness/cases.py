"""A contract check, and calling plugin code so that its failures read as contract failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from waimai_bridge.errors import ContractViolation
from waimai_bridge.harness.outcomes import Failed

T = TypeVar("T")


@dataclass(frozen=True)
class Case:
    """One check of a suite; ``check`` raises :class:`~.outcomes.CheckEnded` unless it passes."""

    suite: str
    name: str
    check: Callable[[], None]

    @property
    def id(self) -> str:
        """``suite::name``, as reports and pytest show it."""
        return f"{self.suite}::{self.name}"


def fail_with(message: str) -> Callable[[], None]:
    """A check that fails with ``message``."""

    def check() -> None:
        raise Failed(message)

    return check


def ended_with(ended: Exception) -> Callable[[], None]:
    """A check that ends as ``ended`` says (e.g. a :class:`~.outcomes.Missing`)."""

    def check() -> None:
        raise ended

    return check


def calling(where: str, call: Callable[[], T], passing: tuple[type[Exception], ...] = ()) -> T:
    """``call()``, a contract violation or an unexpected exception becoming :class:`Failed`
    prefixed by ``where`` (e.g. ``fixture status-12.json: parse_event``); the exceptions
    ``passing`` names are the hook's documented answers and pass through."""
    try:
        return call()
    except passing:
        raise
    except ContractViolation as exc:
        raise Failed(f"{where} broke its contract: {exc}") from None
    except NotImplementedError as exc:
        raise Failed(f"{where} is not implemented yet: {exc}") from None
    except (Failed, AssertionError):
        raise
    except Exception as exc:
        raise Failed(f"{where} raised {type(exc).__name__}: {exc}") from None
