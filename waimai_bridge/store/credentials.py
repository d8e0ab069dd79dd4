"""Stores' platform credentials (sealed at rest) and the single-use states of
authorization links: what the authorization hooks obtained, what is due for renewal, and
each channel's status without its secrets."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from waimai_bridge.authorization import Credentials
from waimai_bridge.sealing import Sealer
from waimai_bridge.store.tables import AuthorizationState, ChannelCredentials
from waimai_bridge.store.upsert import insert_ignoring_conflict

PROBLEM_LENGTH = 500


class CredentialStatus(StrEnum):
    """A channel's authorization, as listed (``active`` and ``unauthorized`` are stored; the
    others are read off the row's expiry or the config)."""

    ACTIVE = "active"
    EXPIRING = "expiring"
    """Stored credentials within ``refresh_ahead_minutes`` of their expiry (or past it)."""
    UNAUTHORIZED = "unauthorized"
    STATIC = "static"
    """No stored credentials: the plugin uses what the store's config binding holds."""


@dataclass(frozen=True)
class ChannelAuthorization:
    """A channel's authorization as shown: never a secret."""

    platform: str
    store_id: str
    status: CredentialStatus
    expires_at_ms: int | None
    scope: str | None
    authorized_at_ms: int | None
    updated_at_ms: int | None
    failures: int
    problem: str | None


@dataclass(frozen=True)
class StoredCredentials:
    """A channel's credentials as stored, unsealed, with the row's status."""

    status: CredentialStatus
    credentials: Credentials


def status_of(row: ChannelCredentials, *, now_ms: int, ahead_ms: int) -> CredentialStatus:
    """What a stored row's channel is now."""
    if row.status == CredentialStatus.UNAUTHORIZED:
        return CredentialStatus.UNAUTHORIZED
    if row.expires_at_ms is not None and row.expires_at_ms - ahead_ms <= now_ms:
        return CredentialStatus.EXPIRING
    return CredentialStatus.ACTIVE


def save(
    session: Session,
    sealer: Sealer,
    platform: str,
    store_id: str,
    credentials: Credentials,
    *,
    now_ms: int,
    renewed: bool = False,
) -> None:
    """Store a channel's credentials, sealed, as active; ``renewed``: a refresh of ones
    already stored (the store's consent dates from before)."""
    values = {
        "status": CredentialStatus.ACTIVE.value,
        "access_token": sealer.seal(credentials.access_token),
        "refresh_token": None
        if credentials.refresh_token is None
        else sealer.seal(credentials.refresh_token),
        "expires_at_ms": credentials.expires_at_ms,
        "scope": credentials.scope,
        "updated_at_ms": now_ms,
        "failures": 0,
        "retry_at_ms": None,
        "problem": None,
    }
    key = {"platform": platform, "store_id": store_id}
    insert_ignoring_conflict(
        session, ChannelCredentials, {**key, **values, "authorized_at_ms": now_ms}
    )
    if not renewed:
        values["authorized_at_ms"] = now_ms
    session.execute(update(ChannelCredentials).filter_by(**key).values(**values))


def stored(
    session: Session, sealer: Sealer, platform: str, store_id: str, *, now_ms: int, ahead_ms: int
) -> StoredCredentials | None:
    """A channel's stored credentials, unsealed; None when none are stored."""
    row = session.get(ChannelCredentials, (platform, store_id))
    if row is None:
        return None
    credentials = Credentials(
        access_token=sealer.unseal(row.access_token),
        refresh_token=None if row.refresh_token is None else sealer.unseal(row.refresh_token),
        expires_at_ms=row.expires_at_ms,
        scope=row.scope,
    )
    return StoredCredentials(status_of(row, now_ms=now_ms, ahead_ms=ahead_ms), credentials)


