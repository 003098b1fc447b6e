"""The widget in a real browser: Debian's headless Chromium driven by Playwright (no browser
download), a Mentorly server on one port and host pages served from other origins (ports).

The server's database is incidental here (``module_db_url_incidental``): SQLite, and PostgreSQL
as well in the whole-suite PostgreSQL mode (``make test-postgresql``)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from assistant.admission import TurnGate
from assistant.config import QuotaSettings
from assistant.llm.fake import FakeBackend
from assistant.messages import say
from assistant.quotas import Quotas
from assistant.security.widget_tokens import sign_token
from assistant.storage import Conversation, User
from assistant.storage.usage import UsageRecord
from tests.conftest import REPO_ROOT, new_database_url
from tests.support.api_tools import png
from tests.support.chromium import chromium, needs_chromium
from tests.support.live_api import LiveServer, free_port, make_runtime, serve

pytestmark = needs_chromium
TENANT = "school"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class HostSite:
    """A static site on its own port: another origin than the Mentorly server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_Quiet, directory=str(root))
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def page(self, name: str, api: str, key: str, token: str | None, lang: str = "en") -> str:
        token_attr = f' data-token="{token}"' if token else ""
        (self.root / name).write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Course</title></head>"
            "<body><h1>Algebra I · Week 3</h1><p>Course notes for the learner.</p>"
            f'<script src="{api}/widget.js" data-key="{key}"{token_attr} data-lang="{lang}" '
            'data-title="Course helper" async></script></body></html>', encoding="utf-8")
        return f"{self.origin}/{name}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class World:
    def __init__(self, server: LiveServer, app: Any, backend: FakeBackend, host: HostSite, foreign: HostSite,
                 key: str, secret: str) -> None:
        self.server, self.app, self.backend = server, app, backend
        self.host, self.foreign, self.key, self.secret = host, foreign, key, secret
        self.runtime = app.state.runtime

    def token(self, user: str = "learner-1", ttl: int = 600, **kw: Any) -> str:
        return sign_token(self.secret, tenant=TENANT, user=user, ttl_s=ttl, **kw)

    def count(self, model: Any, *where: Any) -> int:
        with self.runtime.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_db_url_incidental: str) -> Iterator[World]:
    backend = FakeBackend()
    runtime = make_runtime(tmp_path_factory.mktemp("widget-browser"), backend=backend, tools=True,
                           database_url=module_db_url_incidental)
    server, app = serve(runtime)
    host = HostSite(tmp_path_factory.mktemp("host-site"))
    foreign = HostSite(tmp_path_factory.mktemp("foreign-site"))
    info, secret = app.state.widget_keys.create(TENANT, [host.origin])
    yield World(server, app, backend, host, foreign, info.key, secret)
    host.stop()
    foreign.stop()
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()


def open_widget(page: Any, url: str) -> None:
    page.goto(url)
    launcher = page.locator("button.mw-launcher")
    launcher.click()
    page.locator(".mw-panel").wait_for(state="visible")


def ask(page: Any, text: str) -> None:
    box = page.locator("textarea.mw-input")
    box.fill(text)
    box.press("Enter")


