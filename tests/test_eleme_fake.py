"""The Eleme fake speaks the platform's protocol (platforms.md §1–2) and plays its script."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from waimai_bridge_eleme.assumptions import ALREADY_CONFIRMED, ORDER_NOT_FOUND
from waimai_bridge_eleme.signing import push_signature, request_signature
from waimai_bridge_eleme.testing import (
    FIXTURE_SETTINGS,
    FIXTURE_STORES,
    FakeAnswer,
    FakeEleme,
    push_body,
    push_envelope,
)

APP_KEY = str(FIXTURE_SETTINGS["app_key"])
SECRET = str(FIXTURE_SETTINGS["app_secret"])
TOKEN = str(FIXTURE_STORES["S001"]["token"])
OTHER_TOKEN = str(FIXTURE_STORES["S002"]["token"])
CONFIRM = "eleme.order.confirmOrderLite"
CANCEL = "eleme.order.cancelOrderLite"
AGREE = "eleme.order.agreeRefundLite"
DISAGREE = "eleme.order.disagreeRefundLite"
GET_ORDER = "eleme.order.getOrder"
ORDER_ID = "3084512398765432101"


def envelope(
    action: str,
    params: dict[str, Any],
    *,
    token: str = TOKEN,
    app_key: str = APP_KEY,
    secret: str = SECRET,
    timestamp: int | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A nop 1.0.0 request as a client builds it (platforms.md §2.1–2.2)."""
    metas = {"app_key": app_key, "timestamp": int(time.time()) if timestamp is None else timestamp}
    return {
        "nop": "1.0.0",
        "id": request_id or f"{uuid.uuid4().hex.upper()}|{int(time.time() * 1000)}",
        "action": action,
        "token": token,
        "metas": metas,
        "params": params,
        "signature": request_signature(action, token, metas, params, secret),
    }


@pytest.fixture
def fake() -> Iterator[FakeEleme]:
    with FakeEleme.for_fixtures() as running:
        yield running


def post(fake: FakeEleme, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(fake.api_base, json=body, timeout=5)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def error_code(answer: dict[str, Any]) -> str | None:
    assert answer["result"] is None
    return None if answer["error"] is None else str(answer["error"]["code"])


# --------------------------------------------------------------------------- accepted calls


def test_a_signed_call_is_answered_ok_and_recorded(fake: FakeEleme) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID})

    answer = post(fake, body)

    assert answer == {"id": body["id"], "result": None, "error": None}
    [call] = fake.calls
    assert call.action == CONFIRM
    assert call.params == {"orderId": ORDER_ID}
    assert call.token == TOKEN
    assert call.signature_ok is True
    assert call.request_id == body["id"]
    assert call.answer == answer
    assert call.http_status == 200
    assert fake.calls_to(CONFIRM) == [call]
    assert fake.calls_to(CANCEL) == []


@pytest.mark.parametrize(
    ("action", "params"),
    [
        (CANCEL, {"orderId": ORDER_ID, "type": "foodSoldOut", "remark": "卖完了"}),
        (CANCEL, {"orderId": ORDER_ID, "type": "others", "remark": ""}),
        (AGREE, {"orderId": ORDER_ID}),
        (DISAGREE, {"orderId": ORDER_ID, "reason": "已经送达/签收"}),
    ],
)
def test_the_order_actions_succeed(fake: FakeEleme, action: str, params: dict[str, Any]) -> None:
    assert error_code(post(fake, envelope(action, params))) is None
    assert fake.calls_to(action)[0].signature_ok


def test_non_ascii_params_are_signed_unescaped_whatever_the_wire_escaping(
    fake: FakeEleme,
) -> None:
    # httpx's json= escapes non-ASCII (\uXXXX); the fake signs the decoded value, as signed.
    body = envelope(DISAGREE, {"orderId": ORDER_ID, "reason": "顾客说/没收到"})
    raw = json.dumps(body, ensure_ascii=True).encode()
    assert b"\\u" in raw

    response = httpx.post(fake.api_base, content=raw, timeout=5)

    assert response.json()["error"] is None


def test_get_order_returns_the_stored_order(fake: FakeEleme) -> None:
    order = {"id": ORDER_ID, "orderId": ORDER_ID, "status": "unprocessed", "income": 25.42}
    fake.put_order(order)

    assert post(fake, envelope(GET_ORDER, {"orderId": ORDER_ID}))["result"] == {
        **order, "refundStatus": "noRefund",
    }  # fmt: skip
    unknown = post(fake, envelope(GET_ORDER, {"orderId": "1"}))
    assert (unknown["result"], error_code(unknown)) == (None, ORDER_NOT_FOUND)


