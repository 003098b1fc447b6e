"""An example third-party Mentorly plugin: the ``reading_time`` tool, registered through the
``mentorly`` entry point (``pyproject.toml``).

Laid out like the built-in tools (``tools/README.md``): this module holds the hook
implementations only, ``tool.py`` the tool, ``examples.py`` its routing examples.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant import Tool, hookimpl


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    from .tool import reading_time

    register(reading_time)
