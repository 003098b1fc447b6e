"""Mentorly's core. Plugins import only what is re-exported here."""

from assistant.errors import InvalidInput, MentorlyError, ToolError
from assistant.plugins import hookimpl
from assistant.tooling import Source, Tool, ToolContext, ToolResult, Upload, tool

__all__ = [
    "InvalidInput",
    "MentorlyError",
    "Source",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "Upload",
    "hookimpl",
    "tool",
]