def test_get_order_shows_what_the_actions_did(fake: FakeEleme) -> None:
    fake.put_order({"id": ORDER_ID, "orderId": ORDER_ID, "status": "unprocessed"})
    post(fake, envelope(CONFIRM, {"orderId": ORDER_ID}))
    post(fake, envelope(AGREE, {"orderId": ORDER_ID}))

    order = post(fake, envelope(GET_ORDER, {"orderId": ORDER_ID}))["result"]

    assert (order["status"], order["refundStatus"]) == ("valid", "successful")
    fake.reset()  # forgets what the actions did, not the order
    order = post(fake, envelope(GET_ORDER, {"orderId": ORDER_ID}))["result"]
    assert (order["status"], order["refundStatus"]) == ("unprocessed", "noRefund")


def test_the_official_worked_example_is_accepted() -> None:
    # The doc example of platforms.md §2.2, at the doc's own time.
    metas = {"app_key": "wYO4C8ZLzB", "timestamp": 1486217703}
    params = {"orderId": "100027526535707064"}
    token = "ed72bdaef7b635ecf9279147d76d6a55"
    secret = "8e81ef8b73593d6b24e0cd9f11cbe3132d11ab8e"
    signature = request_signature(GET_ORDER, token, metas, params, secret)
    assert signature == "B450D7598455D163488A2ABEB1E0E0C5"
    body = {
        "nop": "1.0.0",
        "id": "59802291567A41A584EE6947DEA777F0|1486217703000",
        "action": GET_ORDER,
        "token": token,
        "metas": metas,
        "params": params,
        "signature": "B450D7598455D163488A2ABEB1E0E0C5",
    }

    with FakeEleme(
        app_key="wYO4C8ZLzB", app_secret=secret, tokens=[token], clock=lambda: 1486217703.5,
        orders=[{"id": "100027526535707064", "orderId": "100027526535707064"}],
    ) as fake:  # fmt: skip
        answer = post(fake, body)

    assert answer["error"] is None
    assert answer["result"]["id"] == "100027526535707064"
    assert fake.calls[0].signature_ok


def test_a_timestamp_in_milliseconds_is_accepted(fake: FakeEleme) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID}, timestamp=int(time.time() * 1000))

    assert error_code(post(fake, body)) is None


def test_without_tokens_any_token_is_accepted() -> None:
    with FakeEleme(app_key=APP_KEY, app_secret=SECRET) as fake:
        answer = post(fake, envelope(CONFIRM, {"orderId": ORDER_ID}, token="whatever"))
    assert error_code(answer) is None


# --------------------------------------------------------------------------- refused calls


def test_a_tampered_param_is_an_invalid_signature_and_does_not_consume_the_script(
    fake: FakeEleme,
) -> None:
    fake.script(CONFIRM, FakeAnswer.error("BIZ_ORDER_STATUS_ERROR", "already confirmed"))
    body = envelope(CONFIRM, {"orderId": ORDER_ID})
    body["params"]["orderId"] = "3084512398765432102"

    answer = post(fake, body)

    assert error_code(answer) == "INVALID_SIGNATURE"
    assert answer["id"] == body["id"]
    assert fake.calls[0].signature_ok is False
    assert fake.pending(CONFIRM) == 1
    assert error_code(post(fake, envelope(CONFIRM, {"orderId": ORDER_ID}))) == (
        "BIZ_ORDER_STATUS_ERROR"
    )
    assert fake.pending(CONFIRM) == 0


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda body: body.update(action=GET_ORDER), id="action"),
        pytest.param(lambda body: body.update(token=OTHER_TOKEN), id="token"),
        pytest.param(
            lambda body: body["metas"].update(timestamp=body["metas"]["timestamp"] + 1),
            id="timestamp",
        ),
        pytest.param(lambda body: body.update(signature=body["signature"].lower()), id="case"),
    ],
)
def test_any_signed_part_changed_is_an_invalid_signature(fake: FakeEleme, spoil: Any) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID})
    spoil(body)

    assert error_code(post(fake, body)) == "INVALID_SIGNATURE"


