"""``mentorly tools`` (the registered tools and their schemas) and ``mentorly tools call``
(one tool, run directly, without the LLM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from assistant.cli.main import _runtime, _upload, cli


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tools(ctx: click.Context, as_json: bool) -> None:
    """List the registered tools and their schemas."""
    if ctx.invoked_subcommand is not None:
        return
    registry = _runtime(ctx).registry
    described = [t.describe() for t in registry]
    if as_json:
        click.echo(json.dumps(described, ensure_ascii=False, indent=2))
        return
    if not described:
        click.echo("No tools registered (see `mentorly plugins`).")
    for d in described:
        params = ", ".join(d["parameters"].get("properties", {}))
        click.echo(f"{d['name']} {d['version']} [{d['plugin']}]: {d['description'].splitlines()[0]}")
        click.echo(f"    parameters: {params or '-'}")


def _parse_arg(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise click.BadParameter(f"{raw!r} is not key=value", param_hint="--arg")
    key, value = raw.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


@tools.command("call")
@click.argument("name")
@click.option("--arg", "args", multiple=True, help="key=value (value parsed as JSON if it can be)")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--tenant", default=None, help="Tenant the tool acts for (default: settings.default_tenant).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tools_call(ctx: click.Context, name: str, args: tuple[str, ...], image: Path | None,
               tenant: str | None, as_json: bool) -> None:
    """Run one tool directly, without the LLM."""
    from assistant.caller import Caller

    runtime = _runtime(ctx)
    tool = runtime.registry.get(name)
    arguments = dict(_parse_arg(a) for a in args)
    tenant = tenant or runtime.settings.default_tenant
    files = _upload(runtime, image, tenant)
    result = runtime.tool_calls.call(tool, arguments, Caller(tenant=tenant, user="cli", surface="cli"),
                                     files=files)
    out = {"tool": tool.name, "data": result.data, "summary": result.summary,
           "provenance": result.provenance(), "sources": [s.to_dict() for s in result.sources]}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
    else:
        click.echo(result.summary or json.dumps(result.data, ensure_ascii=False, indent=2, default=str))
