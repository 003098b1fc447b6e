"""``mentorly keys create --widget``, ``mentorly keys widgets``, ``mentorly usage`` and
``mentorly audit``, attached to the CLI by ``attach(cli)`` in ``assistant/cli.py``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from assistant import audit
from assistant.errors import InvalidInput
from assistant.metering import CSV_FIELDS, Meter, parse_time, to_csv
from assistant.security.widget_tokens import WidgetKeys
from assistant.storage import Database


def _db(ctx: click.Context) -> Database:
    from assistant.cli import _settings
    from assistant.storage import shared_database

    settings = _settings(ctx)
    settings.ensure_dirs()
    return shared_database(settings.db_url)


def create_widget_key(ctx: click.Context, tenant: str, origins: str | None, anonymous: bool, name: str,
                      as_json: bool) -> None:
    """Called by ``keys create --widget``: prints the pk_ key and the signing secret once."""
    if not origins:
        raise InvalidInput("a widget key needs --origins https://site.example[,https://other.example]")
    db = _db(ctx)
    info, secret = WidgetKeys(db).create(tenant, origins, anonymous=anonymous, name=name)
    audit.record(db, actor=audit.cli_actor(), action=audit.WIDGET_KEY_CREATED, target=info.key,
                 tenant=info.tenant, details={"origins": info.origins, "anonymous": info.anonymous})
    if as_json:
        click.echo(json.dumps({"key": info.key, "secret": secret, "id": info.id, "tenant": info.tenant,
                               "origins": info.origins, "anonymous": info.anonymous, "name": info.name}))
        return
    click.echo(f"key:    {info.key}")
    click.echo(f"secret: {secret}")
    click.secho(f"Widget key for tenant {info.tenant!r}, origins {', '.join(info.origins)}"
                f"{', anonymous visitors allowed' if info.anonymous else ''}. The key goes in the page "
                "(data-key); the secret stays on the host's backend to sign learner tokens. "
                "The secret is not shown again.", fg="yellow", err=True)


def revoke_widget_key(ctx: click.Context, ident: str) -> None:
    db = _db(ctx)
    info = WidgetKeys(db).revoke(ident)
    audit.record(db, actor=audit.cli_actor(), action=audit.WIDGET_KEY_REVOKED, target=info.key,
                 tenant=info.tenant)
    click.echo(f"Revoked widget key {info.key} (tenant {info.tenant}).")


@click.command("widgets")
@click.option("--tenant", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def keys_widgets(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List widget keys (pk_ key, tenant, origins, state); never the secrets."""
    found = WidgetKeys(_db(ctx)).list(tenant)
    if as_json:
        click.echo(json.dumps([{"key": k.key, "tenant": k.tenant, "origins": k.origins,
                                "anonymous": k.anonymous, "revoked": not k.active} for k in found]))
        return
    if not found:
        click.echo("No widget keys (create one with "
                   "`mentorly keys create --widget --tenant T --origins URL`).")
    for k in found:
        click.echo(f"{k.key}  {k.tenant}  {','.join(k.origins)}  {'anonymous ' if k.anonymous else ''}"
                   f"{'active' if k.active else 'revoked'}")


@click.command("usage")
@click.option("--from", "from_", default=None, help="ISO date/time, UTC (default: 30 days ago).")
@click.option("--to", default=None, help="ISO date/time, exclusive (default: now).")
@click.option("--group-by", type=click.Choice(["tenant", "user", "tool"]), default="tenant",
              show_default=True)
@click.option("--tenant", default=None, help="Only this tenant.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for billing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def usage_command(ctx: click.Context, from_: str | None, to: str | None, group_by: str, tenant: str | None,
                  as_csv: bool, as_json: bool) -> None:
    """Metered use (tokens, tool calls, image megapixels, embedded tokens, compute time)."""
    start = parse_time(from_, "--from") or datetime.now(UTC) - timedelta(days=30)
    end = parse_time(to, "--to")
    rows = Meter(_db(ctx)).report(start=start, end=end, group_by=group_by, tenant=tenant)
    if as_csv:
        click.echo(to_csv(rows, group_by), nl=False)
        return
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows]))
        return
    if not rows:
        click.echo("No usage in this period.")
        return
    header = [group_by, *CSV_FIELDS[1:]]
    table = [[str(v) for v in row.__dict__.values()] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


@click.command("audit")
@click.option("--tenant", default=None)
@click.option("--action", default=None, help="e.g. key.created, document.deleted")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit_command(ctx: click.Context, tenant: str | None, action: str | None, limit: int,
                  as_json: bool) -> None:
    """The audit log of administrative actions, newest first."""
    found = audit.entries(_db(ctx), tenant=tenant, action=action, limit=limit)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in found], ensure_ascii=False))
        return
    if not found:
        click.echo("The audit log is empty.")
    for e in found:
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.action}  {e.target}  {e.tenant}")


def attach(cli: click.Group) -> None:
    from assistant.cli_api import keys_group

    keys_group.add_command(keys_widgets)
    cli.add_command(usage_command)
    cli.add_command(audit_command)
