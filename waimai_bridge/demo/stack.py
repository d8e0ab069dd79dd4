"""The demo's stack: its config, and the real web app served by uvicorn from a thread on a
free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from waimai_bridge.config import Config, load_config
from waimai_bridge.errors import WaimaiBridgeError
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.settings import BridgeSettings
from waimai_bridge.web.app import create_app

API_TOKEN = "demo-api-token-0001"
"""The demo's bearer token for ``/api`` (the server lives only as long as the demo)."""


class DemoBridgeSettings(BridgeSettings):
    """The demo's ``[bridge]``: its own values only, never ``WAIMAI_*`` variables (a
    broker URL there must not send the demo to Redis)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given."""
        return (init_settings,)


BRIDGE_SETTINGS: Mapping[str, Any] = {
    "broker_url": "",
    "shards": 4,
    "api_tokens": [API_TOKEN],
    "action_tries": 3,
    "action_retry_seconds": 1.0,
    "sweep_interval_seconds": 1.0,
    "resend_after_seconds": 5.0,
}
"""The demo's ``[bridge]`` beyond the database, the URL and the accept hold."""

RECOVERING: Mapping[str, Any] = {"pull_interval_seconds": 1.0, "refetch_after_minutes": 0.05}
"""The demo's pulls when its platforms fail to push: every second, and an order standing
still for three seconds read again."""


def build_config(
    registry: PluginRegistry,
    *,
    database_url: str,
    public_base_url: str,
    hold_seconds: int,
    platforms: Mapping[str, Mapping[str, Any]],
    stores: Mapping[str, Mapping[str, Any]],
    recovering: bool = False,
) -> Config:
    """The demo's config, validated like a file's (each plugin's tables by its schema);
    ``recovering``: pulls every second and orders read again after seconds, for a run
    whose platforms fail to push."""
    document = {"platforms": platforms, "stores": stores}
    with tempfile.TemporaryDirectory(prefix="waimai-demo-") as folder:
        path = Path(folder) / "demo.toml"
        path.write_text(to_toml(document), encoding="utf-8")
        config = load_config(path, registry, environ={})
    bridge = DemoBridgeSettings(
        database_url=database_url,
        public_base_url=public_base_url,
        accept_hold_seconds=hold_seconds,
        **BRIDGE_SETTINGS,
        **(RECOVERING if recovering else {}),
    )
    return replace(config, bridge=bridge, source="the demo")


def to_toml(document: Mapping[str, Any], prefix: Sequence[str] = ()) -> str:
    """A TOML text of nested tables of strings, numbers, booleans and lists of them."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in document.items():
        if isinstance(value, Mapping):
            tables.append(to_toml(value, (*prefix, str(key))))
        else:
            lines.append(f"{_toml_key(str(key))} = {_toml_value(value)}")
    head = [f"[{'.'.join(_toml_key(part) for part in prefix)}]"] if prefix and lines else []
    return "\n".join([*head, *lines, *tables]) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else f'"{key}"'


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)  # a JSON string or number is a TOML one
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"the demo config cannot hold a {type(value).__name__}")


def listening_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serving(bridge: Bridge, sock: socket.socket, *, timeout_s: float = 30) -> Iterator[None]:
    """The bridge's web app (with its in-process worker) served on ``sock`` until the block
    ends; the app's shutdown stops the worker and closes the database."""
    app = create_app(bridge)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="demo-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise WaimaiBridgeError("the demo's web server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
