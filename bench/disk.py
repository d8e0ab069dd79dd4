"""Disk stalls: how long, at most, a disk of this machine had requests in flight and
completed none of them.

Every inbox write waits for its commit to reach the disk before the ACK leaves, and every
worker transaction for its own; a disk that stops completing requests for 80 ms stops
them all that long, and the latency tails measure the disk rather than the bridge. Run as
``python -m bench.disk``: it samples ``/proc/diskstats`` every :data:`INTERVAL_S` seconds
until its standard input closes, then prints the longest stall in milliseconds.
"""

from __future__ import annotations

import select
import sys
import time
from pathlib import Path

INTERVAL_S = 0.02


def disks() -> set[str]:
    """The machine's block devices that can hold a database: not loop or RAM devices."""
    return {
        path.name
        for path in Path("/sys/block").iterdir()
        if not path.name.startswith(("loop", "ram", "zram"))
    }


def sample(names: set[str]) -> dict[str, tuple[int, int]]:
    """Each disk's requests completed so far and requests in flight now."""
    counts = {}
    for line in Path("/proc/diskstats").read_text().splitlines():
        fields = line.split()
        if fields[2] in names:
            # reads completed, writes completed, ..., I/Os currently in progress
            counts[fields[2]] = (int(fields[3]) + int(fields[7]), int(fields[11]))
    return counts


def longest_stall_ms() -> float:
    """Sample the disks until standard input closes; the longest stall seen, in ms."""
    names = disks()
    last = sample(names)
    stalled_since: dict[str, float] = {}
    longest = 0.0
    while not select.select([sys.stdin], [], [], INTERVAL_S)[0]:
        now, counts = time.monotonic(), sample(names)
        for name, (completed, in_flight) in counts.items():
            if in_flight and completed == last[name][0]:
                # stalled since the sample before, at the latest
                start = stalled_since.setdefault(name, now - INTERVAL_S)
                longest = max(longest, now - start)
            else:
                stalled_since.pop(name, None)
        last = counts
    return longest * 1000


if __name__ == "__main__":
    print(round(longest_stall_ms(), 1))
