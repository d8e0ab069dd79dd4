"""This plugin passes the waimai-bridge contract harness (run: pytest, once installed)."""

from waimai_bridge.harness import contract_suite

TestJsonHmac = contract_suite("jsonhmac", strictness="high")
