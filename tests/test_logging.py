"""Logging set up from the settings (level, text or JSON lines) and request ids through API logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.api.request_ids import RequestIds
from assistant.config import load_settings
from assistant.errors import ConfigError
from assistant.logs import HANDLER_NAME, QUIET, configure_logging, request_id


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave the root logger as it was: these tests install Mentorly's handler."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_format_writes_one_object_per_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_LOG_FORMAT", "json")
    settings = load_settings(home=tmp_path)
    assert settings.log_format == "json"
    out = io.StringIO()
    configure_logging(settings, stream=out)
    log = logging.getLogger("assistant.test")
    log.info("hello %s", "world")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("it failed")
    first, second = _lines(out)  # a multi-line traceback is still one line of JSON
    assert first["level"] == "INFO" and first["logger"] == "assistant.test"
    assert first["message"] == "hello world" and "request_id" not in first
    assert str(first["time"]).endswith("+00:00") and "T" in str(first["time"])
    assert second["level"] == "ERROR" and "ValueError: boom" in str(second["exception"])


def test_text_format_has_time_level_and_logger(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging(load_settings(home=tmp_path), stream=out)
    logging.getLogger("assistant.test").warning("careful")
    line = out.getvalue().strip()
    assert line.endswith("WARNING assistant.test: careful")
    assert line[:4].isdigit() and line[4] == "-"  # starts with the date


def test_the_level_is_honoured_and_checked(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging(load_settings(home=tmp_path, log_level="warning"), fmt="json", stream=out)
    log = logging.getLogger("assistant.test")
    log.info("not shown")
    log.warning("shown")
    assert [r["message"] for r in _lines(out)] == ["shown"]
    with pytest.raises(ConfigError, match="log_level"):
        configure_logging(load_settings(home=tmp_path, log_level="LOUD"))


def test_configuring_again_replaces_the_handler_instead_of_adding_one(tmp_path: Path) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(load_settings(home=tmp_path), stream=first)
    configure_logging(load_settings(home=tmp_path), fmt="json", stream=second)
    mine = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    assert len(mine) == 1
    logging.getLogger("assistant.test").warning("once")
    assert first.getvalue() == "" and [r["message"] for r in _lines(second)] == ["once"]


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/work")
    def work() -> dict[str, str | None]:  # a sync route: runs in a worker thread
        logging.getLogger("assistant.test").info("working")
        return {"seen": request_id.get()}

    app.add_middleware(RequestIds)
    return app


def test_a_request_id_is_made_returned_and_in_the_request_s_log_lines() -> None:
    out = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=out)
    with TestClient(_app()) as client:
        r = client.get("/work")
    rid = r.headers["X-Request-ID"]
    assert len(rid) == 32 and r.json() == {"seen": rid}
    records = {str(rec["logger"]): rec for rec in _lines(out)}
    assert records["assistant.test"]["message"] == "working"
    assert records["assistant.test"]["request_id"] == rid
    access = records["assistant.api.access"]
    assert access["request_id"] == rid and str(access["message"]).startswith("GET /work 200 ")
    assert request_id.get() is None  # reset after the request


def test_a_caller_s_request_id_is_kept_unless_it_could_forge_log_lines() -> None:
    with TestClient(_app()) as client:
        kept = client.get("/work", headers={"X-Request-ID": "upstream-42.a:b"})
        forged = client.get("/work", headers={"X-Request-ID": "x\" level=ERROR fake"})
        long = client.get("/work", headers={"X-Request-ID": "a" * 129})
    assert kept.headers["X-Request-ID"] == "upstream-42.a:b" == kept.json()["seen"]
    for r in (forged, long):
        assert len(r.headers["X-Request-ID"]) == 32 and r.json()["seen"] == r.headers["X-Request-ID"]


def test_the_api_app_returns_request_ids_on_success_and_error(tmp_path: Path) -> None:
    from assistant.server import create_app
    from tests.support.live_api import make_runtime

    app = create_app(make_runtime(tmp_path))
    with TestClient(app) as client:
        ok = client.get("/healthz", headers={"X-Request-ID": "probe-1"})
        refused = client.get("/api/tools")  # no key: 401 in the API's error shape
    assert ok.status_code == 200 and ok.headers["X-Request-ID"] == "probe-1"
    assert refused.status_code == 401 and len(refused.headers["X-Request-ID"]) == 32


def test_a_tool_s_log_lines_carry_the_request_id_in_chat_and_direct_calls(tmp_path: Path) -> None:
    """The agent runs tools in a pool thread of their own (``ToolCaller.call``), a direct call
    in an anyio worker thread: the request's context, and so its id, reaches both."""
    from assistant import tool
    from assistant.llm.fake import FakeBackend
    from mentorly_app.web import create_app
    from tests.support.live_api import make_runtime

    @tool(examples=["Make some noise about this text"])
    def noisy(text: str) -> str:
        """Log a line, then return the text."""
        logging.getLogger("tests.noisy_tool").info("tool working on %s", text)
        return text

    backend = FakeBackend()
    runtime = make_runtime(tmp_path, backend=backend, tools=True,
                           configure=lambda registry: registry.add(noisy))
    app = create_app(runtime, with_ui=False)
    key, _ = app.state.keys.create("acme", "chat,tools")
    out = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=out)
    backend.add({"tool_calls": [{"name": "noisy", "arguments": {"text": "chat"}}]}, "Done.")
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {key}"}
        chat = client.post("/api/chat", json={"message": "Make some noise about this text"},
                           headers={**auth, "X-Request-ID": "chat-1"})
        direct = client.post("/api/tools/noisy", json={"arguments": {"text": "direct"}},
                             headers={**auth, "X-Request-ID": "direct-1"})
    assert chat.status_code == 200 and '"noisy"' in chat.text, chat.text
    assert direct.status_code == 200, direct.text
    lines = {str(r["message"]): r.get("request_id") for r in _lines(out)
             if r["logger"] == "tests.noisy_tool"}
    assert lines == {"tool working on chat": "chat-1", "tool working on direct": "direct-1"}