def mark_unauthorized(
    session: Session, platform: str, store_id: str, problem: str, *, now_ms: int
) -> bool:
    """The channel's consent is gone (a renewal refused, the store withdrew it); False when
    the channel has no stored credentials."""
    result = session.execute(
        update(ChannelCredentials)
        .filter_by(platform=platform, store_id=store_id)
        .values(
            status=CredentialStatus.UNAUTHORIZED.value,
            problem=problem[:PROBLEM_LENGTH],
            updated_at_ms=now_ms,
            retry_at_ms=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def mark_authorized(session: Session, platform: str, store_id: str, *, now_ms: int) -> bool:
    """The store gave its consent back (a platform's notice): its stored credentials are
    active again; False when it has none stored."""
    result = session.execute(
        update(ChannelCredentials)
        .filter_by(platform=platform, store_id=store_id)
        .values(status=CredentialStatus.ACTIVE.value, problem=None, updated_at_ms=now_ms)
    )
    return bool(getattr(result, "rowcount", 0))


def renewal_failed(
    session: Session,
    platform: str,
    store_id: str,
    problem: str,
    *,
    now_ms: int,
    retry_at_ms: int,
) -> None:
    """A renewal the platform could not answer: tried again at ``retry_at_ms``."""
    session.execute(
        update(ChannelCredentials)
        .filter_by(platform=platform, store_id=store_id)
        .values(
            failures=ChannelCredentials.failures + 1,
            retry_at_ms=retry_at_ms,
            problem=problem[:PROBLEM_LENGTH],
            updated_at_ms=now_ms,
        )
    )


def due(session: Session, *, now_ms: int, ahead_ms: int, limit: int) -> list[tuple[str, str]]:
    """Active channels whose credentials expire within ``ahead_ms`` and are not waiting out
    a backoff, soonest first, as (platform, store id)."""
    statement = (
        select(ChannelCredentials.platform, ChannelCredentials.store_id)
        .where(
            ChannelCredentials.status == CredentialStatus.ACTIVE.value,
            ChannelCredentials.expires_at_ms.is_not(None),
            ChannelCredentials.expires_at_ms <= now_ms + ahead_ms,
            (ChannelCredentials.retry_at_ms.is_(None)) | (ChannelCredentials.retry_at_ms <= now_ms),
        )
        .order_by(ChannelCredentials.expires_at_ms)
        .limit(limit)
    )
    return [(platform, store_id) for platform, store_id in session.execute(statement)]


def listing(
    session: Session,
    *,
    now_ms: int,
    ahead_ms: int,
    bound: Sequence[tuple[str, str]] = (),
    store_id: str | None = None,
) -> list[ChannelAuthorization]:
    """Every channel with stored credentials, and each (platform, store) of ``bound`` (the
    config's bindings) without any as ``static``; by store, then platform."""
    statement = select(ChannelCredentials)
    if store_id is not None:
        statement = statement.where(ChannelCredentials.store_id == store_id)
    found: dict[tuple[str, str], ChannelAuthorization] = {}
    for row in session.execute(statement).scalars():
        found[row.platform, row.store_id] = ChannelAuthorization(
            platform=row.platform, store_id=row.store_id,
            status=status_of(row, now_ms=now_ms, ahead_ms=ahead_ms),
            expires_at_ms=row.expires_at_ms, scope=row.scope,
            authorized_at_ms=row.authorized_at_ms, updated_at_ms=row.updated_at_ms,
            failures=row.failures, problem=row.problem,
        )  # fmt: skip
    for platform, bound_store in bound:
        if (store_id is None or bound_store == store_id) and (platform, bound_store) not in found:
            found[platform, bound_store] = ChannelAuthorization(
                platform=platform, store_id=bound_store, status=CredentialStatus.STATIC,
                expires_at_ms=None, scope=None, authorized_at_ms=None, updated_at_ms=None,
                failures=0, problem=None,
            )  # fmt: skip
    return [found[key] for key in sorted(found, key=lambda key: (key[1], key[0]))]


def reseal_all(session: Session, sealer: Sealer) -> int:
    """Seal every stored secret again with the first key (after a new key was put first);
    how many channels."""
    rows = session.execute(select(ChannelCredentials).with_for_update()).scalars().all()
    for row in rows:
        row.access_token = sealer.reseal(row.access_token)
        if row.refresh_token is not None:
            row.refresh_token = sealer.reseal(row.refresh_token)
    return len(rows)


# --------------------------------------------------------------------------- link states


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def issue_state(session: Session, platform: str, store_id: str, *, now_ms: int) -> str:
    """A fresh single-use state for an authorization link of the store (only its hash is
    kept)."""
    state = secrets.token_urlsafe(32)
    session.add(
        AuthorizationState(
            state_hash=_hash(state), platform=platform, store_id=store_id,
            created_at_ms=now_ms, used_at_ms=None,
        )
    )  # fmt: skip
    return state


def use_state(
    session: Session, platform: str, state: str, *, now_ms: int, max_age_ms: int
) -> str | None:
    """The store an unused, unexpired state of ``platform`` was issued for, now used up;
    None for a state never issued, issued for another platform, used or expired."""
    result = session.execute(
        update(AuthorizationState)
        .where(
            AuthorizationState.state_hash == _hash(state),
            AuthorizationState.platform == platform,
            AuthorizationState.used_at_ms.is_(None),
            AuthorizationState.created_at_ms > now_ms - max_age_ms,
        )
        .values(used_at_ms=now_ms)
        .returning(AuthorizationState.store_id)
    )
    store_id = result.scalar_one_or_none()
    return None if store_id is None else str(store_id)


def forget_states(session: Session, *, before_ms: int) -> int:
    """Delete link states issued before ``before_ms``; how many."""
    result = session.execute(
        delete(AuthorizationState).where(AuthorizationState.created_at_ms < before_ms)
    )
    return int(getattr(result, "rowcount", 0))
