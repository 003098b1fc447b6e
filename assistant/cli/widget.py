"""Widget keys on the command line: ``keys create --widget`` and ``keys revoke pk_…`` call
``create_widget_key``/``revoke_widget_key``; ``keys_widgets`` is ``mentorly keys widgets``
(``assistant.cli.keys`` adds it to its group)."""

from __future__ import annotations

import json

import click

from assistant import audit
from assistant.cli.main import _database
from assistant.errors import InvalidInput
from assistant.security.widget_tokens import WidgetKeys


def create_widget_key(ctx: click.Context, tenant: str, origins: str | None, anonymous: bool, name: str,
                      as_json: bool) -> None:
    """Called by ``keys create --widget``: prints the pk_ key and the signing secret once."""
    if not origins:
        raise InvalidInput("a widget key needs --origins https://site.example[,https://other.example]")
    db = _database(ctx)
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
    db = _database(ctx)
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
    found = WidgetKeys(_database(ctx)).list(tenant)
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
