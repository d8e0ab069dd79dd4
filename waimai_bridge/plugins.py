"""Finding, blocking and accepting platform plugins.

Plugins are found through the entry-point group ``waimai_bridge``; the entry point's name
is the platform's name. Each accepted plugin gets a plugin manager of its own, so a hook is
only ever called on the plugin of the platform concerned. A plugin is refused, with a
message naming it, the hook and the JSON path, when it cannot be imported, implements a
hook that is not a spec, or has a manifest that breaks ``contracts/manifest.schema.json``
or the rules below it.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import EntryPoint, entry_points

import jsonschema
import pluggy

from waimai_bridge import hookspecs
from waimai_bridge.errors import ContractViolation, PluginLoadError
from waimai_bridge.hookcalls import HOOK_CONTRACTS, Platform, call_checked
from waimai_bridge.manifest import Manifest
from waimai_bridge.models import CONTRACT_VERSION, Capability
from waimai_bridge.validation import json_path

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
"""The entry-point group a plugin distribution registers under."""

BLOCK_ENV = "WAIMAI_BLOCK_PLUGINS"
"""Environment variable: comma-separated plugin names that are not loaded at all."""


class PluginStatus(StrEnum):
    """What became of a plugin at load time."""

    VALID = "valid"
    REFUSED = "refused"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class PluginReport:
    """One plugin as ``waimai-bridge plugins`` shows it."""

    name: str
    status: PluginStatus
    source: str
    manifest: Manifest | None = None
    problem: str | None = None


class UnknownPlatform(LookupError):
    """No accepted plugin has this name."""


def blocked_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The plugin names ``WAIMAI_BLOCK_PLUGINS`` blocks."""
    value = (os.environ if environ is None else environ).get(BLOCK_ENV, "")
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def _source(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else entry_point.value


class PluginRegistry:
    """The plugins of one process: the accepted ones as :class:`Platform`, and a report each.

    ``reference`` makes every hook call also check the shipped JSON Schemas with the
    reference validator (the contract harness and tests use it; the hot path does not).
    """

    def __init__(self, *, blocked: Collection[str] = (), reference: bool = False) -> None:
        self._blocked = frozenset(blocked)
        self._reference = reference
        self._platforms: dict[str, Platform] = {}
        self._reports: dict[str, PluginReport] = {}

    @classmethod
    def discover(
        cls, *, blocked: Collection[str] | None = None, reference: bool = False
    ) -> PluginRegistry:
        """Load every installed plugin; ``blocked`` defaults to ``WAIMAI_BLOCK_PLUGINS``."""
        registry = cls(
            blocked=blocked_from_env() if blocked is None else blocked, reference=reference
        )
        for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
            registry.load_entry_point(entry_point)
        return registry

    @property
    def platforms(self) -> Mapping[str, Platform]:
        """The accepted plugins by platform name."""
        return dict(self._platforms)

    @property
    def reports(self) -> list[PluginReport]:
        """Every plugin seen, accepted or not, by name."""
        return [self._reports[name] for name in sorted(self._reports)]

    def platform(self, name: str) -> Platform:
        """The accepted plugin named ``name``."""
        try:
            return self._platforms[name]
        except KeyError:
            known = ", ".join(sorted(self._platforms)) or "none"
            report = self._reports.get(name)
            why = f" ({report.status}: {report.problem})" if report and report.problem else ""
            raise UnknownPlatform(f"no platform plugin {name!r}{why}; loaded: {known}") from None

    def is_blocked(self, name: str) -> bool:
        """Whether ``name`` is blocked from loading."""
        return name in self._blocked

    def load_entry_point(self, entry_point: EntryPoint) -> PluginReport:
        """Import and register the plugin an entry point names (unless blocked)."""
        source = _source(entry_point)
        if self.is_blocked(entry_point.name):
            return self._report(PluginReport(entry_point.name, PluginStatus.BLOCKED, source))
        try:
            plugin = entry_point.load()
        except Exception as exc:  # any import failure refuses the plugin, never the process
            problem = f"cannot be imported: {type(exc).__name__}: {exc}"
            return self._report(
                PluginReport(entry_point.name, PluginStatus.REFUSED, source, None, problem)
            )
        version = entry_point.dist.version if entry_point.dist is not None else None
        return self.add(entry_point.name, plugin, source=source, distribution_version=version)

    def add(
        self,
        name: str,
        plugin: object,
        *,
        source: str = "registered in-process",
        distribution_version: str | None = None,
    ) -> PluginReport:
        """Check and accept a plugin object (a module or an instance) under ``name``."""
        if self.is_blocked(name):
            return self._report(PluginReport(name, PluginStatus.BLOCKED, source))
        if name in self._reports and self._reports[name].status is not PluginStatus.BLOCKED:
            problem = (
                f"another plugin named {name!r} is already loaded from {self._reports[name].source}"
            )
            return self._report(
                PluginReport(name, PluginStatus.REFUSED, source, None, problem), replace=False
            )
        try:
            manifest, manager = _accept(name, plugin, distribution_version)
        except (ContractViolation, PluginLoadError) as exc:
            return self._report(PluginReport(name, PluginStatus.REFUSED, source, None, str(exc)))
        self._platforms[name] = Platform(manifest, manager, reference=self._reference)
        return self._report(PluginReport(name, PluginStatus.VALID, source, manifest))

    def _report(self, report: PluginReport, *, replace: bool = True) -> PluginReport:
        if replace:
            self._reports[report.name] = report
        return report


def _accept(
    name: str, plugin: object, distribution_version: str | None
) -> tuple[Manifest, pluggy.PluginManager]:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    try:
        manager.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginLoadError(name, f"cannot be registered: {exc}") from None
    try:
        manager.check_pending()
    except pluggy.PluginValidationError:
        unknown = sorted(
            caller.name for caller in manager.get_hookcallers(plugin) or [] if not caller.has_spec()
        )
        raise PluginLoadError(
            name,
            f"implements {', '.join(map(repr, unknown))}, which is not a hook spec; "
            f"the hooks are {', '.join(HOOK_CONTRACTS)}",
        ) from None
    if not manager.hook.plugin_manifest.get_hookimpls():
        raise PluginLoadError(name, "does not implement the hook 'plugin_manifest'")
    try:
        manifest: Manifest = call_checked(name, manager.hook, "plugin_manifest", reference=True)
    except ContractViolation:
        raise
    except Exception as exc:
        raise PluginLoadError(
            name, f"hook 'plugin_manifest' raised {type(exc).__name__}: {exc}"
        ) from None
    implemented = {
        Capability(caller.name)
        for caller in manager.get_hookcallers(plugin) or []
        if caller.name != "plugin_manifest"
    }
    problem = next(
        iter(_manifest_problems(name, manifest, implemented, distribution_version)), None
    )
    if problem is not None:
        raise ContractViolation(name, "plugin_manifest", *problem)
    return manifest, manager


def _manifest_problems(
    name: str, manifest: Manifest, implemented: set[Capability], distribution_version: str | None
) -> Iterable[tuple[str, str]]:
    """The rules a manifest must keep beyond its schema, as (JSON path, problem)."""
    if manifest.name != name:
        yield "$.name", f"{manifest.name!r} differs from the entry-point name {name!r}"
    if distribution_version is not None and manifest.version != distribution_version:
        yield (
            "$.version",
            (
                f"{manifest.version!r} differs from the installed distribution's version "
                f"{distribution_version!r}"
            ),
        )
    major, minor = (int(part) for part in manifest.contract_version.split("."))
    core_major, core_minor = (int(part) for part in CONTRACT_VERSION.split("."))
    if major != core_major or minor > core_minor:
        yield (
            "$.contract_version",
            (
                f"{manifest.contract_version} is not supported: this core speaks contracts "
                f"{CONTRACT_VERSION} (same major, minor at most {core_minor})"
            ),
        )
    declared = set(manifest.capabilities)
    for capability in sorted(declared - implemented):
        yield "$.capabilities", f"declares {str(capability)!r} but does not implement that hook"
    for capability in sorted(implemented - declared):
        yield "$.capabilities", f"implements the hook {str(capability)!r} but does not declare it"
    if manifest.actions and Capability.OUTBOUND_ACTION not in declared:
        yield "$.actions", "lists actions but does not implement outbound_action"
    for action in manifest.answers:
        if action not in manifest.actions:
            yield f"$.answers.{action}", f"{str(action)!r} is not one of the plugin's actions"
    for field in ("config_schema", "store_config_schema"):
        try:
            jsonschema.Draft202012Validator.check_schema(getattr(manifest, field))
        except jsonschema.SchemaError as exc:
            yield json_path([field, *exc.absolute_path]), f"not a valid JSON Schema: {exc.message}"
    seen: set[str] = set()
    for index, row in enumerate(manifest.native_codes):
        if row.code in seen:
            yield f"$.native_codes[{index}].code", f"{row.code!r} is listed twice"
        seen.add(row.code)
    if not manifest.native_codes and declared & {Capability.PARSE_EVENT, Capability.MAP_STATE}:
        yield "$.native_codes", "is empty, but the plugin parses or maps events"
