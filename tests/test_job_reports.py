"""What the scheduled jobs log of a round: one line when it did anything, naming what, at
the level an operator filters by, and nothing for a round that did nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_hold import Worker, working
from waimai_bridge.pipeline.anomalies import Evaluated
from waimai_bridge.pipeline.credentials import Renewed
from waimai_bridge.pipeline.pulls import Round
from waimai_bridge.store.database import Database
from waimai_bridge.store.retention import Purged

Line = tuple[int, str]

CASES: list[tuple[str, Any, list[Line]]] = [
    ("puller", Round(), []),
    (
        "puller",
        Round(pulled=2, fetched=1, new=3, failed=["testpay/S001"]),
        [(logging.INFO, "pulled 2, fetched 1, new 3, failed ['testpay/S001']")],
    ),
    ("puller", Round(pulled=1), [(logging.INFO, "pulled 1, fetched 0, new 0, failed []")]),
    ("puller", Round(fetched=1), [(logging.INFO, "pulled 0, fetched 1, new 0, failed []")]),
    (
        "puller",
        Round(failed=["a/b"]),
        [(logging.INFO, "pulled 0, fetched 0, new 0, failed ['a/b']")],
    ),
    (
        "puller",
        Round(unauthorized={"testpay/S002", "testpay/S001"}),
        [
            (
                logging.WARNING,
                "not pulled or fetched, the channel is unauthorized: "
                "['testpay/S001', 'testpay/S002']",
            )
        ],
    ),
    ("anomalies", Evaluated(), []),
    (
        "anomalies",
        Evaluated(opened={"stuck": 2}),
        [(logging.INFO, "anomalies opened {'stuck': 2}, resolved {}, lines mapped 0")],
    ),
    (
        "anomalies",
        Evaluated(resolved={"stuck": 1}),
        [(logging.INFO, "anomalies opened {}, resolved {'stuck': 1}, lines mapped 0")],
    ),
    (
        "anomalies",
        Evaluated(remapped=3),
        [(logging.INFO, "anomalies opened {}, resolved {}, lines mapped 3")],
    ),
    ("purger", Purged(), []),
    (
        "purger",
        Purged(inbox=1, deliveries=2, payloads=3),
        [(logging.INFO, "purged 1 processed inbox rows, 2 delivered updates, 3 event payloads")],
    ),
    (
        "purger",
        Purged(changes=4),
        [(logging.INFO, "purged 0 processed inbox rows, 0 delivered updates, 0 event payloads")],
    ),
    ("renewer", Renewed(), []),
    ("renewer", Renewed(forgotten=2), []),
    (
        "renewer",
        Renewed(renewed=["testpay/S001"]),
        [(logging.INFO, "credentials renewed ['testpay/S001'], refused [], failed []")],
    ),
    (
        "renewer",
        Renewed(refused=["testpay/S001"]),
        [(logging.INFO, "credentials renewed [], refused ['testpay/S001'], failed []")],
    ),
    (
        "renewer",
        Renewed(failed=["testpay/S002"]),
        [(logging.INFO, "credentials renewed [], refused [], failed ['testpay/S002']")],
    ),
]


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    folder = tmp_path_factory.mktemp("reports")
    database = Database(f"sqlite:///{folder / 'bridge.sqlite3'}")
    database.migrate()
    with working(database, folder) as made:
        yield made
    database.dispose()


@pytest.mark.parametrize(("job", "done", "lines"), CASES)
def test_a_round_is_logged_when_it_did_anything(
    worker: Worker, caplog: pytest.LogCaptureFixture, job: str, done: Any, lines: list[Line]
) -> None:
    caplog.set_level(logging.DEBUG, logger="waimai_bridge")
    getattr(worker.bridge, job).report(done)
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == lines


def test_every_scheduled_job_is_covered(worker: Worker) -> None:
    jobs = {name for name, _, _ in CASES}
    assert {type(getattr(worker.bridge, name)) for name in jobs} == {
        type(job) for job in worker.bridge.jobs
    }
