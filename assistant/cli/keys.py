"""``mentorly keys create/list/revoke`` (only a hash of each API key is stored) and
``mentorly keys widgets``; ``--widget`` keys are handled by ``assistant.cli.widget``."""

from __future__ import annotations

import json

import click

from assistant import audit
from assistant.cli.main import _database, cli
from assistant.cli.widget import create_widget_key, keys_widgets, revoke_widget_key
from assistant.security import SCOPES, KeyStore


def _keys(ctx: click.Context) -> KeyStore:
    return KeyStore(_database(ctx))


@cli.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys (only a hash of each key is stored)."""


@keys_group.command("create")
@click.option("--tenant", required=True, help="The tenant the key acts for.")
@click.option("--scopes", default="chat,tools", show_default=True,
              help=f"Comma-separated: {', '.join(SCOPES)} (admin implies all).")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option("--widget", is_flag=True,
              help="A publishable pk_ key for the embeddable widget (and its signing secret).")
@click.option("--origins", default=None, help="With --widget: comma-separated origins allowed to embed it.")
@click.option("--anonymous", is_flag=True, help="With --widget: allow visitors without a learner token.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def keys_create(ctx: click.Context, tenant: str, scopes: str, name: str, widget: bool, origins: str | None,
                anonymous: bool, as_json: bool) -> None:
    """Create a key and print it once: it cannot be shown again."""
    if widget:
        create_widget_key(ctx, tenant, origins, anonymous, name, as_json)
        return
    store = _keys(ctx)
    key, info = store.create(tenant, scopes, name)
    audit.record(store.db, actor=audit.cli_actor(), action=audit.KEY_CREATED, target=info.prefix,
                 tenant=info.tenant, details={"scopes": info.scopes})
    if as_json:
        click.echo(json.dumps({"key": key, "id": info.id, "prefix": info.prefix, "tenant": info.tenant,
                               "scopes": info.scopes, "name": info.name}))
        return
    click.echo(key)
    click.secho(f"Key {info.prefix} for tenant {info.tenant!r}, scopes {','.join(info.scopes)}. "
                "Store it now: it is not shown again.", fg="yellow", err=True)


@keys_group.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def keys_list(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List keys (prefix, tenant, scopes, state); never the keys themselves."""
    found = _keys(ctx).list(tenant)
    if as_json:
        click.echo(json.dumps([{"id": k.id, "prefix": k.prefix, "tenant": k.tenant, "scopes": k.scopes,
                                "name": k.name, "created_at": k.created_at.isoformat(),
                                "revoked": not k.active} for k in found]))
        return
    if not found:
        click.echo("No API keys (create one with `mentorly keys create --tenant T`).")
    for k in found:
        state = "active" if k.active else "revoked"
        click.echo(f"{k.prefix}  {k.tenant}  {','.join(k.scopes)}  {state}  "
                   f"{k.created_at:%Y-%m-%d %H:%M}  {k.name}")


@keys_group.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by its prefix or id (as `keys list` shows), or a widget key (pk_…)."""
    if key_id.strip().startswith("pk_"):
        revoke_widget_key(ctx, key_id)
        return
    store = _keys(ctx)
    info = store.revoke(key_id)
    audit.record(store.db, actor=audit.cli_actor(), action=audit.KEY_REVOKED, target=info.prefix,
                 tenant=info.tenant)
    click.echo(f"Revoked {info.prefix} (tenant {info.tenant}).")


keys_group.add_command(keys_widgets)
