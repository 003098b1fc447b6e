"""Personalised recommendation plugin: the ``recommend_resources`` tool, ``mentorly rec``
(import, event, train, for), and the demo catalog with simulated learners, loaded by
``mentorly models prepare``.

Heavy imports (scipy, the embedder, the database tables) happen when a hook first needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant import Tool, hookimpl


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    from .tool import recommend_resources

    register(recommend_resources)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import rec

    cli.add_command(rec, "rec")


@hookimpl
def prepare_models(settings: Any, progress: bool) -> str | None:
    """Load the demo catalog and learners into the default tenant on first run; train if needed."""
    from .demo import load_demo
    from .model import load_model, train_model

    tenant = settings.default_tenant
    catalog_report, event_report = load_demo(tenant, settings)
    model = load_model(settings, tenant)
    if model is None or catalog_report is not None:
        model = train_model(tenant, settings, progress=progress)
    loaded = ""
    if catalog_report is not None:
        loaded = (f"demo loaded ({catalog_report.imported} resources, "
                  f"{event_report.accepted if event_report else 0} events); ")
    return (f"recommendation ({tenant}): {loaded}model v{model.version} {model.meta.get('cf')} "
            f"on {model.meta.get('n_events')} events, {model.meta.get('n_items')} resources")


@hookimpl
def settings_sections() -> list[type]:
    from .settings import RecommendationSettings

    return [RecommendationSettings]


@hookimpl
def register_routes(app: Any, runtime: Any) -> None:
    """``/api/catalog``, ``/api/events``, ``/api/recommendations`` (see ``api.py`` for scopes)."""
    from .api import install

    install(app, runtime)
