"""What every ``waimai-bridge`` command shares: the config, the plugins, the database."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

from waimai_bridge.config import Config, load_config
from waimai_bridge.errors import ConfigError
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database, SchemaNotCurrent


class BridgeContext:
    """What every command shares: the config path, the plugins, and lazily the config and
    the database."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self.registry = PluginRegistry.discover()
        self._config: Config | None = None
        self._database: Database | None = None
        self._runtime: Bridge | None = None

    @property
    def config(self) -> Config:
        """The validated configuration; exits with its problems when it is invalid."""
        if self._config is None:
            try:
                self._config = load_config(self.config_path, self.registry)
            except ConfigError as exc:
                click.echo(f"waimai-bridge: {exc}", err=True)
                sys.exit(2)
        return self._config

    def runtime(self) -> Bridge:
        """The running parts: database, broker and pipeline."""
        if self._runtime is None:
            self._runtime = Bridge(self.config, self.registry)
        return self._runtime

    def database(self, *, current: bool = True) -> Database:
        """The configured database; with ``current``, its schema checked (SQLite: upgraded)."""
        if self._database is None:
            self._database = Database(self.config.bridge.database_url)
        if current:
            try:
                self._database.ensure_schema()
            except SchemaNotCurrent as exc:
                raise click.ClickException(str(exc)) from None
        return self._database


pass_context = click.make_pass_decorator(BridgeContext)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
