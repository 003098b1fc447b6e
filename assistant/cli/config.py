"""``mentorly config show`` (the effective settings, secrets masked) and ``mentorly plugins``
(the loaded plugins and their tools)."""

from __future__ import annotations

import json

import click

from assistant.cli.main import _runtime, _settings, cli, wiring


@cli.group("config")
def config_group() -> None:
    """Inspect settings."""


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings (plugins' sections included), secrets masked."""
    from assistant.plugins import make_plugin_manager

    settings = _settings(ctx)
    pm = make_plugin_manager(settings.plugins, builtins=wiring().builtin_plugins)
    sections = [cls for found in pm.hook.settings_sections() for cls in found]
    click.echo(json.dumps(settings.masked(sections), indent=2, ensure_ascii=False))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List loaded plugins and the tools each registers."""
    runtime = _runtime(ctx)
    listing: dict[str, list[str]] = {}
    for name, _plugin in runtime.plugin_manager.list_name_plugin():
        listing[name] = [t.name for t in runtime.registry if t.plugin == name]
    if as_json:
        click.echo(json.dumps([{"name": k, "tools": v} for k, v in listing.items()]))
    else:
        for name, names in listing.items():
            click.echo(f"{name}: {', '.join(names) or '-'}")
