"""Catalog import from CSV or JSON: row-by-row validation, a report of rejected rows, and
detection of cyclic prerequisites (the links inside a cycle are dropped and reported, because
no learner could ever meet them)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistant.errors import InvalidInput

from .store import LEVELS, CatalogItem, database

LANGUAGES = ("en", "zh", "multi")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_LEVEL_ALIASES = {"初级": "beginner", "入门": "beginner", "中级": "intermediate", "高级": "advanced",
                  "basic": "beginner", "introductory": "beginner", "advance": "advanced"}
_LANGUAGE_ALIASES = {"english": "en", "chinese": "zh", "both": "multi", "en+zh": "multi",
                     "bilingual": "multi", "中文": "zh", "英文": "en", "双语": "multi"}
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class Resource:
    id: str
    title: str
    subject: str
    level: str
    title_zh: str = ""
    description: str = ""
    description_zh: str = ""
    language: str = "multi"
    tags: list[str] = field(default_factory=list)
    prerequisites: list[str] = field(default_factory=list)
    duration_min: int | None = None


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    cycles: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"imported {self.imported} new and updated {self.updated} resources; "
               f"rejected {len(self.rejected)} rows"]
        out += [f"row {row}: {reason}" for row, reason in self.rejected]
        out += ["cyclic prerequisites (links ignored): " + " -> ".join(c + c[:1])
                for c in self.cycles]
        out += self.warnings
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated,
                "rejected": [{"row": r, "reason": why} for r, why in self.rejected],
                "cycles": self.cycles, "warnings": self.warnings}


def _split_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in re.split(r"[;|]", str(value)) if v.strip()]


def _text(row: dict[str, Any], key: str, lang: str) -> str:
    """``title`` may be a string or ``{"en": ..., "zh": ...}`` (JSON)."""
    value = row.get(key)
    if isinstance(value, dict):
        return str(value.get(lang) or "").strip()
    if lang == "zh":
        return str(row.get(f"{key}_zh") or "").strip()
    return str(value or "").strip()


def parse_row(row: dict[str, Any]) -> Resource:
    """One resource from a row, or ``ValueError`` saying what is wrong."""
    rid = str(row.get("id") or "").strip()
    if not rid:
        raise ValueError("missing id")
    if not _ID.match(rid):
        raise ValueError(f"invalid id {rid!r} (letters, digits, _ . : - ; at most 128)")
    title, title_zh = _text(row, "title", "en"), _text(row, "title", "zh")
    if not (title or title_zh):
        raise ValueError("missing title")
    subject = str(row.get("subject") or "").strip().lower()
    if not subject:
        raise ValueError("missing subject")
    raw_level = str(row.get("level") or "").strip().lower()
    level = _LEVEL_ALIASES.get(raw_level, raw_level)
    if level not in LEVELS:
        raise ValueError(f"unknown level {raw_level!r} (use {', '.join(LEVELS)})")
    raw_lang = str(row.get("language") or "multi").strip().lower()
    language = _LANGUAGE_ALIASES.get(raw_lang, raw_lang)
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {raw_lang!r} (use {', '.join(LANGUAGES)})")
    duration: int | None = None
    raw_duration = row.get("duration_min", row.get("duration"))
    if raw_duration not in (None, ""):
        try:
            duration = int(float(str(raw_duration)))
        except ValueError:
            raise ValueError(f"duration {raw_duration!r} is not a number of minutes") from None
        if not 0 < duration <= 100_000:
            raise ValueError(f"duration {duration} is out of range")
    prereqs = _split_list(row.get("prerequisites"))
    if rid in prereqs:
        raise ValueError("a resource cannot be its own prerequisite")
    return Resource(id=rid, title=title or title_zh, title_zh=title_zh,
                    description=_text(row, "description", "en"),
                    description_zh=_text(row, "description", "zh"), subject=subject, level=level,
                    language=language, tags=_split_list(row.get("tags")),
                    prerequisites=list(dict.fromkeys(prereqs)), duration_min=duration)


def read_rows(path: Path) -> list[tuple[int, dict[str, Any] | None, str]]:
    """(row number, row or None, why unreadable) from a .csv, .json or .jsonl file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"catalog file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"catalog file is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(text)
    if suffix == ".jsonl":
        out: list[tuple[int, dict[str, Any] | None, str]] = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                out.append(_json_row(n, line))
        return out
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path.name} is not valid JSON: {exc}") from None
        items = data.get("resources") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InvalidInput('a JSON catalog is a list of objects or {"resources": [...]}')
        return [(n, item, "") if isinstance(item, dict) else (n, None, "not an object")
                for n, item in enumerate(items, start=1)]
    raise InvalidInput(f"unsupported catalog format {suffix or '(none)'}: use .csv, .json or .jsonl")


