"""Fuzzing each plugin's ``parse_event`` with mutated real fixtures: only an ACK or a refusal.

The samples are the accepted pushes of each plugin's ``fixtures/``. Each is damaged as it
travels (bit flips, truncation, bad UTF-8, a slice repeated or cut), or damaged in what it
says and then signed again, so that the damage reaches past the signature check: values
replaced by deep nesting, huge numbers, long or broken text, parameters added empty,
duplicated, removed or by the thousand. Read through the core's contract-checked hook calls
(``test_hostile_pushes.read``), a push is accepted — and its events then map and price — or
refused with 400, 401, 404 or 413; any other exception fails. A push signed again is never
refused 401. Over HTTP, into a running ``serve``, a refusal writes nothing to the inbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from waimai_bridge_eleme.signing import compact_json, push_signature
from waimai_bridge_meituan import push as meituan_push
from waimai_bridge_meituan.assumptions import JSON_FIELDS
from waimai_bridge_meituan.signing import sig
from waimai_bridge_meituan.testing import FIXTURE_SECRET, encode_push

from tests.processes import running_serve
from tests.schema_strategies import paths, replaced
from tests.test_hostile_pushes import (
    CONFIGS,
    ELEME_SECRET,
    Push,
    deep,
    hostile_values,
    own_pos_push,
    read,
)
from tests.test_hostile_pushes import platforms as hostile_platforms
from tests.test_hostile_pushes_e2e import CONFIG
from waimai_bridge.errors import PushRefused
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import InboundRequest
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent

REFUSALS = (400, 401, 404, 413)
"""The statuses a push may be refused with; anything else is a failure."""
APP_FIELD = {"eleme": "appId", "meituan": "app_id"}
"""The field naming the app a push is for: a push signed again but for no or another app
is refused 401."""
platforms = hostile_platforms
"""The plugins behind the core's checked hook calls (the fixture of the hostile pushes)."""
SECRETS = [str(config.settings.get("app_secret", config.settings.get("secret"))) for config in
           CONFIGS.values()]  # fmt: skip

# --------------------------------------------------------------------------- the samples


@dataclass(frozen=True)
class Sample:
    """A real push decoded to what its signature covers: Eleme's envelope, Meituan's
    parameters with their true values (``sig`` left out), own_pos's body."""

    name: str
    platform: str
    kind: str | None
    method: str
    signed: Any


@dataclass(frozen=True)
class Sent(Push):
    """A push with its method (Meituan's GET carries the parameters in the query)."""

    method: str = "POST"

    def request(self, *, received_at_ms: int | None = None) -> InboundRequest:
        base = super().request(received_at_ms=received_at_ms)
        if self.method == "POST":
            return base
        query = parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return base.model_copy(update={"method": self.method, "query": query, "body": b""})


