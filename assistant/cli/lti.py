"""``mentorly lti``: register learning platforms (LTI 1.3), print what to paste into them,
rotate the tool's signing key."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant import audit
from assistant.cli.main import _database, _settings, cli
from assistant.lti.keys import ToolKeys
from assistant.lti.platforms import DEPLOYMENT_ADDED, PlatformInfo, Platforms
from assistant.lti.urls import tool_config, tool_urls


@cli.group("lti")
def lti_group() -> None:
    """LTI 1.3: launches from Moodle, Canvas, Blackboard, Brightspace, Open edX."""


def _keys(ctx: click.Context) -> ToolKeys:
    return ToolKeys(_database(ctx), _settings(ctx).lti)


def _config(ctx: click.Context) -> dict[str, Any]:
    kid, _ = _keys(ctx).signing_key()  # the first key pair is made here when there is none
    return tool_config(tool_urls(_settings(ctx)), kid)


def _echo_config(config: dict[str, Any]) -> None:
    rows = [
        ("Tool URL / redirection URI (launch)", config["launch_url"]),
        ("Initiate login URL (OIDC)", config["login_url"]),
        ("Public keyset URL (JWKS)", config["jwks_url"]),
        ("Deep linking (content selection) URL", config["deep_link_url"]),
        ("Messages", ", ".join(config["messages"])),
        ("Current key id (kid)", config["kid"]),
    ]
    width = max(len(label) for label, _ in rows)
    click.echo("Paste into the platform (LTI 1.3; no custom parameters needed):")
    for label, value in rows:
        click.echo(f"  {label.ljust(width)}  {value}")
    click.echo("  Placements:")
    for placement in config["placements"]:
        click.echo(f"    {placement['placement']} ({placement['message_type']}): {placement['description']}")
    click.echo("  Canvas: `mentorly lti config --json` gives the developer key's JSON (key \"canvas\").")
    if not config["public"]:
        click.secho("Warning: these URLs are not https addresses a platform can reach: set "
                    "MENTORLY_LTI__PUBLIC_URL (or [lti] public_url) to the address platforms reach this "
                    "service at, e.g. https://mentorly.school.example", fg="yellow", err=True)


def _platform_line(p: PlatformInfo) -> str:
    return (f"{p.id}  {p.tenant}  {p.name}  {p.issuer}  client {p.client_id}  "
            f"deployments {','.join(p.deployment_ids)}"
            + (f"  shared {','.join(p.shared_collections)}" if p.shared_collections else ""))


@lti_group.command("add-platform")
@click.option("--tenant", required=True, help="The tenant whose learners the platform launches.")
@click.option("--issuer", required=True, help="The platform's issuer (Moodle: Platform ID; Canvas: "
              "https://canvas.instructure.com).")
@click.option("--client-id", required=True, help="The client id the platform gave the tool.")
@click.option("--auth-login-url", required=True, help="The platform's OIDC authentication request URL.")
@click.option("--auth-token-url", default="", help="The platform's access token URL.")
@click.option("--key-set-url", required=True, help="The platform's public keyset (JWKS) URL.")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True,
              help="A deployment id of the tool on the platform (repeatable).")
@click.option("--name", default="", help="A label (default: the issuer's host).")
@click.option("--shared-collection", "shared_collections", multiple=True,
              help="A tenant collection every course of this platform also searches, after its own "
              "(repeatable).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lti_add_platform(ctx: click.Context, tenant: str, issuer: str, client_id: str, auth_login_url: str,
                     auth_token_url: str, key_set_url: str, deployment_ids: tuple[str, ...], name: str,
                     shared_collections: tuple[str, ...], as_json: bool) -> None:
    """Register a platform; prints its id, then what to paste into the platform."""
    db = _database(ctx)
    info = Platforms(db).add(tenant=tenant, issuer=issuer, client_id=client_id,
                             auth_login_url=auth_login_url, auth_token_url=auth_token_url,
                             key_set_url=key_set_url, deployment_ids=list(deployment_ids), name=name,
                             shared_collections=shared_collections)
    audit.record(db, actor=audit.cli_actor(), action=audit.LTI_PLATFORM_ADDED, target=info.id,
                 tenant=info.tenant, details={"issuer": info.issuer, "client_id": info.client_id,
                                              "deployment_ids": list(info.deployment_ids)})
    config = _config(ctx)
    if as_json:
        click.echo(json.dumps({"platform": info.to_dict(), "tool": config}))
        return
    click.echo(info.id)
    click.secho(f"Registered {info.name} ({info.issuer}, client {info.client_id}) for tenant "
                f"{info.tenant!r}.", fg="green", err=True)
    _echo_config(config)


@lti_group.command("list")
@click.option("--tenant", default=None, help="Only this tenant's platforms.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lti_list(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List registered platforms."""
    found = Platforms(_database(ctx)).list(tenant)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in found]))
        return
    if not found:
        click.echo("No LTI platforms (register one with `mentorly lti add-platform`).")
    for p in found:
        click.echo(_platform_line(p))


