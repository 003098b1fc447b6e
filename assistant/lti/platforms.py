"""Registered learning platforms (Moodle, Canvas…): who may launch the tool, for which tenant.

A registration is what the platform's administrator reads off the platform after adding the
tool: its issuer, the client id it gave the tool, its OIDC authorization (login) URL, its token
URL and key set URL, and the deployment ids the tool is installed under. ``(issuer,
client_id)`` is unique across tenants: a launch's ``iss`` and ``aud`` name exactly one tenant.

``find`` and ``get`` run on every launch: one query on an index each, no cache, so a removal by
another process takes effect on the next launch."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from assistant.audit import as_utc
from assistant.errors import Conflict, InvalidInput, NotFound
from assistant.security.key_table import check_tenant
from assistant.storage import Database
from assistant.storage.db import ensure_tenant
from assistant.storage.lti import LtiPlatform, LtiSession, LtiState

_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
COLLECTION_RE = re.compile(r"^[\w.-]{1,100}$")
MAX_DEPLOYMENTS = 100
MAX_SHARED_COLLECTIONS = 50
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
DEPLOYMENT_ADDED = "lti.deployment_added"  # an audit action (with those of assistant.audit)


@dataclass(frozen=True)
class PlatformInfo:
    id: str
    tenant: str
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployment_ids: tuple[str, ...]
    shared_collections: tuple[str, ...]
    created_at: datetime

    @property
    def origins(self) -> tuple[str, ...]:
        """The ``scheme://host[:port]`` origins of the issuer and the login URL: where the page
        that frames the tool comes from (for the launched page's CSP ``frame-ancestors``)."""
        found: list[str] = []
        for url in (self.issuer, self.auth_login_url):
            origin = _origin(url)
            if origin and origin not in found:
                found.append(origin)
        return tuple(found)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "tenant": self.tenant, "name": self.name, "issuer": self.issuer,
                "client_id": self.client_id, "auth_login_url": self.auth_login_url,
                "auth_token_url": self.auth_token_url, "key_set_url": self.key_set_url,
                "deployment_ids": list(self.deployment_ids),
                "shared_collections": list(self.shared_collections),
                "created_at": self.created_at.isoformat()}


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: object, what: str, *, limit: int = 1000, query: bool = True) -> str:
    """An https URL (plain http only on a loopback host, for a platform on this machine)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"give the platform's {what}, an https URL")
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(f"the {what} is longer than {limit} characters")
    if _CONTROL_RE.search(text) or " " in text:
        raise InvalidInput(f"the {what} {text[:100]!r} contains spaces or control characters")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise InvalidInput(f"the {what} {text[:100]!r} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"the {what} {text[:100]!r} is not an https URL (e.g. https://lms.school.example/…)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidInput(f"the {what} {text[:100]!r} must use https (plain http only for a "
                           "platform on this machine: localhost, 127.0.0.1)")
    if parts.username or parts.password:
        raise InvalidInput(f"the {what} must not contain a user name or password")
    if parts.fragment or (parts.query and not query):
        raise InvalidInput(f"the {what} {text[:100]!r} must not have a "
                           f"{'fragment (#…)' if parts.fragment else 'query (?…)'}")
    return text


def _check_text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"give the platform's {what}")
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(f"the {what} is longer than {limit} characters")
    if _CONTROL_RE.search(text):
        raise InvalidInput(f"the {what} {text[:100]!r} contains control characters")
    return text


def check_deployment_id(value: object) -> str:
    return _check_text(value, "deployment id", 255)


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def check_deployment_ids(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    checked = _unique([check_deployment_id(v) for v in values])
    if not checked:
        raise InvalidInput("give at least one deployment id (the platform shows it once the tool "
                           "is deployed, e.g. --deployment-id 1)")
    if len(checked) > MAX_DEPLOYMENTS:
        raise InvalidInput(f"at most {MAX_DEPLOYMENTS} deployment ids per platform")
    return checked


def check_collections(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    checked = []
    for value in values:
        if not isinstance(value, str) or not COLLECTION_RE.match(value.strip()):
            raise InvalidInput(f"invalid collection name {value!r} (letters, digits, _ . -; up to 100)")
        checked.append(value.strip())
    found = _unique(checked)
    if len(found) > MAX_SHARED_COLLECTIONS:
        raise InvalidInput(f"at most {MAX_SHARED_COLLECTIONS} shared collections per platform")
    return found


def unknown_platform(ident: str) -> NotFound:
    """The one answer for an unknown id and for another tenant's (which must read the same)."""
    return NotFound(f"no LTI platform {ident[:100]!r} (see `mentorly lti list` or GET /api/lti/platforms)")


