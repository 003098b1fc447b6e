"""The error hierarchy. Each class carries the HTTP status it maps to (see ``api/errors.py``)."""

from __future__ import annotations


class MentorlyError(Exception):
    """Base of every error the product raises on purpose."""

    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str, *, zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh  # the same message in Chinese, when a learner may read it

    def localized(self, language: str) -> str:
        """The message in ``language`` ('zh' or 'en'), English when no translation was given."""
        return self.zh if language == "zh" and self.zh else self.message


class InvalidInput(MentorlyError):
    """The caller sent something unusable (empty message, bad arguments, wrong file type)."""

    status_code = 422
    error_type = "invalid_input"


class PayloadTooLarge(InvalidInput):
    status_code = 413
    error_type = "payload_too_large"


class UnsupportedMedia(InvalidInput):
    status_code = 415
    error_type = "unsupported_media_type"


class NotFound(MentorlyError):
    status_code = 404
    error_type = "not_found"


class ConfigError(MentorlyError):
    """Settings or installation are wrong; the operator must act."""

    status_code = 500
    error_type = "config_error"


class SchemaOutdated(ConfigError):
    """The database schema is older than the code (or from before migrations): the operator
    backs it up and runs ``mentorly db upgrade``, or enables ``database_auto_upgrade``."""


class ModelError(MentorlyError):
    """A model is missing, corrupted or failed to load or run."""

    status_code = 503
    error_type = "model_error"


class ToolError(MentorlyError):
    """A failure the user should read, raised by a tool (e.g. "this image is too small")."""

    status_code = 422
    error_type = "tool_error"


class ToolTimeout(ToolError):
    status_code = 504
    error_type = "tool_timeout"


class Unauthorized(MentorlyError):
    status_code = 401
    error_type = "unauthorized"


class Conflict(MentorlyError):
    """The thing is busy or changed under the request (a collection another replica is
    writing); trying again later succeeds."""

    status_code = 409
    error_type = "conflict"


class Forbidden(MentorlyError):
    status_code = 403
    error_type = "forbidden"


class RateLimited(MentorlyError):
    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
