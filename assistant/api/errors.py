"""One error shape for every failure: ``{"error": {"type": ..., "message": ...}}``.

Product errors (``MentorlyError``), FastAPI's request validation, Starlette's HTTP errors
(unknown route, wrong method) and anything unexpected are all mapped here, in one place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant import errors
from assistant.api.cors import error_cors_headers
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
    """The one error shape; a 429 also says when to retry, in ``Retry-After`` and in the body
    (``retry_after_s``: a cross-origin page such as the widget cannot read the header)."""
    if isinstance(exc, RateLimited):
        body = error_body(exc.error_type, exc.message)
        body["error"]["retry_after_s"] = exc.retry_after_s
        return JSONResponse(body, status_code=exc.status_code,
                            headers={"Retry-After": str(exc.retry_after_s)})
    headers = dict(BEARER_CHALLENGE) if isinstance(exc, Unauthorized) else None
    return error_response(exc.error_type, exc.message, exc.status_code, headers)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


# pydantic's wording where it names no limit or is vague, from the error's ``ctx``
_PROBLEMS: dict[str, Callable[[dict[str, Any]], str]] = {
    "too_long": lambda c: f"at most {_count(c['max_length'], 'item')}, got {c['actual_length']:,}",
    "too_short": lambda c: f"at least {_count(c['min_length'], 'item')}, got {c['actual_length']:,}",
    "string_too_long": lambda c: f"at most {_count(c['max_length'], 'character')}",
    "string_too_short": lambda c: f"at least {_count(c['min_length'], 'character')}",
    "missing": lambda c: "required",
    "extra_forbidden": lambda c: "unknown field",
}
# the member names pydantic puts in a union's error locations ("str", "list[dict[str,any]]")
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|bytes|[\w-]+\[.*\])$")
_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header",
           "cookie": "cookie"}


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "messages", 0, "content")`` → ``messages[0].content``; ``("query", "k")`` →
    ``query parameter k``. Union member names and empty tags are left out."""
    parts = list(loc)
    place = ""
    if parts and parts[0] == "body":
        parts = parts[1:]
    elif parts and parts[0] in _PLACES:
        place, parts = _PLACES[parts[0]] + " ", parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part and not _UNION_MEMBER.match(str(part)):
            path = f"{path}.{part}" if path else str(part)
    return place + path if path else place.strip()


def _problem(err: Mapping[str, Any]) -> str:
    wording = _PROBLEMS.get(str(err.get("type")))
    if wording is not None:
        try:
            return wording(err.get("ctx", {}))
        except (KeyError, TypeError, ValueError):
            pass
    return str(err.get("msg", "invalid"))


def describe_errors(errs: Iterable[Mapping[str, Any]], limit: int = 5) -> str:
    """``field: problem; field: problem or problem`` (a union's alternatives joined by "or")."""
    problems: dict[str, list[str]] = {}
    for err in errs:
        found = problems.setdefault(field_path(err.get("loc", ())) or "request body", [])
        if (text := _problem(err)) not in found:
            found.append(text)
    shown = [f"{path}: {' or '.join(texts)}" for path, texts in list(problems.items())[:limit]]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _validation_message(exc: RequestValidationError, content_type: str | None = None) -> str:
    errs = list(exc.errors())
    for err in errs:
        if err.get("type") == "json_invalid":
            return f"the request body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}"
        if tuple(err.get("loc", ())) == ("body",):
            if isinstance(err.get("input"), bytes | bytearray):  # FastAPI parses only JSON types
                got = f"{content_type!r}" if content_type else "none"
                return (f"the request body must be JSON, sent with 'Content-Type: application/json' "
                        f"(Content-Type: {got})")
            if err.get("type") == "missing":
                return "the request body is missing: send JSON with 'Content-Type: application/json'"
    return "invalid request: " + describe_errors(errs)


def _input_problem(exc: Exception) -> str | None:
    """A message for an exception that bad input caused deep inside (the body guard stops these
    first; this is the fallback for inputs that reach a route another way)."""
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in str(exc.reason):
        return "text contains an unpaired UTF-16 surrogate: send valid Unicode"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to process"
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MentorlyError)
    async def _mentorly_error(_request: Request, exc: MentorlyError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("%s: %s", exc.error_type, exc.message)
        return mentorly_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_input",
                              _validation_message(exc, request.headers.get("content-type")), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _HTTP_TYPES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint (see /docs)"
        return error_response(error_type, message, exc.status_code, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Sent by ServerErrorMiddleware, outside every other middleware: CORS is added here.
        headers = error_cors_headers(request) or None
        problem = _input_problem(exc)
        if problem is not None:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, problem, type(exc).__name__)
            return error_response("invalid_input", problem, 422, headers)
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response("internal_error", "internal error; the server log has the details", 500,
                              headers)