def test_a_wrong_secret_is_an_invalid_signature(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.ok())
    body = envelope(CONFIRM, {"orderId": ORDER_ID}, secret="not-the-secret")

    assert error_code(post(fake, body)) == "INVALID_SIGNATURE"
    assert fake.pending(CONFIRM) == 1


def test_an_unknown_token_is_unauthorized(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.ok())
    body = envelope(CONFIRM, {"orderId": ORDER_ID}, token="ffffffffffffffffffffffffffffffff")

    assert error_code(post(fake, body)) == "UNAUTHORIZED"
    assert fake.calls[0].signature_ok is True
    assert fake.pending(CONFIRM) == 1


def test_another_app_key_is_unauthorized(fake: FakeEleme) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID}, app_key="someoneElse")

    assert error_code(post(fake, body)) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param(int(time.time()) - 3600, id="seconds-old"),
        pytest.param(int(time.time()) + 3600, id="seconds-ahead"),
        pytest.param(int(time.time() * 1000) - 3_600_000, id="milliseconds-old"),
    ],
)
def test_a_stale_timestamp_is_invalid(fake: FakeEleme, timestamp: int) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID}, timestamp=timestamp)

    assert error_code(post(fake, body)) == "INVALID_TIMESTAMP"


def test_the_timestamp_window_follows_the_fakes_clock() -> None:
    now = 1_716_181_234.0
    with FakeEleme(app_key=APP_KEY, app_secret=SECRET, clock=lambda: now) as fake:
        fresh = envelope(CONFIRM, {"orderId": ORDER_ID}, timestamp=int(now) - 299)
        stale = envelope(CONFIRM, {"orderId": ORDER_ID}, timestamp=int(now) - 301)
        assert error_code(post(fake, fresh)) is None
        assert error_code(post(fake, stale)) == "INVALID_TIMESTAMP"


@pytest.mark.parametrize(
    ("action", "params", "param"),
    [
        (CONFIRM, {}, "orderId"),
        (CONFIRM, {"orderId": 3084512398765432101}, "orderId"),
        (CONFIRM, {"orderId": ""}, "orderId"),
        (CANCEL, {"orderId": ORDER_ID, "remark": ""}, "type"),
        (CANCEL, {"orderId": ORDER_ID, "type": "tooLazy", "remark": ""}, "type"),
        (CANCEL, {"orderId": ORDER_ID, "type": "others"}, "remark"),
        (AGREE, {"order_id": ORDER_ID}, "orderId"),
        (DISAGREE, {"orderId": ORDER_ID}, "reason"),
        (GET_ORDER, {}, "orderId"),
    ],
)
def test_missing_or_invalid_params_fail_validation_naming_the_param(
    fake: FakeEleme, action: str, params: dict[str, Any], param: str
) -> None:
    fake.script(action, FakeAnswer.ok())

    answer = post(fake, envelope(action, params))

    assert error_code(answer) == "VALIDATION_FAILED"
    assert param in answer["error"]["message"]
    assert fake.pending(action) == 1


def test_an_unknown_action_is_not_allowed_unless_scripted(fake: FakeEleme) -> None:
    action = "eleme.order.getRefundOrder"
    assert error_code(post(fake, envelope(action, {"orderId": ORDER_ID}))) == ("METHOD_NOT_ALLOWED")

    fake.script(action, FakeAnswer.ok({"orderId": ORDER_ID, "refundStatus": "applied"}))

    assert post(fake, envelope(action, {"orderId": ORDER_ID}))["result"]["refundStatus"] == (
        "applied"
    )


@pytest.mark.parametrize(
    ("spoil", "echoed_id"),
    [
        pytest.param(lambda body: body.update(nop="2.0.0"), True, id="nop"),
        pytest.param(lambda body: body.update(id="not-a-request-id"), True, id="id"),
        pytest.param(lambda body: body.update(id=body["id"].lower()), True, id="id-lower"),
        pytest.param(lambda body: body.pop("signature"), True, id="no-signature"),
        pytest.param(lambda body: body.update(params=[]), True, id="params-list"),
        pytest.param(lambda body: body["metas"].pop("app_key"), True, id="no-app_key"),
        pytest.param(lambda body: body["metas"].update(timestamp=1.5), True, id="float-ts"),
        pytest.param(lambda body: body.pop("id"), False, id="no-id"),
    ],
)
def test_a_malformed_envelope_is_an_illegal_request(
    fake: FakeEleme, spoil: Any, echoed_id: bool
) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID})
    spoil(body)

    answer = post(fake, body)

    assert error_code(answer) == "ILLEGAL_REQUEST"
    assert answer["id"] == (body["id"] if echoed_id else None)
    assert fake.calls[0].signature_ok is False


