"""The ``mentorly`` console script (``[project.scripts]``) and ``python -m mentorly_app``.

Imports every command module of ``assistant.cli`` (each adds its commands to the group), hands
the group the built-in plugins and the web app's factory, then lets plugins add their commands.
"""

from __future__ import annotations

from typing import Any

from assistant.cli import audit, chat, config, db, keys, lti, mcp, models, serve, tools, usage, widget
from assistant.cli.main import Wiring, add_plugin_commands, cli, wire
from mentorly_app.wiring import BUILTIN_PLUGINS

COMMAND_MODULES = (audit, chat, config, db, keys, lti, mcp, models, serve, tools, usage, widget)


def _create_app(runtime: Any) -> Any:
    from mentorly_app.web import create_app  # FastAPI and Gradio only when serving

    return create_app(runtime)


wire(Wiring(builtin_plugins=BUILTIN_PLUGINS, create_app=_create_app))


def main() -> None:
    add_plugin_commands()
    cli(prog_name="mentorly")


__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
