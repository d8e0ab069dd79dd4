"""Test support shipped with the plugin: a local fake Meituan API, signed pushes, and the
config the fixtures in ``fixtures/`` are written for.

:class:`FakeMeituan` is a real HTTP server on 127.0.0.1 (a free port) that checks each call's
``app_id`` and ``sig`` exactly as Meituan does, answers like the platform (``{"data":"ok"}``,
or ``{"data":"ng","error":{"code":703,…}}`` for a bad sig), records every call and can be
scripted to fail (an unscripted call acts on its order, so a repeated action gets the
"already" error the plugin assumes Meituan answers: :mod:`waimai_bridge_meituan.fake_orders`)::

    with FakeMeituan() as fake:
        fake.script("order/refund/agree", FakeAnswer.error(700, "系统错误"), FakeAnswer.ok())
        settings = {**FIXTURE_SETTINGS, "api_base": fake.api_base}
        ...
        assert [call.path for call in fake.calls] == ["order/refund/agree"] * 2

:meth:`FakeMeituan.pushed` tells it a push the platform sent or failed to send (a push
fixture's request, :func:`push_request`): its order book learns the order either way, and
serves it to the reads ``order/getOrderDetail``, ``order/viewstatus`` and
``getOrderRefundDetail`` in the shapes the plugin assumes.

With ``app_type="isv"`` the fake is an ISV (服务商) app's platform: it serves the consent
page and the token endpoint (:mod:`waimai_bridge_meituan.fake_oauth`), and answers an API
call whose ``access_token`` does not work with Meituan's error::

    with FakeMeituan(app_type="isv", token_lifetime_s=60) as fake:
        settings = {**FIXTURE_SETTINGS, "api_base": fake.api_base, "app_type": "isv"}
        ...
        fake.revoke("STORE-001")  # the store withdrew its consent

:func:`signed_push` builds the form body of a push as Meituan sends it (double-encoded
fields included) for tests and demos. :func:`fake_platform` is the fake as the contract
harness drives it (:class:`HarnessFake`, whose ``script`` takes an error fixture's answer).
The fake itself is :mod:`waimai_bridge_meituan.fake_api`, the fixtures' config
:mod:`waimai_bridge_meituan.fixture_settings`; both are re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode

from waimai_bridge.plugin_api import PluginConfig
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan.fake_api import BAD_SIG, UNKNOWN_APP, FakeAnswer, FakeCall, FakeMeituan
from waimai_bridge_meituan.fixture_settings import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
    FIXTURE_SETTINGS,
    FIXTURE_STORES,
    fixture_config,
)
from waimai_bridge_meituan.push import WEBHOOK_PATH
from waimai_bridge_meituan.signing import sig

__all__ = [
    "BAD_SIG",
    "FIXTURE_APP_ID",
    "FIXTURE_PUBLIC_BASE_URL",
    "FIXTURE_SECRET",
    "FIXTURE_SETTINGS",
    "FIXTURE_STORES",
    "UNKNOWN_APP",
    "FakeAnswer",
    "FakeCall",
    "FakeMeituan",
    "HarnessFake",
    "encode_push",
    "fake_platform",
    "fixture_config",
    "push_request",
    "scripted_answer",
    "signed_params",
    "signed_push",
    "wire_value",
]


def wire_value(value: object) -> str:
    """A parameter value as Meituan sends it before URL encoding: JSON for lists and
    objects (compact, non-ASCII kept), ``str`` for the rest."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def signed_params(
    kind: str,
    params: Mapping[str, object],
    *,
    secret: str,
    public_base_url: str = FIXTURE_PUBLIC_BASE_URL,
    app_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """A push's parameters with their true values and ``app_id``, ``timestamp`` and the
    ``sig`` over the callback URL of ``kind`` added (the values Meituan signs)."""
    values = {key: wire_value(value) for key, value in params.items()}
    if app_id is not None:
        values.setdefault("app_id", app_id)
    values.setdefault("timestamp", str(int(time.time()) if timestamp is None else timestamp))
    url = public_base_url.rstrip("/") + WEBHOOK_PATH + kind
    values["sig"] = sig(url, values, secret)
    return values


def encode_push(values: Mapping[str, str], *, double_encode: bool = True) -> bytes:
    """The form body of a push: the double-encoded fields URL-encoded once more first."""
    wire = [
        (key, quote_plus(value) if double_encode and key in facts.DOUBLE_ENCODED_FIELDS else value)
        for key, value in values.items()
    ]
    return urlencode(wire).encode()


def signed_push(
    kind: str,
    params: Mapping[str, object],
    *,
    secret: str,
    public_base_url: str = FIXTURE_PUBLIC_BASE_URL,
    app_id: str | None = None,
    timestamp: int | None = None,
    double_encode: bool = True,
) -> bytes:
    """The form body of a push of ``kind`` signed as Meituan signs it; the same string
    after ``?`` makes the GET variant. ``params`` hold the true values (lists and objects
    become JSON); ``app_id`` and ``timestamp`` are added unless ``params`` has them."""
    values = signed_params(
        kind,
        params,
        secret=secret,
        public_base_url=public_base_url,
        app_id=app_id,
        timestamp=timestamp,
    )
    return encode_push(values, double_encode=double_encode)


