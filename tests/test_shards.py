"""Stores spread over the shards evenly enough (SPEC §2): ten thousand stores of each usual
shape of store id put no shard above 1.2 × the mean number of stores, at the default shard
count and up to 32 (``bench/shards.py`` measures the order load too; beyond, ~150 stores a
shard, chance alone puts the busiest shard near 1.2 × the mean, whatever the hash)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench.shards import SHAPES
from waimai_bridge.pipeline.shards import shard_of
from waimai_bridge.settings import BridgeSettings

STORES = 10_000


@pytest.mark.parametrize("shards", sorted({BridgeSettings().shards, 16, 32}))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_ten_thousand_stores_spread_within_a_fifth_of_the_mean(shape: str, shards: int) -> None:
    rng = random.Random(shards)
    counts = Counter(shard_of(SHAPES[shape](n, rng), shards) for n in range(STORES))
    assert set(counts) == set(range(shards)), "every shard has stores"
    assert max(counts.values()) <= 1.2 * STORES / shards, counts.most_common(3)


def test_a_store_keeps_its_shard() -> None:
    assert [shard_of("S001", 8) for _ in range(3)] == [shard_of("S001", 8)] * 3
    assert all(0 <= shard_of(f"S{n}", 7) < 7 for n in range(1000))