@lti_group.command("remove")
@click.argument("platform_id")
@click.pass_context
def lti_remove(ctx: click.Context, platform_id: str) -> None:
    """Remove a platform: its launches stop at once; its courses' documents stay."""
    db = _database(ctx)
    info = Platforms(db).remove(platform_id)
    audit.record(db, actor=audit.cli_actor(), action=audit.LTI_PLATFORM_REMOVED, target=info.id,
                 tenant=info.tenant, details={"issuer": info.issuer, "client_id": info.client_id})
    click.echo(f"Removed platform {info.id} ({info.name}, tenant {info.tenant}).")


@lti_group.command("add-deployment")
@click.argument("platform_id")
@click.argument("deployment_id")
@click.pass_context
def lti_add_deployment(ctx: click.Context, platform_id: str, deployment_id: str) -> None:
    """Accept launches from one more deployment of the tool on a registered platform."""
    db = _database(ctx)
    info = Platforms(db).add_deployment(platform_id, deployment_id)
    audit.record(db, actor=audit.cli_actor(), action=DEPLOYMENT_ADDED, target=info.id,
                 tenant=info.tenant, details={"deployment_added": deployment_id.strip(),
                                              "deployment_ids": list(info.deployment_ids)})
    click.echo(f"Platform {info.id} accepts deployments {', '.join(info.deployment_ids)}.")


@lti_group.command("config")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lti_config(ctx: click.Context, as_json: bool) -> None:
    """What an administrator pastes into the platform (creates the tool's key pair if needed)."""
    config = _config(ctx)
    if as_json:
        click.echo(json.dumps(config))
        return
    _echo_config(config)


@lti_group.command("rotate-key")
@click.pass_context
def lti_rotate_key(ctx: click.Context) -> None:
    """A new signing key; the old one stays published for [lti] retired_key_grace_s."""
    keys = _keys(ctx)
    kid = keys.rotate()
    audit.record(keys.db, actor=audit.cli_actor(), action=audit.LTI_KEY_ROTATED, target=kid)
    grace = keys.settings.retired_key_grace_s
    click.echo(kid)
    click.secho(f"New signing key {kid}; the previous one stays published at /lti/jwks for "
                f"{grace} s ({grace / 86400:.1f} days). Running servers switch within "
                f"{keys.recheck_s:.0f} s.", fg="green", err=True)


@lti_group.command("keys")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lti_keys(ctx: click.Context, as_json: bool) -> None:
    """The tool's signing keys (never the private parts)."""
    found = _keys(ctx).list()
    if as_json:
        click.echo(json.dumps([{"kid": k.kid, "created_at": k.created_at.isoformat(),
                                "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                                "active": k.active, "published": k.published, "encrypted": k.encrypted}
                               for k in found]))
        return
    if not found:
        click.echo("No signing key yet (`mentorly lti config` creates the first).")
    for k in found:
        state = "active" if k.active else ("retired, published" if k.published else "retired")
        retired = f"  retired {k.retired_at:%Y-%m-%d %H:%M}" if k.retired_at else ""
        click.echo(f"{k.kid}  {state}  created {k.created_at:%Y-%m-%d %H:%M}{retired}"
                   f"{'  encrypted' if k.encrypted else ''}")
