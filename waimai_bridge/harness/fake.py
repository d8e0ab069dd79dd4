"""The fake platform a plugin ships for the harness, and how the harness finds it.

A plugin package ``PKG`` exposes ``PKG.testing.fake_platform``: a callable taking the
fixtures' :class:`~waimai_bridge.models.PluginConfig` and returning a context manager that
starts a local fake of the platform's API on enter (and stops it on exit) and gives a
:class:`FakePlatform`. The plugin needs nothing from the harness to write one: the
protocol is structural and every value crossing it is plain data.

The fake of a plugin with ``pull_events``, ``fetch_order`` or ``verify_action`` also has
``pushed(push, *, delivered)``: the platform sent this push (``delivered``) or failed to
send it. Its orders take it in either way (what ``fetch_order`` and ``verify_action``
read), and an undelivered one is offered by the pull API until confirmed. ``push`` is a
push fixture's request: ``{"method", "url", "kind", "query" ([name, value] pairs),
"headers", "body" (text)}``.

The fake of a plugin with the authorization hooks (contract 1.6) is an
:class:`AuthorizingFake`: it also plays the platform's authorization page and token
endpoint, and a store's owner who consents or withdraws the consent.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from waimai_bridge.harness.outcomes import Missing
from waimai_bridge.models import PluginConfig

FAKE_MODULE = "testing"
FAKE_FACTORY = "fake_platform"


class FakePlatform(Protocol):
    """A running fake of a platform's API, as the harness drives it."""

    def configure(self, config: PluginConfig) -> PluginConfig:
        """``config`` with its settings pointed at this fake (e.g. its ``api_base``)."""
        ...

    def script(self, answer: Mapping[str, Any]) -> None:
        """Make the next API call get ``answer`` (an error fixture's ``answer``, in a format
        the plugin defines, e.g. ``{"http": 502}``)."""
        ...

    def calls(self) -> Sequence[Mapping[str, Any]]:
        """The API calls received since the last reset, oldest first, each
        ``{"method", "path", "params", "signature_ok"}`` (``signature_ok``: True, False, or
        None when the fake does not check signatures)."""
        ...

    def reset(self) -> None:
        """Forget the calls and any scripted answers not played yet."""
        ...


class AuthorizingFake(FakePlatform, Protocol):
    """The fake of a plugin with ``authorize_url``, ``exchange_code`` and
    ``refresh_credentials``: the platform's authorization page and token endpoint, served
    where ``configure`` points the plugin's settings, besides its API.

    The authorization page answers a visit with a redirect (301, 302, 303, 307 or 308) to
    the ``redirect_uri`` the page was asked with, adding a fresh single-use ``code`` for
    the consenting store and the ``state`` it was asked with (it may first redirect within
    itself). The token endpoint gives credentials for such a code once, renews credentials
    it issued (refusing, as the platform does, those it no longer honours) and, for an app
    that needs nobody's consent, gives a bound store credentials without a code.
    """

    def consenting(self, store_id: str) -> None:
        """The next visit to the authorization page is by the owner of ``store_id`` (a
        store of the config the fake was started with), who consents. A fake that can tell
        the store from the page's URL may ignore it."""
        ...

    def revoke(self, store_id: str) -> None:
        """The owner of ``store_id`` withdraws the app's consent: the token endpoint refuses
        to renew any credentials issued for the store (the platform's answer for a refresh
        it refuses for good) until the owner consents on the authorization page again."""
        ...

    def token_outage(self, status: int) -> None:
        """From now until ``reset()``, the token endpoint answers every call with HTTP
        ``status`` (a 5xx) and the body the platform sends with it."""
        ...


FakeFactory = Callable[[PluginConfig], AbstractContextManager[FakePlatform]]
"""What ``PKG.testing.fake_platform`` is."""


def find_fake(package: str) -> FakeFactory:
    """``PKG.testing.fake_platform``, or :class:`Missing` saying what to add."""
    module_name = f"{package}.{FAKE_MODULE}"
    where = f"{module_name}.{FAKE_FACTORY}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise Missing(
            f"no fake platform: add {where}(config), a context manager giving a running fake "
            "of the platform's API (see docs/plugin-authors.md, 'The fake platform')"
        ) from None
    factory = getattr(module, FAKE_FACTORY, None)
    if not callable(factory):
        raise Missing(
            f"no fake platform: {module_name} has no callable {FAKE_FACTORY}(config) "
            "(see docs/plugin-authors.md, 'The fake platform')"
        )
    found: FakeFactory = factory
    return found
