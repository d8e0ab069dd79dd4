"""The configuration (SPEC §7.1): a TOML file, environment overrides, embedded defaults.

``[bridge]`` is validated by :class:`BridgeSettings`; every ``[platforms.NAME]`` table
against the ``config_schema`` its plugin declares, and every store's ``NAME`` table against
the plugin's ``store_config_schema``. All faults are reported together, each as the dotted
key and the problem. Values are never shown in a message, so a secret cannot leak through
one; secrets are ``SecretStr`` or live only in a :class:`~waimai_bridge.models.PluginConfig`,
whose repr hides them.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
)

from waimai_bridge.bounds import MAX_ID_LENGTH
from waimai_bridge.errors import ConfigError
from waimai_bridge.models import PluginConfig
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.settings import (
    AnomalySettings,
    AuthorizationSettings,
    BridgeSettings,
    RetentionSettings,
)

CONFIG_ENV = "WAIMAI_CONFIG"
"""Environment variable naming the config file when ``--config`` is not given."""

Problem = tuple[str, str]


DEFAULT_TIMEZONE = "Asia/Shanghai"
"""A store's time zone unless its table names one: where its days begin and end."""


class _StoreTable(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "is not a time zone this machine knows (an IANA name, e.g. Asia/Shanghai)"
            ) from None
        return value


@dataclass(frozen=True)
class StoreConfig:
    """A ``[stores.ID]`` table: the chain's store and its binding on each platform."""

    store_id: str
    name: str | None
    bindings: Mapping[str, Mapping[str, Any]] = field(repr=False)
    timezone: str = DEFAULT_TIMEZONE
    """The IANA time zone the store's days are counted in (settlement, the board)."""


class PlatformNotConfigured(LookupError):
    """A plugin is loaded but has no ``[platforms.NAME]`` table."""


@dataclass(frozen=True, eq=False)
class Config:
    """The whole validated configuration."""

    bridge: BridgeSettings
    platforms: Mapping[str, Mapping[str, Any]] = field(repr=False)
    stores: Mapping[str, StoreConfig]
    source: str | None = None
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    authorization: AuthorizationSettings = field(default_factory=AuthorizationSettings)

    def plugin_config(self, platform: str) -> PluginConfig:
        """What the hooks of ``platform`` are given: its settings and its store bindings."""
        if platform not in self.platforms:
            where = self.source or "the embedded defaults"
            raise PlatformNotConfigured(
                f"platform {platform!r} has no [platforms.{platform}] table in {where}"
            )
        return self._plugin_config(platform)

    @functools.cache  # noqa: B019  (a frozen config lives as long as its process)
    def _plugin_config(self, platform: str) -> PluginConfig:
        return PluginConfig(
            platform=platform,
            public_base_url=self.bridge.public_base_url,
            settings=dict(self.platforms[platform]),
            stores={
                store.store_id: dict(store.bindings[platform])
                for store in self.stores.values()
                if platform in store.bindings
            },
        )


