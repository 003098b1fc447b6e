"""One error shape for every failure: ``{"error": {"type": ..., "message": ...}}``.

Product errors (``MentorlyError``), FastAPI's request validation, Starlette's HTTP errors
(unknown route, wrong method) and anything unexpected are all mapped here, in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant import errors
from assistant.errors import MentorlyError, RateLimited, Unauthorized

log = logging.getLogger(__name__)

_HTTP_TYPES: dict[int, str] = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 421: "misdirected_request", 422: "invalid_input",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mentorly"'}


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message}}


def error_response(error_type: str, message: str, status_code: int,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(error_type, message), status_code=status_code, headers=headers)


def status_for(error_type: str) -> int:
    """The HTTP status of a ``MentorlyError`` subclass named by its ``error_type`` (events carry
    only the type); 500 when none matches."""
    stack: list[type[MentorlyError]] = [errors.MentorlyError]
    while stack:
        cls = stack.pop()
        if cls.error_type == error_type:
            return cls.status_code
        stack.extend(cls.__subclasses__())
    return 500


def mentorly_error_response(exc: MentorlyError) -> JSONResponse:
    headers: dict[str, str] | None = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, Unauthorized):
        headers = dict(BEARER_CHALLENGE)
    return error_response(exc.error_type, exc.message, exc.status_code, headers)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request body"
        if err.get("type") == "json_invalid":
            return f"the request body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}"
        problems.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MentorlyError)
    async def _mentorly_error(_request: Request, exc: MentorlyError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("%s: %s", exc.error_type, exc.message)
        return mentorly_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_input", _validation_message(exc), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _HTTP_TYPES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint (see /docs)"
        return error_response(error_type, message, exc.status_code, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response("internal_error", "internal error; the server log has the details", 500)