def _fixtures(package: str, folder: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    root = Path(str(resources.files(package).joinpath("fixtures", folder)))
    for path in sorted(root.glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if "request" in case and case["expect"]["events"]:  # an accepted push
            yield path.stem, case["request"]


def _samples() -> list[Sample]:
    found = []
    for name, raw in _fixtures("waimai_bridge_eleme"):
        envelope = json.loads(raw["body"])
        del envelope["signature"]
        found.append(Sample(f"eleme-{name}", "eleme", None, "POST", envelope))
    config = CONFIGS["meituan"]
    for name, raw in _fixtures("waimai_bridge_meituan", "push"):
        pairs = raw["query"] or parse_qsl(raw["body"], keep_blank_values=True)
        params = dict(pairs)
        url = meituan_push.callback_url(config, raw["kind"])
        reading = meituan_push.verified_reading(url, params, FIXTURE_SECRET, params["sig"])
        assert reading is not None, name
        values = [(key, value) for key, value in reading.items() if key != "sig"]
        found.append(Sample(f"meituan-{name}", "meituan", raw["kind"], raw["method"], values))
    for name, raw in _fixtures("waimai_bridge_own_pos"):
        found.append(Sample(f"own_pos-{name}", "own_pos", None, "POST", raw["body"].encode()))
    return found


SAMPLES = _samples()


def signed(sample: Sample, content: Any) -> Sent:
    """``content`` (a sample's signed part, maybe damaged) signed again and sent."""
    if sample.platform == "eleme":
        envelope = {**content, "signature": push_signature(content, ELEME_SECRET)}
        try:
            body = compact_json(envelope).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: sent as an escape
            body = json.dumps(envelope, separators=(",", ":")).encode("ascii")
        return Sent("eleme", None, body, {})
    if sample.platform == "meituan":
        url = meituan_push.callback_url(CONFIGS["meituan"], str(sample.kind))
        pairs = [*content, ("sig", sig(url, dict(content), FIXTURE_SECRET))]
        body = b"&".join(encode_push({key: value}) for key, value in pairs)
        return Sent("meituan", sample.kind, body, {}, sample.method)
    push = own_pos_push(content)
    return Sent("own_pos", None, push.body, push.headers)


def outcome(platforms: dict[str, Platform], push: Push) -> int:
    """200 for a push read (its events mapped and priced), else the refusal's status;
    any other exception propagates and fails the test."""
    try:
        read(platforms, push)
    except PushRefused as refused:
        status, message = refused.status, refused.message
    else:
        status, message = 200, "accepted"
    if currently_in_test_context():  # what the fuzz reached: --hypothesis-show-statistics
        event(f"{status}: {message[:40]}")
    assert status == 200 or status in REFUSALS, message
    assert message.strip()
    assert len(message) < 400, "a refusal quotes a value at length"
    assert not any(secret in message for secret in SECRETS)
    return status


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_every_sample_signed_again_is_accepted(
    platforms: dict[str, Platform],
    sample: Sample,
) -> None:
    assert outcome(platforms, signed(sample, sample.signed)) == 200


# --------------------------------------------------------------------------- the mutations

BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x00"]


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` damaged once or a few times: a bit flipped, cut short, bad UTF-8 put in, a
    slice repeated or cut out."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        how = draw(st.sampled_from(["flip", "truncate", "bad-utf8", "repeat", "cut"]))
        if how == "flip" and data:
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
        elif how == "truncate":
            data = data[:at]
        elif how == "bad-utf8":
            data = data[:at] + draw(st.sampled_from(BAD_UTF8)) + data[at:]
        else:
            end = at + draw(st.integers(1, 64))
            data = data[:at] + (data[at:end] * 2 if how == "repeat" else b"") + data[end:]
    return data


hostile_texts = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "1e999999", "-1e26", "NaN", "²", "٣", "null", "%ff",
                     "%E4%B8", "a\x00b", "9" * 40, "9" * 5000, "[" * 100_000, "{}", "[]",
                     json.dumps(deep(40)), json.dumps({"a": 10**400}), "x" * 300_000]),
    st.text(max_size=40),
    st.text(min_size=200, max_size=400),
)  # fmt: skip
"""Texts a form parameter or a JSON string may hold that no field of a push means."""

huge_values = st.one_of(
    hostile_values,
    st.sampled_from([10**400, -(10**400), 1e308, -1e308, 2**63, -(2**63) - 1, 5e-324]),
    st.sampled_from([deep(40), deep(200), {"a": deep(33)}]),
    hostile_texts,
)
"""JSON values no field of a push means: deep, huge, broken."""


@st.composite
def mutated_json(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one of its values replaced by a hostile one."""
    where = draw(st.sampled_from(paths(document)))
    return replaced(document, where, draw(huge_values))


@st.composite
def mutated_content(draw: st.DrawFn, sample: Sample) -> tuple[Any, bool]:
    """The sample's signed part damaged in what it says (to be signed again), and whether
    the damage touched the app it names (so that a 401 is the right answer)."""
    content = sample.signed
    if sample.platform == "own_pos":
        if draw(st.booleans()):
            return draw(damaged(content)), False
        document = draw(mutated_json(json.loads(content)))
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"), False
    if sample.platform == "meituan":
        return draw(mutated_params(content))
    key = draw(st.sampled_from([*content, "extra"]))
    how = draw(st.sampled_from(["replace", "remove", "message"]))
    if how == "remove":
        return {k: v for k, v in content.items() if k != key}, key == APP_FIELD["eleme"]
    if how == "message":
        inner = json.loads(content["message"])
        return {**content, "message": json.dumps(draw(mutated_json(inner)))}, False
    return {**content, key: draw(huge_values)}, key == APP_FIELD["eleme"]


@st.composite
def mutated_params(
    draw: st.DrawFn, pairs: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], bool]:
    """Meituan parameters with one replaced, emptied, duplicated, removed or added, or
    thousands added; or a JSON field's inside replaced; and whether ``app_id`` was touched."""
    key = draw(st.sampled_from([name for name, _ in pairs]))
    touched = key == APP_FIELD["meituan"]
    how = draw(st.sampled_from(["replace", "json", "empty", "twice", "remove", "add", "many"]))
    if how == "json" and key in JSON_FIELDS:
        inner = json.loads(dict(pairs)[key])
        text = json.dumps(draw(mutated_json(inner)))
        return [(k, text if k == key else v) for k, v in pairs], False
    if how in ("replace", "json"):
        text = draw(hostile_texts)
        return [(k, text if k == key else v) for k, v in pairs], touched
    if how == "empty":
        name = draw(st.sampled_from(["zz", "img_data", "refund_id", "x_" + key]))
        return [*pairs, (name, "")], False
    if how == "twice":
        return [*pairs, (key, draw(st.sampled_from(["", dict(pairs)[key], "1"])))], False
    if how == "remove":
        return [(k, v) for k, v in pairs if k != key], touched
    if how == "add":
        name = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
        return [*pairs, (name, draw(hostile_texts))], False
    count = draw(st.sampled_from([300, 5000, 100_000]))
    return [*pairs, *((f"p{index}", "1") for index in range(count))], False


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLATFORMS = ("eleme", "meituan", "own_pos")


@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(data=st.data())
def test_a_push_damaged_on_the_way_is_accepted_or_refused(
    platforms: dict[str, Platform],
    platform: str,
    data: st.DataObject,
) -> None:
    sample = data.draw(st.sampled_from([s for s in SAMPLES if s.platform == platform]))
    sent = signed(sample, sample.signed)
    broken_body = data.draw(damaged(sent.body))
    headers = dict(sent.headers)
    in_a_header = data.draw(st.booleans())
    if headers and in_a_header:  # own_pos: a header damaged instead
        name = data.draw(st.sampled_from(sorted(headers)))
        headers[name] = data.draw(damaged(headers[name].encode())).decode("utf-8", "replace")
        broken_body = sent.body
    outcome(platforms, Sent(platform, sent.kind, broken_body, headers, sent.method))


@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(data=st.data())
def test_a_push_damaged_then_signed_again_is_accepted_or_refused_never_401(
    platforms: dict[str, Platform],
    platform: str,
    data: st.DataObject,
) -> None:
    sample = data.draw(st.sampled_from([s for s in SAMPLES if s.platform == platform]))
    content, app_touched = data.draw(mutated_content(sample))
    status = outcome(platforms, signed(sample, content))
    assert status != 401 or app_touched


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database]]:
    """A running ``serve`` on a fresh SQLite database, and that database."""
    folder = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'fuzz.sqlite3'}"
    database = Database(url)
    database.migrate()
    try:
        with running_serve(folder, CONFIG.replace("{url}", url)) as base:
            yield base, database
    finally:
        database.dispose()


def inbox_rows(database: Database) -> int:
    with database.transaction() as session:
        return int(session.execute(select(func.count()).select_from(InboxEvent)).scalar_one())


def send(base: str, push: Sent) -> httpx.Response:
    path = f"/webhooks/{push.platform}" + (f"/{push.kind}" if push.kind else "")
    if push.method == "GET":
        return httpx.get(f"{base}{path}?{push.body.decode('latin-1')}", timeout=30)
    form = {"content-type": "application/x-www-form-urlencoded"} if push.kind else {}
    return httpx.post(base + path, content=push.body, headers={**form, **push.headers}, timeout=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_over_http_a_refused_push_writes_nothing(
    served: tuple[str, Database], data: st.DataObject
) -> None:
    base, database = served
    sample = data.draw(st.sampled_from(SAMPLES))
    if data.draw(st.booleans()):
        push = signed(sample, data.draw(mutated_content(sample))[0])
    else:
        sent = signed(sample, sample.signed)
        push = Sent(sent.platform, sent.kind, data.draw(damaged(sent.body)), sent.headers,
                    sent.method)  # fmt: skip
    before = inbox_rows(database)
    answer = send(base, push)
    event(f"HTTP {answer.status_code}")
    assert answer.status_code == 200 or answer.status_code in REFUSALS, answer.text
    if answer.status_code != 200:
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()
        assert inbox_rows(database) == before
