"""Logging for a Mentorly process: one handler on the root logger, configured from settings.

``configure_logging(settings)`` is called once where a process starts (the command line, the
composition root); library code only ever calls ``logging.getLogger(__name__)``. Each line has
a timestamp, the level, the logger's name and the message, and the id of the HTTP request it
was written for (``request_id``, set by ``assistant.api.request_ids``). With
``log_format = "json"`` (``MENTORLY_LOG_FORMAT=json``) each record is one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from assistant.errors import ConfigError

if TYPE_CHECKING:
    from assistant.config import Settings

request_id: ContextVar[str | None] = ContextVar("mentorly_request_id", default=None)
"""The id of the HTTP request being served in this context (``None`` outside one)."""

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
HANDLER_NAME = "mentorly"
QUIET = ("httpx", "httpcore", "urllib3", "multipart", "PIL", "faiss", "sentence_transformers",
         "transformers", "huggingface_hub", "gradio", "matplotlib")
"""Libraries that log every request, file or library load at INFO: kept at WARNING unless the
level is DEBUG (sentence-transformers also shows a progress bar on every ``encode`` when its
logger is at INFO, which would print into CLI output)."""


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``None`` outside a request) and ``record.request_tag``
    (`` [req <id>]`` or empty) to every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        setattr(record, "request_id", rid)  # noqa: B010 - LogRecord declares no such field
        setattr(record, "request_tag", f" [req {rid}]" if rid else "")  # noqa: B010
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id
    (when in a request), exception (when one is attached)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            data["request_id"] = rid
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (a test runner or
    ``click.testing.CliRunner`` swaps it), like ``logging.lastResort``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def parse_level(value: str) -> int:
    name = str(value).strip().upper()
    if name not in LEVELS:
        raise ConfigError(f"invalid log_level {value!r} (env MENTORLY_LOG_LEVEL): "
                          f"use one of {', '.join(LEVELS)}")
    return int(getattr(logging, name))


def configure_logging(settings: Settings | None = None, *, level: str | None = None,
                      fmt: str | None = None, stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace) Mentorly's handler on the root logger; safe to call again.

    ``level`` and ``fmt`` override ``settings.log_level`` and ``settings.log_format``;
    ``stream`` (default: the current ``sys.stderr``) is where the lines go. Other handlers
    (a test runner's) are left alone. Returns the handler."""
    level_name = level or (settings.log_level if settings is not None else "INFO")
    form = fmt or (settings.log_format if settings is not None else "text")
    numeric = parse_level(level_name)
    handler: logging.Handler = (logging.StreamHandler(stream) if stream is not None
                                else _StderrHandler())
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING) if numeric > logging.DEBUG
                                         else logging.NOTSET)
    return handler
