"""The ``knowledge_search`` tool: passages from the tenant's collections, with sources.

Only passages above the relevance threshold are returned, so an empty ``sources`` list
means "nothing relevant" and the agent says so instead of inventing an answer.

Course-first (``ToolContext.fallback_collections`` set by the caller, e.g. an LTI course): the
course's own collection is searched first; the shared collections only when it has no
relevant passage or no documents yet. Citations say which collection a passage came from.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from pydantic import Field

from assistant import Source, ToolContext, ToolError, ToolResult, tool
from assistant.config import get_settings
from knowledge import CollectionNotFound, EmbedderMismatch, Hit, KnowledgeBase, KnowledgeError

from .examples import EXAMPLES
from .service import knowledge_base

log = logging.getLogger(__name__)

TOOL_VERSION = "1.0.0"
MAX_QUERY_CHARS = 2000
_UNUSABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""NUL, control characters and lone surrogates: no encoder accepts a lone surrogate (the
embedder would raise ``UnicodeEncodeError``), and control characters carry no meaning."""


def clean_query(text: str) -> str:
    """Unusable characters removed, whitespace collapsed, cut to ``MAX_QUERY_CHARS``."""
    head = _UNUSABLE.sub(" ", text[: 4 * MAX_QUERY_CHARS])  # never split() a megabyte
    return " ".join(head.split())[:MAX_QUERY_CHARS]


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def extract_query(message: str, context: ToolContext) -> dict[str, Any]:
    """The user's message is the query; no LLM needed."""
    query = clean_query(message or "")
    if not query:
        raise ToolError("there is no question to search the documents for",
                        zh="没有可以在文档中查找的问题")
    return {"query": query}


def _searched(collection: str | None, lang: str) -> str:
    if lang == "zh":
        return f"文档集 {collection!r}" if collection else "你的文档集"
    return f"collection {collection!r}" if collection else "your document collections"


def _fallback_searched(course: str | None, shared: list[str], found: bool, lang: str) -> str:
    """How a course-first search names where it looked (the course's collection had nothing)."""
    names = ", ".join(repr(n) for n in shared)
    if lang == "zh":
        if not shared:
            return _searched(course, lang) if course else "课程文档集"
        where = f"共享文档集 {names}"
        if not found:
            return f"{_searched(course, lang)}和{where}" if course else where
        return f"{where}（课程自己的文档中没有相关内容）" if course else where
    if not shared:
        return _searched(course, lang) if course else "the course's collection"
    where = f"the shared collection{'s' if len(shared) > 1 else ''} {names}"
    if not found:
        return f"{_searched(course, lang)} or {where}" if course else where
    return f"{where} (the course's own documents had nothing relevant)" if course else where


def _summary(hits: list[Hit], collection: str | None, lang: str = "en", *,
             searched: str | None = None, name_collections: bool = False) -> str:
    """What the step shows and the model reads, in the learner's language. ``searched`` names
    where the search looked (default: ``collection``); ``name_collections`` adds each
    passage's collection to its line."""
    zh = lang == "zh"
    searched = searched or _searched(collection, lang)
    if not hits:
        return (f"在{searched}中没有找到与问题相关的段落。" if zh
                else f"No passage relevant to the question was found in {searched}.")
    lines = [f"从{searched}中找到 {len(hits)} 段相关内容：" if zh
             else f"{len(hits)} relevant passage(s) from {searched}:"]
    for n, h in enumerate(hits, 1):
        where = " > ".join(p for p in (h.heading,) if p) or h.title
        if zh:
            page = f"，第 {h.page} 页" if h.page else ""
            col = f"（文档集 {h.collection!r}）" if name_collections else ""
            lines.append(f"[{n}] {h.source}{page}{col} — {where}（相关度 {h.relevance:.2f}）")
        else:
            page = f", page {h.page}" if h.page else ""
            col = f" (collection {h.collection!r})" if name_collections else ""
            lines.append(f"[{n}] {h.source}{page}{col} — {where} (relevance {h.relevance:.2f})")
    return "\n".join(lines)


def _title(hit: Hit) -> str:
    section = hit.heading.split(" > ")[-1] if hit.heading else None
    return f"{hit.title} — {section}" if section and section != hit.title else hit.title


@tool(name="knowledge_search", capability="knowledge", examples=EXAMPLES, version=TOOL_VERSION,
      extractor=extract_query)
