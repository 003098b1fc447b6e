"""Publishable widget keys (``pk_…``) and the learner tokens a host site signs for them.

A widget key belongs to one tenant and an allowlist of origins; it is public (it sits in the
host page). The learner's identity comes from a short-lived JWT (HS256) that the host site's
*backend* signs with the key's secret: ``sub`` (the learner's id on the host), ``tenant``,
``exp``, optionally ``name``, ``course``, ``iat`` and ``aud`` (= the pk_ key). The browser cannot
forge it; an expired, forged, too long-lived or other-tenant token is refused. Without a token
the widget works anonymously only if the key was created with ``--anonymous``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jwt

from assistant.audit import as_utc
from assistant.config import WidgetSettings
from assistant.errors import Forbidden, InvalidInput, Unauthorized
from assistant.security.key_table import KeyTable, check_tenant, random_alphanumeric, random_secret
from assistant.storage import Database
from assistant.storage.widget_keys import WidgetKey

PK_RE = re.compile(r"^pk_[A-Za-z0-9]{24}$")
_ANON_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_SUB_MAX = 150
# Control characters have no place in a learner's id or name, and a NUL cannot be stored at all
# in PostgreSQL's text columns (SQLite takes it): refused in 'sub', dropped from name and course.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class WidgetKeyInfo:
    id: str
    key: str
    tenant: str
    origins: list[str]
    anonymous: bool
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Learner:
    """Who is asking through the widget: the user id in Mentorly's users table is
    ``external_id`` (``anon:<id>`` for anonymous visitors)."""

    tenant: str
    external_id: str
    key: str
    display_name: str | None = None
    course: str | None = None
    anonymous: bool = False


def normalize_origin(value: str) -> str:
    """``https://School.example:443/`` → ``https://school.example``; refuses paths and wildcards."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or "*" in text:
        raise InvalidInput(f"invalid origin {value!r}: give scheme://host[:port], e.g. https://school.example")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"invalid port in origin {value!r}") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def parse_origins(value: str | list[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    origins = sorted({normalize_origin(o) for o in items if o and o.strip()})
    if not origins:
        raise InvalidInput("give at least one allowed origin, e.g. --origins https://school.example")
    return origins


def sign_token(secret: str, *, tenant: str, user: str, ttl_s: int = 600, name: str | None = None,
               course: str | None = None, key: str | None = None, now: float | None = None) -> str:
    """What a host backend does (also used by tests and the demo): a learner token."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": user, "tenant": tenant, "iat": issued, "exp": issued + ttl_s}
    if name:
        claims["name"] = name
    if course:
        claims["course"] = course
    if key:
        claims["aud"] = key
    return jwt.encode(claims, secret, algorithm="HS256")


class WidgetKeys(KeyTable[WidgetKey, WidgetKeyInfo, tuple[WidgetKeyInfo, str]]):
    """Widget keys; creating, listing, revoking and the lookup cache are ``KeyTable``'s."""

    def __init__(self, db: Database, settings: WidgetSettings | None = None) -> None:
        super().__init__(db, WidgetKey, WidgetKey.key)
        self.settings = settings or WidgetSettings()

    def _info(self, row: WidgetKey) -> WidgetKeyInfo:
        return WidgetKeyInfo(id=row.id, key=row.key, tenant=row.tenant_id, origins=list(row.origins),
                             anonymous=row.anonymous, name=row.name, created_at=as_utc(row.created_at),
                             revoked_at=as_utc(row.revoked_at) if row.revoked_at else None)

    def _cache_key(self, row: WidgetKey) -> str:
        return row.key

    def create(self, tenant: str, origins: str | list[str], *, anonymous: bool = False,
               name: str = "") -> tuple[WidgetKeyInfo, str]:
        """A new key and its signing secret (shown once by the CLI)."""
        check_tenant(tenant)
        checked = parse_origins(origins)
        key = "pk_" + random_alphanumeric(24)
        secret = "wsk_" + random_secret()
        row = WidgetKey(key=key, tenant_id=tenant, secret=secret, origins=checked,
                        anonymous=anonymous, name=name[:200])
        return self._add(row), secret

    def revoke(self, ident: str) -> WidgetKeyInfo:
        return self._revoke(ident.strip(), f"no widget key {ident!r}")

    def _lookup(self, key: str) -> tuple[WidgetKeyInfo, str]:
        """The key and its secret; a cached entry costs one primary-key query to confirm the key
        is still unrevoked (another process, e.g. ``mentorly keys revoke``, may have revoked it)."""
        hit = self._cached(key) if isinstance(key, str) else None
        if hit is not None:
            return hit
        if not isinstance(key, str) or not PK_RE.match(key):
            raise Unauthorized("the widget key is malformed "
                               "(expected 'pk_…'; see `mentorly keys create --widget`)")
        with self.db.session() as s:
            row = self._row(s, key)
            if row is None:
                raise Unauthorized("the widget key is not valid")
            found = self._info(row), row.secret
            self._remember(key, row, found)
        return found

    def check_origin(self, key: str, origin: str | None) -> WidgetKeyInfo:
        """The key, if it is active and ``origin`` is on its allowlist."""
        return self._check_origin(key, origin)[0]

    def _check_origin(self, key: str, origin: str | None) -> tuple[WidgetKeyInfo, str]:
        info, secret = self._lookup(key)
        if not info.active:
            raise Unauthorized("the widget key has been revoked")
        try:
            normalized = normalize_origin(origin or "")
        except InvalidInput:
            normalized = None
        if normalized is None or normalized not in info.origins:
            raise Forbidden(f"this site ({origin or 'unknown origin'}) is not allowed to use this widget key")
        return info, secret

    def verify(self, key: str, origin: str | None, token: str | None, anon_id: str | None = None) -> Learner:
        """The learner for a widget request: origin on the allowlist, then a valid token (or an
        anonymous visitor if the key allows it)."""
        info, secret = self._check_origin(key, origin)
        if not token:
            if not info.anonymous:
                raise Unauthorized("this widget needs a signed learner token (data-token)")
            visitor = anon_id if anon_id and _ANON_RE.match(anon_id) else "visitor"
            return Learner(tenant=info.tenant, external_id=f"anon:{visitor}", key=info.key, anonymous=True)
        claims = self._decode(token, secret)
        if claims.get("tenant") != info.tenant:
            raise Unauthorized("the learner token was signed for another tenant")
        if "aud" in claims and claims["aud"] != info.key:
            raise Unauthorized("the learner token was signed for another widget key")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip() or len(sub) > _SUB_MAX or sub.startswith("anon:") \
                or _CONTROL_RE.search(sub):
            raise Unauthorized("the learner token's 'sub' must be the learner's id (a short string)")
        name = claims.get("name")
        course = claims.get("course")
        return Learner(tenant=info.tenant, external_id=sub.strip(), key=info.key,
                       display_name=_CONTROL_RE.sub("", name)[:200] if isinstance(name, str) else None,
                       course=_CONTROL_RE.sub("", course)[:200] if isinstance(course, str) else None)

    def _decode(self, token: str, secret: str) -> dict[str, Any]:
        leeway = self.settings.leeway_s
        try:
            claims: dict[str, Any] = jwt.decode(
                token, secret, algorithms=["HS256"], leeway=leeway,
                options={"require": ["exp", "sub", "tenant"], "verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the learner token has expired: reload the page to get a new one") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the learner token's signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the learner token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the learner token is not valid: {exc}") from None
        limit = self.settings.max_token_lifetime_s
        now = time.time()
        exp = float(claims["exp"])
        iat = claims.get("iat")
        if exp - now > limit + leeway or (isinstance(iat, int | float) and exp - float(iat) > limit):
            raise Unauthorized(f"the learner token lives longer than {limit} s: sign short-lived tokens")
        return claims
