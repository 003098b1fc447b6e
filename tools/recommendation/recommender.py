"""Recommendations for one learner: blend, filter, diversify, explain.

The learner's history is read from the database at query time, so an event recorded a moment
ago already changes the next list (EASE scores are ``history @ B``). The model file is retrained
at once when the catalog gained resources it does not know (small catalogs only), in the
background once it is older than ``[recommendation] retrain_every_hours`` with new events
(``schedule.py``: on one replica at a time, under a database lease), and on demand by ``mentorly rec train``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from assistant.config import Settings, get_settings
from assistant.errors import InvalidInput, NotFound

from . import explain
from .catalog import _LEVEL_ALIASES, load_catalog
from .events import user_events
from .hybrid import Blend, interaction_weight
from .model import RecModel, load_model, train_model
from .schedule import retrain_due, retrain_in_background
from .settings import recommendation_settings
from .store import LEVELS, CatalogItem

MAX_K = 20
DIVERSITY_DECAY = 0.75
"""Each earlier pick from the same subject multiplies an item's score by this."""

_UNUSABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""Control characters and lone surrogates, removed from a free topic before it is embedded
(the embedder cannot encode a lone surrogate)."""

SUBJECT_ALIASES = {
    "math": "mathematics", "maths": "mathematics", "数学": "mathematics", "物理": "physics",
    "化学": "chemistry", "生物": "biology", "biology": "biology", "programming": "computer science",
    "coding": "computer science", "cs": "computer science", "编程": "computer science",
    "计算机": "computer science", "计算机科学": "computer science", "数据科学": "data science",
    "英语": "english", "语文": "chinese", "中文": "chinese", "汉语": "chinese",
    "历史": "history", "经济": "economics", "经济学": "economics", "economy": "economics",
}


@dataclass
class Recommendation:
    id: str
    title: str
    subject: str
    level: str
    score: float
    explanation: str
    duration_min: int | None = None
    language: str = "multi"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "subject": self.subject, "level": self.level,
                "score": round(self.score, 4), "explanation": self.explanation,
                "duration_min": self.duration_min, "language": self.language}


@dataclass
class RecommendationList:
    items: list[Recommendation]
    language: str
    model: RecModel
    weights: tuple[float, float, float]
    cold: bool
    relaxed_language: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """How much the list rests on this learner's own history (0.3 cold … 0.9)."""
        return round(0.3 + 0.6 * self.weights[0], 2)

    def summary(self) -> str:
        lang = self.language
        if not self.items:
            return explain.say("none", lang)
        lines = [explain.say("header_cold" if self.cold else "header", lang)]
        for n, r in enumerate(self.items, start=1):
            parts = [explain.subject_name(r.subject, lang), explain.level_name(r.level, lang)]
            if r.duration_min:
                parts.append(explain.say("minutes", lang, n=r.duration_min))
            if explain.lang_of(lang) == "zh":
                lines.append(f"{n}. {r.title}（{'，'.join(parts)}）——{r.explanation}")
            else:
                lines.append(f"{n}. {r.title} ({', '.join(parts)}) — {r.explanation}")
        if self.relaxed_language:
            lines.append(explain.say("relaxed", lang))
        return "\n".join(lines)


def normalise_level(level: str | None) -> str | None:
    if level is None or not level.strip():
        return None
    value = _LEVEL_ALIASES.get(level.strip().lower(), level.strip().lower())
    if value not in LEVELS:
        name = _UNUSABLE.sub("?", level.strip()[:40]) + ("…" if len(level.strip()) > 40 else "")
        raise InvalidInput(f"unknown level {name!r}: use beginner, intermediate or advanced",
                           zh=f"没有“{name}”这个级别：请用入门、中级或高级")
    return value


def resolve_subject(subject: str | None, subjects: set[str]) -> tuple[str | None, str | None]:
    """(catalog subject to filter on, or free topic to match by content)."""
    if subject is None or not subject.strip():
        return None, None
    text = re.sub(r"\s+", " ", subject.strip().lower())
    if text in subjects:
        return text, None
    alias = SUBJECT_ALIASES.get(text)
    if alias in subjects:
        return alias, None
    topic = " ".join(_UNUSABLE.sub(" ", subject[:800]).split())[:200]
    return None, topic or None


