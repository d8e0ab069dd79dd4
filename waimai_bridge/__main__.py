"""``python -m waimai_bridge`` runs the command line."""

from waimai_bridge.cli import main

main()
