"""``mentorly kb``: ingest, list, search, delete, check, rebuild."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from assistant.config import get_settings
from assistant.errors import InvalidInput
from knowledge import FileOutcome

from .service import knowledge_base, product_errors

_MARKS = {"added": "+", "replaced": "~", "skipped": "=", "failed": "!"}


def _tenant(tenant: str | None) -> str:
    return tenant or get_settings().default_tenant


tenant_option = click.option("--tenant", default=None,
                             help="Tenant id (default: settings.default_tenant).")


@click.group("kb")
def kb() -> None:
    """Knowledge base: document collections searched by the assistant."""


@kb.command("ingest")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, file_okay=True, dir_okay=True))
@click.option("--collection", "-c", required=True, help="Collection name, e.g. a course code.")
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[Path, ...], collection: str, tenant: str | None, as_json: bool,
           quiet: bool) -> None:
    """Add files and folders (.txt .md .pdf .html .docx) to a collection; changed files are
    replaced, unchanged ones skipped.

    Each file gets its own line (added, replaced, skipped, or failed with the reason); a file
    that fails does not stop the others. Exit status: 0 when every file was ingested or
    skipped, 1 when any file failed (or nothing could be done)."""
    base = knowledge_base(get_settings())

    def show(outcome: FileOutcome) -> None:
        if not as_json:
            reason = f" ({outcome.reason})" if outcome.reason else ""
            chunks = f", {outcome.chunks} chunks" if outcome.action in ("added", "replaced") else ""
            click.echo(f"{_MARKS[outcome.action]} {outcome.action} {outcome.source}{chunks}{reason}")

    with product_errors():
        report = base.ingest(list(paths), _tenant(tenant), collection, progress=not quiet and not as_json,
                             on_file=show)
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        c = data["counts"]
        recovered = (f"; settled {report.recovered} documents from an interrupted ingest"
                     if report.recovered else "")
        click.echo(f"Collection {collection!r}: {c['added']} added, {c['replaced']} replaced, "
                   f"{c['skipped']} skipped, {c['failed']} failed; {report.chunks} chunks in "
                   f"{report.seconds:.1f} s{recovered}.")
    if report.count("failed"):
        raise click.exceptions.Exit(1)  # a script must notice the files that were left out


@kb.command("list")
@click.option("--collection", "-c", default=None, help="List this collection's documents.")
@tenant_option
@click.option("--json", "as_json", is_flag=True)
def list_(collection: str | None, tenant: str | None, as_json: bool) -> None:
    """List collections, or the documents of one collection."""
    base = knowledge_base(get_settings())
    with product_errors():
        rows: list[dict[str, Any]] = (base.documents(_tenant(tenant), collection) if collection
                                      else base.collections(_tenant(tenant)))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("No documents yet." if collection else
                   "No collections yet (add one with `mentorly kb ingest PATH --collection NAME`).")
    for r in rows:
        if collection:
            click.echo(f"{r['source']}  [{r['chunks']} chunks]  {r['title']}")
        else:
            models = r["embedder"] + (f" + {r['secondary']}" if r.get("secondary") else "")
            click.echo(f"{r['name']}: {r['documents']} documents, {r['chunks']} chunks "
                       f"({models})")


@kb.command("search")
@click.argument("query")
@click.option("--collection", "-c", "collections", multiple=True,
              help="Collection(s) to search (default: all the tenant's collections).")
@click.option("-k", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "dense"]), default=None,
              help="Default: the configured mode (hybrid).")
@tenant_option
@click.option("--json", "as_json", is_flag=True)
def search(query: str, collections: tuple[str, ...], k: int, mode: str | None, tenant: str | None,
           as_json: bool) -> None:
    """Print the passages relevant to QUERY (none when nothing is relevant)."""
    if not query.strip():
        raise InvalidInput("the search query is empty")
    base = knowledge_base(get_settings())
    with product_errors():
        hits = base.search(_tenant(tenant), query, list(collections) or None, k=k,
                           hybrid=None if mode is None else mode == "hybrid")
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return
    if not hits:
        click.echo("Nothing relevant found.")
    for n, h in enumerate(hits, 1):
        page = f" p.{h.page}" if h.page else ""
        click.secho(f"[{n}] {h.collection}/{h.source}{page} — {h.heading or h.title} "
                    f"(score {h.score:.3f}, relevance {h.relevance:.3f})", bold=True)
        click.echo(f"    {h.text[:300].replace(chr(10), ' ')}")


@kb.command("delete")
@click.argument("document")
@click.option("--collection", "-c", required=True)
@tenant_option
def delete(document: str, collection: str, tenant: str | None) -> None:
    """Delete DOCUMENT (its source name as shown by `kb list -c NAME`) from a collection."""
    base = knowledge_base(get_settings())
    with product_errors():
        n = base.delete_document(_tenant(tenant), collection, document)
    click.echo(f"Deleted {document} ({n} chunks) from {collection!r}.")


@kb.command("check")
@click.option("--collection", "-c", default=None)
@tenant_option
@click.option("--all-tenants", is_flag=True, help="Check every tenant's collections.")
@click.option("--json", "as_json", is_flag=True)
def check(collection: str | None, tenant: str | None, all_tenants: bool, as_json: bool) -> None:
    """Report whether each index file and the database agree (exit status 1 if not)."""
    base = knowledge_base(get_settings())
    with product_errors():
        results = base.check(None if all_tenants else _tenant(tenant), collection)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
    else:
        if not results:
            click.echo("No collections to check.")
        for r in results:
            state = "ok" if r.ok else "MISMATCH: " + "; ".join(r.problems)
            settled = f", settled {r.recovered} interrupted" if r.recovered else ""
            second = f" (+ {r.secondary_vectors} secondary)" if r.secondary else ""
            click.echo(f"{r.tenant}/{r.collection}: {r.documents} documents, {r.db_chunks} chunks, "
                       f"{r.index_vectors} vectors{second}{settled} — {state}")
    if any(not r.ok for r in results):
        if not as_json:
            click.echo("Repair with `mentorly kb rebuild --collection NAME`.", err=True)
        raise click.exceptions.Exit(1)


@kb.command("rebuild")
@click.option("--collection", "-c", required=True)
@tenant_option
@click.option("--quiet", is_flag=True)
def rebuild(collection: str, tenant: str | None, quiet: bool) -> None:
    """Re-embed every chunk of a collection into a fresh index (repairs `kb check` mismatches,
    or moves the collection to the configured embedder)."""
    base = knowledge_base(get_settings())
    with product_errors():
        result = base.rebuild(_tenant(tenant), collection, progress=not quiet)
    click.echo(f"Rebuilt {collection!r}: {result.index_vectors} vectors for {result.db_chunks} chunks "
               f"— {'ok' if result.ok else '; '.join(result.problems)}")
