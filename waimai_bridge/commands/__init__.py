"""The commands of ``waimai-bridge`` (:mod:`waimai_bridge.cli` gathers them)."""
