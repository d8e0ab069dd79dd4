"""Exceptions: the ones plugins raise (re-exported by the plugin API) and the core's own.

Messages never carry a secret: config errors name the key and the problem, and a
contract violation shows the offending value only after it is shortened.
"""

from __future__ import annotations

import traceback
from typing import ClassVar

from waimai_bridge.models import Reply


class WaimaiBridgeError(Exception):
    """Base of every exception waimai-bridge raises on purpose."""


# --------------------------------------------------------------------------- raised by plugins


class PushRefused(WaimaiBridgeError):
    """A push the bridge refuses; nothing is written and the platform gets ``status``.

    ``reply`` is the body in the platform's own error shape; without one the web receiver
    answers a plain JSON error.
    """

    status: ClassVar[int] = 400

    def __init__(self, message: str, *, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply


class BadSignature(PushRefused):
    """The push's signature or app id is missing or wrong (HTTP 401)."""

    status = 401


class UndecodablePush(PushRefused):
    """The push cannot be decoded, or is not what the platform sends (HTTP 400)."""

    status = 400


class UnknownStore(PushRefused):
    """The push names a shop that no ``[stores.*]`` table binds (HTTP 400)."""

    status = 400


class PlatformError(WaimaiBridgeError):
    """A platform API answered an outbound action with an error."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message if code is None else f"{code}: {message}")
        self.code = code
        self.message = message


class TransientPlatformError(PlatformError):
    """The platform could not be reached or asked us to retry (rate limit, 5xx, time-out)."""


class PlatformRejected(PlatformError):
    """The platform refused the action for good (order state changed, no permission …)."""


# --------------------------------------------------------------------------- raised by the core


class ContractViolation(WaimaiBridgeError):
    """A plugin's manifest or a hook's input or output breaks its contract."""

    def __init__(self, plugin: str, hook: str, path: str, problem: str) -> None:
        super().__init__(f"plugin {plugin!r}, hook {hook!r}, at {path}: {problem}")
        self.plugin = plugin
        self.hook = hook
        self.path = path
        self.problem = problem


class PluginLoadError(WaimaiBridgeError):
    """A plugin could not be imported or registered (before any contract was checked)."""

    def __init__(self, plugin: str, problem: str) -> None:
        super().__init__(f"plugin {plugin!r}: {problem}")
        self.plugin = plugin
        self.problem = problem


class ConfigError(WaimaiBridgeError):
    """The configuration is invalid; ``problems`` holds one ``(key, problem)`` per fault."""

    def __init__(self, problems: list[tuple[str, str]], *, source: str | None = None) -> None:
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {key}: {problem}" for key, problem in problems)
        super().__init__(f"invalid configuration{where}:\n{lines}")
        self.problems = problems
        self.source = source


def failure_site(exc: BaseException) -> str:
    """Where an exception was raised, for a log line: its type, file and line, never its
    message (which may quote a pushed value or a secret)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
