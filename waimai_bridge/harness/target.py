"""The plugin under test: found through its entry point (or given), loaded as the core
loads it, with its fixtures and its fake."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from waimai_bridge.harness.fake import FakeFactory, find_fake
from waimai_bridge.harness.fixtures import FixtureSet, load_fixtures
from waimai_bridge.harness.outcomes import CheckEnded
from waimai_bridge.hookcalls import Platform
from waimai_bridge.plugins import ENTRY_POINT_GROUP, PluginRegistry, PluginStatus

FIXTURES_FOLDER = "fixtures"


class NotLoaded(Exception):
    """The plugin could not be loaded at all; the message says why."""


@dataclass
class Target:
    """A loaded plugin, its fixtures and its fake (or why it has none)."""

    name: str
    plugin: object
    platform: Platform
    package: str
    fixtures: FixtureSet
    source: str
    fake: FakeFactory | None = None
    no_fake: CheckEnded | None = None


def package_of(plugin: object) -> str:
    """The top-level package a plugin object (a module or an instance) comes from."""
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    return module.split(".")[0]


def load_target(
    name: str,
    *,
    plugin: object | None = None,
    fixtures: str | Path | None = None,
    fake: FakeFactory | None = None,
) -> Target:
    """Load the plugin ``name`` from its entry point (or ``plugin``, registered under
    ``name``) with its fixtures (default: the ``fixtures`` folder of its package) and its
    fake (default: ``PKG.testing.fake_platform``)."""
    registry = PluginRegistry(reference=True)
    if plugin is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            installed = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))
            raise NotLoaded(
                f"no plugin {name!r} is installed under the entry-point group "
                f"{ENTRY_POINT_GROUP!r} (installed: {installed or 'none'}); install its "
                "distribution, e.g. pip install -e ."
            )
        if len(found) > 1:
            raise NotLoaded(f"{len(found)} installed distributions register a plugin {name!r}")
        try:
            plugin = found[0].load()
        except Exception as exc:
            raise NotLoaded(
                f"plugin {name!r} cannot be imported: {type(exc).__name__}: {exc}"
            ) from None
        dist = found[0].dist
        report = registry.add(
            name,
            plugin,
            source=f"{dist.name} {dist.version}" if dist else found[0].value,
            distribution_version=dist.version if dist else None,
        )
    else:
        report = registry.add(name, plugin)
    if report.status is not PluginStatus.VALID:
        raise NotLoaded(f"the core refuses plugin {name!r}: {report.problem}")
    package = package_of(plugin)
    if fixtures is None:
        folder = Path(str(resources.files(package) / FIXTURES_FOLDER))
    else:
        folder = Path(fixtures).resolve()
    target = Target(
        name=name,
        plugin=plugin,
        platform=registry.platform(name),
        package=package,
        fixtures=load_fixtures(folder, name),
        source=report.source,
        fake=fake,
    )
    if fake is None:
        try:
            target.fake = find_fake(package)
        except CheckEnded as ended:
            target.no_fake = ended
    return target
