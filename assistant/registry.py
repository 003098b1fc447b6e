"""The tool registry: name → Tool, with a version counter so the router knows when to retrain."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from assistant.errors import ConfigError, NotFound
from assistant.tooling import Tool


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()
        self.version = 0

    def add(self, tool: Tool) -> None:
        with self._lock:
            if tool.name in self._tools:
                other = self._tools[tool.name].plugin
                raise ConfigError(
                    f"tool {tool.name!r} from plugin {tool.plugin!r} is already registered by {other!r}"
                )
            self._tools[tool.name] = tool
            self.version += 1

    def remove(self, name: str) -> None:
        with self._lock:
            if self._tools.pop(name, None) is not None:
                self.version += 1

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            available = ", ".join(self.names()) or "none"
            raise NotFound(f"no tool named {name!r}; available: {available}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def by_capability(self, capability: str) -> Tool | None:
        return next((t for t in self if t.capability == capability), None)
