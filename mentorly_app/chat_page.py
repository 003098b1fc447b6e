"""``python -m mentorly_app.chat_page``: the chat page alone (no API), on the configured host and
port, with the built-in plugins."""

from __future__ import annotations

from assistant.config import load_settings
from assistant.logs import configure_logging
from mentorly_app.wiring import build_runtime


def main() -> None:
    from ui.app import launch_ui

    settings = load_settings()
    configure_logging(settings)
    runtime = build_runtime(settings)
    server = runtime.settings.server
    launch_ui(runtime, server_name=server.host, server_port=server.port)


if __name__ == "__main__":
    main()
