"""API keys: ``mk_<prefix>_<secret>``, shown once, stored as a SHA-256 of the whole key.

The prefix only finds the row (one indexed query); the hash is compared in constant time. A
revoked key stays in the table (for ``keys list``) but never authenticates.

Successful lookups are cached in memory for ``cache_ttl_s`` (5 s), keyed by the hash, which
spares the hot path of an API call the ORM session, the row load and (on SQLite) the worker
thread. Revocation is immediate all the same: every cache hit re-reads the key's ``revoked_at``
by primary key (``RevocationCheck``), so a key revoked by another process (``mentorly keys
revoke``) or another server sharing the database fails on its very next request. Revoking
through the same ``KeyStore`` also drops the cache entry. Creating, listing, revoking and the
cache are ``KeyTable``'s (``key_table.py``), shared with the widget keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from assistant.audit import as_utc
from assistant.errors import Unauthorized
from assistant.security.key_table import (
    KeyTable,
    check_tenant,
    random_alphanumeric,
    random_secret,
    same_hash,
    secret_hash,
)
from assistant.security.scopes import allows, parse_scopes
from assistant.storage import Database
from assistant.storage.keys import ApiKey

KEY_RE = re.compile(r"^mk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")


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


class KeyStore(KeyTable[ApiKey, KeyInfo, Principal]):
    def __init__(self, db: Database) -> None:
        super().__init__(db, ApiKey, ApiKey.prefix)

    def _info(self, row: ApiKey) -> KeyInfo:
        return KeyInfo(id=row.id, prefix=row.prefix, tenant=row.tenant_id, scopes=list(row.scopes),
                       name=row.name, created_at=as_utc(row.created_at),
                       revoked_at=as_utc(row.revoked_at) if row.revoked_at else None)

    def _cache_key(self, row: ApiKey) -> str:
        return row.secret_hash

    def cached(self, key: str) -> Principal | None:
        """The principal for ``key`` if it authenticated less than ``cache_ttl_s`` ago and is
        still unrevoked (one primary-key read: another process may have revoked it)."""
        return self._cached(secret_hash(key.strip()))

    def lookup(self, key: str) -> Principal:
        """``cached`` or else ``authenticate`` (may query the database: call it in a thread)."""
        return self.cached(key) or self.authenticate(key)

    def create(self, tenant: str, scopes: str | list[str], name: str = "") -> tuple[str, KeyInfo]:
        """A new key for ``tenant``; the returned plain key is never stored."""
        check_tenant(tenant)
        checked = parse_scopes(scopes)
        prefix = random_alphanumeric(12)
        key = f"mk_{prefix}_{random_secret()}"
        row = ApiKey(prefix=prefix, secret_hash=secret_hash(key), tenant_id=tenant, scopes=checked,
                     name=name[:200])
        return key, self._add(row)

    def revoke(self, key_id_or_prefix: str) -> KeyInfo:
        """Revoke by id or prefix (as ``keys list`` shows them); revoking twice is harmless."""
        ident = key_id_or_prefix.strip()
        if ident.startswith("mk_"):  # a whole key, or "mk_<prefix>"
            ident = ident.split("_")[1]
        return self._revoke(ident, f"no API key {key_id_or_prefix!r} (see `mentorly keys list`)")

    def authenticate(self, key: str) -> Principal:
        """The principal for a presented key; ``Unauthorized`` for unknown, malformed or revoked."""
        match = KEY_RE.match(key.strip()) if isinstance(key, str) else None
        if match is None:
            raise Unauthorized("the API key is malformed (expected 'mk_…'; see `mentorly keys create`)")
        with self.db.session() as s:
            row = self._row(s, match.group(1))
            if row is None or not same_hash(row.secret_hash, secret_hash(key.strip())):
                raise Unauthorized("the API key is not valid")
            if row.revoked_at is not None:
                raise Unauthorized("the API key has been revoked")
            principal = Principal(tenant=row.tenant_id, scopes=tuple(row.scopes), key_id=row.id,
                                  key_prefix=row.prefix)
            self._remember(row.secret_hash, row, principal)
        return principal
