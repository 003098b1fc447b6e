"""LTI registration over HTTP: ``/api/lti/platforms`` (admin scope) and the tool's public key
set at ``/lti/jwks``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["lti"])
