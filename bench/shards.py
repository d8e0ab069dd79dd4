"""How evenly stores spread over the shards: ten thousand stores (several shapes of store
id), each with an order volume drawn from a long-tailed distribution, placed by the
bridge's own ``shard_of``; the load of the busiest shard over the mean, by shard count.

    python bench/shards.py                 # 10,000 stores, 8 to 64 shards
    python bench/shards.py --stores 2000   # another chain size

The last line printed is one JSON object: for each id shape and shard count, the busiest
shard's store count and order load over the mean (1.0 is perfectly even).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from waimai_bridge.pipeline.shards import shard_of  # noqa: E402

SHAPES: dict[str, Callable[[int, random.Random], str]] = {
    "numbered": lambda n, _: f"S{n:05d}",
    "prefixed": lambda n, _: f"store-{n}",
    "city": lambda n, _: f"{('上海', '北京', '广州', '成都')[n % 4]}{n}店",
    "random": lambda _, rng: f"{rng.getrandbits(64):016x}",
}
"""How chains name their stores: numbers, a prefix, city names, opaque ids."""
SHARD_COUNTS = (8, 16, 32, 64)
"""The default (``[bridge] shards = 8``) and larger deployments."""


def volumes(stores: int, rng: random.Random) -> list[float]:
    """Each store's daily orders: log-normal, a few busy stores and a long quiet tail."""
    return [rng.lognormvariate(4.0, 0.8) for _ in range(stores)]


def spread(ids: list[str], weights: list[float], shards: int) -> dict[str, float]:
    """The busiest shard over the mean, by store count and by order load."""
    counts = [0] * shards
    loads = [0.0] * shards
    for store_id, weight in zip(ids, weights, strict=True):
        shard = shard_of(store_id, shards)
        counts[shard] += 1
        loads[shard] += weight
    return {
        "stores_max_over_mean": round(max(counts) / (len(ids) / shards), 3),
        "load_max_over_mean": round(max(loads) / (sum(loads) / shards), 3),
    }


def main() -> None:
    """Print the spread for every shape and shard count, then the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    weights = volumes(args.stores, rng)
    report: dict[str, object] = {"stores": args.stores}
    for shape, name in SHAPES.items():
        ids = [name(n, rng) for n in range(args.stores)]
        for shards in SHARD_COUNTS:
            found = spread(ids, weights, shards)
            report[f"{shape}_{shards}"] = found
            stores, load = found["stores_max_over_mean"], found["load_max_over_mean"]
            line = f"{shape:>9} {shards:>3} shards: stores {stores:.3f}, load {load:.3f} × mean"
            print(line, file=sys.stderr)
    worst = max(
        value["load_max_over_mean"]  # type: ignore[index]
        for key, value in report.items()
        if key.endswith("_8")
    )
    report["default_shards_worst_load"] = worst
    print(json.dumps(report))


if __name__ == "__main__":
    main()
