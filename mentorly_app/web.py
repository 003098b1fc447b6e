"""The web app as ``mentorly serve`` runs it: the core app (API, MCP, widget endpoints) with the
widget's static files and the chat UI mounted at ``/ui``."""

from __future__ import annotations

from fastapi import FastAPI

from assistant.runtime import Runtime
from assistant.server import create_app as create_core_app
from mentorly_app.wiring import LTI_PAGES, WIDGET_STATIC


def create_app(runtime: Runtime, *, with_ui: bool = True) -> FastAPI:
    """``with_ui=False`` leaves out the Gradio page (tests of the API, quicker to start)."""
    app = create_core_app(runtime, widget_static=WIDGET_STATIC, lti_pages=LTI_PAGES)
    if with_ui:
        from ui.app import mount_ui

        app = mount_ui(app, runtime, path="/ui")
    return app
