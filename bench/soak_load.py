"""The soak's platforms and chain: each order's pushes sent on its schedule and retried until
ACKed (as platforms redeliver), a share of them sent twice, and each order's action asked
through the API, from a pool of threads."""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.soak_checks import ActionRun
from bench.soak_plan import OrderPlan, Push

DUPLICATE_SHARE = 0.1
"""The share of ACKed pushes the platform sends again a little later."""
RETRY_S = (0.2, 2.0)
"""The first wait before a push or an API call is tried again, and the longest (doubling)."""
POLL_S = 0.5
"""How often an order's action is looked at while the bridge is not there yet."""


@dataclass
class Tally:
    """What the platforms and the chain sent and were answered (shared by the threads)."""

    requests: int = 0
    duplicates: int = 0
    acked: set[tuple[str, str]] = field(default_factory=set)
    """(platform, idempotency key) of every event whose push got a 2xx."""
    sent: set[tuple[str, str]] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    actions: list[ActionRun] = field(default_factory=list)
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, push: Push, outcome: str, *, duplicate: bool) -> None:
        """Count one request of ``push`` and how it was answered."""
        with self.lock:
            self.requests += 1
            self.duplicates += duplicate
            self.answers[outcome] += 1
            self.sent |= {(push.platform, key) for key in push.keys}
            if outcome.startswith("2"):
                self.acked |= {(push.platform, key) for key in push.keys}


def _outcome(answer: httpx.Response | Exception) -> str:
    if isinstance(answer, Exception):
        return type(answer).__name__
    return str(answer.status_code)


class Task:
    """Something to do at a time; :meth:`run` returns when to run it again (None: done)."""

    def run(self, client: httpx.Client, load: Load) -> float | None:
        """Do the next part; the delay before the part after it, or None when done."""
        raise NotImplementedError


@dataclass
class Resend(Task):
    """A push the platform sends again (a redelivery of one already ACKed)."""

    push: Push
    backoff: float = RETRY_S[0]

    def run(self, client: httpx.Client, load: Load) -> float | None:
        """Send it until ACKed."""
        if load.send(client, self.push, duplicate=True):
            return None
        self.backoff = min(self.backoff * 2, RETRY_S[1])
        return self.backoff


@dataclass(frozen=True)
class Ask:
    """An action the chain asks through the API: of the stored order (``stored``), or of
    the platform order before it is stored."""

    action: str
    reason: str | None
    stored: bool


Stage = tuple[float, Push | Ask]
"""A step of an order's script, and how long after the step before it it comes."""


def script(plan: OrderPlan, hold_s: float, rng: random.Random) -> list[Stage]:
    """An order's steps: placing pushes back to back (a cancel lands within the accept
    hold), the confirm after the first if the chain confirms it, the service steps spread
    out once the hold is over (the demo channels' stories assume it: an agreed cancel within
    the hold keeps the order out of the order table), then the action and what follows it."""
    stages: list[Stage] = [(0.0, plan.placing[0])]
    if plan.confirm:
        stages.append((0.05, Ask("confirm", None, stored=False)))
    stages += [(0.05, push) for push in plan.placing[1:]]
    stages += [
        (hold_s + rng.uniform(1.0, 3.0) if n == 0 else rng.uniform(0.2, 1.5), push)
        for n, push in enumerate(plan.service)
    ]
    if plan.action is not None:
        stages.append((0.2, Ask(plan.action.action, plan.action.reason, stored=True)))
        stages += [(0.2, push) for push in plan.action.then]
    return stages


