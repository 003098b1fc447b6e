"""A Mentorly app served by uvicorn on 127.0.0.1 in a background thread, for client tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.runtime import Runtime, build_runtime
from mentorly_app.web import create_app
from tests.support.ports import free_port


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="live-api")

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def make_runtime(home: Path, *, backend: Any = None, tools: bool = False,
                 configure: Callable[[Any], Any] | None = None, **settings: Any) -> Runtime:
    """A runtime over a fresh home. ``tools=True`` registers the test tools and uses native
    tool calling (the scripted LLM picks the tool; the router only guards it)."""
    from tests.support.api_tools import add_all

    if tools:
        settings.setdefault("llm", {"backend": "fake", "tool_calling": "native"})
    else:
        settings.setdefault("llm", {"backend": "fake"})
    return build_runtime(load_settings(home=home, plugins=[], **settings),
                         backend=backend or FakeBackend(),
                         configure=configure or (add_all if tools else None))


def serve(runtime: Runtime) -> tuple[LiveServer, Any]:
    app = create_app(runtime, with_ui=False)
    return LiveServer(app).start(), app


def assert_error(r: Any, status: int, error_type: str, contains: str = "") -> None:
    """``r`` (an httpx response) is an error in the API's one shape, of this status and type."""
    assert r.status_code == status, r.text
    body = r.json()
    extra = {"retry_after_s"} if status == 429 else set()  # a 429 says when to retry
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"} | extra, body
    assert body["error"]["type"] == error_type, body
    assert contains.lower() in body["error"]["message"].lower(), body
