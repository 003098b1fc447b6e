"""The audit log of administrative actions: keys created and revoked, documents uploaded and
deleted, catalog imports, settings changes. ``record`` never raises into the action it logs
after (the action already happened); it logs a failure instead."""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from assistant.storage import Database
from assistant.storage.audit import AuditEntry

log = logging.getLogger(__name__)

# The actions other modules record (free text is allowed; these keep reports consistent).
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
WIDGET_KEY_CREATED = "widget_key.created"
WIDGET_KEY_REVOKED = "widget_key.revoked"
DOCUMENT_UPLOADED = "document.uploaded"
DOCUMENT_DELETED = "document.deleted"
CATALOG_IMPORTED = "catalog.imported"
SETTINGS_CHANGED = "settings.changed"
LTI_PLATFORM_ADDED = "lti.platform_added"
LTI_PLATFORM_REMOVED = "lti.platform_removed"
LTI_KEY_ROTATED = "lti.key_rotated"
LTI_LAUNCH = "lti.launch"
LTI_LAUNCH_REFUSED = "lti.launch_refused"
LTI_DEEP_LINK = "lti.deep_link"


@dataclass(frozen=True)
class AuditItem:
    at: datetime
    actor: str
    action: str
    target: str
    tenant: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "target": self.target, "tenant": self.tenant, "details": self.details}


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the database, as an aware UTC datetime. SQLite gives back
    naive datetimes (the UTC wall time that was written); PostgreSQL aware ones in the
    connection's time zone (the server's ``TimeZone``, not necessarily UTC). Without this the
    same row would print as ``…T20:17:06`` on one and ``…T04:17:06+08:00`` on the other."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (containers): still say it came from the CLI
        return "cli:unknown"


def key_actor(key_prefix: str | None) -> str:
    return f"key:{key_prefix or 'unknown'}"


def record(db: Database, *, actor: str, action: str, target: str = "", tenant: str = "",
           details: dict[str, Any] | None = None) -> None:
    try:
        with db.session() as s:
            s.add(AuditEntry(actor=actor[:200], action=action[:64], target=target[:500],
                             tenant_id=tenant[:64], details=details or {}))
    except Exception:
        log.exception("could not write the audit entry %s %s", action, target)


def entries(db: Database, *, tenant: str | None = None, action: str | None = None,
            since: datetime | None = None, limit: int = 100) -> list[AuditItem]:
    """Newest first."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc()).limit(max(1, min(limit, 10_000)))
    if tenant is not None:
        query = query.where(AuditEntry.tenant_id == tenant)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    with db.session() as s:
        return [AuditItem(at=as_utc(e.at), actor=e.actor, action=e.action, target=e.target,
                          tenant=e.tenant_id, details=dict(e.details or {})) for e in s.scalars(query).all()]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): data}


def record_settings_change(db: Database, settings: Any, actor: str = "") -> list[str]:
    """Settings come from a file and environment variables, not from an API: when the service
    starts with effective settings (secrets masked) that differ from the last ones recorded,
    write one ``settings.changed`` entry naming the changed keys. Returns those keys."""
    current = _flatten(settings.masked())
    try:
        with db.session() as s:
            last = s.scalar(select(AuditEntry).where(AuditEntry.action == SETTINGS_CHANGED)
                            .order_by(AuditEntry.at.desc()).limit(1))
            previous = dict((last.details or {}).get("snapshot", {})) if last is not None else None
    except Exception:
        log.exception("could not read the last settings snapshot")
        return []
    if previous == current:
        return []
    changed = sorted(k for k in set(current) | set(previous or {})
                     if (previous or {}).get(k, object()) != current.get(k, object()))
    keys = ["(first start)"] if previous is None else changed
    record(db, actor=actor or cli_actor().replace("cli:", "process:"), action=SETTINGS_CHANGED,
           target=", ".join(keys)[:500], details={"changed": keys, "snapshot": current})
    return keys
