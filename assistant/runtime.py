"""Everything one process needs, wired once: settings, plugins, registry, storage, uploads,
and the models (loaded lazily, on first use, so ``mentorly tools`` stays fast)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from assistant.config import Settings, load_settings
from assistant.plugins import build_registry, make_plugin_manager
from assistant.registry import ToolRegistry
from assistant.storage import Database, shared_database
from assistant.usage_hooks import UsageHooks

if TYPE_CHECKING:
    from assistant.admission import TurnGate
    from assistant.agent import Agent
    from assistant.llm.base import ChatBackend
    from assistant.router import Router
    from assistant.tool_calls import ToolCaller
    from assistant.uploads import UploadStore


@dataclass
class Runtime:
    settings: Settings
    plugin_manager: pluggy.PluginManager
    registry: ToolRegistry
    db: Database
    uploads: UploadStore
    usage_hooks: UsageHooks = field(default_factory=UsageHooks)
    """The one metering/quota hook: every tool call and every turn reports here."""
    _backend: ChatBackend | None = None
    _router: Router | None = None
    _agent: Agent | None = None
    _tool_calls: ToolCaller | None = None
    _turn_gate: TurnGate | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def backend(self) -> ChatBackend:
        if self._backend is None:
            from assistant.llm.factory import make_backend

            with self._lock:
                if self._backend is None:
                    self._backend = make_backend(self.settings)
        return self._backend

    @property
    def router(self) -> Router:
        if self._router is None:
            from assistant.router import Router
            from knowledge.embedders import shared_embedder

            with self._lock:
                if self._router is None:
                    embedder = shared_embedder(self.settings.embedder.name, self.settings.embedder.threads)
                    self._router = Router(self.registry, embedder, self.settings.router,
                                          cache_dir=self.settings.cache_dir / "router")
        return self._router

    @property
    def agent(self) -> Agent:
        if self._agent is None:
            from assistant.agent import Agent

            self._agent = Agent(settings=self.settings, registry=self.registry, db=self.db,
                                backend=lambda: self.backend, router=lambda: self.router,
                                tool_calls=self.tool_calls,
                                observers=[self.usage_hooks.turn_finished])
        return self._agent

    @property
    def turn_gate(self) -> TurnGate:
        """Admission for chat turns on every surface of this process (``assistant.admission``)."""
        if self._turn_gate is None:
            from assistant.admission import TurnGate

            with self._lock:
                if self._turn_gate is None:
                    server = self.settings.server
                    self._turn_gate = TurnGate(self.settings.active_turns, server.turn_queue,
                                               server.queue_timeout_s)
        return self._turn_gate

    @property
    def tool_calls(self) -> ToolCaller:
        """The one tool-call path (``assistant.tool_calls``), reporting to ``usage_hooks``."""
        if self._tool_calls is None:
            from assistant.tool_calls import ToolCaller

            with self._lock:
                if self._tool_calls is None:
                    self._tool_calls = ToolCaller(self.registry, self.settings, self.usage_hooks)
        return self._tool_calls


def build_runtime(
    settings: Settings | None = None,
    *,
    builtins: Iterable[str] = (),
    backend: ChatBackend | None = None,
    configure: Callable[[ToolRegistry], Any] | None = None,
) -> Runtime:
    """Build the process's runtime. ``builtins`` are the built-in plugin modules (the
    composition root, ``mentorly_app``, names them); ``backend`` replaces the configured LLM
    (tests); ``configure`` may add tools to the registry before anything uses it."""
    from assistant.uploads import UploadStore

    settings = settings or load_settings()
    settings.ensure_dirs()
    pm = make_plugin_manager(settings.plugins, builtins=builtins)
    registry = build_registry(pm)
    if configure is not None:
        configure(registry)
    uploads = UploadStore(settings.uploads_dir, settings.uploads.max_bytes, settings.uploads.max_pixels)
    return Runtime(settings=settings, plugin_manager=pm, registry=registry,
                   db=shared_database(settings.db_url, auto_upgrade=settings.database_auto_upgrade),
                   uploads=uploads, _backend=backend)