def test_widget_chats_streams_and_classifies_an_image(world: World, page: Any, tmp_path: Path) -> None:
    url = world.host.page("course.html", world.server.url, world.key, world.token(name="Ann", course="alg-1"))
    open_widget(page, url)
    page.get_by_text("Hello, Ann!").wait_for()
    assert page.locator(".mw-panel").get_attribute("role") == "dialog"
    assert page.locator("button.mw-launcher").get_attribute("aria-expanded") == "true"

    world.backend.add("", "Fractions are parts of a whole.")  # the plan (no tool), then the answer
    ask(page, "What are fractions?")
    answer = page.locator(".mw-assistant[data-done='1'] .mw-body").last
    answer.wait_for(timeout=60_000)
    assert answer.text_content() == "Fractions are parts of a whole."

    page.locator("input.mw-file").set_input_files(
        files=[{"name": "leaf.png", "mimeType": "image/png", "buffer": png((200, 20, 20), (80, 60))}])
    page.get_by_text("Image attached: leaf.png").wait_for()
    world.backend.add({"tool_calls": [{"name": "describe_image", "arguments": {}}]}, "It is a red picture [1].")
    ask(page, "What is in this picture?")
    step = page.locator(".mw-step-ok").last
    step.wait_for(timeout=60_000)
    assert "80×60 mostly red image" in step.text_content()
    assert "Using tool: describe_image" in page.locator(".mw-step").last.text_content()
    page.locator(".mw-assistant[data-done='1']").nth(1).wait_for()
    assert page.locator(".mw-sources a").last.get_attribute("href") == "https://example.org/colours"
    page.screenshot(path=str(tmp_path / "widget-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(tmp_path / "widget-phone.png"))
    assert (tmp_path / "widget-desktop.png").stat().st_size > 5000
    panel = page.locator(".mw-panel").bounding_box()
    assert panel is not None and panel["width"] <= 390 and panel["x"] >= 0  # fits a phone

    page.keyboard.press("Escape")  # closes and gives focus back to the launcher
    assert page.locator(".mw-panel").is_hidden()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "mw-launcher"

    with world.runtime.db.session() as s:  # the learner is in Mentorly's users table
        learner = s.scalar(select(User).where(User.tenant_id == TENANT, User.external_id == "learner-1"))
        assert learner is not None and learner.display_name == "Ann"
        assert s.scalar(select(func.count()).select_from(Conversation)
                        .where(Conversation.user_id == learner.id)) == 1  # both turns: one conversation
    rows = world.count(UsageRecord, UsageRecord.key == world.key, UsageRecord.user == "learner-1")
    assert rows == 2
    assert world.count(UsageRecord, UsageRecord.tool == "describe_image", UsageRecord.surface == "widget") == 1
    assert page.errors == []


def test_html_in_a_message_and_in_an_answer_is_inert(world: World, page: Any) -> None:
    url = world.host.page("xss.html", world.server.url, world.key, world.token(user="learner-x"))
    open_widget(page, url)
    world.backend.add("", "<img src=x onerror=\"window.__pwned='answer'\"><b>bold</b><script>window.__pwned='s'</script>")
    ask(page, "<img src=x onerror=\"window.__pwned='message'\">hi")
    answer = page.locator(".mw-assistant[data-done='1'] .mw-body").last
    answer.wait_for(timeout=60_000)
    assert "<b>bold</b>" in answer.text_content()
    assert page.locator(".mw-log img, .mw-log b, .mw-log script").count() == 0
    assert "<img src=x" in page.locator(".mw-user .mw-body").last.text_content()
    assert page.evaluate("window.__pwned") is None


def test_a_page_on_a_foreign_origin_is_refused(world: World, page: Any) -> None:
    before = world.count(Conversation)
    url = world.foreign.page("stolen.html", world.server.url, world.key, world.token())
    open_widget(page, url)
    refusal = page.locator(".mw-error")
    refusal.wait_for()
    assert "cannot be used here" in refusal.text_content() and "not allowed" in refusal.text_content()
    assert page.locator("button.mw-send").is_disabled()
    assert world.count(Conversation) == before


def test_an_expired_or_forged_token_is_refused(world: World, page: Any) -> None:
    expired = sign_token(world.secret, tenant=TENANT, user="learner-1", ttl_s=60, now=time.time() - 3600)
    open_widget(page, world.host.page("expired.html", world.server.url, world.key, expired))
    page.locator(".mw-error").wait_for()
    assert "expired" in page.locator(".mw-error").text_content()
    forged = sign_token("wsk_" + "x" * 43, tenant=TENANT, user="teacher")
    open_widget(page, world.host.page("forged.html", world.server.url, world.key, forged))
    page.locator(".mw-error").wait_for()
    assert "signature" in page.locator(".mw-error").text_content()


def test_quota_exhausted_mid_conversation_shows_a_friendly_message(world: World, page: Any) -> None:
    app = world.app
    saved = app.state.quotas
    app.state.quotas = Quotas(QuotaSettings(tokens_per_day_per_user=1), app.state.meter)
    try:
        url = world.host.page("quota.html", world.server.url, world.key, world.token(user="learner-q"), lang="zh")
        open_widget(page, url)
        world.backend.add("", "第一个回答。")
        ask(page, "第一个问题")
        page.locator(".mw-assistant[data-done='1']").wait_for(timeout=60_000)
        ask(page, "第二个问题")
        notice = page.locator(".mw-quota")
        notice.wait_for()
        assert "使用上限" in notice.text_content()
        assert page.locator(".mw-assistant").count() == 1  # the refused turn left no bubble
    finally:
        app.state.quotas = saved
    assert world.count(UsageRecord, UsageRecord.user == "learner-q") == 1  # once, not twice, not lost
    with world.runtime.db.session() as s:
        user = s.scalar(select(User).where(User.external_id == "learner-q"))
        assert user is not None
        conv = s.scalar(select(Conversation).where(Conversation.user_id == user.id))
        assert conv is not None and len(conv.messages) == 2  # the first turn only


def test_a_full_class_sees_its_place_in_line_then_the_answer(world: World, page: Any) -> None:
    runtime = world.runtime
    saved = runtime._turn_gate
    gate = runtime._turn_gate = TurnGate(active=1, queue=1)
    try:
        url = world.host.page("line.html", world.server.url, world.key, world.token(user="learner-l"))
        open_widget(page, url)
        held = gate.admit()  # another learner's turn holds the only place
        world.backend.add("", "Your answer, after the line.")
        ask(page, "A question while the class is busy")
        waiting = page.locator(".mw-assistant[data-queued='1']")
        waiting.wait_for(timeout=20_000)
        assert "Your turn is next" in waiting.text_content()
        assert gate.state().waiting == 1
        held.release()
        done = page.locator(".mw-assistant[data-done='1']").last
        done.wait_for(timeout=60_000)
        assert "Your answer, after the line." in done.text_content()
        assert "Your turn is next" not in done.text_content()
        assert page.errors == []
    finally:
        runtime._turn_gate = saved
    assert gate.state().running == 0 and gate.state().waiting == 0


def test_a_full_line_says_when_to_try_again_in_chinese(world: World, page: Any) -> None:
    runtime = world.runtime
    saved = runtime._turn_gate
    gate = runtime._turn_gate = TurnGate(active=1, queue=1)
    try:
        url = world.host.page("busy.html", world.server.url, world.key, world.token(user="learner-b"),
                              lang="zh")
        open_widget(page, url)
        held = [gate.admit(), gate.admit()]  # one place running, the one place in line taken
        ask(page, "现在可以回答吗？")
        notice = page.locator(".mw-busy")
        notice.wait_for(timeout=20_000)
        assert re.search(r"请在 \d+ 秒后再试", notice.text_content())
        assert page.locator(".mw-assistant").count() == 0  # the refused turn left no bubble
        for ticket in held:
            ticket.release()
    finally:
        runtime._turn_gate = saved


def test_the_demo_page_embeds_the_widget(world: World, page: Any) -> None:
    info, _secret = world.app.state.widget_keys.create(TENANT, [world.server.url], anonymous=True)
    page.goto(f"{world.server.url}/widget-demo?key={info.key}&lang=zh")
    page.locator("button.mw-launcher").click()
    page.get_by_text("你好！今天想学点什么？").wait_for()
    assert page.locator(".mw-title").text_content() == "Mentorly"
    assert page.locator("button.mw-attach").get_attribute("aria-label") == "添加图片"


def test_the_learners_history_follows_them_to_the_next_page(world: World, page: Any) -> None:
    token = world.token(user="learner-h", name="Hu")
    open_widget(page, world.host.page("week3.html", world.server.url, world.key, token))
    world.backend.add("", "Start with the unit circle.")
    ask(page, "What should I revise?")
    page.locator(".mw-assistant[data-done='1']").wait_for(timeout=60_000)
    open_widget(page, world.host.page("week4.html", world.server.url, world.key, token))
    page.locator(".mw-history").nth(1).wait_for()
    assert page.locator(".mw-history .mw-body").all_text_contents() == \
        ["What should I revise?", "Start with the unit circle."]
    world.backend.add("", "Then practise radians.")
    ask(page, "And then?")
    page.locator(".mw-assistant[data-done='1']").wait_for(timeout=60_000)
    with world.runtime.db.session() as s:
        user = s.scalar(select(User).where(User.external_id == "learner-h"))
        assert user is not None
        assert s.scalar(select(func.count()).select_from(Conversation)
                        .where(Conversation.user_id == user.id)) == 1  # the same conversation continued


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory,
                module_db_backend_incidental: str) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server as ``make serve`` leaves it: the knowledge plugin with the demo handbook loaded
    (by what ``mentorly models prepare`` runs); the LLM is the scripted fake, as above. Yields
    the server and the environment of its ``mentorly`` commands (its home and database)."""
    from assistant.config import load_settings
    from assistant.runtime import build_runtime
    from tools.knowledge_search.demo import load_demo

    home = tmp_path_factory.mktemp("widget-demo")
    database_url = new_database_url(module_db_backend_incidental, home)  # SQLite: the default file under home
    runtime = build_runtime(load_settings(home=home, database_url=database_url, plugins=["tools.knowledge_search"],
                                          llm={"backend": "fake"}), backend=FakeBackend())
    assert "ready for tenant" in load_demo(runtime.settings)
    server, _app = serve(runtime)
    yield server, {"MENTORLY_HOME": str(home), "MENTORLY_DATABASE_URL": database_url}
    server.stop()


def test_the_demo_page_steps_work_as_written(demo_server: tuple[LiveServer, dict[str, str]], page: Any) -> None:
    """Issue #13 item 11d: run the page's own command, open the page with its key, ask its own
    question, and get the demo handbook quoted and cited (not "I could not find anything")."""
    server, server_env = demo_server
    page.goto(f"{server.url}/widget-demo")
    command = shlex.split(page.locator("#command").text_content())
    assert command[0] == "mentorly" and "--tenant" in command
    env = {**os.environ, **server_env}  # the server's database
    created = subprocess.run([sys.executable, "-m", "mentorly_app", *command[1:]], env=env,
                             capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert created.returncode == 0, created.stdout + created.stderr
    key = re.search(r"^key:\s+(pk_\w+)$", created.stdout, re.M)
    assert key is not None, created.stdout
    question = page.locator("q").first.text_content()
    page.goto(f"{server.url}/widget-demo?key={key.group(1)}")
    page.locator("button.mw-launcher").click()
    page.locator(".mw-panel").wait_for(state="visible")
    ask(page, question)
    answer = page.locator(".mw-assistant[data-done='1']").last
    answer.wait_for(timeout=120_000)
    text = answer.locator(".mw-body").text_content()
    assert say("no_passages", "en") not in text and "attend" in text.lower(), text
    sources = page.locator(".mw-sources li").all_text_contents()
    assert any("CS101" in s and "Handbook" in s for s in sources), sources
    assert page.errors == []
