"""Typed reading of a push message's JSON fields, with errors that name the field.

Every field of the own_pos format is read through :class:`Fields`, so one rule holds
everywhere: a missing or mistyped field raises :class:`Malformed` with its path in the
message (``order.lines[1].unit_price_fen``), and money is integer fen — a float, even
``12.0``, is refused. Every value is bounded by what the database holds: texts by the
length the caller gives, numbers by the contracts' integer ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from waimai_bridge.plugin_api import MAX_INT32, MAX_INT64

MIN_EPOCH_MS = 10**11
"""The smallest time accepted as epoch milliseconds (1973): smaller ones are seconds."""


class Malformed(ValueError):
    """A field is missing or not what the format says; ``path`` names it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path
        self.problem = problem


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A refused value as a message shows it: short (it may be long, or a customer's)."""
    if _is_int(value):
        return str(value) if value.bit_length() <= 64 else "an integer beyond a bigint"
    if isinstance(value, list | Mapping):
        return "a list" if isinstance(value, list) else "an object"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


@dataclass(frozen=True)
class Fields:
    """A JSON object of the message, and where it sits in it (``""`` for the message)."""

    values: Mapping[str, Any]
    path: str = ""

    @classmethod
    def of(cls, message: Any) -> Fields:
        """The fields of a whole message; :class:`Malformed` unless it is a JSON object."""
        if not isinstance(message, Mapping):
            raise Malformed("the message", "is not a JSON object")
        return cls(message)

    def at(self, key: str) -> str:
        """The path of ``key`` in the message."""
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return self.values.get(key) is not None

    def _required(self, key: str) -> Any:
        if not self.has(key):
            raise Malformed(self.at(key), "is missing")
        return self.values[key]

    # -- scalars

    def text(self, key: str, *, max_length: int) -> str:
        """A non-empty string of at most ``max_length`` characters."""
        value = self._required(key)
        if not isinstance(value, str) or not value:
            raise Malformed(self.at(key), f"is {_shown(value)}, not a non-empty string")
        if len(value) > max_length:
            raise Malformed(self.at(key), f"is longer than {max_length} characters")
        return value

    def optional_text(self, key: str, *, max_length: int) -> str | None:
        """A non-empty string, or None when absent or null."""
        return self.text(key, max_length=max_length) if self.has(key) else None

    def identifier(self, key: str, *, max_length: int) -> str:
        """An id sent as a non-empty string or an integer, always returned as a string."""
        value = self._required(key)
        if _is_int(value):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise Malformed(
                self.at(key), f"is {_shown(value)}, not a non-empty string or an integer"
            )
        if len(value) > max_length:
            raise Malformed(self.at(key), f"is longer than {max_length} characters")
        return value

    def fen(self, key: str, *, default: int | None = None) -> int:
        """An amount of money: a whole, non-negative number of fen (``default`` if absent)."""
        if not self.has(key) and default is not None:
            return default
        value = self._required(key)
        if not _is_int(value) or not 0 <= value <= MAX_INT64:
            raise Malformed(
                self.at(key), f"is {_shown(value)}, not a whole number of fen (分) from 0 to 2⁶³-1"
            )
        result: int = value
        return result

    def optional_fen(self, key: str) -> int | None:
        """An amount in fen, or None when absent or null."""
        return self.fen(key) if self.has(key) else None

    def count(self, key: str) -> int:
        """A quantity: a whole number ≥ 1."""
        value = self._required(key)
        if not _is_int(value) or not 1 <= value <= MAX_INT32:
            raise Malformed(self.at(key), f"is {_shown(value)}, not a whole number from 1 to 2³¹-1")
        result: int = value
        return result

    def flag(self, key: str) -> bool:
        """A JSON ``true`` or ``false``."""
        value = self._required(key)
        if not isinstance(value, bool):
            raise Malformed(self.at(key), f"is {_shown(value)}, not true or false")
        return value

    def epoch_ms(self, key: str) -> int:
        """A point in time as epoch milliseconds."""
        value = self._required(key)
        if not _is_int(value) or not MIN_EPOCH_MS <= value <= MAX_INT64:
            raise Malformed(self.at(key), f"is {_shown(value)}, not a time in epoch milliseconds")
        result: int = value
        return result

    # -- nested

    def object(self, key: str) -> Fields:
        """A nested JSON object."""
        value = self._required(key)
        if not isinstance(value, Mapping):
            raise Malformed(self.at(key), "is not a JSON object")
        return Fields(value, self.at(key))

    def optional_object(self, key: str) -> Fields | None:
        """A nested JSON object, or None when absent or null."""
        return self.object(key) if self.has(key) else None

    def objects(self, key: str, *, required: bool = True) -> list[Fields]:
        """A list of JSON objects; non-empty when ``required``, else may be absent."""
        if not required and not self.has(key):
            return []
        value = self._required(key)
        if not isinstance(value, list) or (required and not value):
            raise Malformed(
                self.at(key), "is not a non-empty list" if required else "is not a list"
            )
        items = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise Malformed(f"{self.at(key)}[{index}]", "is not a JSON object")
            items.append(Fields(item, f"{self.at(key)}[{index}]"))
        return items