def test_a_body_that_is_not_json_is_an_illegal_request(fake: FakeEleme) -> None:
    response = httpx.post(fake.api_base, content=b"orderId=1", timeout=5)

    assert response.status_code == 200
    assert response.json() == {
        "id": None,
        "result": None,
        "error": {"code": "ILLEGAL_REQUEST", "message": "the body is not JSON"},
    }


def test_other_paths_and_methods_are_http_errors(fake: FakeEleme) -> None:
    body = envelope(CONFIRM, {"orderId": ORDER_ID})
    without_slash = fake.api_base.rstrip("/")

    assert httpx.post(without_slash, json=body, timeout=5).status_code == 404
    assert httpx.get(fake.api_base, timeout=5).status_code == 405
    assert [call.http_status for call in fake.calls] == [404, 405]
    assert fake.calls[0].path == "/api/v1"


def test_no_answer_gives_the_secret_or_the_expected_signature_away(fake: FakeEleme) -> None:
    good = envelope(CONFIRM, {"orderId": ORDER_ID})
    bad = envelope(CONFIRM, {"orderId": ORDER_ID}, secret="wrong")

    texts = [
        httpx.post(fake.api_base, json=body, timeout=5).text
        for body in (good, bad, {"nop": "1.0.0"})
    ]

    for text in [*texts, repr(fake)]:
        assert SECRET not in text
        assert good["signature"] not in text


# --------------------------------------------------------------------------- scripted answers


def test_scripted_answers_come_in_order_then_the_default(fake: FakeEleme) -> None:
    fake.script(
        CONFIRM,
        FakeAnswer.error("SERVER_ERROR", "系统繁忙"),
        FakeAnswer.error("EXCEED_LIMIT", "too many calls"),
    )
    fake.script(CONFIRM, FakeAnswer.error("BIZ_ORDER_STATUS_ERROR", "订单状态已变更"))

    answers = [post(fake, envelope(CONFIRM, {"orderId": ORDER_ID})) for _ in range(4)]

    assert [error_code(answer) for answer in answers] == [
        "SERVER_ERROR",
        "EXCEED_LIMIT",
        "BIZ_ORDER_STATUS_ERROR",
        None,
    ]
    assert answers[0]["error"]["message"] == "系统繁忙"
    assert [call.answer for call in fake.calls] == answers


def test_a_script_is_per_action(fake: FakeEleme) -> None:
    fake.script(AGREE, FakeAnswer.error("SERVER_ERROR", "boom"))

    assert error_code(post(fake, envelope(CONFIRM, {"orderId": ORDER_ID}))) is None
    assert error_code(post(fake, envelope(AGREE, {"orderId": ORDER_ID}))) == "SERVER_ERROR"


def test_reset_forgets_calls_and_script(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.error("SERVER_ERROR", "boom"))
    post(fake, envelope(AGREE, {"orderId": ORDER_ID}))

    fake.reset()

    assert fake.calls == []
    assert error_code(post(fake, envelope(CONFIRM, {"orderId": ORDER_ID}))) is None


def test_an_http_answer_is_a_bare_status(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.http(502, "<html>502 Bad Gateway</html>"))
    body = envelope(CONFIRM, {"orderId": ORDER_ID})

    response = httpx.post(fake.api_base, json=body, timeout=5)

    assert response.status_code == 502
    assert response.text == "<html>502 Bad Gateway</html>"
    [call] = fake.calls
    assert (call.http_status, call.answer, call.signature_ok) == (502, None, True)
    assert error_code(post(fake, body)) is None


def test_a_slow_answer_times_a_client_out(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.slow(2))
    body = envelope(CONFIRM, {"orderId": ORDER_ID})

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(fake.api_base, json=body, timeout=0.2)

    assert len(fake.calls_to(CONFIRM)) == 1
    # the platform acted all the same: a repeat finds the order accepted
    assert post(fake, body)["error"]["message"] == ALREADY_CONFIRMED[1]


