"""The one key store both kinds of key share: API keys (``mk_…``, ``security/keys.py``) and
publishable widget keys (``pk_…``, ``security/widget_tokens.py``).

A kind of key is a table with an ``id``, a public column a presented key is found by (the API
key's ``prefix``, the widget key's ``key``), a tenant, a name and ``created_at``/``revoked_at``.
``KeyTable`` does what is the same for every kind: the random parts of a new key, the insert
(creating the tenant on first use), ``list``, ``revoke`` by id or public part, and a short-lived
in-memory cache of lookups whose every hit re-reads the row's ``revoked_at`` by primary key
(``RevocationCheck``), so a key revoked by another process fails on its very next request.
Each kind keeps its own fields, formats and checks (scopes and a stored hash for API keys;
origins and a signing secret, stored as is because HMAC needs it, for widget keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from assistant.errors import InvalidInput, NotFound
from assistant.security.revocation import CheckFailed, RevocationCheck
from assistant.storage import Database
from assistant.storage.db import ensure_tenant
from assistant.storage.keys import ApiKey
from assistant.storage.widget_keys import WidgetKey

TENANT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_ALPHANUMERIC = string.ascii_lowercase + string.ascii_uppercase + string.digits


def check_tenant(tenant: object) -> str:
    """``tenant`` if it is a valid tenant name, else ``InvalidInput``."""
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
        raise InvalidInput(f"invalid tenant name {tenant!r} (letters, digits, _ . @ -; up to 64)")
    return tenant


def random_alphanumeric(length: int) -> str:
    """The public part of a new key: ``length`` random letters and digits."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def random_secret() -> str:
    """The secret part of a new key: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def secret_hash(key: str) -> str:
    """What is stored of a hashed key. The secret has 256 bits of entropy, so a plain (unsalted)
    SHA-256 cannot be brute-forced and a lookup stays one indexed query."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def same_hash(stored: str, presented: str) -> bool:
    """Constant-time comparison of two hashes."""
    return hmac.compare_digest(stored, presented)


# The key tables. A new kind of key adds its table here: it needs ``id``, ``tenant_id``,
# ``created_at`` and ``revoked_at`` columns and a unique public column.
RowT = TypeVar("RowT", ApiKey, WidgetKey)
InfoT = TypeVar("InfoT")
ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class _Hit(Generic[ValueT]):
    expires: float
    row_id: str
    value: ValueT
    recheck: bool  # False for a key already revoked: nothing brings it back


class KeyTable(Generic[RowT, InfoT, ValueT]):
    """The keys of one table. A subclass names the table (``model``) and the column a presented
    key is found by (``public``), turns a row into its info (``_info``) and says under which
    cache key a row's lookups are cached (``_cache_key``); ``ValueT`` is what a lookup yields."""

    cache_ttl_s = 5.0
    cache_limit = 10_000

    def __init__(self, db: Database, model: type[RowT], public: InstrumentedAttribute[str]) -> None:
        self.db = db
        self._model: type[RowT] = model
        self._public = public
        self._cache: dict[str, _Hit[ValueT]] = {}
        self._lock = threading.Lock()
        table = model.__table__
        assert isinstance(table, Table)
        self._revocation = RevocationCheck(db.engine, table)

    @property
    def cache_is_cheap(self) -> bool:
        """Whether a cached lookup is cheap enough for the event loop (SQLite: no network, no pool)."""
        return self._revocation.inline

    # -- what each kind says ------------------------------------------------------------------

    def _info(self, row: RowT) -> InfoT:
        raise NotImplementedError

    def _cache_key(self, row: RowT) -> str:
        raise NotImplementedError

    # -- create, list, revoke -----------------------------------------------------------------

    def _add(self, row: RowT) -> InfoT:
        """Insert a new key (its tenant is created on first use)."""
        with self.db.session() as s:
            ensure_tenant(s, row.tenant_id)
            s.add(row)
            s.flush()
            return self._info(row)

    def list(self, tenant: str | None = None) -> list[InfoT]:
        with self.db.session() as s:
            query = select(self._model).order_by(self._model.created_at)
            if tenant is not None:
                query = query.where(self._model.tenant_id == tenant)
            return [self._info(r) for r in s.scalars(query).all()]

    def _revoke(self, ident: str, missing: str) -> InfoT:
        """Revoke the key whose id or public part is ``ident`` (revoking twice is harmless) and
        drop its cached lookup; ``NotFound(missing)`` if there is none."""
        with self.db.session() as s:
            row = s.scalar(select(self._model).where(or_(self._model.id == ident, self._public == ident)))
            if row is None:
                raise NotFound(missing)
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            info, cache_key = self._info(row), self._cache_key(row)
        with self._lock:
            self._cache.pop(cache_key, None)
        return info

    # -- lookups ------------------------------------------------------------------------------

    def _row(self, session: Session, public: str) -> RowT | None:
        """The row a presented key's public part finds."""
        return session.scalar(select(self._model).where(self._public == public))

    def _cached(self, cache_key: str) -> ValueT | None:
        """A lookup made less than ``cache_ttl_s`` ago, if its key is still unrevoked (one
        primary-key read: another process may have revoked it). None when the check cannot
        say: the caller's full lookup decides, and reports a database that is down."""
        hit = self._cache.get(cache_key)
        if hit is None or hit.expires <= time.monotonic():
            return None
        if hit.recheck:
            try:
                active = self._revocation.active(hit.row_id)
            except CheckFailed:
                return None
            if not active:
                with self._lock:
                    self._cache.pop(cache_key, None)
                return None
        return hit.value

    def _remember(self, cache_key: str, row: RowT, value: ValueT) -> None:
        """Cache ``value`` as the lookup of ``row`` for ``cache_ttl_s``."""
        hit = _Hit(time.monotonic() + self.cache_ttl_s, row.id, value, recheck=row.revoked_at is None)
        with self._lock:
            if len(self._cache) > self.cache_limit:
                self._cache.clear()
            self._cache[cache_key] = hit
