"""Knowledge-search plugin: the ``knowledge_search`` tool, the ``mentorly kb`` commands, and
the demo handbook loaded by ``mentorly models prepare`` (hence by ``make serve``).

The library (``knowledge``) does the work; this package supplies settings, tenants and
product errors. Heavy imports happen when a hook first needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant import Tool, hookimpl


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    from .tool import knowledge_search

    register(knowledge_search)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import kb

    cli.add_command(kb, "kb")


@hookimpl
def prepare_models(settings: Any, progress: bool) -> str | None:
    from .demo import load_demo

    return load_demo(settings, progress=progress)


@hookimpl
def warm_up(settings: Any) -> None:
    """Open the knowledge base and load its second embedder (MiniLM loads on first use)."""
    from .service import knowledge_base

    kb = knowledge_base(settings)
    if kb.secondary is not None:
        kb.secondary.embed_queries(["warm-up"])


@hookimpl
def settings_sections() -> list[type]:
    from .settings import KnowledgeSettings

    return [KnowledgeSettings]


@hookimpl
def register_routes(app: Any, runtime: Any) -> None:
    """``/api/knowledge``: upload, list, delete, search (the ``knowledge`` scope)."""
    from assistant.api.readiness import readiness_of

    from . import service
    from .api import install

    install(app, runtime)
    # /readyz: this replica's caches of the collections it has opened are in sync
    readiness_of(app).watch_knowledge(lambda: service.open_bases(runtime.settings))
