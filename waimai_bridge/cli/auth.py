"""``waimai-bridge auth``: authorizing stores on their platforms, their channels' status,
renewing credentials by hand, and the keys that seal credentials at rest."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.markup import escape

from waimai_bridge.cli.context import BridgeContext, pass_context, print_table
from waimai_bridge.clock import system_clock
from waimai_bridge.errors import ContractViolation, PlatformRejected, TransientPlatformError
from waimai_bridge.models import Capability
from waimai_bridge.pipeline.credentials import Authorizations, NotAuthorizing
from waimai_bridge.sealing import Sealer, SealingUnavailable, new_key
from waimai_bridge.store import credentials as store
from waimai_bridge.store.credentials import ChannelAuthorization, CredentialStatus
from waimai_bridge.web.authorizations import channel_statuses

STATUS_STYLE = {
    CredentialStatus.ACTIVE: "green",
    CredentialStatus.EXPIRING: "yellow",
    CredentialStatus.UNAUTHORIZED: "bold red",
    CredentialStatus.STATIC: "dim",
}


class ConfigProblem(click.ClickException):
    """What the config lacks for a command (exit code 2, as for an invalid config)."""

    exit_code = 2


def local_time(ms: int | None) -> str | None:
    """Epoch milliseconds as this machine's local ISO 8601 time, to the second."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


@click.group()
def auth() -> None:
    """Authorize stores on their platforms and keep their credentials (docs/deploy.md)."""


def _sealer(bridge: BridgeContext) -> Sealer:
    """The sealer of the configured keys; exit 2 without any."""
    sealer = Sealer([key.get_secret_value() for key in bridge.config.authorization.keys])
    if not sealer.ready:
        raise ConfigProblem(
            "no key to seal credentials with: set [authorization] keys or "
            "WAIMAI_AUTHORIZATION_KEYS (`waimai-bridge auth new-key` makes one)"
        )
    return sealer


def _service(
    bridge: BridgeContext, platform: str, store_id: str, capability: Capability
) -> Authorizations:
    """The authorizing service, once the config lets ``platform`` (whose plugin implements
    ``capability``) authorize the store."""
    config = bridge.config
    if platform not in config.platforms:
        known = ", ".join(sorted(config.platforms)) or "none"
        raise click.BadParameter(
            f"{platform!r} is not a configured platform (configured: {known})",
            param_hint="--platform",
        )
    if not bridge.registry.platform(platform).supports(capability):
        raise click.BadParameter(
            f"the {platform} plugin does not authorize stores (it has no {capability} hook)",
            param_hint="--platform",
        )
    store_config = config.stores.get(store_id)
    if store_config is None or platform not in store_config.bindings:
        raise click.BadParameter(
            f"store {store_id!r} is not bound to {platform} in the config "
            f"([stores.{store_id}] {platform} = {{ … }})",
            param_hint="--store",
        )
    _sealer(bridge)
    bridge.database()  # the schema checked (SQLite: upgraded) before anything is written
    return bridge.runtime().authorizations


def _refused(exc: Exception, doing: str) -> click.ClickException:
    """A platform's or plugin's failure as a one-line error: its type and code, never its
    message (which may quote a request)."""
    if isinstance(exc, ContractViolation):
        return click.ClickException(
            f"{doing}: the {exc.plugin} plugin broke its contract (hook {exc.hook}, at {exc.path})"
        )
    code = getattr(exc, "code", None)
    named = type(exc).__name__ + ("" if code is None else f" {code}")
    if isinstance(exc, TransientPlatformError):
        return click.ClickException(f"{doing}: the platform could not be reached ({named})")
    return click.ClickException(f"{doing}: the platform refused ({named})")


def _channel(bridge: BridgeContext, platform: str, store_id: str) -> ChannelAuthorization:
    with bridge.database().reading() as session:
        [found] = channel_statuses(
            session, bridge.config, now_ms=system_clock(), store_id=store_id, platform=platform
        )
    return found


def _expiry(channel: ChannelAuthorization) -> str:
    shown = local_time(channel.expires_at_ms)
    return "it does not expire" if shown is None else f"its access token expires {shown}"


