"""Alembic's environment: runs the version scripts on the connection the caller hands in.

``assistant.storage.schema`` opens the connection, takes the schema lock and begins the
transaction; this script only configures the migration context on it. ``render_as_batch`` on
SQLite turns the ALTERs SQLite lacks into a copy of the table. ``on_version_apply`` (optional)
reports each applied step (``mentorly db upgrade`` prints one line per migration).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        render_as_batch=connection.dialect.name == "sqlite",
        on_version_apply=config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # ``--sql``: the SQL text, for a DBA to review
    _url = config.get_main_option("sqlalchemy.url") or ""
    context.configure(url=_url, literal_binds=True, render_as_batch=_url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    _run(config.attributes["connection"])
else:  # a developer's run with ``sqlalchemy.url`` set, outside Mentorly's code
    _url = config.get_main_option("sqlalchemy.url") or ""
    if not _url:
        raise RuntimeError("no connection: use `mentorly db upgrade`, or put one in "
                           "config.attributes['connection']")
    _engine = create_engine(_url)
    try:
        with _engine.begin() as _conn:
            _run(_conn)
    finally:
        _engine.dispose()
