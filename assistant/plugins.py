"""Plugin loading (pluggy): built-ins and third-party packages register tools the same way.

Third-party packages declare a module under the ``mentorly`` entry-point group; the
module defines ``@hookimpl def register_tools(register): register(my_tool)``.
The ``plugins`` setting (``MENTORLY_PLUGINS='["tools.x", "my_pkg"]'``) restricts which load;
the empty list loads none.

The core does not know which plugins are built in: the composition root (``mentorly_app``)
passes its list as ``builtins``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from assistant.errors import ConfigError
from assistant.registry import ToolRegistry
from assistant.tooling import Tool, make_tool

ENTRY_POINT_GROUP = "mentorly"
hookspec = pluggy.HookspecMarker("mentorly")
hookimpl = pluggy.HookimplMarker("mentorly")

log = logging.getLogger(__name__)


class Hookspecs:
    """Signatures only: pluggy never runs these bodies, it calls the plugins' ``hookimpl``s
    (so the specs that return a value carry ``type: ignore[empty-body]``)."""

    @hookspec
    def register_tools(self, register: Callable[[Tool], None]) -> None:
        """Call ``register(tool)`` for each tool the plugin provides."""

    @hookspec
    def prepare_models(self, settings: Any, progress: bool) -> str | None:
        """Build or verify what the plugin needs on disk (called by ``mentorly models prepare``);
        return a one-line status."""

    @hookspec
    def list_models(self, settings: Any, tenant: str) -> list[dict[str, Any]]:  # type: ignore[empty-body]
        """Custom models the plugin manages that ``tenant`` may use: dicts with at least
        ``name`` and ``kind``. Never another tenant's (see ``assistant.model_store``)."""

    @hookspec
    def delete_model(self, settings: Any, name: str, tenant: str) -> bool:  # type: ignore[empty-body]
        """Delete ``tenant``'s custom model ``name`` if the plugin owns it; return whether it did."""

    @hookspec
    def register_commands(self, cli: Any) -> None:
        """Add click commands or groups to the ``mentorly`` CLI group ``cli``."""

    @hookspec
    def warm_up(self, settings: Any) -> None:
        """Load what the plugin's first call would otherwise wait for (models, indexes);
        ``mentorly serve`` calls it on a background thread at start-up."""

    @hookspec
    def settings_sections(self) -> list[type]:  # type: ignore[empty-body]
        """The plugin's own settings classes (``assistant.config.PluginSettings`` subclasses:
        a ``[section]`` table of the config file under ``MENTORLY_<SECTION>__*`` variables),
        so ``mentorly config show`` can print them."""

    @hookspec
    def register_routes(self, app: Any, runtime: Any) -> None:
        """Add HTTP routes to the FastAPI ``app`` (``app.include_router(...)``), called once by
        ``install_api`` after the core routers. Protect each operation with
        ``Depends(assistant.api.require(scope))``, act only for the returned ``Principal``'s
        tenant, raise ``assistant.errors`` classes (mapped to the one error shape) and give
        every operation an explicit ``operation_id``. ``runtime`` is the process's Runtime."""


def make_plugin_manager(
    plugins: Iterable[str] | None = None,
    *,
    builtins: Iterable[str] = (),
) -> pluggy.PluginManager:
    """Load the built-in modules (``builtins``, module names, in their order) and the entry
    points, filtered by ``plugins`` if given. Built-in tools are ordinary plugins, loaded like
    third-party ones; the composition root names them."""
    builtins = tuple(builtins)  # read twice below
    pm = pluggy.PluginManager("mentorly")
    pm.add_hookspecs(Hookspecs)
    wanted = None if plugins is None else set(plugins)
    for module_name in builtins:
        if wanted is None or module_name in wanted:
            _register_module(pm, module_name)
    if wanted is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for name in sorted(wanted - set(builtins)):
            if not _load_entry_point(pm, name):
                _register_module(pm, name)
    pm.check_pending()  # a misspelt hook name fails here, loudly
    return pm


def _register_module(pm: pluggy.PluginManager, module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"plugin {module_name!r} cannot be imported: {exc}") from exc
    if pm.get_plugin(module_name) is None:
        pm.register(module, name=module_name)


def _load_entry_point(pm: pluggy.PluginManager, name: str) -> bool:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            if pm.get_plugin(name) is None:
                pm.register(ep.load(), name=name)
            return True
    return False


def build_registry(pm: pluggy.PluginManager) -> ToolRegistry:
    registry = ToolRegistry()
    for impl in pm.hook.register_tools.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or str(getattr(impl.plugin, "__name__", "?"))

        def register(item: Tool | Callable[..., object], _plugin: str = plugin_name) -> None:
            t = item if isinstance(item, Tool) else make_tool(item)
            t.plugin = t.plugin or _plugin
            registry.add(t)

        impl.function(register=register)
    return registry


def load_registry(plugins: Iterable[str] | None = None, *, builtins: Iterable[str] = ()) -> ToolRegistry:
    return build_registry(make_plugin_manager(plugins, builtins=builtins))
