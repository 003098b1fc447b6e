"""``mentorly chat`` (the answer streams, tool steps shown) and ``mentorly route`` (the router's
decision alone)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from assistant.cli.main import _runtime, _upload, cli
from assistant.events import Done, ErrorEvent, StepFinished, StepStarted, TextDelta, to_dict


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

