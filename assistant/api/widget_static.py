"""The embeddable widget's static files (``/widget.js``, ``/widget.css``, ``/widget-demo``),
served from a folder the composition root names (``mentorly_app`` passes ``ui/widget``): the
core does not know where the UI's files live."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from assistant.errors import ConfigError

MEDIA_TYPES = {"widget.js": "application/javascript; charset=utf-8", "widget.css": "text/css; charset=utf-8",
               "demo.html": "text/html; charset=utf-8"}


def static_router(folder: Path) -> APIRouter:
    """The three static routes, reading their files from ``folder``."""
    router = APIRouter(tags=["widget"])

    def static(name: str) -> FileResponse:
        path = folder / name
        if not path.is_file():
            raise ConfigError(f"the widget file {path} is missing from the installation")
        headers = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
        return FileResponse(path, media_type=MEDIA_TYPES[name], headers=headers)

    @router.get("/widget.js", include_in_schema=False)
    def widget_js() -> FileResponse:
        return static("widget.js")

    @router.get("/widget.css", include_in_schema=False)
    def widget_css() -> FileResponse:
        return static("widget.css")

    @router.get("/widget-demo", include_in_schema=False)
    def widget_demo(request: Request) -> Response:
        """The demo page, naming the tenant the demo handbook is loaded into (``default_tenant``),
        so that the key its set-up command creates answers from the demo documents."""
        page = Path(static("demo.html").path).read_text(encoding="utf-8")
        tenant = html.escape(request.app.state.runtime.settings.default_tenant)
        page = page.replace('<span id="tenant">default</span>', f'<span id="tenant">{tenant}</span>')
        return Response(page, media_type=MEDIA_TYPES["demo.html"], headers={"Cache-Control": "no-cache"})

    return router
