"""The Eleme plugin passes the contract harness at strictness high."""

from waimai_bridge.harness import contract_suite

TestEleme = contract_suite("eleme", strictness="high")
