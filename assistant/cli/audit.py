"""``mentorly audit``: the audit log of administrative actions, newest first."""

from __future__ import annotations

import json

import click

from assistant import audit
from assistant.cli.main import _database, cli


@cli.command("audit")
@click.option("--tenant", default=None)
@click.option("--action", default=None, help="e.g. key.created, document.deleted")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit_command(ctx: click.Context, tenant: str | None, action: str | None, limit: int,
                  as_json: bool) -> None:
    """The audit log of administrative actions, newest first."""
    found = audit.entries(_database(ctx), tenant=tenant, action=action, limit=limit)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in found], ensure_ascii=False))
        return
    if not found:
        click.echo("The audit log is empty.")
    for e in found:
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.action}  {e.target}  {e.tenant}")
