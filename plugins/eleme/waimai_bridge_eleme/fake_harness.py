"""The fake Eleme API as the contract harness drives it (``waimai_bridge.harness.fake``):
:func:`fake_platform`, re-exported by :mod:`waimai_bridge_eleme.testing`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from waimai_bridge_eleme.fake_methods import ACTION_METHODS
from waimai_bridge_eleme.fake_wire import FakeAnswer

if TYPE_CHECKING:
    from waimai_bridge.plugin_api import PluginConfig
    from waimai_bridge_eleme.testing import FakeEleme


class HarnessFake:
    """A running :class:`FakeEleme` as the contract harness drives it (docs/plugin-authors.md).

    ``script`` takes an error fixture's ``answer``: ``{"error": {"code", "message"}}``,
    ``{"http": status, "body": text}``, ``{"slow": seconds}`` or ``{"drop": true}``; it
    is played to the next call of any order action (not to the reads that verify one).
    ``consenting``, ``revoke`` and ``token_outage`` play a store's owner and the token
    endpoint for the authorization suite.
    """

    def __init__(self, fake: FakeEleme, config: PluginConfig) -> None:
        self.fake = fake
        self.shops = {
            store_id: int(str(binding["shop_id"]))
            for store_id, binding in config.stores.items()
            if "shop_id" in binding
        }

    def configure(self, config: PluginConfig) -> PluginConfig:
        """The config with ``api_base`` and ``oauth_base`` pointing at the fake."""
        fake = self.fake
        settings = {**config.settings, "api_base": fake.api_base, "oauth_base": fake.oauth_base}
        return config.model_copy(update={"settings": settings})

    def script(self, answer: Mapping[str, Any]) -> None:
        """Play ``answer`` to the next order action."""
        scripted = scripted_answer(answer)
        for action in sorted(ACTION_METHODS):
            self.fake.script(action, scripted)

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """The platform sent (or failed to send) this push: see :meth:`FakeEleme.pushed`."""
        self.fake.pushed(push, delivered=delivered)

    def calls(self) -> list[dict[str, Any]]:
        """The API calls received, as the harness compares them (always POSTed)."""
        return [
            {"method": "POST", "path": call.action, "params": call.params,
             "signature_ok": call.signature_ok}
            for call in self.fake.calls
        ]  # fmt: skip

    def reset(self) -> None:
        """Forget the calls, the scripted answers and a token outage."""
        self.fake.reset()

    def consenting(self, store_id: str) -> None:
        """The owner of the store's shop is the one who consents on the authorize page."""
        self.fake.sign_in(self.shops[store_id])

    def revoke(self, store_id: str) -> None:
        """The store's shop withdraws the app's authorization."""
        self.fake.revoke(shop_id=self.shops[store_id])

    def token_outage(self, status: int) -> None:
        """The token endpoint answers HTTP ``status`` until :meth:`reset`."""
        self.fake.token_outage(status)


def scripted_answer(answer: Mapping[str, Any]) -> FakeAnswer:
    if "error" in answer:
        error = answer["error"]
        return FakeAnswer.error(str(error["code"]), str(error.get("message", "")))
    if "http" in answer:
        return FakeAnswer.http(int(answer["http"]), str(answer.get("body", "")))
    if "slow" in answer:
        return FakeAnswer.slow(float(answer["slow"]))
    if answer.get("drop"):
        return FakeAnswer.drop()
    raise ValueError(f"not a scripted answer of the Eleme fake: {dict(answer)!r}")


@contextlib.contextmanager
def fake_platform(config: PluginConfig) -> Iterator[HarnessFake]:
    """A running fake knowing the app key, secret and shop tokens of ``config``."""
    from waimai_bridge_eleme.testing import FakeEleme  # which re-exports this function

    settings = config.settings
    tokens = [str(binding["token"]) for binding in config.stores.values() if "token" in binding]
    with FakeEleme(
        app_key=str(settings["app_key"]),
        app_secret=str(settings["app_secret"]),
        tokens=tokens,
        app_id=int(str(settings["app_id"])),
    ) as fake:
        yield HarnessFake(fake, config)
