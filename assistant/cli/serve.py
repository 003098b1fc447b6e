"""``mentorly serve``: the web app (from the composition root's wiring) under uvicorn, with the
models warmed up on a background thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

import click

from assistant.cli.main import _runtime, cli, wiring
from assistant.errors import MentorlyError

log = logging.getLogger(__name__)


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
    app = (wiring().create_app or create_app)(runtime)
    threading.Thread(target=_warm_up, args=(runtime,), daemon=True, name="warm-up").start()
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    click.echo(f"Mentorly is starting: open http://{shown}:{port}/ui (API docs at /docs)")
    # uvicorn's own lines go through the handler configure_logging installed (same format);
    # the access line is RequestIds's, which carries the request id
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False,
                log_level=runtime.settings.log_level.lower())


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
