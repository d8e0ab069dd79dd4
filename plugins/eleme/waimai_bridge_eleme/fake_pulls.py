"""The pushes the fake Eleme failed to send, as its pull APIs offer them (platforms.md §1.4,
as :mod:`waimai_bridge_eleme.pull` assumes them).

- ``eleme.msgNew.getPushFailMsg`` lists the core fulfilment types
  (:data:`~waimai_bridge_eleme.assumptions.PUSH_FAIL_TYPES`), each the push envelope plus
  its ``msgId``, until ``eleme.msgNew.confirmPullMsg`` takes that id;
- ``eleme.message.getNonReachedOMessages`` lists the other types, the push envelope alone,
  handing each one once to each token that asks (``NON_REACHED_ONCE_PER_TOKEN``).

A push delivered after all leaves both lists. Not thread-safe: the fake calls it under its
lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any, Final

from waimai_bridge_eleme import assumptions as facts

_FIRST_MSG_ID: Final = 10**17
"""Where the fake's message ids start (18 digits, like Eleme's other ids)."""


class FailedPushes:
    """The envelopes of the pushes the fake could not deliver."""

    def __init__(self) -> None:
        self._ids = itertools.count(_FIRST_MSG_ID)
        self._failed: dict[str, dict[str, Any]] = {}  # requestId → envelope + msgId
        self._non_reached: dict[str, dict[str, Any]] = {}  # requestId → envelope
        self._handed: dict[str, set[str]] = {}  # token → requestIds it was given

    def failed(self, envelope: Mapping[str, Any], push_type: int) -> None:
        """The push of ``envelope`` was not delivered: offer it by pull."""
        request_id = str(envelope.get("requestId"))
        if push_type in facts.PUSH_FAIL_TYPES:
            if request_id not in self._failed:
                msg_id = str(next(self._ids))
                self._failed[request_id] = {**envelope, facts.PUSH_FAIL_MESSAGE_ID: msg_id}
        else:
            self._non_reached[request_id] = dict(envelope)

    def delivered(self, request_id: str) -> None:
        """The push was delivered after all: no list offers it any longer."""
        self._failed.pop(request_id, None)
        self._non_reached.pop(request_id, None)

    def push_fail(self) -> list[dict[str, Any]]:
        """What ``getPushFailMsg`` answers: every failed core message not confirmed."""
        return [dict(message) for message in self._failed.values()]

    def confirm(self, ids: Iterable[Any]) -> int:
        """``confirmPullMsg``: drop the messages of these ids; how many there were."""
        wanted = {str(value) for value in ids}
        confirmed = [
            request_id
            for request_id, message in self._failed.items()
            if str(message[facts.PUSH_FAIL_MESSAGE_ID]) in wanted
        ]
        for request_id in confirmed:
            del self._failed[request_id]
        return len(confirmed)

    def non_reached(self, token: str) -> list[dict[str, Any]]:
        """What ``getNonReachedOMessages`` answers ``token``: what it was not handed yet."""
        handed = self._handed.setdefault(token, set())
        fresh = [rid for rid in self._non_reached if rid not in handed]
        handed.update(fresh)
        return [dict(self._non_reached[rid]) for rid in fresh]

    def offered(self) -> int:
        """How many messages a list still offers (to someone)."""
        return len(self._failed) + len(self._non_reached)
