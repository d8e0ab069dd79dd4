"""The ``waimai-bridge`` command line: one module per command group (:mod:`.main` gathers
them; ``main`` is the script's entry point)."""

from waimai_bridge.cli.main import cli, main

__all__ = ["cli", "main"]
