"""What the core is told from outside: which plugins are built in and where the widget's
static files are, and the runtime built with them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

import ui
from assistant.config import Settings
from assistant.plugins import load_registry as load_core_registry
from assistant.plugins import make_plugin_manager as make_core_plugin_manager
from assistant.registry import ToolRegistry

if TYPE_CHECKING:
    from assistant.llm.base import ChatBackend
    from assistant.runtime import Runtime

# Built-in tools are ordinary plugins, loaded like third-party ones (``MENTORLY_PLUGINS`` picks
# among them by these names), in this order.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "tools.image_classification",
    "tools.text_classification",
    "tools.recommendation",
    "tools.knowledge_search",
)

WIDGET_STATIC = Path(ui.__file__).resolve().parent / "widget"  # widget.js, widget.css, demo.html
LTI_PAGES = Path(ui.__file__).resolve().parent / "lti"  # the launched pages' templates


def make_plugin_manager(plugins: Iterable[str] | None = None) -> pluggy.PluginManager:
    """``assistant.plugins.make_plugin_manager`` with the built-in plugins."""
    return make_core_plugin_manager(plugins, builtins=BUILTIN_PLUGINS)


def load_registry(plugins: Iterable[str] | None = None) -> ToolRegistry:
    """``assistant.plugins.load_registry`` with the built-in plugins."""
    return load_core_registry(plugins, builtins=BUILTIN_PLUGINS)


def build_runtime(
    settings: Settings | None = None,
    *,
    backend: ChatBackend | None = None,
    configure: Callable[[ToolRegistry], Any] | None = None,
) -> Runtime:
    """``assistant.runtime.build_runtime`` with the built-in plugins."""
    from assistant.runtime import build_runtime as build

    return build(settings, builtins=BUILTIN_PLUGINS, backend=backend, configure=configure)
