"""What must never show while a plugin's hooks run: the log lines written on the calling
thread and the errors the plugin raised, searched for tokens, codes and secret settings."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from waimai_bridge.authorization import Credentials
from waimai_bridge.harness.outcomes import Failed
from waimai_bridge.manifest import Manifest
from waimai_bridge.models import PluginConfig

QUIET_LOGGERS = ("httpx", "httpcore")
"""Loggers whose lines below WARNING the bridge never writes (``cli.processes.QUIET_LOGGERS``):
what they would show (a request's URL) is not the plugin's doing."""
MIN_HIDDEN = 8
"""Values shorter than this are not looked for in logs and errors: they would match by
chance."""


class Watch(logging.Handler):
    """The log records emitted on the checking thread and the errors the plugin raised
    while a check runs, searched at its end for the values that must never show."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []
        self.errors: list[BaseException] = []
        self.hidden: dict[str, str] = {}
        """Each value that must never show → what it is."""

    def emit(self, record: logging.LogRecord) -> None:
        quiet = record.name.split(".")[0] in QUIET_LOGGERS and record.levelno < logging.WARNING
        if record.thread == self.thread and not quiet:
            self.records.append(record)

    def hide(self, what: str, value: object) -> None:
        """``value`` (``what`` it is) must show in no log line or error."""
        if isinstance(value, str) and len(value) >= MIN_HIDDEN:
            self.hidden.setdefault(value, what)

    def credentials(self, credentials: Credentials) -> Credentials:
        """``credentials``, their tokens hidden from now on."""
        self.hide("an access token", credentials.access_token)
        self.hide("a refresh token", credentials.refresh_token)
        return credentials

    def leaks(self) -> list[str]:
        """Where a hidden value shows, one line per log record or error and value."""
        texts = [(f"a log line of {r.name} ({r.levelname})", _record_text(r)) for r in self.records]
        texts += [(f"the {type(e).__name__} raised", _error_text(e)) for e in self.errors]
        return [
            f"{where} shows {what}"
            for where, text in texts
            for value, what in self.hidden.items()
            if value in text
        ]

    def check(self, where: str) -> None:
        """Fail naming every leak."""
        leaks = self.leaks()
        if leaks:
            raise Failed("\n".join(f"{where}: {leak}" for leak in dict.fromkeys(leaks)))


def _record_text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a record whose arguments do not fit its message: show both
        text = f"{record.msg} {record.args}"
    if record.exc_info:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info))
    return text + "\n" + (record.stack_info or "")


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(getattr(error, "code", None))


@contextmanager
def watching() -> Iterator[Watch]:
    """A :class:`Watch` on every logger while the block runs, the quiet ones kept at
    WARNING as the bridge keeps them."""
    root = logging.getLogger()
    quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [(logger, logger.level) for logger in (root, *quiet)]
    watch = Watch()
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    for logger in quiet:
        logger.setLevel(max(logging.WARNING, logger.level))
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        for logger, level in levels:
            logger.setLevel(level)


def hide_secret_settings(watch: Watch, manifest: Manifest, config: PluginConfig) -> None:
    """The settings and store bindings ``config`` holds that the manifest's config schemas
    mark ``writeOnly`` must never show."""
    tables = [(config.settings, manifest.config_schema)]
    tables += [(binding, manifest.store_config_schema) for binding in config.stores.values()]
    for values, schema in tables:
        properties = schema.get("properties", {})
        for key, value in values.items():
            if isinstance(properties.get(key), dict) and properties[key].get("writeOnly"):
                watch.hide(f"the secret setting {key!r}", str(value))
