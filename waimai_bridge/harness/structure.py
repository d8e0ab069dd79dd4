"""The structural suites: the plugin as installed, its hooks, its native-code table, its
config, and its fixture files. They need no fixture beyond ``config.json``."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from waimai_bridge import hookspecs
from waimai_bridge.harness.cases import Case, ended_with, fail_with
from waimai_bridge.harness.outcomes import Failed, Missing, NotApplicable
from waimai_bridge.harness.target import Target
from waimai_bridge.hookcalls import HOOK_CONTRACTS
from waimai_bridge.models import Capability

PLUGIN_API = "waimai_bridge.plugin_api"
IMPL_MARKER = hookspecs.PROJECT_NAME + "_impl"


def manifest_cases(target: Target) -> Iterator[Case]:
    """The plugin is installed under its entry point and the core accepts its manifest."""

    def accepted() -> None:
        """Loading already validated the manifest with the reference validator."""

    yield Case("manifest", "accepted", accepted)

    def installed() -> None:
        if target.source == "registered in-process":
            raise Missing(
                f"plugin {target.name!r} was handed to the harness, not found through an "
                f"installed distribution's entry point (group {hookspecs.PROJECT_NAME!r})"
            )

    yield Case("manifest", "entry point", installed)


def _spec_parameters(hook: str) -> list[str]:
    return list(inspect.signature(getattr(hookspecs, hook)).parameters)


def hook_cases(target: Target) -> Iterator[Case]:
    """Each hook: implemented exactly when declared, taking only arguments the spec passes;
    and the plugin imports only the plugin API from the core."""
    declared = {str(capability) for capability in target.platform.manifest.capabilities}
    for hook in HOOK_CONTRACTS:

        def check(hook: str = hook) -> None:
            impl = getattr(target.plugin, hook, None)
            implemented = impl is not None and getattr(impl, IMPL_MARKER, None) is not None
            if hook == "plugin_manifest":
                if not implemented:
                    raise Failed("plugin_manifest is not implemented (every plugin needs it)")
            elif implemented != (hook in declared):
                raise Failed(
                    f"{hook}: implemented {implemented}, declared in capabilities "
                    f"{hook in declared}; capabilities must list exactly the hooks implemented"
                )
            elif not implemented:
                raise NotApplicable(f"{hook} is not implemented (nor declared)")
            spec = _spec_parameters(hook)
            taken = list(inspect.signature(impl).parameters)  # type: ignore[arg-type]
            extra = [name for name in taken if name not in spec]
            if extra:
                raise Failed(
                    f"{hook} takes {extra}, which the spec does not pass; its arguments are "
                    f"{spec} (see docs/hooks/{hook}.md)"
                )

        yield Case("hooks", hook, check)
    yield Case("hooks", "imports", lambda: _imports_only_the_plugin_api(target.package))


def _imports_only_the_plugin_api(package: str) -> None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise NotApplicable(f"{package!r} is not a package with files to read")
    offenders: list[str] = []
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                for module in modules:
                    if module.split(".")[0] == hookspecs.PROJECT_NAME and module != PLUGIN_API:
                        offenders.append(f"{path.name}:{node.lineno} imports {module}")
    if offenders:
        raise Failed(f"a plugin imports only {PLUGIN_API} from the core; " + "; ".join(offenders))


def native_code_cases(target: Target) -> Iterator[Case]:
    """Every native code maps to baseline states, or is explicitly ignored (``maps_to``
    empty and a ``note`` saying why)."""

    def check() -> None:
        problems = []
        for index, row in enumerate(target.platform.manifest.native_codes):
            where = f"native_codes[{index}] (code {row.code!r})"
            if not row.maps_to and not (row.note or "").strip():
                problems.append(
                    f"{where}: maps_to is empty but no note says why the code is ignored; "
                    "map it to baseline states or add a note"
                )
            if len(set(row.maps_to)) != len(row.maps_to):
                problems.append(f"{where}: maps_to lists a state twice")
        if problems:
            raise Failed("\n".join(problems))

    yield Case("native_codes", "mapped or ignored", check)


def _schema_problems(
    label: str, instance: Mapping[str, Any], schema: Mapping[str, Any]
) -> list[str]:
    merged = dict(instance)
    for name, prop in schema.get("properties", {}).items():
        if name not in merged and isinstance(prop, dict) and "default" in prop:
            merged[name] = prop["default"]
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join([label, *(str(part) for part in error.absolute_path)])}: {error.message}"
        for error in validator.iter_errors(merged)
    ]


def config_cases(target: Target) -> Iterator[Case]:
    """The fixtures' ``config.json`` is valid against the manifest's config schemas."""
    config = target.fixtures.config
    if config is None:
        missing = Missing(
            f"no config.json in {target.fixtures.folder}: write "
            '{"public_base_url", "settings", "stores"} for the fixtures'
        )
        yield Case("config", "config.json", ended_with(missing))
        return
    manifest = target.platform.manifest

    def settings() -> None:
        problems = _schema_problems("settings", config.settings, manifest.config_schema)
        if problems:
            raise Failed("config.json: " + "\n".join(problems))

    def stores() -> None:
        if not config.stores:
            raise Failed("config.json: stores is empty; bind at least one store")
        problems = [
            problem
            for store_id, binding in config.stores.items()
            for problem in _schema_problems(
                f"stores.{store_id}", binding, manifest.store_config_schema
            )
        ]
        if problems:
            raise Failed("config.json: " + "\n".join(problems))

    yield Case("config", "settings", settings)
    yield Case("config", "stores", stores)


def fixture_file_cases(target: Target) -> Iterator[Case]:
    """Every fixture file can be read; there are fixtures at all."""
    fixtures = target.fixtures
    for name, problem in sorted(fixtures.problems.items()):
        yield Case("fixtures", f"{name}.json", fail_with(f"fixture {name}.json: {problem}"))
    if fixtures.empty:
        yield Case(
            "fixtures",
            "folder",
            ended_with(
                Missing(
                    f"no fixtures in {fixtures.folder}: record the platform's pushes and "
                    "actions as fixtures (see docs/plugin-authors.md, 'Fixtures')"
                )
            ),
        )


def declares(target: Target, capability: Capability) -> bool:
    """Whether the plugin declares ``capability``."""
    return target.platform.supports(capability)
