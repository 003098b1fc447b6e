"""Quotas per key and per user, checked before any model runs: 429 with Retry-After and the
reset time; a refused turn leaves no usage row and no message, an allowed one exactly one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from assistant.config import QuotaSettings
from assistant.llm.fake import FakeBackend
from assistant.metering import Meter
from assistant.quotas import QuotaExceeded, Quotas
from assistant.storage import Database, Message
from assistant.storage.usage import UsageRecord
from tests.support.live_api import make_runtime, serve


@pytest.fixture
def meter(tmp_path: Path) -> Meter:
    return Meter(Database(f"sqlite:///{tmp_path / 'q.db'}"))


def test_requests_per_minute_per_key_and_per_user(meter: Meter) -> None:
    quotas = Quotas(QuotaSettings(requests_per_minute_per_key=2, requests_per_minute_per_user=3), meter)
    quotas.check(tenant="a", user="ann", key="k1")
    quotas.check(tenant="a", user="ann", key="k1")
    with pytest.raises(QuotaExceeded, match="this key") as caught:
        quotas.check(tenant="a", user="ann", key="k1")
    # the sliding window (assistant.security.ratelimit): 2 requests this minute fade out by the
    # middle of the next one, so the wait is up to 90 s
    assert 1 <= caught.value.retry_after_s <= 90
    assert caught.value.reset_at <= datetime.now(UTC) + timedelta(seconds=91)
    quotas.check(tenant="a", user="bob", key="k2")  # others are not affected
    quotas.check(tenant="a", user="ann", key="k3")  # ann's 3rd admitted request (a refusal did not count)
    with pytest.raises(QuotaExceeded, match="this user"):
        quotas.check(tenant="a", user="ann", key="k4")  # her 4th, through yet another key


def test_daily_tokens_and_tool_calls_come_from_recorded_usage(meter: Meter) -> None:
    quotas = Quotas(QuotaSettings(tokens_per_day_per_user=100, tool_calls_per_day_per_key=2), meter)
    quotas.check(tenant="a", user="ann", key="k1")
    meter.record(tenant="a", user="ann", key="k1", prompt_tokens=60, completion_tokens=30, tool_calls=1)
    quotas.check(tenant="a", user="ann", key="k1")  # 90 < 100
    meter.record(tenant="a", user="ann", key="k1", prompt_tokens=5, completion_tokens=5)
    with pytest.raises(QuotaExceeded, match="100 tokens") as caught:
        quotas.check(tenant="a", user="ann", key="k1")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert caught.value.reset_at == tomorrow
    quotas.check(tenant="b", user="ann", key="k9")  # the same user id in another tenant is someone else
    meter.record(tenant="a", user="bob", key="k1", tool_calls=1)
    with pytest.raises(QuotaExceeded, match="2 tool calls"):
        quotas.check(tenant="a", user="carl", key="k1")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeBackend, object]]:
    backend = FakeBackend()
    runtime = make_runtime(tmp_path_factory.mktemp("quotas"), backend=backend, tools=True,
                           quotas={"tokens_per_day_per_key": 1})
    server, app = serve(runtime)
    yield server.url, backend, app
    server.stop()


def test_quota_exhausted_mid_conversation(limited: tuple[str, FakeBackend, object]) -> None:
    url, backend, app = limited
    key, info = app.state.keys.create("acme", "chat")  # type: ignore[attr-defined]
    h = {"Authorization": f"Bearer {key}"}
    backend.add("", "First answer.")
    first = httpx.post(url + "/api/chat", headers=h, timeout=60,
                       json={"message": "first question", "user": "ann", "stream": False})
    assert first.status_code == 200, first.text
    conversation = first.json()["conversation_id"]
    pending = len(backend.requests)
    second = httpx.post(url + "/api/chat", headers=h, timeout=60,
                        json={"message": "second question", "user": "ann", "stream": True,
                              "conversation_id": conversation})
    assert second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 24 * 3600
    error = second.json()["error"]
    assert error["type"] == "rate_limited" and "tokens for today" in error["message"]
    assert datetime.fromisoformat(error["reset_at"]) > datetime.now(UTC)
    assert len(backend.requests) == pending  # no model ran
    runtime = app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord).where(UsageRecord.key == info.prefix)) == 1
        assert s.scalar(select(func.count()).select_from(Message)
                        .where(Message.conversation_id == conversation)) == 2


def test_direct_tool_calls_count_against_the_daily_tool_quota(limited: tuple[str, FakeBackend, object]) -> None:
    url, _backend, app = limited
    runner = app.state.billing  # type: ignore[attr-defined]  # the runtime's one metering/quota observer
    saved = runner.quotas
    runner.quotas = Quotas(QuotaSettings(tool_calls_per_day_per_key=1), runner.meter)
    try:
        key, info = app.state.keys.create("acme", "tools")  # type: ignore[attr-defined]
        h = {"Authorization": f"Bearer {key}"}
        ok = httpx.post(url + "/api/tools/halve", headers=h, json={"arguments": {"n": 4}})
        assert ok.status_code == 200 and ok.json()["data"] == {"half": 2}
        refused = httpx.post(url + "/api/tools/halve", headers=h, json={"arguments": {"n": 8}})
        assert refused.status_code == 429 and "1 tool calls" in refused.json()["error"]["message"]
        assert "reset_at" in refused.json()["error"] and int(refused.headers["Retry-After"]) > 0
    finally:
        runner.quotas = saved
    with app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
        assert s.scalar(select(func.count()).select_from(UsageRecord).where(UsageRecord.key == info.prefix)) == 1