def _model_for(settings: Settings, tenant: str, catalog: list[CatalogItem]) -> RecModel:
    """The tenant's model: trained now if missing or if the catalog gained resources it does
    not know (small catalogs), retrained in the background when old with new events."""
    options = recommendation_settings()
    model = load_model(settings, tenant)
    ids = {c.id for c in catalog}
    stale = model is None or not ids <= set(model.item_ids)
    if stale and (model is None or len(ids) <= options.auto_retrain_max_items):
        return train_model(tenant, settings)
    assert model is not None
    if retrain_due(model, settings, tenant, options.retrain_every_hours):
        retrain_in_background(settings, tenant, options.retrain_every_hours)
    return model


def _topic_vector(topic: str | None, model: RecModel, settings: Settings) -> np.ndarray | None:
    if topic is None or model.content is None:
        return None
    from knowledge.embedders import shared_embedder

    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    return np.asarray(embedder.embed_queries([topic])[0], dtype=np.float32)


def _matches(item: CatalogItem, level: str | None, subject: str | None) -> bool:
    return (level is None or item.level == level) and (subject is None or item.subject == subject)


def _eligible(item: CatalogItem, completed: set[str], known: set[str], level: str | None,
              subject: str | None) -> bool:
    if item.id in completed or not _matches(item, level, subject):
        return False
    return all(p in completed for p in item.prerequisites or [] if p in known)


def _diversify(order: list[int], scores: np.ndarray, subjects: list[str], k: int) -> list[int]:
    """Greedy: each pick discounts the rest of its subject by ``DIVERSITY_DECAY``."""
    chosen: list[int] = []
    counts: dict[str, int] = {}
    pool = list(order)
    while pool and len(chosen) < k:
        best = max(pool, key=lambda j: scores[j] * DIVERSITY_DECAY ** counts.get(subjects[j], 0))
        chosen.append(best)
        pool.remove(best)
        counts[subjects[best]] = counts.get(subjects[best], 0) + 1
    return chosen


