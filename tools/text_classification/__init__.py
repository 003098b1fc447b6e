"""Text classification plugin: the ``classify_text`` tool (zero-shot labels, a trained
sentiment model, custom classifiers; English and Chinese on the multilingual embedder),
``mentorly train text``, and the model hooks (prepare, list, delete). Custom models belong to
the tenant that trained them; the sentiment preset is shared.

Heavy imports (scikit-learn, the embedder) happen when a hook or the tool first needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant import Tool, hookimpl


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    from .tool import classify_text

    register(classify_text)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``text`` under the ``train`` group (or ``train-text`` if the CLI has no group)."""
    import click

    from .cli import train_text

    train = cli.commands.get("train") if isinstance(cli, click.Group) else None
    if isinstance(train, click.Group):
        train.add_command(train_text, "text")
    else:
        cli.add_command(train_text, "train-text")


@hookimpl
def list_models(settings: Any, tenant: str) -> list[dict[str, Any]]:
    from .artifacts import list_text_models

    return list_text_models(settings, tenant)


@hookimpl
def delete_model(settings: Any, name: str, tenant: str) -> bool:
    from assistant.errors import InvalidInput, NotFound

    from .artifacts import delete_text_model

    try:
        delete_text_model(settings, name, tenant)
    except (InvalidInput, NotFound):
        return False  # not a text model this plugin wrote
    return True


@hookimpl
def prepare_models(settings: Any, progress: bool) -> str | None:
    from .sentiment import prepare_sentiment

    model = prepare_sentiment(settings, progress=progress)
    metrics = model.meta.get("metrics", {})
    return (f"text sentiment model ready: v{model.version} "
            f"(cv accuracy {metrics.get('cv_accuracy')}, {metrics.get('n_examples')} reviews)")
