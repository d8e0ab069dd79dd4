"""Reading a Meituan push: one console URL per kind, a form POST or a GET query.

A push is verified (``app_id`` and ``sig`` over the callback URL), its double-encoded
fields decoded, its JSON fields parsed, and it becomes one native event whose code is the
push kind, or ``kind.value`` for the kinds whose pushes share a URL (platforms.md §3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_INT64,
    UNREADABLE,
    BadSignature,
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PluginConfig,
    Reply,
    UndecodablePush,
    UnknownStore,
    decode_json,
    describe,
)
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan import prices, states
from waimai_bridge_meituan.signing import UNSIGNED, sig, sig_matches

PLATFORM = "meituan"
WEBHOOK_PATH = "/webhooks/meituan/"
ACK = Reply(body=facts.ACK_BODY)
MAX_KEY_LENGTH = 200
MAX_TIME_DIGITS = 19
"""The longest time field read: more digits than a bigint of milliseconds has."""
MAX_PARAMS = 200
"""The most parameters a push may carry, query and form together: an order push with every
subscribed field has about 60 (platforms.md §3.4)."""
MAX_NAME_LENGTH = 64
"""The longest parameter name: Meituan's are a few words in snake case."""
MAX_VALUE_LENGTH = 256 * 1024
"""The longest parameter value, as the form decoding leaves it: a large order's
double-encoded ``detail`` is some tens of thousands of characters."""

Params = dict[str, str]


def _manifest_codes() -> frozenset[str]:
    text = resources.files(__package__).joinpath("manifest.json").read_text(encoding="utf-8")
    return frozenset(row["code"] for row in json.loads(text)["native_codes"])


NATIVE_CODES = _manifest_codes()
"""Every native code of the manifest: a push whose code is not among them is refused."""


def callback_url(config: PluginConfig, kind: str) -> str:
    """The URL of push ``kind`` as entered in the Meituan console, which Meituan signs."""
    return config.public_base_url.rstrip("/") + WEBHOOK_PATH + kind


def refusal(code_name: str, message: str, status: int) -> Reply:
    """A refused push's answer in Meituan's error shape (``{"data":"ng","error":…}``)."""
    body = {
        "data": facts.REFUSAL_SHAPE,
        "error": {"code": facts.REFUSAL_CODES[code_name], "msg": message},
    }
    return Reply(status=status, body=json.dumps(body, ensure_ascii=False, separators=(",", ":")))


def _bad_signature(code_name: str, message: str) -> BadSignature:
    return BadSignature(message, reply=refusal(code_name, message, 401))


def _undecodable(code_name: str, message: str) -> UndecodablePush:
    return UndecodablePush(message, reply=refusal(code_name, message, 400))