def recommend(tenant: str, user: str, *, k: int = 5, subject: str | None = None,
              level: str | None = None, language: str = "en",
              settings: Settings | None = None, shown: str = "") -> RecommendationList:
    """``shown``: text the learner has already seen (the previous answer on "something else /
    easier than those?"): resources whose title appears in it are left out while others remain."""
    settings = settings or get_settings()
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}", zh=f"推荐数量必须在 1 到 {MAX_K} 之间")
    level = normalise_level(level)
    catalog = load_catalog(tenant, settings)
    if not catalog:
        raise NotFound("there is no learning-resource catalog yet (mentorly rec import FILE)",
                       zh="还没有学习资源目录（管理员可用 mentorly rec import FILE 导入）")
    model = _model_for(settings, tenant, catalog)
    by_id = {c.id: c for c in catalog}
    index = model.index()
    subject_filter, topic = resolve_subject(subject, {c.subject for c in catalog})

    history = np.zeros(len(model.item_ids), dtype=np.float32)
    best_kind: dict[int, str] = {}
    completed: set[str] = set()
    for resource, kind, value, _ts in user_events(tenant, user, settings):
        if kind == "complete":
            completed.add(resource)
        j = index.get(resource)
        if j is None:
            continue
        w = interaction_weight(kind, value)
        if w >= history[j]:
            history[j], best_kind[j] = w, kind
    scorer = model.scorer()
    topic_vector = _topic_vector(topic, model, settings)
    blend = scorer.blend(history, topic_vector)

    known = set(by_id)
    candidates = [j for j, item_id in enumerate(model.item_ids) if item_id in by_id
                  and _eligible(by_id[item_id], completed, known, level, subject_filter)]
    seen = _shown_ids(catalog, shown)
    if seen and any(model.item_ids[j] not in seen for j in candidates):
        candidates = [j for j in candidates if model.item_ids[j] not in seen]
    needed_for: dict[int, str] = {}
    if not candidates and (level or subject_filter):
        # Nothing at that level/subject is open yet: recommend what unlocks it.
        for item in catalog:
            if not _matches(item, level, subject_filter) or item.id in completed:
                continue
            frontier, seen = list(item.prerequisites or []), set()
            while frontier:  # walk back along unmet prerequisites to the ones open now
                p = frontier.pop(0)
                if p in seen or p not in by_id or p in completed:
                    continue
                seen.add(p)
                j = index.get(p)
                if _eligible(by_id[p], completed, known, None, None):
                    if j is not None:
                        needed_for.setdefault(j, item.id)
                else:
                    frontier += list(by_id[p].prerequisites or [])
        candidates = list(needed_for)
    relevance = None
    if topic_vector is not None and model.content is not None and candidates:
        # How well each open resource matches the asked-for topic, scaled over the open ones.
        sims = model.content @ topic_vector
        lo, hi = float(sims[candidates].min()), float(sims[candidates].max())
        relevance = np.clip((sims - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
        blend = replace(blend, score=blend.score * (0.1 + 0.9 * relevance ** 2))
    lang = explain.lang_of(language)
    in_language = [j for j in candidates if by_id[model.item_ids[j]].language in (lang, "multi")]
    relaxed = len(in_language) < k <= len(candidates) or (not in_language and bool(candidates))
    pool = candidates if relaxed else in_language
    pool.sort(key=lambda j: -blend.score[j])
    subjects = [by_id[i].subject if i in by_id else "" for i in model.item_ids]
    picks = pool[:k] if subject_filter else _diversify(pool, blend.score, subjects, k)
    items = [_recommendation(j, model, by_id, blend, history, best_kind, completed, topic, lang,
                             relevance, needed_for.get(j)) for j in picks]
    return RecommendationList(items=items, language=lang, model=model, weights=blend.weights,
                              cold=not np.any(history), relaxed_language=relaxed and bool(picks))


def _shown_ids(catalog: list[CatalogItem], shown: str) -> set[str]:
    if not shown:
        return set()
    return {c.id for c in catalog
            if any(t and len(t) >= 4 and t in shown for t in (c.title, c.title_zh))}


def _title(item: CatalogItem, lang: str) -> str:
    return (item.title_zh or item.title) if lang == "zh" else (item.title or item.title_zh)


def _recommendation(j: int, model: RecModel, by_id: dict[str, CatalogItem], blend: Blend,
                    history: np.ndarray, best_kind: dict[int, str], completed: set[str],
                    topic: str | None, lang: str, relevance: np.ndarray | None = None,
                    unlocks: str | None = None) -> Recommendation:
    item = by_id[model.item_ids[j]]
    if relevance is not None and relevance[j] >= 0.8:
        return _rec(item, blend.score[j], explain.say("interest", lang, topic=topic), lang)
    if unlocks is not None and unlocks in by_id:
        return _rec(item, blend.score[j], explain.say("unlocks", lang,
                                                      title=_title(by_id[unlocks], lang)), lang)
    parts = {"cf": float(blend.cf[j]), "content": float(blend.content[j]),
             "popularity": float(blend.popularity[j])}
    main = max(parts, key=lambda p: parts[p])
    text = explain.say("popular", lang)
    if main == "cf" and model.B is not None:
        hist = np.flatnonzero(history)
        contrib = history[hist] * model.B[hist, j]
        positive = contrib[contrib > 0]
        top = int(np.argmax(contrib)) if contrib.size else -1
        if top >= 0 and positive.size and contrib[top] >= 0.4 * positive.sum():
            source = by_id.get(model.item_ids[hist[top]])
            if source is not None:
                text = explain.say("because", lang, verb=explain.verb(best_kind.get(hist[top], "view"), lang),
                                   title=_title(source, lang))
        else:
            text = explain.say("similar_learners", lang)
    elif main == "content":
        text = explain.say("interest", lang, topic=explain.subject_name(item.subject, lang))
    else:
        done = [p for p in item.prerequisites or [] if p in completed and p in by_id]
        if done:
            text = explain.say("next_step", lang, title=_title(by_id[done[-1]], lang))
    return _rec(item, blend.score[j], text, lang)


def _rec(item: CatalogItem, score: float, text: str, lang: str) -> Recommendation:
    return Recommendation(id=item.id, title=_title(item, lang), subject=item.subject,
                          level=item.level, score=float(score), explanation=text,
                          duration_min=item.duration_min, language=item.language)
