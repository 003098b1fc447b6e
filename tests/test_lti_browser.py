"""An LTI launch in a real browser (#17): Debian's headless Chromium driven by Playwright, as for
the widget (``tests/test_widget_browser.py``: same launch options, same skip rule).

The simulated platform (``tests.support.lti_platform``) serves a course page at
``http://localhost:PORT``, another *site* than the tool at ``http://127.0.0.1:PORT2``. The page
embeds the tool in an iframe and runs the whole LTI flow inside it, as Moodle or Canvas do: a form
posted to the tool's ``/lti/login`` into the iframe, the tool's redirect to the platform's auth
endpoint, whose page form-posts ``id_token`` and ``state`` to the tool's ``/lti/launch``. The
learner then asks a question in the launched chat; the course's document (ingested into the
course's own collection, with a contradicting decoy in another collection of the tenant) is
what the answer cites. The LLM is the scripted fake; the knowledge plugin and its embedder are
real. No cookie is set by the tool at any step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from assistant import audit
from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.lti.courses import course_collection
from assistant.runtime import build_runtime
from assistant.storage.usage import UsageRecord
from tests.conftest import new_database_url
from tests.support.chromium import chromium, needs_chromium
from tests.support.live_api import LiveServer, serve
from tests.support.lti_platform import SimulatedPlatform

pytestmark = needs_chromium
TENANT = "school"
COURSE = ("alg-1", "Algebra I")
COURSE_DOC = """# Algebra I course guide

## Quizzes
The quiz on quadratic equations takes place on Thursday in room 204. Bring a calculator.
"""
DECOY_DOC = """# Geometry course guide

## Quizzes
The quiz on quadratic equations takes place on Monday in the library. Calculators are not allowed.
"""


class World:
    def __init__(self, server: LiveServer, app: Any, platform: SimulatedPlatform, collection: str) -> None:
        self.server, self.app, self.platform, self.collection = server, app, platform, collection
        self.runtime = app.state.runtime


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_db_backend_incidental: str) -> Iterator[World]:
    from tools.knowledge_search.service import knowledge_base

    home = tmp_path_factory.mktemp("lti-browser")
    database_url = new_database_url(module_db_backend_incidental, home)
    runtime = build_runtime(load_settings(home=home, database_url=database_url, plugins=["tools.knowledge_search"],
                                          llm={"backend": "fake"}), backend=FakeBackend())
    server, app = serve(runtime)
    runtime.settings.lti.public_url = server.url
    platform = SimulatedPlatform(host="localhost")  # another site than the tool (127.0.0.1)
    info = platform.register(runtime.db, TENANT)
    collection = course_collection(info.id, COURSE[0])
    docs = tmp_path_factory.mktemp("lti-docs")
    (docs / "algebra-guide.md").write_text(COURSE_DOC, encoding="utf-8")
    (docs / "decoy").mkdir()
    (docs / "decoy" / "geometry-guide.md").write_text(DECOY_DOC, encoding="utf-8")
    kb = knowledge_base(runtime.settings)
    kb.ingest([docs / "algebra-guide.md"], TENANT, collection)
    kb.ingest([docs / "decoy"], TENANT, "geometry-101")
    yield World(server, app, platform, collection)
    platform.stop()
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def test_a_learner_launched_in_the_platform_iframe_gets_an_answer_from_the_course(world: World,
                                                                                 context: Any) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    world.platform.prepare("learner-b", role="learner", context=COURSE, locale="en", name="Bea Park")
    page.goto(world.platform.course_page_url(world.server.url, "learner-b"))
    assert page.url.startswith("http://localhost:")
    tool = page.frame_locator("iframe[name=tool]")
    box = tool.locator("textarea.mw-input")
    box.wait_for(timeout=30_000)
    frame = page.frame(name="tool")
    assert frame is not None and frame.url == f"{world.server.url}/lti/launch"

    box.fill("When is the quiz on quadratic equations?")
    box.press("Enter")
    answer = tool.locator(".mw-assistant[data-done='1']").last
    answer.wait_for(timeout=120_000)
    text = answer.locator(".mw-body").text_content() or ""
    assert "Thursday" in text and "Monday" not in text, text
    sources = tool.locator(".mw-sources li").all_text_contents()
    assert sources and any("Algebra" in s for s in sources) and not any("Geometry" in s for s in sources), sources

    assert [c for c in context.cookies() if "127.0.0.1" in c["domain"]] == []  # no cookie, ever
    launches = [e for e in audit.entries(world.runtime.db, action=audit.LTI_LAUNCH) if e.tenant == TENANT]
    assert launches and launches[0].details["course"] == world.collection
    with world.runtime.db.session() as s:
        rows = s.scalars(select(UsageRecord).where(UsageRecord.surface == "lti",
                                                   UsageRecord.course == world.collection)).all()
    assert sum(r.launches for r in rows) >= 1 and sum(r.turns for r in rows) >= 1
    assert errors == []
