"""Subscriber deliveries that cannot stall (SPEC §7.3): each subscriber in a lane of its own,
outcomes recorded as they come, a run held to its time budget, answers read up to a cap,
a POST held to its timeout whole, updates never tried given up on all the same, and the
address rule checked again when connecting, redirects not followed.

A worker's bridge on SQLite and on PostgreSQL whose clock the test holds and whose queues
nobody consumes (see :mod:`tests.test_pipeline_mutants_messages`); the subscribers are
local HTTP servers that misbehave.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.processes import wait_until
from tests.test_hold import STORE, T0, Worker
from tests.test_pipeline_mutants_messages import Taken, working
from waimai_bridge.pipeline.shards import DELIVER, DELIVERY_QUEUE
from waimai_bridge.store import outbox, subscriptions
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Delivery

ALLOW = "subscriber_allow_private = true\n"
Answer = Callable[[BaseHTTPRequestHandler, "Endpoint"], None]


class Endpoint:
    """A local subscriber whose every POST is answered by ``answer``; counts what it took."""

    def __init__(self, answer: Answer) -> None:
        self.posts = 0
        self.sent = 0
        """Bytes of answer body written before the bridge stopped reading."""
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                with endpoint._lock:
                    endpoint.posts += 1
                try:
                    answer(self, endpoint)
                except OSError:  # the bridge hung up: what it did not want to read
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def count(self, sent: int) -> None:
        with self._lock:
            self.sent += sent

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
        assert not self._thread.is_alive()


@contextmanager
def endpoint(answer: Answer) -> Iterator[Endpoint]:
    made = Endpoint(answer)
    try:
        yield made
    finally:
        made.close()


def status(code: int, delay: float = 0.0) -> Answer:
    """An answer of ``code`` and no body, after ``delay`` seconds."""

    def answer(handler: BaseHTTPRequestHandler, _: Endpoint) -> None:
        time.sleep(delay)  # the subscriber's own slowness, not a wait of the test's
        handler.send_response(code)
        handler.send_header("content-length", "0")
        handler.end_headers()

    return answer


@contextmanager
def silent() -> Iterator[str]:
    """A subscriber URL that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def subscribe(worker: Worker, url: str) -> int:
    """A subscription to ``url`` (every update)."""
    with worker.bridge.database.transaction() as session:
        row = subscriptions.subscribe(
            session, url=url, secret="s" * 16, store_ids=None, platforms=None,
            states=None, now_ms=worker.now,
        )  # fmt: skip
        return row.id


def write(worker: Worker, updates: int, *, at_ms: int | None = None) -> None:
    """``updates`` order updates, due for every subscription (written at ``at_ms``)."""
    written = worker.now if at_ms is None else at_ms
    with worker.bridge.database.transaction() as session:
        for number in range(updates):
            outbox.order_update(
                session, order_id=number + 1, platform="testpay", store_id=STORE,
                status="paid", previous_status=None, rider_state=None, version=1,
                now_ms=written,
            )  # fmt: skip


def subscribed(worker: Worker, url: str, updates: int, *, at_ms: int | None = None) -> int:
    """A subscription to ``url`` and ``updates`` updates due for it."""
    subscription = subscribe(worker, url)
    write(worker, updates, at_ms=at_ms)
    return subscription


def rows(worker: Worker, subscription_id: int) -> list[Delivery]:
    with worker.bridge.database.transaction() as session:
        found = session.execute(
            select(Delivery)
            .where(Delivery.subscription_id == subscription_id)
            .order_by(Delivery.id)
        )
        result = list(found.scalars())
        session.expunge_all()
        return result


@contextmanager
def bridge(database: Database, tmp_path: Path, extra: str = "") -> Iterator[tuple[Worker, Taken]]:
    with working(database.url, tmp_path, extra=extra) as made:
        yield made


@contextmanager
def running(worker: Worker) -> Iterator[Callable[[], float]]:
    """``deliver()`` in a thread of its own; gives how long it took, once it is over."""
    took: list[float] = []

    def run() -> None:
        started = time.monotonic()
        worker.bridge.deliverer.deliver()
        took.append(time.monotonic() - started)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield lambda: took[0]
    finally:
        thread.join(30)
        assert not thread.is_alive()
        assert took, "deliver() raised"