def push_request(kind: str, body: bytes, *, method: str = "POST") -> dict[str, Any]:
    """A push as a push fixture's ``request`` holds it (what :meth:`FakeMeituan.pushed`
    takes): ``body`` is a :func:`signed_push` body, sent as a form, or as the query of a
    GET."""
    text = body.decode("utf-8")
    if method == "GET":
        query = [list(pair) for pair in parse_qsl(text, keep_blank_values=True)]
        return {"method": "GET", "kind": kind, "query": query, "headers": {}, "body": ""}
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return {"method": "POST", "kind": kind, "query": [], "headers": headers, "body": text}


# --------------------------------------------------------------------------- contract harness


class HarnessFake:
    """A running :class:`FakeMeituan` as the contract harness drives it
    (docs/plugin-authors.md, "The fake platform").

    ``script`` takes an error fixture's ``answer``, one of:

    - ``{"error": {"code": 808, "msg": "操作失败"}}``: Meituan's error answer
      ``{"data":"ng","error":{…}}`` (HTTP 200, or ``"status"`` if the answer gives one);
    - ``{"http": 502}`` or ``{"http": 404, "body": "…"}``: a bare HTTP answer (a gateway's
      page by default);
    - ``{"slow": seconds}``: ``{"data":"ok"}`` after ``seconds`` (a time-out for a shorter
      ``api_timeout_seconds``);
    - ``{"drop": true}``: the connection closed without an answer, the call not taken
      into account; ``{"lost": true}``: the call taken into account, its answer lost.

    It is played to the next API call, whatever its path. ``pushed`` tells the fake's order
    book what a push fixture says (Meituan has no pull API to offer an undelivered one).
    ``consenting``, ``revoke`` and ``token_outage`` play a store's owner and Meituan's token
    endpoint for the authorization suite (the consent page tells the store by its
    ``app_poi_code``).
    """

    def __init__(
        self, fake: FakeMeituan, stores: Mapping[str, Mapping[str, Any]] = FIXTURE_STORES
    ) -> None:
        self.fake = fake
        self.stores = stores
        """The store bindings of the config the fake was started with."""

    def configure(self, config: PluginConfig) -> PluginConfig:
        """The config with ``api_base`` pointing at the fake; for an ISV app, with an access
        token the fake issued for every store that has none."""
        settings = {**config.settings, "api_base": self.fake.api_base}
        tokens = dict(config.access_tokens)
        if self.fake.isv:
            for store_id, binding in config.stores.items():
                if store_id not in tokens and facts.STORE_CODE_FIELD in binding:
                    issued = self.fake.issue_tokens(str(binding[facts.STORE_CODE_FIELD]))
                    tokens[store_id] = str(issued["access_token"])
        return config.model_copy(update={"settings": settings, "access_tokens": tokens})

    def script(self, answer: Mapping[str, Any]) -> None:
        """Play ``answer`` to the next API call."""
        self.fake.script_any(scripted_answer(answer))

    def calls(self) -> list[dict[str, Any]]:
        """The API calls received, with their business parameters (the system ones apart)."""
        return [
            {"method": call.method, "path": call.path, "params": dict(call.params),
             "signature_ok": call.sig_ok}
            for call in self.fake.calls
        ]  # fmt: skip

    def reset(self) -> None:
        """Forget the calls and the scripted answers (the orders stay as they are)."""
        self.fake.reset(orders=False)

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """The platform sent (or failed to send) ``push``: the fake's orders learn it."""
        self.fake.pushed(push, delivered=delivered)

    def consenting(self, store_id: str) -> None:
        """The next visitor of the consent page consents: every visitor does, for the store
        its URL names."""

    def revoke(self, store_id: str) -> None:
        """The owner of ``store_id`` withdraws the consent: its tokens stop working."""
        self.fake.revoke(str(self.stores[store_id][facts.STORE_CODE_FIELD]))

    def token_outage(self, status: int) -> None:
        """The consent page and the token endpoint answer HTTP ``status`` until ``reset``."""
        self.fake.token_outage(status)


def scripted_answer(answer: Mapping[str, Any]) -> FakeAnswer:
    """The :class:`FakeAnswer` of an error fixture's ``answer`` (see :class:`HarnessFake`)."""
    if "error" in answer:
        error = answer["error"]
        return FakeAnswer.error(
            int(error["code"]), str(error.get("msg", "")), status=int(answer.get("status", 200))
        )
    if "http" in answer:
        if "body" in answer:
            return FakeAnswer.http(int(answer["http"]), str(answer["body"]))
        return FakeAnswer.http(int(answer["http"]))
    if "slow" in answer:
        return FakeAnswer.slow(float(answer["slow"]))
    if answer.get("drop"):
        return FakeAnswer.dropped()
    if answer.get("lost"):
        return FakeAnswer.lost()
    raise ValueError(f"not a scripted answer of the Meituan fake: {dict(answer)!r}")


@contextlib.contextmanager
def fake_platform(config: PluginConfig) -> Iterator[HarnessFake]:
    """A running fake Meituan API knowing the ``app_id``, ``app_secret`` and ``app_type`` of
    ``config``."""
    settings = config.settings
    with FakeMeituan(
        app_id=str(settings["app_id"]),
        secret=str(settings["app_secret"]),
        public_base_url=config.public_base_url,
        app_type=str(settings.get("app_type") or "developer"),
    ) as fake:
        yield HarnessFake(fake, config.stores)
