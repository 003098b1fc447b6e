"""LTI 1.3 launch routes: ``/lti/login`` (OIDC login initiation, GET and POST), ``/lti/launch``
(the platform's form post of the ``id_token``) and ``/lti/deep-link`` (an instructor's choice,
answered with a signed content item). The pages' templates come from the folder the
composition root names (``lti_pages``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI

from assistant.lti.sessions import LtiSessions
from assistant.runtime import Runtime

router = APIRouter(tags=["lti"])


def install_lti(app: FastAPI, runtime: Runtime, *, pages: Path | None = None) -> None:
    """The LTI routes and what they share on ``app.state``: ``lti_sessions`` and ``lti_pages``."""
    app.state.lti_sessions = LtiSessions(runtime.db, runtime.settings.lti.session_ttl_s)
    app.state.lti_pages = pages
    app.include_router(router)
