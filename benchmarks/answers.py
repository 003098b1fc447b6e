"""Trustworthy answers: the grounded pipeline against today's path, on the answers dev set.

Runs every item of ``benchmarks/data/answers/questions.jsonl`` (documents in ``docs/`` plus the
demo CS101 handbook, ingested into a throw-away home) through the real agent with the packaged
local model, twice in the same run:

- ``grounded``: evidence sentences quoted with ``[n]``, answerability check, a checked summary;
- ``baseline``: today's path (``agent.answer_mode = "passages"``): the LLM reads whole passages.

Reported per half (``tune`` / ``held``) and language: fact accuracy (every required fact in the
answer; cross-lingual items separately), abstention on unanswerable questions, false abstention
on answerable ones, contradictions (a yes/no answer opposite to the truth, a number not in the
retrieved passages, or a forbidden near-miss value), share of factual answers with an inline
``[n]``, follow-up accuracy, general requests answered without a tool, and time to the first
visible token / to the whole answer of knowledge answers (p50/p95).

    python benchmarks/answers.py [--quick] [--json] [--half tune|held|both] [--no-baseline]
                                 [--summary auto|always|never] [--limit N] [--show-failures]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tqdm import tqdm  # noqa: E402

DATA = REPO_ROOT / "benchmarks" / "data" / "answers"
COLLECTION = "answers-dev"
CAPABILITY = {"knowledge_search": "knowledge", "recommend_resources": "recommend",
              "classify_text": "text", "classify_image": "image"}
QUICK_PER_KIND = 3
_ABSTAIN_TEXT = re.compile(r"could not find|couldn't find|can't find|don't (?:say|mention|answer)|"
                           r"does not (?:say|mention)|doesn't (?:say|mention)|not (?:mentioned|"
                           r"specified|stated|provided)|no information|won't guess|没有找到|没有提到|"
                           r"未提及|没有说明|没有回答|不做猜测|没有相关", re.I)
_YES = re.compile(r"^\W*(?:yes|yeah|sure|of course|certainly|correct|是的|可以|能|允许|对)", re.I)
_NO = re.compile(r"^\W*(?:no|not|never|cannot|can't|不|否|没有)", re.I)


def read_items(path: Path) -> list[dict[str, Any]]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    for item in items:
        if not {"id", "half", "lang", "kind", "turns", "route", "facts"} <= item.keys():
            raise SystemExit(f"{path}: item {item.get('id')} lacks a required field")
    return items


def quick_subset(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, str], int] = defaultdict(int)
    out = []
    for item in items:
        key = (item["half"], item["kind"], item["lang"])
        if seen[key] < QUICK_PER_KIND // 2 + 1:
            seen[key] += 1
            out.append(item)
    return out


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).lower()


def has_facts(text: str, facts: list[list[str]]) -> bool:
    t = norm(text)
    return all(any(norm(alt) in t for alt in group) for group in facts)


def summary_part(text: str) -> str:
    """What the answer itself says, past any quoted evidence (the part a stance opens)."""
    for marker in ("In short:", "简而言之："):
        if marker in text:
            return text.split(marker, 1)[1]
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(">")]
    return lines[0] if lines else text


def contradiction(item: dict[str, Any], text: str, sources: list[dict[str, Any]]) -> str | None:
    from assistant.grounding.numbers import numbers

    answer = summary_part(text)
    gold = item.get("answer")
    if gold == "yes" and _NO.search(answer):
        return "answered no, the truth is yes"
    if gold == "no" and _YES.search(answer):
        return "answered yes, the truth is no"
    for bad in item.get("forbidden") or []:
        if norm(bad) in norm(text):
            return f"forbidden near-miss value {bad!r}"
    evidence = " ".join(s.get("text", "") + " " + s.get("title", "") for s in sources)
    known = {n.value for n in numbers(evidence)} | {n.value for n in numbers(" ".join(item["turns"]))}
    stripped = re.sub(r"\[\d+\]", "", text)
    for n in numbers(stripped):
        if n.value not in known:
            return f"number {n.text!r} is not in the retrieved passages"
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def build(home: Path) -> Any:
    from assistant.config import load_settings
    from assistant.llm.model_files import prepare_model
    from mentorly_app import build_runtime
    from tools.knowledge_search.service import knowledge_base

    model_path = prepare_model(load_settings(), progress=False)
    os.environ["MENTORLY_HOME"] = str(home)
    os.environ["MENTORLY_LLM__MODEL_PATH"] = str(model_path)
    settings = load_settings()
    runtime = build_runtime(settings)
    for _ in runtime.plugin_manager.hook.prepare_models(settings=settings, progress=False):
        pass
    kb = knowledge_base(settings)
    kb.ingest([DATA / "docs"], settings.default_tenant, COLLECTION)
    return runtime


def run_item(runtime: Any, item: dict[str, Any]) -> dict[str, Any]:
    from assistant.events import Done, ErrorEvent, TextDelta

    conversation = None
    record: dict[str, Any] = {}
    for turn in item["turns"]:
        started = time.perf_counter()
        first = None
        done, error = None, None
        for event in runtime.agent.run(turn, user=f"bench-{item['id']}",
                                       conversation_id=conversation):
            if isinstance(event, TextDelta) and event.text and first is None:
                first = time.perf_counter() - started
            elif isinstance(event, Done):
                done = event
            elif isinstance(event, ErrorEvent):
                error = event.message
        total = time.perf_counter() - started
        if done is not None:
            conversation = done.conversation_id
        record = {"text": done.text if done else (error or ""), "tools": done.tools if done else [],
                  "mode": done.answer_mode if done else "error",
                  "sources": done.sources if done else [], "ttft": first, "total": total}
    return record


def evaluate(item: dict[str, Any], rec: dict[str, Any], grounded: bool) -> dict[str, Any]:
    caps = [CAPABILITY.get(t, t) for t in rec["tools"]]
    route_ok = (not caps) if item["route"] == "none" else item["route"] in caps
    text = rec["text"]
    abstained = rec["mode"] == "abstained" if grounded else bool(_ABSTAIN_TEXT.search(text))
    knowledge = item["route"] == "knowledge"
    answerable = knowledge and item["kind"] != "unanswerable"
    out: dict[str, Any] = {"id": item["id"], "route_ok": route_ok, "abstained": abstained,
                           "mode": rec["mode"], "ttft": rec["ttft"], "total": rec["total"]}
    if answerable and item["facts"]:
        out["fact_ok"] = has_facts(text, item["facts"]) and route_ok
    if knowledge:
        out["contradiction"] = contradiction(item, text, rec["sources"])
    if answerable and not abstained and route_ok:
        out["cited"] = bool(re.search(r"\[\d+\]", text))
    return out


def rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def aggregate(items: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {i["id"]: i for i in items}
    out: dict[str, Any] = {}
    groups: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    for r in results:
        item = by_id[r["id"]]
        groups[item["half"]].append((item, r))
    for half, pairs in sorted(groups.items()):
        facts = defaultdict(list)
        for item, r in pairs:
            if "fact_ok" in r:
                facts["cross" if item.get("cross") else item["lang"]].append(r["fact_ok"])
        unans = [r["abstained"] and not r.get("contradiction") for i, r in pairs
                 if i["kind"] == "unanswerable"]
        false_abs = [r["abstained"] for i, r in pairs
                     if i["route"] == "knowledge" and i["kind"] != "unanswerable"]
        contra = [r["contradiction"] is not None for i, r in pairs if "contradiction" in r]
        cited = [r["cited"] for _, r in pairs if "cited" in r]
        follow = [r["route_ok"] and r.get("fact_ok", True) for i, r in pairs
                  if i["kind"] == "followup"]
        general = [r["route_ok"] for i, r in pairs if i["kind"] == "general"]
        ttft = [r["ttft"] for i, r in pairs if i["route"] == "knowledge" and r["ttft"] is not None]
        total = [r["total"] for i, r in pairs if i["route"] == "knowledge"]
        modes: dict[str, int] = defaultdict(int)
        for i, r in pairs:
            if i["route"] == "knowledge" and i["kind"] != "unanswerable":
                modes[r["mode"]] += 1
        out[half] = {
            "fact_accuracy_en": rate(facts["en"]), "fact_accuracy_zh": rate(facts["zh"]),
            "fact_accuracy_cross": rate(facts["cross"]),
            "n_facts": {k: len(v) for k, v in facts.items()},
            "abstain_unanswerable": rate(unans), "n_unanswerable": len(unans),
            "false_abstention": rate(false_abs), "contradictions": sum(contra),
            "cited_share": rate(cited), "followup_accuracy": rate(follow),
            "n_followups": len(follow), "general_no_tool": rate(general),
            "n_general": len(general),
            "ttft_p50_s": round(percentile(ttft, 0.5), 2), "ttft_p95_s": round(percentile(ttft, 0.95), 2),
            "total_p50_s": round(percentile(total, 0.5), 2),
            "total_p95_s": round(percentile(total, 0.95), 2),
            "answer_modes": dict(sorted(modes.items())),
        }
    return out


def run_mode(runtime: Any, items: list[dict[str, Any]], mode: str,
             show: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    runtime.settings.agent.answer_mode = "grounded" if mode == "grounded" else "passages"
    results = []
    for item in tqdm(items, desc=mode, file=sys.stderr):
        rec = run_item(runtime, item)
        result = evaluate(item, rec, mode == "grounded")
        results.append(result)
        failed = (result.get("fact_ok") is False or result.get("contradiction")
                  or (item["kind"] == "unanswerable" and not result["abstained"])
                  or not result["route_ok"])
        if show and failed:
            print(f"--- {mode} {item['id']} [{item['half']} {item['kind']} {item['lang']}"
                  f"{' cross' if item.get('cross') else ''}] {item['turns']}\n    facts="
                  f"{item['facts']} route={item['route']} got={rec['tools']} mode={rec['mode']}"
                  f" contradiction={result.get('contradiction')}\n    "
                  + rec["text"].replace("\n", "\n    ")[:700], file=sys.stderr)
    return aggregate(items, results), results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few items of each kind")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--half", choices=["tune", "held", "both"], default="both")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--summary", choices=["auto", "always", "never"], default="auto",
                        help="when the grounded answer adds a checked LLM summary")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--kinds", default="", help="comma-separated kinds to run")
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args()

    items = read_items(DATA / "questions.jsonl")
    if args.half != "both":
        items = [i for i in items if i["half"] == args.half]
    if args.kinds:
        items = [i for i in items if i["kind"] in args.kinds.split(",")]
    if args.quick:
        items = quick_subset(items)
    if args.limit:
        items = items[: args.limit]
    with tempfile.TemporaryDirectory(prefix="mentorly-answers-") as home:
        t0 = time.perf_counter()
        runtime = build(Path(home))
        runtime.settings.agent.summary = args.summary
        print(f"set-up (demo data, dev documents, models): {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        report: dict[str, Any] = {"items": len(items), "summary": args.summary}
        report["grounded"], _ = run_mode(runtime, items, "grounded", args.show_failures)
        if not args.no_baseline:
            report["baseline"], _ = run_mode(runtime, items, "baseline", args.show_failures)
    print_report(report)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def print_report(report: dict[str, Any]) -> None:
    modes = [m for m in ("grounded", "baseline") if m in report]
    halves = sorted({h for m in modes for h in report[m]})
    keys = list(next(iter(report[modes[0]].values())).keys()) if report[modes[0]] else []
    for half in halves:
        print(f"\n== half: {half} ({report['items']} items in the run)")
        print(f"{'metric':26}" + "".join(f"{m:>22}" for m in modes))
        for key in keys:
            cells = [report[m].get(half, {}).get(key) for m in modes]
            print(f"{key:26}" + "".join(f"{json.dumps(c, ensure_ascii=False):>22}" for c in cells))
        if "baseline" in report and half in report["baseline"]:
            g, b = report["grounded"][half], report["baseline"][half]
            if b["ttft_p50_s"]:
                print(f"{'ttft ratio (ours/today)':26}{g['ttft_p50_s'] / b['ttft_p50_s']:>22.2f}")


if __name__ == "__main__":
    sys.exit(main())