def parse_push(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """The push's reply and native event; None for a URL that is not a Meituan push kind.

    An empty request (the console's URL check) is acknowledged with no event.
    """
    kind = request.kind
    if kind is None or kind not in facts.KIND_CODES:
        return None
    pairs = _pairs(request)
    if not pairs:
        return ParsedPush(reply=ACK, events=[])
    params = _unique(pairs)
    given = params.get("sig", "")
    if not given:
        raise _bad_signature("bad_sig", "the push carries no sig")
    _check_app_id(params, config)
    reading = verified_reading(
        callback_url(config, kind), params, str(config.settings["app_secret"]), given
    )
    if reading is None:
        raise _bad_signature("bad_sig", f"the sig does not match the {kind} push URL")
    message = _parse_json_fields(reading)
    code = native_code(kind, message)
    order_id = str(message.get("order_id", "")).strip()
    if not order_id:
        raise _undecodable("missing_parameter", f"the {kind} push carries no order_id")
    if len(order_id) > MAX_ID_LENGTH:
        raise _undecodable("bad_format", f"order_id is longer than {MAX_ID_LENGTH} characters")
    store_id = resolve_store(message, config)
    try:  # refuse now what the inbox cannot hold or the worker could not map or price later
        event = NativeEvent(
            platform=PLATFORM,
            store_id=store_id,
            store_inferred=not str(message.get(facts.STORE_CODE_FIELD, "")).strip(),
            platform_order_id=order_id,
            native_code=code,
            idempotency_key=idempotency_key(kind, code, reading),
            platform_time_ms=platform_time_ms(message),
            payload=message,
        )
        states.map_event(event)
        prices.breakdown(event, config)
    except UNREADABLE as exc:
        raise _undecodable("bad_format", f"the {kind} push: {describe(exc)}") from None
    return ParsedPush(reply=ACK, events=[event])


def _pairs(request: InboundRequest) -> list[tuple[str, str]]:
    """The parameters after one normal decoding: the query, and for a POST the form body;
    bounded in number, names and lengths before anything else reads them."""
    if request.method not in ("POST", "GET"):
        raise _undecodable("bad_format", f"Meituan does not push by {request.method}")
    pairs = list(request.query)
    if len(pairs) > MAX_PARAMS:
        raise _undecodable("bad_format", f"the push carries more than {MAX_PARAMS} parameters")
    if not all(_is_name(key) for key, _ in pairs):
        raise _undecodable("bad_format", "the query is not made of Meituan parameters")
    if request.method == "POST" and request.body.strip():
        pairs.extend(_form(request.body, room=MAX_PARAMS - len(pairs)))
    for key, value in pairs:
        if len(value) > MAX_VALUE_LENGTH:
            raise _undecodable(
                "bad_format", f"the parameter {key!r} is longer than {MAX_VALUE_LENGTH} characters"
            )
    return pairs


def _form(body: bytes, *, room: int) -> list[tuple[str, str]]:
    """The body as a form of at most ``room`` fields: UTF-8, its percent escapes too."""
    if body.count(b"&") >= room:
        raise _undecodable("bad_format", f"the push carries more than {MAX_PARAMS} parameters")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except ValueError:  # UnicodeDecodeError included
        raise _undecodable("bad_format", "the body is not a UTF-8 form") from None
    if not form or not all(_is_name(key) for key, _ in form):
        raise _undecodable("bad_format", "the body is not a form of Meituan parameters")
    return form


def _is_name(key: str) -> bool:
    name = key.replace("_", "a")
    return 0 < len(key) <= MAX_NAME_LENGTH and name.isascii() and name.isalnum()


def _unique(pairs: list[tuple[str, str]]) -> Params:
    params: Params = {}
    for key, value in pairs:
        if key in params:
            raise _undecodable("bad_format", f"the parameter {key!r} is given twice")
        params[key] = value
    return params


def _check_app_id(params: Params, config: PluginConfig) -> None:
    app_id = params.get("app_id", "").strip()
    if not app_id:
        raise _bad_signature("unknown_app", "the push carries no app_id")
    if app_id != str(config.settings["app_id"]):
        raise _bad_signature("unknown_app", "the push is for another app_id")


def readings(params: Params) -> Iterator[Params]:
    """The ways the push's values may have been signed (``SIG_VARIANTS``), each once."""
    seen: list[Params] = []
    for variant in facts.SIG_VARIANTS:
        if variant == "listed":
            reading = {
                key: unquote_plus(value) if key in facts.DOUBLE_ENCODED_FIELDS else value
                for key, value in params.items()
            }
        elif variant == "all":
            reading = {
                key: value if key == "sig" else unquote_plus(value) for key, value in params.items()
            }
        else:
            reading = dict(params)
        if reading not in seen:
            seen.append(reading)
            yield reading


def verified_reading(url: str, params: Params, secret: str, given: str) -> Params | None:
    """The first reading of the push whose sig over ``url`` is ``given``, holding only the
    parameters that sig covers; None when no reading's sig is ``given``.

    What the sig does not cover is dropped, so that nobody but Meituan decides what a push
    says or which key it gets: ``sig`` and ``img_data``, which no sig covers (§4.2), and,
    when the sig matched only with empty values skipped (``SIG_SKIPS_EMPTY_VALUES``), the
    empty values — a replay could have added them.
    """
    for reading in readings(params):
        for skip_empty in facts.SIG_SKIPS_EMPTY_VALUES:
            if sig_matches(sig(url, reading, secret, skip_empty=skip_empty), given):
                return {
                    key: value
                    for key, value in reading.items()
                    if key not in UNSIGNED and not (skip_empty and value == "")
                }
    return None


def _parse_json_fields(reading: Params) -> dict[str, Any]:
    message: dict[str, Any] = {key: value for key, value in reading.items() if key != "sig"}
    for key, value in message.items():
        if "\x00" in value:  # no database text holds it
            raise _undecodable("bad_format", f"the field {key!r} holds a NUL character")
    for field in facts.JSON_FIELDS:
        text = message.get(field)
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            message[field] = decode_json(text)
        except ValueError as exc:
            raise _undecodable("bad_format", f"the field {field!r} is not JSON: {exc}") from None
    return message


def native_code(kind: str, message: Mapping[str, Any]) -> str:
    """The native code of a push of ``kind``: the kind, or ``kind.value`` of its field."""
    field = facts.KIND_CODES[kind]
    if field is None:
        return kind
    value = str(message.get(field, "")).strip()
    code = f"{kind}.{value}"
    if code not in NATIVE_CODES and field == "notify_type":
        # an unknown or missing notify_type is read from res_type (assumptions, §3.6, §3.7)
        derived = facts.NOTIFY_TYPE_BY_RES_TYPE.get(str(message.get("res_type", "")).strip())
        code = f"{kind}.{derived}"
    if code not in NATIVE_CODES:
        raise _undecodable("bad_format", f"a {kind} push with {field}={_shown(value)} is not known")
    return code


def resolve_store(message: Mapping[str, Any], config: PluginConfig) -> str:
    """The chain's store of a push.

    The order pushes name the store by ``app_poi_code``, which must be bound. The cancel,
    refund, refund-status and logistics pushes name none (assumptions.STORE_CODE_FIELD),
    and a pure hook cannot look the order up, so they go to the app's single bound store,
    or, when several stores are bound, to the first bound store id in sorted order, marked
    ``store_inferred``: the core then takes the store of the platform order, known from
    its paid-order push; an order whose first push to arrive names no store stays under
    the guess until a push naming its store arrives (README, "Stores").
    """
    code = str(message.get(facts.STORE_CODE_FIELD, "")).strip()
    if code:
        store = config.store_for(facts.STORE_CODE_FIELD, code)
        if store is None:
            message_text = f"no store is bound to app_poi_code {_shown(code)}"
            raise UnknownStore(message_text, reply=refusal("unknown_store", message_text, 400))
        return store
    if not config.stores:
        text = "no store is bound to Meituan"
        raise UnknownStore(text, reply=refusal("unknown_store", text, 400))
    return sorted(config.stores)[0]


def _shown(value: str) -> str:
    """A refused value as a refusal quotes it: short, whatever was sent."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def idempotency_key(kind: str, code: str, reading: Mapping[str, str]) -> str:
    """The push's identity: its native code and identity fields (``IDENTITY_FIELDS``), or,
    where the kind has none or one is missing, a hash of its non-empty parameters without
    ``timestamp`` and ``sig``.

    An empty value counts as absent, here as everywhere the plugin reads a push: whether
    Meituan signs empty values is not confirmed (``SIG_SKIPS_EMPTY_VALUES``), so a push and
    its copy with an empty parameter added or dropped get one key.
    """
    fields = facts.IDENTITY_FIELDS.get(kind)
    code_field = facts.KIND_CODES[kind]
    values = [reading.get(field, "").strip() for field in fields or () if field != code_field]
    if fields is not None and all(values):
        key = ":".join([code, *values])
        if len(key) <= MAX_KEY_LENGTH:
            return key
    normalised = sorted(
        (key, value)
        for key, value in reading.items()
        if key not in ("timestamp", "sig") and value != ""
    )
    digest = hashlib.sha256(
        json.dumps(normalised, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    return f"{code}:{reading.get('order_id', '').strip()[:64]}:{digest}"


def platform_time_ms(message: Mapping[str, Any]) -> int:
    """The platform's time of the change: the first time field stated, else ``timestamp``.

    ``ValueError`` for a time too large to store.
    """
    for field in (*facts.TIME_FIELDS, "timestamp"):
        value = str(message.get(field, "")).strip()
        digits = value.lstrip("0") if value.isascii() and value.isdigit() else ""
        if not digits:
            continue
        number = int(digits) if len(digits) <= MAX_TIME_DIGITS else MAX_INT64 + 1
        milliseconds = number if number >= facts.MILLISECONDS_FROM else number * 1000
        if milliseconds > MAX_INT64:
            raise ValueError(f"{field} is too large for a time")
        return milliseconds
    raise _undecodable("missing_parameter", "the push states no time")
