"""Outbound actions: the chain's own system acting on a platform order (SPEC §7.3).

An action is written once per idempotency key, and once per kind on an order or request
(a second press returns the first), then performed by an actor on the order's shard
queue: claim an attempt (committed), call the platform's ``outbound_action`` outside any
transaction, record the answer. Transient failures, and attempts whose worker died
mid-call, are tried again after ``[bridge].action_retry_seconds``, up to ``action_tries``
calls: a plugin answers the platform's "already in that state" as done (SPEC §4.4). An
action of a store whose channel is unauthorized fails at once, without a platform call.
"""

from __future__ import annotations

import logging

import dramatiq
from sqlalchemy.orm import Session

from waimai_bridge.action_rules import (
    Answers,
    allowed_actions,
    answers_request,
    declared_answers,
    refusal,
)
from waimai_bridge.config import PlatformNotConfigured
from waimai_bridge.errors import WaimaiBridgeError, failure_site
from waimai_bridge.metrics import (
    ACTION_RETRIES,
    ACTIONS_FINISHED,
    ACTIONS_PERFORMED,
    ACTIONS_VERIFIED,
)
from waimai_bridge.models import (
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    Capability,
    PluginConfig,
)
from waimai_bridge.pipeline.credentials import Authorizations, ChannelUnauthorized
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.shards import queue_name
from waimai_bridge.sealing import SealingUnavailable
from waimai_bridge.statemachine import LogEntry, OrderFold
from waimai_bridge.store import actions, inbox
from waimai_bridge.store.order_log import Locked, lock_orders, order_fold
from waimai_bridge.store.tables import OutboundAction

logger = logging.getLogger(__name__)

PERFORM_ACTION = "waimai.perform_action"
UNREAD_ARRIVAL = 2**62
"""Unread events arrive after every applied one (whose arrival is its log row's id)."""
IN_FLIGHT_TIMEOUT_MS = 120_000
"""How long an attempt may be in flight before its worker is taken for dead."""
UNAUTHORIZED = "UNAUTHORIZED"
"""The result code of an action refused because the store's channel is unauthorized."""


