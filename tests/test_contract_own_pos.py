"""The own_pos plugin passes the contract harness at strictness high."""

from waimai_bridge.harness import contract_suite

TestOwnPos = contract_suite("own_pos", strictness="high")