def _info(row: LtiPlatform) -> PlatformInfo:
    return PlatformInfo(id=row.id, tenant=row.tenant_id, name=row.name, issuer=row.issuer,
                        client_id=row.client_id, auth_login_url=row.auth_login_url,
                        auth_token_url=row.auth_token_url, key_set_url=row.key_set_url,
                        deployment_ids=tuple(str(d) for d in row.deployment_ids or ()),
                        shared_collections=tuple(str(c) for c in row.shared_collections or ()),
                        created_at=as_utc(row.created_at))


class Platforms:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, tenant: str, issuer: str, client_id: str, auth_login_url: str, key_set_url: str,
            deployment_ids: list[str], auth_token_url: str = "", name: str = "",
            shared_collections: list[str] | tuple[str, ...] = ()) -> PlatformInfo:
        """Register a platform for ``tenant``; ``Conflict`` if its issuer and client id are taken."""
        check_tenant(tenant)
        issuer = check_url(issuer, "issuer (platform id)", limit=500, query=False)
        client_id = _check_text(client_id, "client id", 255)
        values = {
            "tenant_id": tenant, "issuer": issuer, "client_id": client_id,
            "auth_login_url": check_url(auth_login_url, "OIDC authentication (login) URL"),
            "auth_token_url": check_url(auth_token_url, "access token URL") if auth_token_url.strip() else "",
            "key_set_url": check_url(key_set_url, "public keyset URL"),
            "deployment_ids": list(check_deployment_ids(deployment_ids)),
            "shared_collections": list(check_collections(shared_collections)),
            "name": _CONTROL_RE.sub("", name).strip()[:200] or (urlsplit(issuer).hostname or issuer)[:200],
        }
        taken = Conflict(f"a platform with issuer {issuer!r} and client id {client_id!r} is already "
                         "registered (see `mentorly lti list`; remove it first to register it again)")
        with self.db.session() as s:
            if s.scalar(select(LtiPlatform.id).where(LtiPlatform.issuer == issuer,
                                                     LtiPlatform.client_id == client_id)) is not None:
                raise taken
        try:
            with self.db.session() as s:
                ensure_tenant(s, tenant)
                row = LtiPlatform(**values)
                s.add(row)
                s.flush()
                return _info(row)
        except IntegrityError:  # registered by another request between the check and the insert
            raise taken from None

    def list(self, tenant: str | None = None) -> list[PlatformInfo]:
        query = select(LtiPlatform).order_by(LtiPlatform.created_at, LtiPlatform.id)
        if tenant is not None:
            query = query.where(LtiPlatform.tenant_id == tenant)
        with self.db.session() as s:
            return [_info(row) for row in s.scalars(query)]

    def get(self, ident: str) -> PlatformInfo:
        """The platform of this id; ``NotFound`` when there is none."""
        ident = ident.strip() if isinstance(ident, str) else ""
        if _ID_RE.match(ident):
            with self.db.session() as s:
                row = s.get(LtiPlatform, ident)
                if row is not None:
                    return _info(row)
        raise unknown_platform(ident)

    def find(self, issuer: str, client_id: str | None) -> PlatformInfo | None:
        """The registration a launch's ``iss`` and ``aud`` (client id) name. Without a client id
        (login initiation may omit it): the issuer's only registration, None when it has several."""
        if not isinstance(issuer, str) or not issuer or len(issuer) > 500 or "\x00" in issuer:
            return None
        query = select(LtiPlatform).where(LtiPlatform.issuer == issuer)
        if client_id is not None:
            if not isinstance(client_id, str) or len(client_id) > 255 or "\x00" in client_id:
                return None
            query = query.where(LtiPlatform.client_id == client_id)
        with self.db.session() as s:
            rows = s.scalars(query.limit(2)).all()
            return _info(rows[0]) if len(rows) == 1 else None

    def remove(self, ident: str) -> PlatformInfo:
        """Delete the registration, its pending logins and its open sessions; its courses (and
        their documents) stay, for a platform registered again."""
        info = self.get(ident)
        with self.db.session() as s:
            s.execute(delete(LtiState).where(LtiState.platform_id == info.id))
            s.execute(delete(LtiSession).where(LtiSession.platform_id == info.id))
            s.execute(delete(LtiPlatform).where(LtiPlatform.id == info.id))
        return info

    def add_deployment(self, ident: str, deployment_id: str) -> PlatformInfo:
        """Accept launches from one more deployment of the tool (adding one twice is harmless)."""
        deployment = check_deployment_id(deployment_id)
        info = self.get(ident)
        with self.db.session() as s:
            row = s.scalar(select(LtiPlatform).where(LtiPlatform.id == info.id).with_for_update())
            if row is None:
                raise unknown_platform(ident)
            current = [str(d) for d in row.deployment_ids or ()]
            if deployment not in current:
                if len(current) >= MAX_DEPLOYMENTS:
                    raise InvalidInput(f"at most {MAX_DEPLOYMENTS} deployment ids per platform")
                row.deployment_ids = [*current, deployment]
            s.flush()
            return _info(row)
