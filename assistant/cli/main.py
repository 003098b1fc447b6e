"""The ``mentorly`` group and what its commands share: the settings and runtime of one
invocation, an uploaded ``--image``, the shared database, and the wiring the composition root
hands in (``wire``). Every ``MentorlyError`` becomes a one-line message on stderr and exit
status 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.config import Settings, load_settings
from assistant.errors import MentorlyError
from assistant.logs import configure_logging

if TYPE_CHECKING:
    from assistant.runtime import Runtime
    from assistant.storage import Database

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class Wiring:
    """What the composition root (``mentorly_app``) hands the command line, so that the core
    names neither the built-in tools nor the UI: the built-in plugin modules, and the factory
    of the web app ``mentorly serve`` runs (``None``: the core app, without the UI)."""

    builtin_plugins: tuple[str, ...] = ()
    create_app: Callable[[Runtime], Any] | None = None


_wiring = Wiring()


def wire(wiring: Wiring) -> None:
    """Called once by the composition root, before the group runs."""
    global _wiring
    _wiring = wiring


def wiring() -> Wiring:
    return _wiring


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
        configure_logging(obj["settings"])  # this process's log lines: level and format
    return obj["settings"]


def _runtime(ctx: click.Context) -> Any:
    obj = ctx.ensure_object(dict)
    if "runtime" not in obj:
        from assistant.runtime import build_runtime

        obj["runtime"] = build_runtime(_settings(ctx), builtins=_wiring.builtin_plugins)
    return obj["runtime"]


def _upload(runtime: Any, image: Path | None, tenant: str) -> list[Any]:
    if image is None:
        return []
    return [runtime.uploads.save_path(image, tenant)]


def _database(ctx: click.Context) -> Database:
    from assistant.storage import shared_database

    settings = _settings(ctx)
    settings.ensure_dirs()
    return shared_database(settings.db_url, auto_upgrade=settings.database_auto_upgrade)


@click.group(cls=MentorlyGroup)
@click.version_option(package_name="mentorly")
def cli() -> None:
    """Mentorly: a self-hosted learning assistant with tools, offline on a CPU."""


def add_plugin_commands() -> None:
    """Let plugins add commands; a broken plugin must not break the whole CLI."""
    from assistant.plugins import make_plugin_manager

    try:
        pm = make_plugin_manager(load_settings().plugins, builtins=_wiring.builtin_plugins)
    except MentorlyError as exc:
        click.secho(f"Warning: plugins not loaded: {exc.message}", fg="yellow", err=True)
        return
    pm.hook.register_commands(cli=cli)
