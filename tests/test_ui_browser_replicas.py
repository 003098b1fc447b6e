"""The chat page in a real browser (Debian's headless Chromium, Playwright) behind a load
balancer without sticky sessions: two replicas on one database and one shared folder, and a
proxy that sends every request to the next replica, except an event's data stream, which
follows its ``queue/join`` (the one affinity Gradio's queue needs). A learner's second message
reaches the other replica and continues the conversation; "clear" and an example then start a
new one for the same page."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.runtime import Runtime, build_runtime
from tests.support.chromium import chromium, needs_chromium
from tests.support.live_api import LiveServer
from ui.app import build_ui, mount_ui

pytestmark = needs_chromium
_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}


class NamedReplica(FakeBackend):
    """Answers with its name and how many earlier chat messages the agent gave it."""

    def __init__(self, name: str) -> None:
        super().__init__(script=[])
        self.name = name
        self.lock = threading.Lock()

    def stream(self, messages: list[Any], **kwargs: Any) -> Iterator[Any]:
        earlier = sum(1 for m in messages[:-1] if m.get("role") in ("user", "assistant"))
        with self.lock:
            self.add(f"Replica {self.name} saw {earlier} earlier messages.")
        return super().stream(messages, **kwargs)


class NoStickyBalancer:
    """Round robin over the replicas for every request; ``queue/join`` takes turns on a
    counter of its own (so consecutive messages go to different replicas) and the event's
    ``queue/data`` stream goes to the replica that took the join."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self._any, self._joins = count(), count()
        self.joined: dict[str, str] = {}
        self.join_log: list[str] = []
        self.client = httpx.AsyncClient(timeout=None)
        self.app = Starlette(routes=[Route("/{path:path}", self.forward,
                                           methods=["GET", "POST", "PUT", "DELETE"])])

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        if path.endswith("/queue/join"):
            upstream = self.upstreams[next(self._joins) % len(self.upstreams)]
            self.joined[str(json.loads(body).get("session_hash"))] = upstream
            self.join_log.append(upstream)
        elif path.endswith("/queue/data"):
            upstream = self.joined[str(request.query_params.get("session_hash"))]
        else:
            upstream = self.upstreams[next(self._any) % len(self.upstreams)]
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        sent = self.client.build_request(request.method, upstream + path,
                                         params=request.query_params, headers=headers,
                                         content=body)
        answer = await self.client.send(sent, stream=True)
        return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                                 headers={k: v for k, v in answer.headers.items()
                                          if k.lower() not in _HOP},
                                 background=BackgroundTask(answer.aclose))


def _replica(home: Path, db_url: str, shared: Path, name: str) -> tuple[Runtime, NamedReplica]:
    settings = load_settings(home=home, database_url=db_url, shared_dir=shared, plugins=[],
                             llm={"backend": "fake"})
    backend = NamedReplica(name)
    return build_runtime(settings, backend=backend), backend


def test_the_second_message_on_another_replica_continues_the_conversation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI
    from playwright.sync_api import expect

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    replicas = [_replica(tmp_path / name, db_url, tmp_path / "shared", name) for name in "AB"]
    servers = [LiveServer(mount_ui(FastAPI(), runtime, path="/ui",
                                   blocks=build_ui(runtime, language="en"))).start()
               for runtime, _ in replicas]
    balancer = NoStickyBalancer([server.url for server in servers])
    front = LiveServer(balancer.app).start()
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{front.url}/ui/")
            chat = page.locator("#mentorly-chatbot")
            box = page.locator("#mentorly-input textarea")
            box.fill("What is photosynthesis?")
            box.press("Enter")
            expect(chat).to_contain_text("saw 0 earlier messages.", timeout=30_000)
            box.fill("What did I ask?")
            box.press("Enter")
            expect(chat).to_contain_text("saw 2 earlier messages.", timeout=30_000)
            shown = chat.inner_text()
            # "clear", then an example: a new conversation for the same page (on any replica)
            chat.get_by_role("button", name="Clear").click()
            expect(chat).not_to_contain_text("What did I ask?")
            chat.get_by_role("button", name=re.compile(r"^Select example 1")).click()
            expect(chat).to_contain_text("saw 0 earlier messages.", timeout=30_000)
    finally:
        front.stop()
        for server in servers:
            server.stop()
    first, second = balancer.join_log[:2]
    assert first != second  # the two messages reached different replicas
    names = {server.url: backend.name for server, (_, backend) in zip(servers, replicas,
                                                                       strict=True)}
    # the page still shows the whole chat, in order: it came from the browser, not a process
    order = ["What is photosynthesis?", f"Replica {names[first]} saw 0 earlier messages.",
             "What did I ask?", f"Replica {names[second]} saw 2 earlier messages."]
    positions = [shown.find(text) for text in order]
    assert -1 not in positions and positions == sorted(positions), shown
    runtime = replicas[0][0]
    with runtime.db.session() as s:
        from sqlalchemy import select

        from assistant.storage import Conversation, Message

        conversations = s.scalars(select(Conversation).order_by(Conversation.created_at)).all()
        roles = [[m.role for m in s.scalars(select(Message).where(Message.conversation_id == c.id)
                                            .order_by(Message.seq)).all()
                  if m.role in ("user", "assistant")] for c in conversations]
    # one conversation across both replicas, then the one after "clear", both the page's own
    assert roles == [["user", "assistant", "user", "assistant"], ["user", "assistant"]]
    assert conversations[0].user_id == conversations[1].user_id
