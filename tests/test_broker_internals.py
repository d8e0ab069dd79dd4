"""The Dramatiq internals :mod:`waimai_bridge.pipeline.broker` relies on, checked loudly.

``DoorbellRedisBroker`` subclasses Dramatiq's private ``_RedisConsumer`` and calls the Redis
broker's ``dispatch`` script with the argument list ``RedisBroker._dispatch`` builds.
``pyproject.toml`` pins Dramatiq to the minor range these checks passed on; a release
that changes any of them fails here, naming what to look at again, before it can fail in
production.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator
from importlib.metadata import requires, version

import dramatiq
import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from packaging.requirements import Requirement

from waimai_bridge.pipeline.broker import DoorbellRedisBroker, make_broker

DISPATCH_ARGUMENTS = [
    "command",
    "timestamp",
    "queue_name",
    "self.broker_id",
    "self.heartbeat_timeout",
    "self.dead_message_ttl",
    "self._should_do_maintenance(command)",
    "self._max_unpack_size()",
    "*args",
]
"""The dispatch script's arguments as ``RedisBroker._dispatch`` passes them, which
``DoorbellRedisBroker.do_enqueue`` copies."""


def _dramatiq_requirement() -> Requirement:
    [requirement] = [
        Requirement(line)
        for line in requires("waimai-bridge") or []
        if Requirement(line).name == "dramatiq"
    ]
    return requirement


def test_dramatiq_is_pinned_to_a_minor_range_and_installed_within_it() -> None:
    requirement = _dramatiq_requirement()
    upper = [spec for spec in requirement.specifier if spec.operator == "<"]
    assert upper, "a private Dramatiq API is used: pin an upper bound (the tested minor range)"
    installed = version("dramatiq")
    assert requirement.specifier.contains(installed), (
        f"dramatiq {installed} is outside {requirement.specifier}, the range broker.py's use "
        "of its internals was checked against"
    )


def test_the_dispatch_script_takes_the_arguments_do_enqueue_passes() -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(RedisBroker._dispatch)))
    lists = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "args" for t in node.targets)
        and isinstance(node.value, ast.List)
    ]
    assert len(lists) == 1, "RedisBroker._dispatch no longer builds one `args` list"
    [assignment] = lists
    assert isinstance(assignment.value, ast.List)
    passed = [ast.unparse(element) for element in assignment.value.elts]
    assert passed == DISPATCH_ARGUMENTS, (
        "RedisBroker._dispatch passes the dispatch script other arguments than "
        "DoorbellRedisBroker.do_enqueue copies: compare the two"
    )


def test_the_consumer_subclassed_keeps_its_constructor_and_the_attributes_read() -> None:
    parameters = list(inspect.signature(_RedisConsumer.__init__).parameters)
    assert parameters == ["self", "broker", "queue_name", "prefetch", "timeout"]
    for method in ("__next__", "ack", "nack", "requeue", "close"):
        assert callable(getattr(_RedisConsumer, method, None)), method


@pytest.fixture
def broker(redis_url: str) -> Iterator[DoorbellRedisBroker]:
    made = make_broker(redis_url)
    assert isinstance(made, DoorbellRedisBroker)
    dramatiq.set_broker(made)
    yield made
    made.close()


def test_a_message_the_doorbell_broker_enqueues_is_what_dramatiq_reads(
    broker: DoorbellRedisBroker, redis_url: str
) -> None:
    assert "dispatch" in broker.scripts
    broker.declare_queue("internals")
    sent = broker.enqueue(
        Message(queue_name="internals", actor_name="a", args=(1, "二"), kwargs={}, options={})
    )
    assert broker.client.llen(broker.doorbell("internals")) == 1
    # Dramatiq's own consumer reads what do_enqueue wrote
    stock = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    stock.declare_queue("internals")
    consumer = stock.consume("internals", prefetch=1, timeout=100)
    try:
        received = next(consumer)
        assert received is not None
        assert (received.message_id, received.args) == (sent.message_id, (1, "二"))
        consumer.ack(received)
    finally:
        consumer.close()
        stock.close()


def test_the_doorbell_consumer_finds_the_attributes_it_reads(
    broker: DoorbellRedisBroker,
) -> None:
    broker.declare_queue("internals")
    consumer = broker.consume("internals", prefetch=2, timeout=100)
    try:
        for attribute in ("misses", "message_cache", "prefetch", "outstanding_message_count",
                          "timeout", "broker"):  # fmt: skip
            assert hasattr(consumer, attribute), f"_RedisConsumer no longer has {attribute}"
        assert next(consumer) is None  # an empty queue: no message, and no error
    finally:
        consumer.close()
