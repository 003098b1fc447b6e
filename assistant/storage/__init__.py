"""Storage: SQLAlchemy models and the queries the agent needs. SQLite by default."""

from assistant.storage.db import Database, shared_database
from assistant.storage.models import Base, Conversation, Message, Tenant, User

__all__ = ["Base", "Conversation", "Database", "Message", "Tenant", "User", "shared_database"]