def test_a_slow_answer_arrives_for_a_patient_client(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.slow(0.3, then=FakeAnswer.error("SERVER_ERROR", "late")))

    started = time.monotonic()
    answer = post(fake, envelope(CONFIRM, {"orderId": ORDER_ID}))

    assert time.monotonic() - started >= 0.3
    assert error_code(answer) == "SERVER_ERROR"


def test_a_drop_closes_the_connection(fake: FakeEleme) -> None:
    fake.script(CONFIRM, FakeAnswer.drop())
    body = envelope(CONFIRM, {"orderId": ORDER_ID})

    with httpx.Client(timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(fake.api_base, json=body)
        assert client.post(fake.api_base, json=body).json()["error"] is None

    assert [call.http_status for call in fake.calls] == [None, 200]


def test_a_kept_alive_client_is_served_and_stop_does_not_hang() -> None:
    fake = FakeEleme.for_fixtures().start()
    with httpx.Client(timeout=5) as client:
        for order in ("1", "2", "3"):
            response = client.post(fake.api_base, json=envelope(AGREE, {"orderId": order}))
            assert response.json()["error"] is None
        started = time.monotonic()
        fake.stop()
        # it closed the idle connection rather than wait the 30 s such a connection is kept
        assert time.monotonic() - started < 10
    fake.stop()
    with pytest.raises(RuntimeError):
        _ = fake.api_base


# --------------------------------------------------------------------------- pushes

# eleme_refund_apply.json of the research samples, signed with the samples' secret.
SAMPLE_REFUND_MESSAGE = (
    '{"orderId":"3084512398765432101","refundStatus":"applied","reason":"商品少送了一罐可乐",'
    '"shopId":160012345,"goodsList":[{"name":"可乐-330ml","quantity":1,"price":5.0}],'
    '"refundType":"part","totalPrice":5.0,"updateTime":1716181234}'
)
SAMPLE_REFUND_SIGNATURE = "C84AC33768321433CB282ACA025B2F41"


def test_push_envelope_rebuilds_the_sample_signature() -> None:
    message = json.loads(SAMPLE_REFUND_MESSAGE)

    envelope = push_envelope(
        30,
        message,
        app_id=58137347,
        shop_id=160012345,
        secret=SECRET,
        request_id="200015698900990123",
        timestamp_ms=1716181234567,
        user_id=249698004053764774,
    )

    assert envelope["message"] == SAMPLE_REFUND_MESSAGE
    assert envelope["signature"] == SAMPLE_REFUND_SIGNATURE
    assert list(envelope) == [
        "requestId",
        "type",
        "appId",
        "message",
        "shopId",
        "timestamp",
        "userId",
        "signature",
    ]


def test_a_message_string_is_signed_verbatim() -> None:
    message = '{"orderId": "1", "state": "valid"}'

    envelope = push_envelope(12, message, app_id=1, shop_id=2, secret=SECRET)

    assert envelope["message"] == message
    assert envelope["signature"] == push_signature(envelope, SECRET)


def test_push_body_is_the_compact_signed_envelope() -> None:
    message = {"orderId": ORDER_ID, "state": "valid", "shopId": 160012345, "role": 3}
    before = int(time.time() * 1000)

    body = push_body(12, message, app_id=58137347, shop_id=160012345, secret=SECRET)

    assert b": " not in body
    assert b", " not in body
    decoded = json.loads(body)
    assert decoded["signature"] == push_signature(decoded, SECRET)
    assert decoded["signature"] != push_signature(decoded, "another-secret")
    assert json.loads(decoded["message"]) == message
    assert (decoded["type"], decoded["appId"], decoded["shopId"]) == (12, 58137347, 160012345)
    assert decoded["timestamp"] >= before
    assert isinstance(decoded["requestId"], str)


def test_push_request_ids_are_unique_digit_strings() -> None:
    ids = [
        push_envelope(12, {}, app_id=1, shop_id=2, secret=SECRET)["requestId"] for _ in range(50)
    ]

    assert len(set(ids)) == 50
    assert all(re.fullmatch(r"[0-9]{18}", request_id) for request_id in ids)


def test_fixture_stores_are_distinct_shops_with_distinct_tokens() -> None:
    assert {store: dict(config) for store, config in FIXTURE_STORES.items()} == {
        "S001": {"shop_id": 160012345, "token": TOKEN},
        "S002": {"shop_id": 160012346, "token": OTHER_TOKEN},
    }
    assert TOKEN != OTHER_TOKEN
    assert FIXTURE_SETTINGS["app_id"] == 58137347
