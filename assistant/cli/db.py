"""``mentorly db upgrade`` and ``mentorly db current``: the database schema's migrations.

Both open the database with a bare engine, never through ``Database`` (which refuses an
outdated schema): they are how an operator finds and fixes one.
"""

from __future__ import annotations

import click
from sqlalchemy.exc import OperationalError

from assistant.cli.main import _settings, cli
from assistant.errors import ConfigError
from assistant.storage import schema


@cli.group("db")
def db_group() -> None:
    """The database schema: see where it stands, upgrade it (back it up first)."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply the migrations this version of Mentorly needs (back the database up first)."""
    settings = _settings(ctx)
    settings.ensure_dirs()
    result = schema.upgrade(settings.db_url, progress=lambda line: click.echo(f"  applied {line}"))
    before = result.before or schema.BEFORE_MIGRATIONS
    if result.applied:
        click.echo(f"Upgraded the database schema: {before} -> {result.after}")
    else:
        click.echo(f"The database schema is up to date ({result.after}).")


@db_group.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the database's schema revision and this version's; exit status 1 when behind."""
    settings = _settings(ctx)
    settings.ensure_dirs()
    engine = schema.open_engine(settings.db_url)
    try:
        state = schema.schema_state(engine)
    except OperationalError as exc:
        raise ConfigError(f"cannot open database {engine.url.render_as_string()}: {exc.orig}") \
            from exc
    finally:
        engine.dispose()
    click.echo(f"current: {state.shown_current}")
    click.echo(f"head:    {state.head}")
    click.echo(state.reason)
    if not state.is_current:
        ctx.exit(1)