def load_config(
    path: str | os.PathLike[str] | None,
    registry: PluginRegistry,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the configuration; raise :class:`ConfigError` listing faults.

    ``path`` falls back to ``WAIMAI_CONFIG``; with neither, the embedded defaults apply.
    """
    environ = os.environ if environ is None else environ
    chosen = path if path is not None else environ.get(CONFIG_ENV) or None
    document = _read_toml(Path(chosen)) if chosen is not None else {}
    source = str(chosen) if chosen is not None else None
    problems: list[Problem] = []
    for key in sorted(set(document) - {"bridge", "platforms", "stores", *_SECTIONS}):
        problems.append(
            (key, "unknown table; the tables are [bridge], [platforms.*], [stores.*], "
             "[anomalies], [retention], [authorization]")
        )  # fmt: skip

    bridge = _section(document, "bridge", BridgeSettings, problems)
    anomalies = _section(document, "anomalies", AnomalySettings, problems)
    retention = _section(document, "retention", RetentionSettings, problems)
    authorization = _section(
        document, "authorization", AuthorizationSettings, problems, _keys_from(environ)
    )
    platform_tables = _tables(document, "platforms", problems)
    platforms = {}
    for name, table in platform_tables.items():
        key = f"platforms.{name}"
        if not _plugin_problem(registry, key, name, problems):
            continue
        schema = registry.platform(name).manifest.config_schema
        if _schema_problems(key, table, schema, problems):
            platforms[name] = _with_defaults(table, schema)
    stores = {
        store_id: store
        for store_id, table in _tables(document, "stores", problems).items()
        if (store := _store(store_id, table, registry, set(platform_tables), problems)) is not None
    }
    if problems:
        raise ConfigError(problems, source=source)
    assert bridge is not None  # no problems: every table validated
    assert anomalies is not None
    assert retention is not None
    assert authorization is not None
    return Config(
        bridge=bridge, platforms=platforms, stores=stores, source=source,
        anomalies=anomalies, retention=retention, authorization=authorization,
    )  # fmt: skip


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError([("--config", f"file {path} does not exist")]) from None
    except OSError as exc:
        raise ConfigError([("--config", f"file {path} cannot be read: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("(file)", f"not valid TOML: {exc}")], source=str(path)) from None


def _table(document: Mapping[str, Any], key: str, problems: list[Problem]) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        problems.append((key, "must be a table"))
        return {}
    return value


def _tables(
    document: Mapping[str, Any], key: str, problems: list[Problem]
) -> dict[str, dict[str, Any]]:
    tables = {}
    for name, value in _table(document, key, problems).items():
        if isinstance(value, dict):
            tables[str(name)] = value
        else:
            problems.append((f"{key}.{name}", "must be a table"))
    return tables


_SECTIONS = {"anomalies", "retention", "authorization"}
"""The optional tables of operating settings (:mod:`waimai_bridge.settings`)."""


_Table = TypeVar("_Table", bound=BaseModel)


KEYS_ENV = "WAIMAI_AUTHORIZATION_KEYS"
"""The credential sealing keys, comma-separated, over ``[authorization] keys``."""


def _keys_from(environ: Mapping[str, str]) -> dict[str, Any]:
    keys = environ.get(KEYS_ENV)
    if keys is None:
        return {}
    return {"keys": [key.strip() for key in keys.split(",") if key.strip()]}


def _section(
    document: Mapping[str, Any],
    name: str,
    model: type[_Table],
    problems: list[Problem],
    overrides: Mapping[str, Any] | None = None,
) -> _Table | None:
    """The table ``name`` validated by ``model`` (None, and its problems noted, if invalid),
    with ``overrides`` over the file's keys."""
    try:
        return model(**{**_table(document, name, problems), **(overrides or {})})
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            key = ".".join(str(part) for part in (name, *error["loc"]))
            problems.append((key, _pydantic_problem(error["type"], error["msg"])))
        return None


def _pydantic_problem(kind: str, message: str) -> str:
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    return message.removeprefix("Value error, ")


def _plugin_problem(registry: PluginRegistry, key: str, name: str, problems: list[Problem]) -> bool:
    """Whether ``name`` is a loaded plugin; a blocked one is skipped without a problem."""
    if name in registry.platforms:
        return True
    if registry.is_blocked(name):
        return False
    reports = {report.name: report for report in registry.reports}
    if name in reports:
        problems.append((key, f"plugin {name!r} is not loaded: {reports[name].problem}"))
    else:
        loaded = ", ".join(sorted(registry.platforms)) or "none"
        problems.append((key, f"no plugin named {name!r} is installed (loaded: {loaded})"))
    return False


def _store(
    store_id: str,
    table: dict[str, Any],
    registry: PluginRegistry,
    configured: set[str],
    problems: list[Problem],
) -> StoreConfig | None:
    key = f"stores.{store_id}"
    before = len(problems)
    if len(store_id) > MAX_ID_LENGTH:
        problems.append((key, f"a store id has at most {MAX_ID_LENGTH} characters"))
    try:
        parsed = _StoreTable(**table)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            problems.append((f"{key}.{'.'.join(map(str, error['loc']))}", error["msg"]))
        return None
    bindings = {}
    for platform, binding in (parsed.model_extra or {}).items():
        where = f"{key}.{platform}"
        if not _plugin_problem(registry, where, platform, problems):
            continue
        if not isinstance(binding, dict):
            problems.append((where, 'must be a table, e.g. { shop_id = "…" }'))
            continue
        if platform not in configured:
            problems.append((where, f"there is no [platforms.{platform}] table"))
            continue
        schema = registry.platform(platform).manifest.store_config_schema
        if _schema_problems(where, binding, schema, problems):
            bindings[platform] = _with_defaults(binding, schema)
    if len(problems) > before:
        return None
    return StoreConfig(
        store_id=store_id, name=parsed.name, bindings=bindings, timezone=parsed.timezone
    )


def _schema_problems(
    key: str, table: Mapping[str, Any], schema: Mapping[str, Any], problems: list[Problem]
) -> bool:
    """Check ``table`` against a plugin's config schema; True when it is valid."""
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(table), key=lambda e: list(e.path)
    )
    for error in errors:
        problems.append(_schema_problem(key, error))
    return not errors


_SCHEMA_PROBLEMS: Mapping[str, str] = {
    "type": "must be of type {validator_value}",
    "enum": "must be one of {enum}",
    "const": "must be {validator_value!r}",
    "pattern": "must match {validator_value}",
    "format": "must be a valid {validator_value}",
    "minimum": "must be at least {validator_value}",
    "maximum": "must be at most {validator_value}",
    "exclusiveMinimum": "must be more than {validator_value}",
    "exclusiveMaximum": "must be less than {validator_value}",
    "minLength": "must be at least {validator_value} characters long",
    "maxLength": "must be at most {validator_value} characters long",
    "minItems": "must have at least {validator_value} items",
    "maxItems": "must have at most {validator_value} items",
}
"""JSON Schema keyword → problem text; none of them shows the offending value."""


def _schema_problem(key: str, error: jsonschema.ValidationError) -> Problem:
    path = ".".join([key, *(str(part) for part in error.path)])
    keyword = str(error.validator)
    if keyword == "required":
        missing = _missing_keys(
            cast(list[str], error.validator_value), cast(dict[str, Any], error.instance)
        )
        return f"{path}.{missing[0]}" if len(missing) == 1 else path, (
            "missing required key" if len(missing) == 1 else f"missing required keys {missing}"
        )
    if keyword == "additionalProperties":
        known = cast(dict[str, Any], error.schema).get("properties", {})
        extra = sorted(k for k in cast(dict[str, Any], error.instance) if k not in known)
        allowed = ", ".join(sorted(known)) or "none"
        return f"{path}.{extra[0]}" if len(extra) == 1 else path, f"unknown key (known: {allowed})"
    template = _SCHEMA_PROBLEMS.get(keyword, "is not valid ({keyword})")
    enum = ", ".join(repr(value) for value in _as_list(error.validator_value))
    return path, template.format(validator_value=error.validator_value, enum=enum, keyword=keyword)


def _missing_keys(required: Iterable[str], instance: Mapping[str, Any]) -> list[str]:
    return [key for key in required if key not in instance]


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _with_defaults(table: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The table with the top-level ``default`` of every property it leaves out."""
    merged = dict(table)
    for name, prop in schema.get("properties", {}).items():
        if name not in merged and isinstance(prop, dict) and "default" in prop:
            merged[name] = prop["default"]
    return merged
