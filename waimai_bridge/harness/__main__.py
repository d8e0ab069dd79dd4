"""``python -m waimai_bridge.harness contract|new-plugin …``: the harness's commands alone."""

from __future__ import annotations

import click

from waimai_bridge.harness.commands import COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def harness() -> None:
    """The waimai-bridge contract harness."""


for _command in COMMANDS:
    harness.add_command(_command)

if __name__ == "__main__":
    harness(prog_name="python -m waimai_bridge.harness")
