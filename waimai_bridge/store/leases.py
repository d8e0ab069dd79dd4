"""Leases: a job one worker at a time does (pulls, anomaly rules, the purge), and who holds
it until when."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from waimai_bridge.store.tables import Lease
from waimai_bridge.store.upsert import insert_ignoring_conflict


def take_lease(session: Session, name: str, holder: str, *, now_ms: int, ttl_ms: int) -> bool:
    """Whether ``holder`` holds the lease ``name`` until ``now_ms + ttl_ms``: it did
    already, or nobody did, or the last holder's time ran out."""
    insert_ignoring_conflict(session, Lease, {"name": name, "holder": holder, "until_ms": 0})
    lease = session.get(Lease, name, with_for_update=True, populate_existing=True)
    assert lease is not None  # inserted above, or there already
    if lease.holder != holder and lease.until_ms > now_ms:
        return False
    lease.holder, lease.until_ms = holder, now_ms + ttl_ms
    return True


def release_lease(session: Session, name: str, holder: str) -> None:
    """Give the lease up, if ``holder`` has it."""
    session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == holder).values(until_ms=0)
    )
