"""Why a turn was routed as it was: reasons as codes with parameters, rendered at the edge.

The router and the agent build ``Reason`` values; a route (``Done.route``, the stored turn)
carries them as ``route["reasons"]`` (a list of ``{"code": ..., **params}``) next to
``route["reason"]``, the same reasons rendered in English (what API clients and logs have
always read). The chat page renders the codes in the learner's language with ``render``.

A parameter may itself be a reason (``native`` holds the router's verdict as ``why``).
Codes in ``ATTACHED`` annotate the part before them (``classifier (suggest_next 0.62)``)
instead of starting a new ``; ``-separated part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.messages import REASONS, text

ATTACHED = frozenset({"router_choice", "router_tool"})


@dataclass(frozen=True)
class Reason:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, code: str, **params: Any) -> Reason:
        return cls(code, params)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, **{k: v.to_dict() if isinstance(v, Reason) else v
                                      for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        params = {k: cls.from_dict(v) if isinstance(v, Mapping) and "code" in v else v
                  for k, v in data.items() if k != "code"}
        return cls(str(data["code"]), params)


def render(reasons: Reason | Sequence[Reason], lang: str = "en") -> str:
    """One reason, or a route's list of them, as a sentence in ``lang``. A code the catalogue
    does not know (a newer server, a plugin) is shown as the code itself."""
    if isinstance(reasons, Reason):
        reasons = [reasons]
    out = ""
    for i, reason in enumerate(reasons):
        if i and reason.code not in ATTACHED:
            out += text("reasons", "separator", lang)
        out += _one(reason, lang)
    return out


def _one(reason: Reason, lang: str) -> str:
    if reason.code not in REASONS:
        return reason.code
    values = {k: render(v, lang) if isinstance(v, Reason) else v for k, v in reason.params.items()}
    return text("reasons", reason.code, lang, **values)


def of_route(route: Mapping[str, Any]) -> list[Reason]:
    """The reasons a route dict carries (none for one written before reasons had codes)."""
    return [Reason.from_dict(r) for r in route.get("reasons") or []]


def route_fields(reasons: Iterable[Reason]) -> dict[str, Any]:
    """``reason`` (English) and ``reasons`` (codes) for a route dict."""
    reasons = list(reasons)
    return {"reason": render(reasons, "en"), "reasons": [r.to_dict() for r in reasons]}


def with_reasons(route: Mapping[str, Any], *more: Reason, **changes: Any) -> dict[str, Any]:
    """A copy of ``route`` with ``more`` reasons added (and ``changes`` applied)."""
    return {**route, **changes, **route_fields([*of_route(route), *more])}
