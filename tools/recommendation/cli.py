"""``mentorly rec``: import a catalog, record events, retrain, recommend for a learner."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from assistant.config import get_settings
from assistant.errors import MentorlyError


def _tenant(tenant: str | None) -> str:
    return tenant or get_settings().default_tenant


def _fail(message: str) -> None:
    raise click.ClickException(message)


tenant_option = click.option("--tenant", default=None, help="tenant id (default: the setting)")


@click.group("rec")
def rec() -> None:
    """Personalised recommendations: catalog, learners' events, model."""


@rec.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def rec_import(file: Path, tenant: str | None, as_json: bool) -> None:
    """Import resources from a .csv, .json or .jsonl FILE (columns: id, title, title_zh,
    description, description_zh, subject, level, language, tags, prerequisites, duration_min;
    lists separated by ';'). Rejected rows and cyclic prerequisites are reported."""
    from .catalog import import_file

    try:
        report = import_file(file, tenant=_tenant(tenant), settings=get_settings())
    except MentorlyError as exc:
        _fail(exc.message)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if report.imported + report.updated == 0:
        sys.exit(1)


def _events_from_file(path: Path) -> list[Any]:
    if not path.is_file():
        _fail(f"events file not found: {path}")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(text.splitlines()))
    events: list[Any] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                events.append(f"line {n}: not valid JSON ({exc.msg})")  # rejected with its reason
    return events


@rec.command("event")
@click.option("--user", help="learner id")
@click.option("--resource", help="resource id")
@click.option("--kind", type=click.Choice(["view", "complete", "like", "rating", "quiz"]))
@click.option("--value", type=float, default=None, help="rating 1–5 or quiz score 0–100")
@click.option("--timestamp", default=None, help="epoch seconds or ISO-8601 (default: now)")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="a .jsonl or .csv of events instead (user, resource, kind, value, timestamp)")
@tenant_option
@click.option("--json", "as_json", is_flag=True)
def rec_event(user: str | None, resource: str | None, kind: str | None, value: float | None,
              timestamp: str | None, file: Path | None, tenant: str | None, as_json: bool) -> None:
    """Record one event (--user --resource --kind) or a file of them (--file)."""
    from .events import record_events

    if file is not None:
        events = _events_from_file(file)
    elif user and resource and kind:
        events = [{"user": user, "resource": resource, "kind": kind, "value": value,
                   "timestamp": timestamp}]
    else:
        raise click.UsageError("give --user, --resource and --kind, or --file")
    try:
        report = record_events(events, tenant=_tenant(tenant), settings=get_settings())
    except (MentorlyError, ValueError) as exc:
        _fail(getattr(exc, "message", str(exc)))
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        click.echo(report.line())
        for index in report.duplicates:
            click.echo(f"event {index}: duplicate, already recorded")
        for index, why in report.rejected:
            click.echo(f"event {index}: rejected: {why}")
    if report.rejected and not report.accepted and not report.duplicates:
        sys.exit(1)


@rec.command("train")
@tenant_option
def rec_train(tenant: str | None) -> None:
    """Retrain the tenant's model from all events (choose CF by validation, embed the catalog)."""
    from .model import train_model

    try:
        model = train_model(_tenant(tenant), get_settings(), progress=True)
    except (MentorlyError, ValueError) as exc:
        _fail(getattr(exc, "message", str(exc)))
    meta = model.meta
    click.echo(f"trained v{meta['version']}: {meta['cf']} on {meta['n_events']} events from "
               f"{meta['n_learners']} learners, {meta['n_items']} resources "
               f"(validation nDCG@10 {json.dumps(meta['selection'].get('candidates', {}))})")


@rec.command("for")
@click.argument("user")
@click.option("-k", "--k", "k", type=click.IntRange(1, 20), default=5)
@click.option("--subject", default=None)
@click.option("--level", default=None)
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en")
@tenant_option
@click.option("--json", "as_json", is_flag=True)
def rec_for(user: str, k: int, subject: str | None, level: str | None, lang: str,
            tenant: str | None, as_json: bool) -> None:
    """Recommend K resources for USER, with explanations."""
    from .recommender import recommend

    try:
        result = recommend(_tenant(tenant), user, k=k, subject=subject, level=level,
                           language=lang, settings=get_settings())
    except MentorlyError as exc:
        _fail(exc.message)
    if as_json:
        click.echo(json.dumps({"user": user, "items": [r.as_dict() for r in result.items],
                               "confidence": result.confidence,
                               "model_version": result.model.version}, ensure_ascii=False))
    else:
        click.echo(result.summary())
