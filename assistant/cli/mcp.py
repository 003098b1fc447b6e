"""``mentorly mcp``: the tools over MCP on stdin/stdout, for desktop MCP clients."""

from __future__ import annotations

import sys

import click

from assistant.cli.main import _runtime, cli


@cli.command("mcp")
@click.option("--tenant", default=None, help="Tenant the tools act for (default: settings.default_tenant).")
@click.pass_context
def mcp_command(ctx: click.Context, tenant: str | None) -> None:
    """Serve the tools over MCP on stdin/stdout (for desktop MCP clients)."""
    import anyio

    from assistant.mcp_server import serve_stdio

    runtime = _runtime(ctx)
    tenant = tenant or runtime.settings.default_tenant
    click.echo(f"Mentorly MCP server on stdio (tenant {tenant!r}, "
               f"{len(runtime.registry)} tools)", err=True)
    sys.stdout.flush()
    anyio.run(serve_stdio, runtime, tenant)
