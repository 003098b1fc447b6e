"""Storage: SQLAlchemy models and the queries the agent needs. SQLite by default."""

from assistant.storage import audit as _audit  # noqa: F401  (registers the audit_log table)
from assistant.storage import keys as _keys  # noqa: F401  (registers the api_keys table)
from assistant.storage import lti as _lti  # noqa: F401  (the lti_* tables)
from assistant.storage import rate_counts as _rate_counts  # noqa: F401  (the rate_counts table)
from assistant.storage import usage as _usage  # noqa: F401  (registers the usage table)
from assistant.storage import widget_keys as _widget_keys  # noqa: F401  (the widget_keys table)
from assistant.storage.db import Database, shared_database
from assistant.storage.models import Base, Conversation, Message, Tenant, User

__all__ = ["Base", "Conversation", "Database", "Message", "Tenant", "User", "shared_database"]