def knowledge_search(
    query: str,
    collection: str | None = None,
    k: Annotated[int, Field(ge=1, le=20)] = 5,
    context: ToolContext | None = None,
) -> ToolResult:
    """Search the organisation's own documents (course handbooks, syllabi, policies, notes)
    and return the relevant passages with their sources."""
    # without a context (called as a plain function, e.g. by a script): the process's settings
    settings = context.settings if context is not None else get_settings()
    tenant = (context.tenant if context is not None else None) or settings.default_tenant
    if collection is not None and not collection.strip():
        collection = None  # a blank name is no name: the default collections
    bound = getattr(context, "collection", None)
    fallbacks: tuple[str, ...] | None = getattr(context, "fallback_collections", None)
    if bound or fallbacks is not None:
        # the page's collection was set by the caller; an argument (which a model may have
        # written) never searches elsewhere
        if collection is not None and collection != bound:
            log.info("knowledge_search: argument collection %r ignored; the caller set %r",
                     collection[:60], bound)
        collection = bound or None
    query = clean_query(query)
    if not query:
        raise ToolError("the search query is empty: ask a question about the documents",
                        zh="搜索内容为空：请提一个关于文档的问题")
    if collection is not None and _UNUSABLE.search(collection):
        raise ToolError(f"there is no document collection named {_shown(collection)}",
                        zh=f"没有名为 {_shown(collection)} 的文档集")
    kb = knowledge_base(settings)
    lang = getattr(context, "language", None) or "en"
    if fallbacks is not None:
        hits, summary = _course_first(kb, tenant, query, collection, fallbacks, k, lang)
    else:
        hits = _search(kb, tenant, query, None if collection is None else [collection], k)
        summary = _summary(hits, collection, lang)
    sources = [Source(title=_title(h), text=h.text, uri=h.source, score=h.score,
                      metadata={"page": h.page, "heading": h.heading, "collection": h.collection,
                                "relevance": h.relevance})
               for h in hits]
    return ToolResult(data=[h.to_dict() for h in hits], summary=summary,
                      model=kb.embedder.name, model_version=TOOL_VERSION,
                      confidence=hits[0].score if hits else None, sources=sources)


def _search(kb: KnowledgeBase, tenant: str, query: str, names: list[str] | None, k: int, *,
            missing_ok: bool = False) -> list[Hit]:
    """``kb.search`` with the library's errors as the tool's (a sentence for the learner);
    with ``missing_ok`` a collection that does not exist yet reads as empty."""
    try:
        return kb.search(tenant, query, names, k=k)
    except CollectionNotFound:
        if missing_ok:
            return []
        missing = _shown(", ".join(names or ()))
        raise ToolError(f"there is no document collection named {missing}",
                        zh=f"没有名为 {missing} 的文档集") from None
    except EmbedderMismatch as exc:
        raise ToolError(f"the collection cannot be searched right now: {exc}",
                        zh="这个文档集暂时无法检索，请联系管理员") from None
    except KnowledgeError as exc:
        raise ToolError(str(exc)[:300]) from None


def _course_first(kb: KnowledgeBase, tenant: str, query: str, course: str | None,
                  fallbacks: tuple[str, ...], k: int, lang: str) -> tuple[list[Hit], str]:
    """The course's collection, then (only when it has no relevant passage, or no documents
    yet) the shared collections that exist; returns the hits and the step's summary."""
    if course:
        # a course without documents has no collection yet: its first upload makes it
        hits = _search(kb, tenant, query, [course], k, missing_ok=True)
        if hits:
            return hits, _summary(hits, course, lang)
    shared = [name for name in dict.fromkeys(fallbacks)
              if name and name != course and not _UNUSABLE.search(name)]
    if shared:
        try:
            usable = {c.name for c in kb.collection_rows(tenant)}  # built with this embedder
        except KnowledgeError as exc:
            raise ToolError(str(exc)[:300]) from None
        skipped = [name for name in shared if name not in usable]
        if skipped:
            log.info("knowledge_search: shared collections %s skipped (missing, or built with "
                     "another embedder)", ", ".join(repr(n[:60]) for n in skipped))
        shared = [name for name in shared if name in usable]
    hits = _search(kb, tenant, query, shared, k) if shared else []
    searched = _fallback_searched(course, shared, bool(hits), lang)
    return hits, _summary(hits, course, lang, searched=searched, name_collections=bool(hits))
