"""API keys: ``mk_<prefix>_<secret>``, shown once, stored as a SHA-256 of the whole key.

The secret has 256 bits of entropy, so a plain (unsalted) SHA-256 cannot be brute-forced and
lets a lookup stay one indexed query; the prefix only finds the row. Comparison is constant
time. A revoked key stays in the table (for ``keys list``) but never authenticates.

Successful lookups are cached in memory for ``cache_ttl_s`` (5 s), keyed by the hash, which
spares the hot path of an API call the ORM session, the row load and (on SQLite) the worker
thread. Revocation is immediate all the same: every cache hit re-reads the key's ``revoked_at``
by primary key (``RevocationCheck``), so a key revoked by another process (``mentorly keys
revoke``) or another server sharing the database fails on its very next request. Revoking
through the same ``KeyStore`` also drops the cache entry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select

from assistant.errors import InvalidInput, NotFound, Unauthorized
from assistant.security.revocation import CheckFailed, RevocationCheck
from assistant.security.scopes import allows, parse_scopes
from assistant.storage import Database
from assistant.storage.db import ensure_tenant
from assistant.storage.keys import ApiKey

KEY_RE = re.compile(r"^mk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's tenant and scopes."""

    tenant: str
    scopes: tuple[str, ...]
    key_id: str | None = None
    key_prefix: str | None = None

    def allows(self, scope: str) -> bool:
        return allows(self.scopes, scope)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    prefix: str
    tenant: str
    scopes: list[str]
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(id=row.id, prefix=row.prefix, tenant=row.tenant_id, scopes=list(row.scopes),
                   name=row.name, created_at=row.created_at, revoked_at=row.revoked_at)


class KeyStore:
    cache_ttl_s = 5.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._revocation = RevocationCheck(db.engine, ApiKey.__table__)

    @property
    def cache_is_cheap(self) -> bool:
        """Whether ``cached`` is cheap enough for the event loop (SQLite: no network, no pool)."""
        return self._revocation.inline

    def cached(self, key: str) -> Principal | None:
        """The principal for ``key`` if it authenticated less than ``cache_ttl_s`` ago and is
        still unrevoked (one primary-key read: another process may have revoked it)."""
        digest = _hash(key.strip())
        hit = self._cache.get(digest)
        if hit is None or hit[0] <= time.monotonic():
            return None
        try:
            active = self._revocation.active(hit[1].key_id or "")
        except CheckFailed:
            return None  # ``authenticate`` decides, and reports a database that is down
        if not active:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        return hit[1]

    def lookup(self, key: str) -> Principal:
        """``cached`` or else ``authenticate`` (may query the database: call it in a thread)."""
        return self.cached(key) or self.authenticate(key)

    def create(self, tenant: str, scopes: str | list[str], name: str = "") -> tuple[str, KeyInfo]:
        """A new key for ``tenant``; the returned plain key is never stored."""
        if not isinstance(tenant, str) or not _TENANT_RE.match(tenant):
            raise InvalidInput(f"invalid tenant name {tenant!r} (letters, digits, _ . @ -; up to 64)")
        checked = parse_scopes(scopes)
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        prefix = "".join(secrets.choice(alphabet) for _ in range(12))
        key = f"mk_{prefix}_{secrets.token_urlsafe(32)}"
        with self.db.session() as s:
            ensure_tenant(s, tenant)
            row = ApiKey(prefix=prefix, secret_hash=_hash(key), tenant_id=tenant, scopes=checked,
                         name=name[:200])
            s.add(row)
            s.flush()
            info = _info(row)
        return key, info

    def list(self, tenant: str | None = None) -> list[KeyInfo]:
        with self.db.session() as s:
            query = select(ApiKey).order_by(ApiKey.created_at)
            if tenant is not None:
                query = query.where(ApiKey.tenant_id == tenant)
            return [_info(r) for r in s.scalars(query).all()]

    def revoke(self, key_id_or_prefix: str) -> KeyInfo:
        """Revoke by id or prefix (as ``keys list`` shows them); revoking twice is harmless."""
        ident = key_id_or_prefix.strip()
        if ident.startswith("mk_"):  # a whole key, or "mk_<prefix>"
            ident = ident.split("_")[1]
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(or_(ApiKey.id == ident, ApiKey.prefix == ident)))
            if row is None:
                raise NotFound(f"no API key {key_id_or_prefix!r} (see `mentorly keys list`)")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            info, digest = _info(row), row.secret_hash
        with self._lock:
            self._cache.pop(digest, None)
        return info

    def authenticate(self, key: str) -> Principal:
        """The principal for a presented key; ``Unauthorized`` for unknown, malformed or revoked."""
        match = KEY_RE.match(key.strip()) if isinstance(key, str) else None
        if match is None:
            raise Unauthorized("the API key is malformed (expected 'mk_…'; see `mentorly keys create`)")
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.prefix == match.group(1)))
            if row is None or not hmac.compare_digest(row.secret_hash, _hash(key.strip())):
                raise Unauthorized("the API key is not valid")
            if row.revoked_at is not None:
                raise Unauthorized("the API key has been revoked")
            principal = Principal(tenant=row.tenant_id, scopes=tuple(row.scopes), key_id=row.id,
                                  key_prefix=row.prefix)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[row.secret_hash] = (time.monotonic() + self.cache_ttl_s, principal)
        return principal
