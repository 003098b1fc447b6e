"""The Gradio app as served: launched on loopback and driven with ``gradio_client``, and
mounted on FastAPI. Real agent, real upload store, scripted LLM."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from fastapi import FastAPI
from gradio_client import Client, handle_file

from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.runtime import build_runtime
from tests.test_ui_support import answer_text, broken_png, cat_png, make_runtime, steps
from ui.app import _relabel, build_ui, launch_ui, mount_ui, ui_options
from ui.i18n import STRINGS, examples, lang_from_accept_language, t


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, *, with_image_tool: bool) -> Iterator[tuple[str, Any]]:
    runtime, backend = make_runtime(home, with_image_tool=with_image_tool)
    demo = build_ui(runtime, language="en")
    _, url, _ = launch_ui(runtime, blocks=demo, prevent_thread_lock=True,
                          server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        yield url, backend
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """No tools: text turns are answered directly (no router to train)."""
    yield from _serve(tmp_path_factory.mktemp("ui-app-text"), with_image_tool=False)


@pytest.fixture(scope="module")
def served_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The image tool only; an attached image routes to it without the classifier."""
    yield from _serve(tmp_path_factory.mktemp("ui-app-image"), with_image_tool=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ui-app-files")
    return {"cat": cat_png(d), "broken": broken_png(d)}


def test_a_message_gets_a_streamed_answer_over_the_api(served) -> None:
    url, backend = served
    backend.add("Mitochondria are the powerhouse of the cell.")
    client = Client(url, verbose=False)
    job = client.submit({"text": "What do mitochondria do?", "files": []}, "en",
                        api_name="/chat")
    partials = [answer_text(out) for out in job]
    final = job.result()
    assert answer_text(final) == "Mitochondria are the powerhouse of the cell."
    assert len(partials) >= 3, partials  # streamed piece by piece
    assert all(b.startswith(a) for a, b in zip(partials, partials[1:], strict=False))
    assert partials[-1] == answer_text(final)
    client.close()


def test_an_uploaded_image_runs_the_tool_and_shows_provenance(served_image, files) -> None:
    url, backend = served_image
    backend.add("这张图片是 451×300，以红色为主。")
    client = Client(url, verbose=False)
    final = client.predict({"text": "这张图片里有什么？", "files": [handle_file(files["cat"])]},
                           "zh", api_name="/chat")
    (step,) = steps(final)
    assert step["metadata"]["title"] == "已使用工具：image_colours"
    assert step["metadata"]["status"] == "done"
    assert "451×300 pixels, mostly red" in step["content"]
    assert "模型： `pillow-mean-colour`" in step["content"] and "置信度" in step["content"]
    assert answer_text(final) == "这张图片是 451×300，以红色为主。"
    client.close()


def test_a_broken_image_is_answered_with_a_friendly_message(served_image, files) -> None:
    url, _ = served_image
    client = Client(url, verbose=False)
    final = client.predict({"text": "what is it?", "files": [handle_file(files["broken"])]},
                           "en", api_name="/chat")
    text = answer_text(final)
    assert text.startswith("I could not use the file **broken.png**:")
    assert "damaged or truncated" in text or "cannot be read" in text
    client.close()


class _Rendezvous(FakeBackend):
    """Holds the answer to "first" until the answer to "second" has been asked for: with one
    turn at a time for the whole page, "first" would wait out its 20 s and say so."""

    def __init__(self) -> None:
        super().__init__(script=[])
        self.first_started, self.second_started = threading.Event(), threading.Event()

    def stream(self, messages: list[Any], **kwargs: Any) -> Iterator[Any]:
        last = str(messages[-1].get("content"))
        if "second" in last:
            self.second_started.set()
        else:
            self.first_started.set()
        if "second" not in last and not self.second_started.wait(20):
            self.add("first waited alone")
        return super().stream(messages, **kwargs)


def test_two_learners_turns_run_at_the_same_time(tmp_path: Path) -> None:
    backend = _Rendezvous()
    settings = load_settings(home=tmp_path, plugins=[], llm={"backend": "fake"})
    runtime = build_runtime(settings, backend=backend)
    demo = build_ui(runtime, language="en")
    _, url, _ = launch_ui(runtime, blocks=demo, prevent_thread_lock=True,
                          server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        one, two = Client(url, verbose=False), Client(url, verbose=False)
        first = one.submit({"text": "first", "files": []}, "en", api_name="/chat")
        assert backend.first_started.wait(20)
        second = two.submit({"text": "second", "files": []}, "en", api_name="/chat")
        assert "You said: second" in answer_text(second.result(timeout=30))
        assert "You said: first" in answer_text(first.result(timeout=30))
        one.close()
        two.close()
    finally:
        demo.close()


def test_the_page_keeps_no_run_history_and_sends_no_analytics(served) -> None:
    import httpx

    url, _ = served
    config = httpx.get(f"{url}config", timeout=10).json()
    assert config["run_history"] is False
    assert config["analytics_enabled"] is False
    assert "runs" not in config["footer_links"]
    assert config["title"] == "Mentorly"
    names = [d.get("api_name") for d in config["dependencies"]]
    assert "chat" in names


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Any]]:
    """The UI mounted at /ui of a FastAPI app, served by uvicorn in a thread."""
    import threading

    import uvicorn

    runtime, backend = make_runtime(tmp_path_factory.mktemp("ui-mounted"))
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app = mount_ui(app, runtime, path="/ui")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(),
                                           log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}", runtime, backend
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_mounted_on_fastapi_under_ui(mounted) -> None:
    import httpx

    base, runtime, backend = mounted
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    page = httpx.get(f"{base}/ui/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    config = httpx.get(f"{base}/ui/config", timeout=10).json()
    assert config["run_history"] is False
    assert config["max_file_size"] == runtime.settings.uploads.max_bytes
    assert ui_options(runtime)["run_history"] is False

    backend.add("Mounted and answering.")
    client = Client(f"{base}/ui/", verbose=False)
    final = client.predict({"text": "Are you there?", "files": []}, "en", api_name="/chat")
    assert answer_text(final) == "Mounted and answering."
    client.close()


def test_every_string_exists_in_both_languages_with_the_same_placeholders() -> None:
    import string

    for key, texts in STRINGS.items():
        assert set(texts) == {"en", "zh"}, key
        assert texts["en"].strip() and texts["zh"].strip(), key
        fields = [{f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f}
                  for lang in ("en", "zh")]
        assert fields[0] == fields[1], key
    assert examples("zh") != examples("en")


def test_switching_language_relabels_the_page() -> None:
    header, radio, chatbot, textbox = _relabel("zh")
    assert t("title", "zh") in header["value"]
    assert radio["label"] == "语言"
    assert chatbot["placeholder"] == t("chatbot_placeholder", "zh")
    assert chatbot["examples"][0]["text"] == examples("zh")[0]
    assert textbox["placeholder"] == t("textbox_placeholder", "zh")
    assert _relabel("en")[1]["label"] == "Language"


def test_the_browser_language_picks_the_default() -> None:
    assert lang_from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert lang_from_accept_language("en-GB,en;q=0.9,zh;q=0.8") == "en"
    assert lang_from_accept_language("fr-FR,zh-TW;q=0.5") == "zh"
    assert lang_from_accept_language("en;q=0.2,zh;q=0.9") == "zh"
    assert lang_from_accept_language(None) == "en"


def test_build_ui_follows_the_browser_unless_a_language_is_given(tmp_path: Path) -> None:
    runtime, _ = make_runtime(tmp_path)
    fixed = build_ui(runtime, language="zh")
    auto = build_ui(runtime)
    radios = [b for b in fixed.blocks.values() if isinstance(b, gr.Radio)]
    assert radios and radios[0].value == "zh"

    def load_events(demo: gr.Blocks) -> int:
        return sum(1 for d in demo.fns.values()
                   if any(trigger[1] == "load" for trigger in d.targets))

    assert load_events(auto) == load_events(fixed) + 1