@pytest.mark.timeout(60)
def test_a_subscriber_that_never_answers_does_not_delay_another(
    database: Database, tmp_path: Path
) -> None:
    extra = ALLOW + "subscriber_timeout_seconds = 3"
    with silent() as dead_url, endpoint(status(204)) as fast, bridge(database, tmp_path, extra) as (
        worker, _,
    ):  # fmt: skip
        dead = subscribe(worker, dead_url)  # its updates are written first: due first
        good = subscribe(worker, fast.url)
        write(worker, 5)
        with running(worker) as took:

            def all_done() -> bool:
                return [row.status for row in rows(worker, good)] == ["done"] * 5

            wait_until(all_done, 1.5, "the good subscriber's updates delivered and recorded")
            assert fast.posts == 5
        assert took() < 6
        [first, *rest] = rows(worker, dead)
    assert (first.status, first.attempts) == ("pending", 1)
    assert (first.last_error or "").startswith("ReadTimeout: ")
    # not tried in that run: they wait for the failed one's retry
    assert [(row.attempts, row.next_attempt_at_ms) for row in rest] == [
        (0, first.next_attempt_at_ms)
    ] * 4
    assert {row.status for row in rest} == {"pending"}


@pytest.mark.timeout(60)
def test_a_run_stops_at_its_time_budget_and_leaves_the_rest_due(
    database: Database, tmp_path: Path
) -> None:
    extra = ALLOW + "subscriber_timeout_seconds = 0.5"
    with endpoint(status(204, delay=0.25)) as slow, bridge(database, tmp_path, extra) as (
        worker, taken,
    ):  # fmt: skip
        worker.bridge.deliverer.budget_s = 1.0
        subscription = subscribed(worker, slow.url, 10)
        started = time.monotonic()
        worker.bridge.deliverer.deliver()
        assert time.monotonic() - started < 2.0
        first = rows(worker, subscription)
        done = [row for row in first if row.status == "done"]
        left = [row for row in first if row.status != "done"]
        assert 1 <= len(done) < 10
        assert slow.posts == len(done)
        assert {(row.status, row.attempts, row.next_attempt_at_ms) for row in left} == {
            ("pending", 0, worker.now)  # due again at once, not held for the lease
        }
        assert taken.taken() == [(DELIVER, DELIVERY_QUEUE, (), None)]
        for _ in range(10):  # nothing is lost: the runs that follow take the rest
            worker.bridge.deliverer.deliver()
            if all(row.status == "done" for row in rows(worker, subscription)):
                break
        assert slow.posts == 10
        assert all(row.status == "done" for row in rows(worker, subscription))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cause", ["unreachable", "budget"])
def test_updates_never_tried_die_after_the_give_up_time(
    database: Database, tmp_path: Path, cause: str
) -> None:
    extra = ALLOW + "subscriber_timeout_seconds = 0.5\nsubscriber_give_up_seconds = 60"
    answer = status(204, delay=0.3)
    with endpoint(answer) as slow, bridge(database, tmp_path, extra) as (worker, _):
        worker.bridge.deliverer.budget_s = 0.6
        url = slow.url if cause == "budget" else "http://127.0.0.1:9/nobody-listens"
        subscription = subscribed(worker, url, 4, at_ms=T0)
        worker.now = T0 + 61_000  # every update past the give-up time
        worker.bridge.deliverer.deliver()
        [first, *rest] = rows(worker, subscription)
    if cause == "budget":
        assert (first.status, first.attempts) == ("done", 1)
        assert slow.posts == 1
    else:
        assert (first.status, first.attempts) == ("dead", 1)
        assert (first.last_error or "").startswith("ConnectError: ")
    assert {(row.status, row.attempts) for row in rest} == {("dead", 0)}
    assert all((row.last_error or "").startswith("not tried: ") for row in rest)


