"""The Meituan plugin passes the contract harness at strictness high."""

from waimai_bridge.harness import contract_suite

TestMeituan = contract_suite("meituan", strictness="high")
