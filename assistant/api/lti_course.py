"""What a launched LTI page calls besides the chat: the course's usage for its instructor
(``GET /lti/api/course/usage``), the instructor session every ``/lti/api/course/…`` route
depends on (the knowledge plugin's document routes use it too), the platform's shared
collections (searched after the course's own), and the course panel's static files
(``/lti/course.js``, ``/lti/course.css``, from the LTI pages' folder).

The page runs in the platform's cross-site iframe, where browsers block third-party cookies:
it sends the launch's session token as ``Authorization: Bearer lti_…``. Which course and which
role come from the signed launch the session was opened by, never from the request: no route
here takes a course or a collection as a parameter.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from assistant.errors import Forbidden, NotFound
from assistant.lti.sessions import LtiSessions, SessionInfo
from assistant.metering import Meter, UsageRow, parse_time
from assistant.storage import Database, User
from assistant.storage.lti import LtiPlatform

router = APIRouter(tags=["lti"])
STATIC = {"course.js": "application/javascript; charset=utf-8", "course.css": "text/css; charset=utf-8"}
MAX_LEARNERS = 500  # rows of the per-learner table (the totals count everyone)


def shared_collections(db: Database, platform_id: str) -> tuple[str, ...]:
    """The tenant collections every course of this platform searches after its own (set by an
    administrator on the platform's registration)."""
    with db.session() as s:
        row = s.get(LtiPlatform, platform_id)
        names = list(row.shared_collections or ()) if row is not None else []
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n.strip()))


def session_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer lti_…`` (``None`` when absent or another scheme:
    ``LtiSessions.verify`` then refuses it as missing)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def instructor_session(request: Request) -> SessionInfo:
    """The caller's LTI session: 401 when missing, malformed, unknown or expired; 403 unless
    the signed launch made them an instructor of a course."""
    sessions: LtiSessions = request.app.state.lti_sessions
    token = session_token(request.headers.get("authorization"))
    info = await anyio.to_thread.run_sync(sessions.verify, token)
    if not info.instructor:
        raise Forbidden("the course page is for the course's instructors; learners have the chat")
    if info.course is None:
        raise Forbidden("this launch came without a course: open the tool from a course")
    return info


InstructorSession = Annotated[SessionInfo, Depends(instructor_session)]


def _names(db: Database, tenant: str, users: list[str]) -> dict[str, str]:
    if not users:
        return {}
    with db.session() as s:
        rows = s.execute(select(User.external_id, User.display_name)
                         .where(User.tenant_id == tenant, User.external_id.in_(users))).all()
    return {external_id: name or "" for external_id, name in rows}


def course_usage(meter: Meter, db: Database, info: SessionInfo, *, start: datetime | None = None,
                 end: datetime | None = None) -> dict[str, Any]:
    """The course's totals and one row per person (learners and instructors) who launched the
    tool or asked in it, most turns first."""
    assert info.course is not None
    rows: list[UsageRow] = meter.report(group_by="user", tenant=info.tenant, course=info.collection,
                                        start=start, end=end)
    prefix = f"{info.tenant}/"
    people = [(row.group[len(prefix):] if row.group.startswith(prefix) else row.group, row)
              for row in rows]
    people.sort(key=lambda p: (-p[1].turns, -p[1].launches, p[0]))
    names = _names(db, info.tenant, [user for user, _ in people[:MAX_LEARNERS]])
    total = {"turns": sum(r.turns for r in rows), "tool_calls": sum(r.tool_calls for r in rows),
             "prompt_tokens": sum(r.prompt_tokens for r in rows),
             "completion_tokens": sum(r.completion_tokens for r in rows),
             "launches": sum(r.launches for r in rows), "learners": len(rows)}
    total["tokens"] = total["prompt_tokens"] + total["completion_tokens"]
    return {"course": {"title": info.course.title, "collection": info.course.collection},
            "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
            "totals": total,
            "learners": [{"user": user, "name": names.get(user, ""), "turns": row.turns,
                          "tool_calls": row.tool_calls,
                          "tokens": row.prompt_tokens + row.completion_tokens,
                          "launches": row.launches} for user, row in people[:MAX_LEARNERS]]}


@router.get("/lti/api/course/usage", include_in_schema=False)
async def usage(request: Request, session: InstructorSession,
                from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
                to: Annotated[str | None, Query(max_length=40)] = None) -> dict[str, Any]:
    """Turns, tool calls, tokens and launches of the session's own course, in total and per
    person, over [from, to) (ISO dates, UTC; default: all time)."""
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    meter: Meter = request.app.state.meter
    db: Database = request.app.state.runtime.db
    return await anyio.to_thread.run_sync(lambda: course_usage(meter, db, session, start=start, end=end))


def _static(request: Request, name: str) -> FileResponse:
    folder: Path | None = request.app.state.lti_pages
    path = folder / name if folder is not None else None
    if path is None or not path.is_file():
        raise NotFound(f"the LTI page file {name} is not installed")
    return FileResponse(path, media_type=STATIC[name], headers={"Cache-Control": "public, max-age=300"})


@router.get("/lti/course.js", include_in_schema=False)
def course_js(request: Request) -> FileResponse:
    return _static(request, "course.js")


@router.get("/lti/course.css", include_in_schema=False)
def course_css(request: Request) -> FileResponse:
    return _static(request, "course.css")