def huge(code: int) -> Answer:
    """An answer of ``code`` with a 256 MiB body, written until the bridge hangs up."""

    def answer(handler: BaseHTTPRequestHandler, endpoint: Endpoint) -> None:
        chunk = b"x" * 65536
        total = 256 * 1024 * 1024
        handler.send_response(code)
        handler.send_header("content-length", str(total))
        handler.end_headers()
        for _ in range(total // len(chunk)):
            handler.wfile.write(chunk)
            endpoint.count(len(chunk))

    return answer


@pytest.mark.timeout(60)
@pytest.mark.parametrize("code", [200, 500])
def test_a_huge_answer_is_cut_after_a_little_and_kept_as_its_status(
    database: Database, tmp_path: Path, code: int
) -> None:
    with endpoint(huge(code)) as talker, bridge(database, tmp_path, ALLOW) as (worker, _):
        subscription = subscribed(worker, talker.url, 1)
        started = time.monotonic()
        worker.bridge.deliverer.deliver()
        assert time.monotonic() - started < 3
        [row] = rows(worker, subscription)
        wait_until(lambda: talker.posts == 1 and talker.sent > 0, 5, "the answer started")
    # what the sockets' buffers held, at most: far from the 256 MiB sent
    assert talker.sent < 32 * 1024 * 1024
    if code == 200:
        assert (row.status, row.last_error) == ("done", None)
    else:
        assert (row.status, row.last_error) == ("pending", "HTTP 500 Internal Server Error")


def trickle(handler: BaseHTTPRequestHandler, _: Endpoint) -> None:
    """A status line, then a header a byte at a time, each well within the read timeout."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    handler.wfile.flush()
    for byte in b"x-slow: " + b"z" * 100:
        time.sleep(0.05)  # the subscriber's own slowness
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
    handler.close_connection = True


@pytest.mark.timeout(60)
def test_a_subscriber_trickling_its_answer_is_cut_at_the_timeout(
    database: Database, tmp_path: Path
) -> None:
    extra = ALLOW + "subscriber_timeout_seconds = 0.5"
    with endpoint(trickle) as slow, bridge(database, tmp_path, extra) as (worker, _):
        subscription = subscribed(worker, slow.url, 1)
        started = time.monotonic()
        worker.bridge.deliverer.deliver()
        assert time.monotonic() - started < 2  # not the 5 s the trickle lasts
        [row] = rows(worker, subscription)
    assert (row.status, row.attempts) == ("pending", 1)
    assert (row.last_error or "").startswith("ReadTimeout: ")


@pytest.mark.timeout(60)
def test_a_private_address_subscribed_before_is_refused_when_connecting(
    database: Database, tmp_path: Path
) -> None:
    with endpoint(status(204)) as local, bridge(database, tmp_path) as (worker, taken):
        subscription = subscribed(worker, local.url, 2)  # written as an older bridge let it
        worker.bridge.deliverer.deliver()
        first, second = rows(worker, subscription)
        assert local.posts == 0
    assert (first.status, first.attempts, first.last_error) == (
        "pending", 1, "address not allowed: loopback",
    )  # fmt: skip
    assert (second.status, second.attempts) == ("pending", 0)
    assert second.last_error is None
    assert taken.taken() == [(DELIVER, DELIVERY_QUEUE, (), first.next_attempt_at_ms - worker.now)]


@pytest.mark.timeout(60)
def test_a_redirect_is_not_followed(database: Database, tmp_path: Path) -> None:
    with endpoint(status(204)) as target:

        def redirect(handler: BaseHTTPRequestHandler, _: Endpoint) -> None:
            handler.send_response(307)
            handler.send_header("location", target.url)
            handler.send_header("content-length", "0")
            handler.end_headers()

        with endpoint(redirect) as first, bridge(database, tmp_path, ALLOW) as (worker, _):
            subscription = subscribed(worker, first.url, 1)
            worker.bridge.deliverer.deliver()
            [row] = rows(worker, subscription)
        assert (first.posts, target.posts) == (1, 0)
    assert (row.status, row.last_error) == ("pending", "HTTP 307 Temporary Redirect")