@auth.command()
@click.option("--platform", required=True, help="The platform to authorize the store on.")
@click.option("--store", "store_id", required=True, help="The store (a [stores.ID] of the config).")
@pass_context
def url(bridge: BridgeContext, platform: str, store_id: str) -> None:
    """Print the link where the store's owner authorizes the chain's app.

    The link works once, for [authorization] state_minutes; the platform then sends the
    owner back to the bridge's callback, which stores the credentials. An app that needs
    nobody's consent is authorized at once.
    """
    service = _service(bridge, platform, store_id, Capability.AUTHORIZE_URL)
    try:
        started = service.start(platform, store_id)
    except NotAuthorizing as exc:
        raise ConfigProblem(str(exc)) from None
    except SealingUnavailable as exc:
        raise ConfigProblem(str(exc)) from None
    except (PlatformRejected, TransientPlatformError, ContractViolation) as exc:
        raise _refused(exc, f"store {store_id} was not authorized on {platform}") from None
    if started.url is None:
        channel = _channel(bridge, platform, store_id)
        click.echo(
            f"Store {store_id} is authorized on {platform} now (its app needs nobody's "
            f"consent); {_expiry(channel)}."
        )
        return
    minutes = bridge.config.authorization.state_minutes
    until = local_time(system_clock() + int(minutes * 60_000))
    shown = bridge.registry.platform(platform).manifest.display_name
    click.echo(
        f"Have the owner of store {store_id} open this link, log in to {shown} and "
        "approve the app:\n"
    )
    click.echo(started.url)
    click.echo(
        f"\nThe link works once, until {until} ({minutes:g} minutes). The platform then "
        f"sends the owner to {service.redirect_uri(platform)}, which stores the store's "
        f"credentials; `waimai-bridge auth status --store {store_id}` shows them."
    )


@auth.command()
@click.option("--store", "store_id", default=None, help="Only this store's channels.")
@click.option("--platform", default=None, help="Only this platform's channels.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def status(
    bridge: BridgeContext, store_id: str | None, platform: str | None, as_json: bool
) -> None:
    """List each channel's authorization: active, expiring, unauthorized or static (the
    store's binding in the config), with its expiry (local time)."""
    with bridge.database().reading() as session:
        found = channel_statuses(
            session, bridge.config, now_ms=system_clock(), store_id=store_id, platform=platform
        )
    if as_json:
        click.echo(json.dumps([_row(channel) for channel in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no channel matches: no store of the config is bound to such a platform")
        return
    rows = [
        (
            escape(channel.store_id), escape(channel.platform),
            f"[{STATUS_STYLE[channel.status]}]{channel.status}[/]",
            local_time(channel.expires_at_ms) or "-", escape(channel.scope or "-"),
            str(channel.failures), escape(channel.problem or ""),
        )
        for channel in found
    ]  # fmt: skip
    print_table(
        f"{len(rows)} channels",
        ("store", "platform", "status", "expires", "scope", "failures", "problem"),
        rows,
    )


def _row(channel: ChannelAuthorization) -> dict[str, Any]:
    return {
        "store_id": channel.store_id,
        "platform": channel.platform,
        "status": str(channel.status),
        "expires_at": local_time(channel.expires_at_ms),
        "expires_at_ms": channel.expires_at_ms,
        "scope": channel.scope,
        "authorized_at": local_time(channel.authorized_at_ms),
        "failures": channel.failures,
        "problem": channel.problem,
    }


@auth.command()
@click.option("--platform", required=True)
@click.option("--store", "store_id", required=True)
@pass_context
def refresh(bridge: BridgeContext, platform: str, store_id: str) -> None:
    """Renew a channel's credentials now, as the workers do ahead of their expiry.

    A refusal makes the channel unauthorized: authorize the store again (`auth url`).
    """
    service = _service(bridge, platform, store_id, Capability.REFRESH_CREDENTIALS)
    doing = f"store {store_id}'s credentials of {platform} were not renewed"
    try:
        service.renew(platform, store_id)
    except NotAuthorizing as exc:
        raise click.ClickException(f"{exc} (authorize it: waimai-bridge auth url)") from None
    except SealingUnavailable as exc:
        raise ConfigProblem(str(exc)) from None
    except PlatformRejected as exc:
        raise click.ClickException(
            f"{_refused(exc, doing).message}; the channel is unauthorized now: authorize it "
            f"again (waimai-bridge auth url --platform {platform} --store {store_id})"
        ) from None
    except (TransientPlatformError, ContractViolation) as exc:
        raise _refused(exc, doing) from None
    channel = _channel(bridge, platform, store_id)
    click.echo(f"Renewed store {store_id}'s credentials of {platform}; {_expiry(channel)}.")


@auth.command("new-key")
def new_key_command() -> None:
    """Print a new key for [authorization] keys (or WAIMAI_AUTHORIZATION_KEYS)."""
    click.echo(new_key())


@auth.command()
@pass_context
def rekey(bridge: BridgeContext) -> None:
    """Seal every stored credential again with the first of [authorization] keys.

    Rotating: put the new key first and keep the old one after it, run this, then drop
    the old key.
    """
    sealer = _sealer(bridge)
    try:
        with bridge.database().transaction() as session:
            count = store.reseal_all(session, sealer)
    except SealingUnavailable as exc:
        raise ConfigProblem(str(exc)) from None
    click.echo(
        f"Re-sealed the credentials of {count} channel{'' if count == 1 else 's'} with the "
        "first key; the keys after it open nothing stored now and may be removed."
    )