@dataclass
class OrderRun(Task):
    """One order's script (:func:`script`), a step at a time; a step that fails is tried
    again, an action that does not end done ends the script."""

    plan: OrderPlan
    stages: list[Stage]
    rng: random.Random
    position: int = 0
    backoff: float = RETRY_S[0]
    asked: ActionRun | None = None
    order_id: int | None = None

    def run(self, client: httpx.Client, load: Load) -> float | None:
        """Take the next step; the delay before the one after it (None: the script is over)."""
        if self.position >= len(self.stages):
            with load.tally.lock:
                load.tally.finished += 1
            return None
        step = self.stages[self.position][1]
        if isinstance(step, Push):
            if not load.send(client, step, duplicate=False):
                self.backoff = min(self.backoff * 2, RETRY_S[1])
                return self.backoff
            self.backoff = RETRY_S[0]
            if self.rng.random() < DUPLICATE_SHARE:
                load.schedule(Resend(step), self.rng.uniform(0.1, 5.0))
            return self._next()
        try:
            waiting = self._act(client, load, step)
        except (httpx.TransportError, ValueError, KeyError):
            return POLL_S
        if waiting:
            return POLL_S
        assert self.asked is not None
        if self.asked.status != "done":  # the rest of the script would make no sense
            self.position = len(self.stages)
            return 0.0
        self.asked = None
        return self._next()

    def _next(self) -> float:
        self.position += 1
        return self.stages[self.position][0] if self.position < len(self.stages) else 0.0

    def _act(self, client: httpx.Client, load: Load, ask: Ask) -> bool:
        """Ask the action (its one key makes asking again harmless) and look at it until it
        ends: whether it is still to be waited for."""
        plan = self.plan
        if self.asked is None:
            self.asked = ActionRun(plan.platform, plan.platform_order_id, ask.action)
            with load.tally.lock:
                load.tally.actions.append(self.asked)
        run = self.asked
        if run.action_id is None:
            if ask.stored and self.order_id is None:
                page = client.get(
                    "/api/v1/orders",
                    params={"platform": plan.platform, "platform_order_id": plan.platform_order_id},
                )
                items = page.json()["items"] if page.status_code == 200 else []
                self.order_id = int(items[0]["id"]) if items else None
                return True
            path = (
                f"/api/v1/orders/{self.order_id}/actions" if ask.stored
                else f"/api/v1/platform-orders/{plan.platform}/{plan.platform_order_id}/actions"
            )  # fmt: skip
            answer = client.post(
                path,
                json={"action": ask.action, "reason": ask.reason,
                      "idempotency_key": f"soak-{plan.platform}-{plan.platform_order_id}-"
                                         f"{ask.action}"},
            )  # fmt: skip
            run.problem = f"HTTP {answer.status_code} {answer.text[:200]}"
            if answer.status_code in (200, 202):
                run.action_id, run.problem = int(answer.json()["id"]), None
            elif answer.status_code != 409 and answer.status_code < 500:
                run.status = "refused"
                return False
            return True
        view = client.get(f"/api/v1/actions/{run.action_id}")
        if view.status_code == 200:
            run.status, run.attempts = view.json()["status"], view.json()["attempts"]
        return run.status in ("not asked", "pending")


class Load:
    """The pool of threads running the tasks, each at its time, until :meth:`stop`."""

    def __init__(
        self, base_url: str, token: str, *, hold_s: float, threads: int, tally: Tally
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.hold_s = hold_s
        self.tally = tally
        self._heap: list[tuple[float, int, Task]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._stopping = False
        self._busy = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"soak-load-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def schedule(self, task: Task, delay: float) -> None:
        """Run ``task`` in ``delay`` seconds."""
        with self._ready:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), task))
            self._ready.notify()

    def idle(self) -> bool:
        """Whether no task is waiting or running."""
        with self._ready:
            return not self._heap and not self._busy

    def send(self, client: httpx.Client, push: Push, *, duplicate: bool) -> bool:
        """POST a push once; whether it was ACKed. A 4xx is a refusal: noted, not retried."""
        try:
            answer: httpx.Response | Exception = client.request(
                push.method, push.path, content=push.body, headers=dict(push.headers)
            )
        except httpx.TransportError as exc:
            answer = exc
        outcome = _outcome(answer)
        self.tally.answered(push, outcome, duplicate=duplicate)
        if outcome.startswith("4"):
            assert isinstance(answer, httpx.Response)
            with self.tally.lock:
                self.tally.refused.append(
                    f"{push.platform} {push.platform_order_id} step {push.step}: "
                    f"HTTP {answer.status_code} {answer.text[:200]}"
                )
            return True
        return outcome.startswith("2")

    def _work(self) -> None:
        client = httpx.Client(
            base_url=self.base_url, timeout=10, headers={"Authorization": f"Bearer {self.token}"}
        )
        with client:
            while True:
                task = self._next()
                if task is None:
                    return
                try:
                    delay = task.run(client, self)
                finally:
                    with self._ready:
                        self._busy -= 1
                if delay is not None:
                    self.schedule(task, delay)

    def _next(self) -> Task | None:
        with self._ready:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    self._busy += 1
                    return heapq.heappop(self._heap)[2]
                self._ready.wait(self._heap[0][0] - now if self._heap else None)
            return None

    def stop(self) -> None:
        """Stop the threads (tasks still waiting are dropped)."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
            if thread.is_alive():
                raise RuntimeError(f"soak: {thread.name} did not stop")


def launch(
    load: Load,
    rounds: Callable[[int], list[OrderPlan]],
    *,
    rate: float,
    until: float,
    stopping: threading.Event,
    seed: int,
) -> int:
    """Start orders at ``rate`` per second until ``until`` (monotonic), round after round:
    how many were started."""  # fmt: skip
    rng = random.Random(seed)
    started = 0
    for number in itertools.count():
        for plan in rounds(number):
            if time.monotonic() >= until or stopping.is_set():
                return started
            order_rng = random.Random(rng.random())
            load.schedule(OrderRun(plan, script(plan, load.hold_s, order_rng), order_rng), 0.0)
            started += 1
            stopping.wait(1 / rate)
    raise AssertionError("unreachable")  # pragma: no cover


def noted(tally: Tally) -> dict[str, Any]:
    """The answers the pushes got, by status (or error), for the report."""
    with tally.lock:
        return dict(sorted(tally.answers.items()))
