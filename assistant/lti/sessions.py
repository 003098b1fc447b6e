"""What a verified launch gives the launched page: a bearer token (``lti_…``) that the page
sends with each request instead of a cookie, since platforms embed the tool in a cross-site
iframe where browsers block third-party cookies.

The token is random; the database keeps only its SHA-256 with what the signed launch said
(tenant, user, course, roles, locale). Nothing the page sends can change those: a role or a
course comes from the launch or not at all."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete

from assistant.audit import as_utc
from assistant.errors import Unauthorized
from assistant.lti.courses import CourseInfo, get_course
from assistant.storage import Database
from assistant.storage.lti import LtiSession
from assistant.storage.models import _now

TOKEN_RE = re.compile(r"^lti_[A-Za-z0-9_-]{43}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """One launched page: who (``user`` is the Mentorly user id, ``lti:<platform>:<sub>``),
    where (``course``; ``None`` for a launch without a course context) and as what."""

    tenant: str
    platform_id: str
    user: str
    display_name: str
    roles: tuple[str, ...]
    instructor: bool
    locale: str
    message_type: str
    deployment_id: str
    expires_at: datetime
    course: CourseInfo | None = None
    deep_link: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def collection(self) -> str | None:
        return self.course.collection if self.course else None

    @property
    def meter_key(self) -> str:
        """What the usage table's ``key`` column says for this session's use."""
        return f"lti:{self.platform_id}"


class LtiSessions:
    def __init__(self, db: Database, ttl_s: int = 8 * 3600) -> None:
        self.db = db
        self.ttl_s = ttl_s

    def open(self, *, tenant: str, platform_id: str, user: str, display_name: str = "",
             roles: list[str] | tuple[str, ...] = (), instructor: bool = False, locale: str = "en",
             message_type: str = "LtiResourceLinkRequest", deployment_id: str = "",
             course: CourseInfo | None = None, deep_link: dict[str, Any] | None = None) -> str:
        """A new session; returns its token (shown to the launched page only)."""
        token = "lti_" + secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.add(LtiSession(token_hash=token_hash(token), tenant_id=tenant, platform_id=platform_id,
                             course_id=course.id if course else None, user=user[:200],
                             display_name=display_name[:200], roles=list(roles)[:50],
                             instructor=instructor, locale=locale[:16], message_type=message_type[:64],
                             deployment_id=deployment_id[:255], deep_link=deep_link,
                             expires_at=_now() + timedelta(seconds=self.ttl_s)))
        return token

    def verify(self, token: str | None) -> SessionInfo:
        """The session of a token; ``Unauthorized`` when malformed, unknown or expired."""
        if not isinstance(token, str) or not TOKEN_RE.match(token):
            raise Unauthorized("this page's LTI session is missing or malformed: "
                               "open the tool again from your course")
        with self.db.session() as s:
            row = s.get(LtiSession, token_hash(token))
            if row is None:
                raise Unauthorized("this page's LTI session is not valid: "
                                   "open the tool again from your course")
            expires_at = as_utc(row.expires_at)
            if expires_at <= _now():
                raise Unauthorized("this page's LTI session has expired: "
                                   "open the tool again from your course")
            info = SessionInfo(tenant=row.tenant_id, platform_id=row.platform_id, user=row.user,
                               display_name=row.display_name, roles=tuple(row.roles or ()),
                               instructor=row.instructor, locale=row.locale, message_type=row.message_type,
                               deployment_id=row.deployment_id, expires_at=expires_at,
                               deep_link=row.deep_link, course=None)
            course_id = row.course_id
        if course_id is None:
            return info
        return SessionInfo(**{**info.__dict__, "course": get_course(self.db, course_id)})

    def end(self, token: str) -> None:
        with self.db.session() as s:
            s.execute(delete(LtiSession).where(LtiSession.token_hash == token_hash(token)))

    def purge_expired(self) -> int:
        with self.db.session() as s:
            result = s.execute(delete(LtiSession).where(LtiSession.expires_at <= _now()))
            return int(getattr(result, "rowcount", 0) or 0)
