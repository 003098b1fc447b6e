"""``mentorly usage``: metered use for a period, as a table, JSON or CSV for billing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from assistant.cli.main import _database, cli
from assistant.metering import CSV_FIELDS, Meter, parse_time, to_csv


@cli.command("usage")
@click.option("--from", "from_", default=None, help="ISO date/time, UTC (default: 30 days ago).")
@click.option("--to", default=None, help="ISO date/time, exclusive (default: now).")
@click.option("--group-by", type=click.Choice(["tenant", "user", "tool", "course"]), default="tenant",
              show_default=True)
@click.option("--tenant", default=None, help="Only this tenant.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for billing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def usage_command(ctx: click.Context, from_: str | None, to: str | None, group_by: str, tenant: str | None,
                  as_csv: bool, as_json: bool) -> None:
    """Metered use (tokens, tool calls, image megapixels, embedded tokens, compute time, LTI
    launches); by course: per LTI course collection ("" for use outside a course)."""
    start = parse_time(from_, "--from") or datetime.now(UTC) - timedelta(days=30)
    end = parse_time(to, "--to")
    rows = Meter(_database(ctx)).report(start=start, end=end, group_by=group_by, tenant=tenant)
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
