"""The ``knowledge_search`` tool: passages from the tenant's collections, with sources.

Only passages above the relevance threshold are returned, so an empty ``sources`` list
means "nothing relevant" and the agent says so instead of inventing an answer.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from pydantic import Field

from assistant import Source, ToolContext, ToolError, ToolResult, tool
from assistant.config import get_settings
from knowledge import CollectionNotFound, EmbedderMismatch, Hit, KnowledgeError

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


def _summary(hits: list[Hit], collection: str | None, lang: str = "en") -> str:
    """What the step shows and the model reads, in the learner's language."""
    zh = lang == "zh"
    if zh:
        searched = f"文档集 {collection!r}" if collection else "你的文档集"
    else:
        searched = f"collection {collection!r}" if collection else "your document collections"
    if not hits:
        return (f"在{searched}中没有找到与问题相关的段落。" if zh
                else f"No passage relevant to the question was found in {searched}.")
    lines = [f"从{searched}中找到 {len(hits)} 段相关内容：" if zh
             else f"{len(hits)} relevant passage(s) from {searched}:"]
    for n, h in enumerate(hits, 1):
        where = " > ".join(p for p in (h.heading,) if p) or h.title
        if zh:
            page = f"，第 {h.page} 页" if h.page else ""
            lines.append(f"[{n}] {h.source}{page} — {where}（相关度 {h.relevance:.2f}）")
        else:
            page = f", page {h.page}" if h.page else ""
            lines.append(f"[{n}] {h.source}{page} — {where} (relevance {h.relevance:.2f})")
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
    if bound:
        # the page's collection was set by the caller; an argument (which a model may have
        # written) never searches elsewhere
        if collection is not None and collection != bound:
            log.info("knowledge_search: argument collection %r ignored; the caller set %r",
                     collection[:60], bound)
        collection = bound
    query = clean_query(query)
    if not query:
        raise ToolError("the search query is empty: ask a question about the documents",
                        zh="搜索内容为空：请提一个关于文档的问题")
    if collection is not None and _UNUSABLE.search(collection):
        raise ToolError(f"there is no document collection named {_shown(collection)}",
                        zh=f"没有名为 {_shown(collection)} 的文档集")
    kb = knowledge_base(settings)
    try:
        hits = kb.search(tenant, query, None if collection is None else [collection], k=k)
    except CollectionNotFound:
        raise ToolError(f"there is no document collection named {_shown(str(collection))}",
                        zh=f"没有名为 {_shown(str(collection))} 的文档集") from None
    except EmbedderMismatch as exc:
        raise ToolError(f"the collection cannot be searched right now: {exc}",
                        zh="这个文档集暂时无法检索，请联系管理员") from None
    except KnowledgeError as exc:
        raise ToolError(str(exc)[:300]) from None
    sources = [Source(title=_title(h), text=h.text, uri=h.source, score=h.score,
                      metadata={"page": h.page, "heading": h.heading, "collection": h.collection,
                                "relevance": h.relevance})
               for h in hits]
    lang = getattr(context, "language", None) or "en"
    return ToolResult(data=[h.to_dict() for h in hits], summary=_summary(hits, collection, lang),
                      model=kb.embedder.name, model_version=TOOL_VERSION,
                      confidence=hits[0].score if hits else None, sources=sources)
