"""A platform's course (``context.id``) and the knowledge collection holding its documents.

The collection name is derived from the platform and the course id (``lti-`` and 16 hex
digits), so it is stable across launches, unique in the tenant, and never chosen by a page."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select, update

from assistant.storage import Database
from assistant.storage.db import ensure_tenant, insert_missing, without_nul
from assistant.storage.lti import LtiCourse
from assistant.storage.models import _now


@dataclass(frozen=True)
class CourseInfo:
    id: str
    tenant: str
    platform_id: str
    context_id: str
    title: str
    collection: str


def course_collection(platform_id: str, context_id: str) -> str:
    digest = hashlib.sha256(f"{platform_id}\x00{context_id}".encode()).hexdigest()
    return f"lti-{digest[:16]}"


def _info(row: LtiCourse) -> CourseInfo:
    return CourseInfo(id=row.id, tenant=row.tenant_id, platform_id=row.platform_id,
                      context_id=row.context_id, title=row.title, collection=row.collection)


def ensure_course(db: Database, *, tenant: str, platform_id: str, context_id: str, title: str) -> CourseInfo:
    """The course's row, created on its first launch; a changed title is kept up to date."""
    title = without_nul(title)[:300]
    query = select(LtiCourse).where(LtiCourse.platform_id == platform_id, LtiCourse.context_id == context_id)
    with db.session() as s:
        row = s.scalar(query)
        if row is not None and row.title == title:
            return _info(row)
    with db.session() as s:
        ensure_tenant(s, tenant)
        insert_missing(s, LtiCourse, {"tenant_id": tenant, "platform_id": platform_id,
                                      "context_id": context_id, "title": title,
                                      "collection": course_collection(platform_id, context_id)},
                       ("platform_id", "context_id"))
        s.execute(update(LtiCourse).where(LtiCourse.platform_id == platform_id,
                                          LtiCourse.context_id == context_id)
                  .values(title=title, last_launch_at=_now()))
        row = s.scalar(query)
        assert row is not None
        return _info(row)


def get_course(db: Database, course_id: str) -> CourseInfo | None:
    with db.session() as s:
        row = s.get(LtiCourse, course_id)
        return _info(row) if row is not None else None


def courses(db: Database, *, tenant: str | None = None, platform_id: str | None = None) -> list[CourseInfo]:
    query = select(LtiCourse).order_by(LtiCourse.created_at)
    if tenant is not None:
        query = query.where(LtiCourse.tenant_id == tenant)
    if platform_id is not None:
        query = query.where(LtiCourse.platform_id == platform_id)
    with db.session() as s:
        return [_info(row) for row in s.scalars(query)]