def _json_row(n: int, line: str) -> tuple[int, dict[str, Any] | None, str]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return n, None, f"not valid JSON ({exc.msg})"
    return (n, item, "") if isinstance(item, dict) else (n, None, "not an object")


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any] | None, str]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InvalidInput("the catalog CSV is empty") from None
    except csv.Error as exc:
        raise InvalidInput(f"the catalog CSV header cannot be read: {exc}") from None
    if "id" not in header or not ({"title", "title_zh"} & set(header)):
        raise InvalidInput("the catalog CSV needs at least the columns id, title, subject, level")
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    row_no = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row_no += 1
            out.append((row_no, None, f"unreadable CSV ({exc})"))
            continue
        row_no += 1
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            out.append((row_no, None, f"has {len(values)} fields, the header has {len(header)}"))
            continue
        out.append((row_no, dict(zip(header, values, strict=True)), ""))
    return out


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def validate_rows(rows: list[tuple[int, dict[str, Any] | None, str]]
                  ) -> tuple[list[Resource], ImportReport]:
    report = ImportReport()
    resources: dict[str, Resource] = {}
    first_row: dict[str, int] = {}
    for row_no, row, why in rows:
        if row is None:
            report.rejected.append((row_no, why))
            continue
        try:
            res = parse_row(row)
        except ValueError as exc:
            report.rejected.append((row_no, str(exc)))
            continue
        if res.id in resources:
            report.rejected.append((row_no, f"duplicate id {res.id!r} (first on row "
                                            f"{first_row[res.id]})"))
            continue
        resources[res.id] = res
        first_row[res.id] = row_no
    return list(resources.values()), report


def import_catalog(resources: list[Resource], report: ImportReport, *, tenant: str,
                   settings: Any = None) -> ImportReport:
    """Upsert the resources in one transaction, after checking prerequisites against the
    file and what the tenant already has."""
    db = database(settings)
    with db.session() as s:
        existing = {item.id: item for item in s.scalars(
            select(CatalogItem).where(CatalogItem.tenant == tenant))}
        known = set(existing) | {r.id for r in resources}
        for res in resources:
            missing = [p for p in res.prerequisites if p not in known]
            if missing:
                report.warnings.append(f"{res.id}: unknown prerequisites ignored: "
                                       f"{', '.join(missing)}")
                res.prerequisites = [p for p in res.prerequisites if p not in missing]
        graph = {i: list(item.prerequisites or []) for i, item in existing.items()}
        graph.update({r.id: list(r.prerequisites) for r in resources})
        report.cycles = find_cycles(graph)
        in_cycle = {n: set(c) for c in report.cycles for n in c}
        for res in resources:
            if res.id in in_cycle:
                res.prerequisites = [p for p in res.prerequisites if p not in in_cycle[res.id]]
        for item_id, item in existing.items():  # a new row may close a cycle with stored ones
            if item_id in in_cycle and item_id not in {r.id for r in resources}:
                item.prerequisites = [p for p in item.prerequisites or []
                                      if p not in in_cycle[item_id]]
        for res in resources:
            fields = {k: v for k, v in res.__dict__.items() if k != "id"}
            if res.id in existing:
                for key, value in fields.items():
                    setattr(existing[res.id], key, value)
                report.updated += 1
            else:
                s.add(CatalogItem(tenant=tenant, id=res.id, **fields))
                report.imported += 1
    return report


def import_file(path: Path, *, tenant: str, settings: Any = None) -> ImportReport:
    resources, report = validate_rows(read_rows(path))
    return import_catalog(resources, report, tenant=tenant, settings=settings)


def load_catalog(tenant: str, settings: Any = None) -> list[CatalogItem]:
    with database(settings).session() as s:
        return list(s.scalars(select(CatalogItem).where(CatalogItem.tenant == tenant)
                              .order_by(CatalogItem.id)))