class ActionRefused(WaimaiBridgeError):
    """An action that cannot be asked; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str, allowed: list[Action] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allowed = allowed


class ActionWorker:
    """Asks, performs and retries outbound actions, on the pipeline's broker and queues."""

    def __init__(self, pipeline: Pipeline, authorizations: Authorizations | None = None) -> None:
        self.pipeline = pipeline
        self.authorizations = authorizations or Authorizations(pipeline)
        settings = pipeline.config.bridge
        self.tries = settings.action_tries
        self.retry_delay_ms = int(settings.action_retry_seconds * 1000)
        # registered with the broker; messages name the actor (see Pipeline.send)
        dramatiq.Actor(
            self.perform, broker=pipeline.broker, actor_name=PERFORM_ACTION,
            queue_name=queue_name(0), priority=0, options={},
        )  # fmt: skip

    def ask(
        self, *, platform: str, platform_order_id: str, action: Action, reason: str | None,
        key: str,
    ) -> actions.Asked:  # fmt: skip
        """The action of ``key`` on a platform order, or the pending or done action of the
        same kind on it (and on the same request); created and queued when new.

        An order whose first push is still in the inbox counts as known and not accepted.

        :raises ActionRefused: 404 an unknown order; 422 an action the platform's plugin
            does not support; 409 an action that makes no sense in the order's state, or a
            key already used for another order or action.
        """
        supported, answers = self._rules(platform)
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            order_key = (platform, platform_order_id)
            platform_order = lock_orders(session, [order_key]).get(order_key)
            if platform_order is None:
                # whether or not the inbox still holds its first push: a worker may have
                # stored the order since the look above
                actions.open_from_inbox(session, platform, platform_order_id)
                platform_order = lock_orders(session, [order_key]).get(order_key)
            if platform_order is None:
                raise ActionRefused(404, f"no {platform} order {platform_order_id!r} is known")
            fold = order_fold(session, platform_order, self._unread(session, platform_order))
            request_key = fold.request_key if answers_request(action) else None
            try:
                asked = actions.ask(
                    session, key=key, action=action, platform_order=platform_order,
                    request_key=request_key, reason=reason, attempt_limit=self.tries,
                    now_ms=pipeline.clock(),
                    before_creating=lambda: self._check(action, supported, answers, fold, platform),
                )  # fmt: skip
            except actions.KeyConflict as exc:
                raise ActionRefused(409, str(exc)) from None
            session.flush()
            session.expunge(asked.action)
        if asked.created:
            self._queue(asked.action.id, asked.action.store_id)
        return asked

    def perform(self, action_id: int) -> None:
        """Make the due attempt of an action, record how the platform answered, and come
        back for the next try when a transient failure leaves tries."""
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            claim = actions.claim(
                session, action_id, now_ms=pipeline.clock(),
                in_flight_timeout_ms=IN_FLIGHT_TIMEOUT_MS,
            )  # fmt: skip
            row = session.get(OutboundAction, action_id)
            store_id = None if row is None else row.store_id
            platform = None if row is None else row.platform
        pipeline.deliveries_written(session)
        if claim.step is actions.Step.LATER and claim.at_ms is not None and store_id:
            self._queue(action_id, store_id, at_ms=claim.at_ms)
        if claim.step is not actions.Step.CALL or claim.request is None or platform is None:
            return
        action = claim.request.action.value
        config = self._config(platform, claim.request)
        verified = False
        if isinstance(config, ActionResult):  # refused before any platform call
            result = config
        else:
            result = self._call(platform, claim.request, config)
            ACTIONS_PERFORMED.labels(platform, action, result.outcome.value).inc()
            verified = result.outcome is ActionOutcome.UNKNOWN and self._verifies(platform)
        if verified:
            result = self._verify(platform, claim.request)
            ACTIONS_VERIFIED.labels(platform, result.outcome.value).inc()
        with pipeline.database.transaction() as session:
            row = actions.record(
                session, action_id, result, started_ms=claim.at_ms or 0,
                now_ms=pipeline.clock(), retry_delay_ms=self.retry_delay_ms,
                verified=verified and result.outcome is not ActionOutcome.UNKNOWN,
            )  # fmt: skip
            again = row.next_attempt_at_ms if row and row.status == "pending" else None
            status = None if row is None else row.status
        pipeline.deliveries_written(session)
        if again is not None:
            ACTION_RETRIES.labels(platform, action).inc()
        elif status in ("done", "failed"):
            ACTIONS_FINISHED.labels(platform, action, status).inc()
        if again is not None and store_id:
            self._queue(action_id, store_id, at_ms=again)

    def retry(self, action_id: int) -> OutboundAction | None:
        """Give a failed action another round of tries; None if no failed action has that id."""
        with self.pipeline.database.transaction() as session:
            row = actions.retry(session, action_id, tries=self.tries, now_ms=self.pipeline.clock())
            if row is not None:
                session.flush()
                session.expunge(row)
        if row is not None:
            self._queue(row.id, row.store_id)
        return row

    def sweep(self, *, stale_after_ms: int, limit: int) -> int:
        """Send again the messages of pending actions that look lost; how many."""
        now = self.pipeline.clock()
        with self.pipeline.database.transaction() as session:
            found = actions.stale(
                session, due_before_ms=now - stale_after_ms,
                in_flight_before_ms=now - IN_FLIGHT_TIMEOUT_MS, limit=limit,
            )  # fmt: skip
        for action_id, store_id in found:
            self._queue(action_id, store_id)
        return len(found)

    # ------------------------------------------------------------------ internals

    def _rules(self, platform: str) -> tuple[frozenset[Action], Answers]:
        """The actions the platform's plugin supports, and which request each answering
        action answers there."""
        try:
            plugin = self.pipeline.registry.platform(platform)
        except LookupError:
            raise ActionRefused(404, f"no platform {platform!r} is loaded") from None
        answers = declared_answers(plugin.manifest.answers)
        if not plugin.supports(Capability.OUTBOUND_ACTION):
            return frozenset(), answers
        return frozenset(plugin.manifest.actions), answers

    @staticmethod
    def _check(
        action: Action, supported: frozenset[Action], answers: Answers, fold: OrderFold,
        platform: str,
    ) -> None:  # fmt: skip
        allowed = allowed_actions(fold, supported, answers)
        if action not in supported:
            names = ", ".join(sorted(a.value for a in supported)) or "none"
            raise ActionRefused(
                422,
                f"the {platform} plugin does not support {action.value!r} (it supports: {names})",
                allowed,
            )
        why = refusal(action, fold, answers)
        if why is not None:
            state = fold.order_state.value if fold.order_state else "not accepted"
            names = ", ".join(a.value for a in allowed) or "none"
            raise ActionRefused(409, f"{why}; the order is {state} (allowed now: {names})", allowed)

    def _unread(self, session: Session, platform_order: Locked) -> list[LogEntry]:
        """The order's events received and not yet applied, as the fold reads them: an
        action asked right after a push (a refund request, a cancellation) is judged on it.
        An event its plugin cannot read is left to the worker, which parks it."""
        plugin = self.pipeline.registry.platform(platform_order.platform)
        entries = []
        for row in inbox.unread(session, platform_order.platform, platform_order.platform_order_id):
            try:
                event = plugin.event(inbox.native_event(row))
            except Exception:  # the worker parks it, with its error
                continue
            entries.append(LogEntry.of(event, arrival=UNREAD_ARRIVAL + int(row.id)))
        return entries

    def _verifies(self, platform: str) -> bool:
        """Whether the platform's plugin can settle an unknown outcome (``verify_action``)."""
        return self.pipeline.registry.platform(platform).supports(Capability.VERIFY_ACTION)

    def _verify(self, platform: str, request: ActionRequest) -> ActionResult:
        """What the order on the platform says of an action whose outcome was unknown;
        ``unknown`` again when reading it failed too."""
        try:
            plugin = self.pipeline.registry.platform(platform)
            config = self.authorizations.config_for(platform, request.store_id)
            return plugin.verify_action(request, config)
        except ChannelUnauthorized as exc:  # the next attempt fails at the gate
            return ActionResult(outcome=ActionOutcome.UNKNOWN, code=UNAUTHORIZED,
                                message=str(exc)[:500])  # fmt: skip
        except Exception as exc:  # a plugin bug: the attempt stays unknown, retried as transient
            logger.error("action %s: the %s plugin failed to verify it: %s",
                         request.action_id, platform, failure_site(exc))  # fmt: skip
            return ActionResult(outcome=ActionOutcome.UNKNOWN, code="VERIFY_ERROR",
                                message=f"verifying failed: {type(exc).__name__}")  # fmt: skip

    def _config(self, platform: str, request: ActionRequest) -> PluginConfig | ActionResult:
        """The config to call the plugin with for the action's store, or the rejection of
        an action whose store's channel is unauthorized or whose credentials cannot be
        read."""
        try:
            return self.authorizations.config_for(platform, request.store_id)
        except ChannelUnauthorized as exc:
            logger.warning("action %s failed without a platform call: store %s is "
                           "unauthorized on %s", request.action_id, request.store_id,
                           platform)  # fmt: skip
            return ActionResult(outcome=ActionOutcome.REJECTED, code=UNAUTHORIZED,
                                message=str(exc)[:500])  # fmt: skip
        except (SealingUnavailable, PlatformNotConfigured) as exc:
            logger.error("action %s failed: the config of store %s on %s cannot be read: %s",
                         request.action_id, request.store_id, platform,
                         type(exc).__name__)  # fmt: skip
            return ActionResult(outcome=ActionOutcome.REJECTED, code="NOT_CONFIGURED",
                                message=str(exc)[:500])  # fmt: skip

    def _call(self, platform: str, request: ActionRequest, config: PluginConfig) -> ActionResult:
        try:
            plugin = self.pipeline.registry.platform(platform)
            return plugin.outbound_action(request, config)
        except Exception as exc:  # a plugin bug: failing is safe, calling again may not be
            logger.error("action %s: the %s plugin failed: %s",
                         request.action_id, platform, failure_site(exc))  # fmt: skip
            return ActionResult(
                outcome=ActionOutcome.REJECTED, code="PLUGIN_ERROR",
                message=f"{type(exc).__name__}: {exc}"[:500],
            )  # fmt: skip

    def _queue(self, action_id: int, store_id: str, *, at_ms: int | None = None) -> None:
        delay = None if at_ms is None else max(at_ms - self.pipeline.clock(), 0)
        self.pipeline.send(
            PERFORM_ACTION, self.pipeline.queue_of(store_id), (action_id,), delay=delay, quiet=True
        )
