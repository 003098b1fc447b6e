"""The tool's own RSA key pairs: they sign what the tool sends a platform (the deep-linking
response) and are published at ``/lti/jwks`` for platforms to verify it.

The newest unretired key signs. ``rotate`` adds a new key and retires the others; a retired key
stays in the key set for ``retired_key_grace_s``, since platforms cache key sets. Private keys
are stored in ``lti_keys`` as PKCS#8 PEM, encrypted with ``[lti] key_passphrase`` when one is
set (a key stored before the passphrase was set stays unencrypted until the next rotation).

The first key is created on first use under a well-known id (``FIRST_KID``), inserted only if
missing, so two processes or replicas starting together end with one key, used by both."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import Select, or_, select, update

from assistant.audit import as_utc
from assistant.config import LtiSettings
from assistant.errors import ConfigError
from assistant.storage import Database
from assistant.storage.db import insert_missing
from assistant.storage.lti import LtiKey

FIRST_KID = "mentorly-1"
ALGORITHM = "RS256"
PASSPHRASE_VARIABLE = "MENTORLY_LTI__KEY_PASSPHRASE"


@dataclass(frozen=True)
class KeyInfo:
    """One key as ``mentorly lti keys`` lists it: never the private part."""

    kid: str
    created_at: datetime
    retired_at: datetime | None
    active: bool
    published: bool
    encrypted: bool


def _active_query() -> Select[str]:
    """The signing key's id: the newest unretired key (ties broken by kid, so every process
    picks the same one even when two were added at once)."""
    return (select(LtiKey.kid).where(LtiKey.retired_at.is_(None))
            .order_by(LtiKey.created_at.desc(), LtiKey.kid.desc()).limit(1))


def _new_kid(now: datetime) -> str:
    return f"mentorly-{now:%Y%m%d}-{secrets.token_hex(4)}"


class ToolKeys:
    recheck_s = 5.0
    """How long the signing key is used without asking the database whether another process
    rotated it."""

    def __init__(self, db: Database, settings: LtiSettings) -> None:
        self.db = db
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: dict[str, RSAPrivateKey] = {}
        self._active: tuple[str, float] | None = None  # kid, when it was last confirmed (monotonic)

    # -- signing ------------------------------------------------------------------------------

    def signing_key(self) -> tuple[str, RSAPrivateKey]:
        """The active key's id and private key; the first key pair is made on first use."""
        with self._lock:
            now = time.monotonic()
            if self._active is not None and now - self._active[1] < self.recheck_s:
                kid = self._active[0]
                return kid, self._loaded[kid]
            kid = self._current_kid()
            if kid not in self._loaded:
                self._loaded[kid] = self._load(kid)
            self._active = (kid, now)
            return kid, self._loaded[kid]

    def sign(self, claims: dict[str, Any]) -> str:
        """An RS256 JWT of ``claims`` whose header names the key (``kid``)."""
        kid, key = self.signing_key()
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    # -- publishing ---------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The public key set: the active key first, then retired keys still within the grace."""
        rows = self._published()
        if not any(retired is None for _, _, retired in rows):
            self._current_kid()  # no key yet: make the first one, so the set is never empty
            rows = self._published()
        return {"keys": [dict(jwk) for _, jwk, _ in rows]}

    def _published(self) -> list[tuple[str, dict[str, Any], datetime | None]]:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.retired_key_grace_s)
        query = (select(LtiKey.kid, LtiKey.public_jwk, LtiKey.retired_at)
                 .where(or_(LtiKey.retired_at.is_(None), LtiKey.retired_at > cutoff))
                 .order_by(LtiKey.retired_at.is_not(None), LtiKey.created_at.desc(), LtiKey.kid.desc()))
        with self.db.session() as s:
            return [(kid, jwk, retired) for kid, jwk, retired in s.execute(query)]

    # -- administration -----------------------------------------------------------------------

    def rotate(self) -> str:
        """A new active key; every other unretired key is retired now (still published for the
        grace period). Returns the new key's id."""
        now = datetime.now(UTC)
        kid = _new_kid(now)
        values = self._new_key(kid, now)
        with self.db.session() as s:
            s.execute(update(LtiKey).where(LtiKey.retired_at.is_(None)).values(retired_at=now))
            s.add(LtiKey(**values))
        with self._lock:
            self._active = None
        return kid

    def list(self) -> list[KeyInfo]:
        """Every stored key, newest first."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.retired_key_grace_s)
        query = (select(LtiKey.kid, LtiKey.created_at, LtiKey.retired_at, LtiKey.encrypted)
                 .order_by(LtiKey.created_at.desc(), LtiKey.kid.desc()))
        with self.db.session() as s:
            active = s.scalar(_active_query())
            rows = s.execute(query).all()
        found = []
        for kid, created, retired, encrypted in rows:
            retired_at = as_utc(retired) if retired is not None else None
            found.append(KeyInfo(kid=kid, created_at=as_utc(created), retired_at=retired_at,
                                 active=kid == active, encrypted=bool(encrypted),
                                 published=retired_at is None or retired_at > cutoff))
        return found

    # -- storage ------------------------------------------------------------------------------

    def _current_kid(self) -> str:
        """The active key's id, creating the first key if there is none."""
        with self.db.session() as s:
            kid = s.scalar(_active_query())
            first_exists = kid is None and s.get(LtiKey, FIRST_KID) is not None
        if kid is not None:
            return kid
        now = datetime.now(UTC)
        with self.db.session() as s:
            if first_exists:  # every key was retired by hand: a new one (not a first use)
                s.add(LtiKey(**self._new_key(_new_kid(now), now)))
            else:  # first use: whoever inserts first wins, the others read the winner's key
                insert_missing(s, LtiKey, self._new_key(FIRST_KID, now), ("kid",))
        with self.db.session() as s:
            kid = s.scalar(_active_query())
        if kid is None:
            raise ConfigError("could not create the tool's LTI signing key")
        return kid

    def _new_key(self, kid: str, now: datetime) -> dict[str, Any]:
        """A new RSA-2048 key pair as the values of an ``lti_keys`` row."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        passphrase = self.settings.key_passphrase.get_secret_value()
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
            else serialization.NoEncryption())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk = {"kty": "RSA", "n": public["n"], "e": public["e"], "kid": kid, "alg": ALGORITHM, "use": "sig"}
        return {"kid": kid, "private_pem": pem.decode("ascii"), "encrypted": bool(passphrase),
                "public_jwk": jwk, "created_at": now, "retired_at": None}

    def _load(self, kid: str) -> RSAPrivateKey:
        with self.db.session() as s:
            row = s.get(LtiKey, kid)
            if row is None:  # deleted between the two reads: unusual enough to say so
                raise ConfigError(f"the tool's LTI signing key {kid} disappeared from the database")
            pem, encrypted = row.private_pem, row.encrypted
        passphrase = self.settings.key_passphrase.get_secret_value()
        if encrypted and not passphrase:
            raise ConfigError(f"the tool's LTI signing key {kid} is stored encrypted: set "
                              f"{PASSPHRASE_VARIABLE} (or [lti] key_passphrase) to the passphrase "
                              "it was stored with")
        try:
            key = serialization.load_pem_private_key(
                pem.encode("ascii"), password=passphrase.encode() if encrypted else None)
        except (ValueError, TypeError):
            if not encrypted:
                raise ConfigError(f"the tool's LTI signing key {kid} cannot be read: run "
                                  "`mentorly lti rotate-key` for a new one") from None
            raise ConfigError(f"{PASSPHRASE_VARIABLE} does not decrypt the tool's LTI signing key "
                              f"{kid}: set the passphrase it was stored with (or, if it is lost, "
                              "run `mentorly lti rotate-key` with the new one)") from None
        if not isinstance(key, RSAPrivateKey):
            raise ConfigError(f"the tool's LTI signing key {kid} is not an RSA key")
        return key
