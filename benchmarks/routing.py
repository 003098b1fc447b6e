"""Routing accuracy: the embedding router against native tool calling by the local LLM.

Reads a JSONL file of ``{lang, image, text, expect}`` rows (``expect``: image | text |
recommend | knowledge | none), maps each capability to the registered tool that declares it,
and scores only rows whose capability has a tool (plus ``none``). Prints accuracy overall, per
language and per capability, p50/p95 decision latency and the misroutes, then the same for the
baseline (the LLM given every tool schema; a turn without a tool call counts as ``none``).

    python benchmarks/routing.py [PATH] [--plugins a,b] [--quick] [--json] [--no-baseline]
                                 [--baseline-rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tqdm import tqdm  # noqa: E402

from assistant.config import Settings, load_settings  # noqa: E402
from assistant.errors import InvalidInput, MentorlyError  # noqa: E402
from assistant.registry import ToolRegistry  # noqa: E402

CAPABILITIES = ("image", "text", "recommend", "knowledge")
EXPECTS = (*CAPABILITIES, "none")
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "routing_dev.jsonl"
QUICK_BASELINE_ROWS = 5
# Enough for any tool call on these rows; a direct answer is cut at its first visible text.
BASELINE_MAX_TOKENS = 192


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"routing data not found: {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{n}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not {"lang", "image", "text", "expect"} <= row.keys():
            raise InvalidInput(f"{path}:{n}: a row needs lang, image, text and expect")
        if row["expect"] not in EXPECTS:
            raise InvalidInput(f"{path}:{n}: expect must be one of {', '.join(EXPECTS)}")
        rows.append(row)
    if not rows:
        raise InvalidInput(f"{path} has no rows")
    return rows


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def score(rows: list[dict[str, Any]], predicted: list[str], latency_ms: list[float]) -> dict[str, Any]:
    by_lang: dict[str, list[bool]] = defaultdict(list)
    by_cap: dict[str, list[bool]] = defaultdict(list)
    misroutes = []
    for row, got in zip(rows, predicted, strict=True):
        ok = got == row["expect"]
        by_lang[row["lang"]].append(ok)
        by_cap[row["expect"]].append(ok)
        if not ok:
            misroutes.append({"lang": row["lang"], "image": row["image"], "text": row["text"],
                              "expect": row["expect"], "got": got})
    hits = [p == r["expect"] for r, p in zip(rows, predicted, strict=True)]
    return {
        "n": len(rows),
        "accuracy": sum(hits) / len(hits) if hits else float("nan"),
        "per_language": {k: sum(v) / len(v) for k, v in sorted(by_lang.items())},
        "per_capability": {k: sum(v) / len(v) for k, v in sorted(by_cap.items())},
        "latency_ms_p50": percentile(latency_ms, 50),
        "latency_ms_p95": percentile(latency_ms, 95),
        "misroutes": misroutes,
    }


def run_router(registry: ToolRegistry, settings: Settings,
               rows: list[dict[str, Any]]) -> tuple[list[str], list[float], float]:
    from assistant.router import Router
    from knowledge.embedders import shared_embedder

    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    router = Router(registry, embedder, settings.router, cache_dir=settings.cache_dir / "router")
    t0 = time.perf_counter()
    router.refresh()
    train_s = time.perf_counter() - t0
    predicted, latency = [], []
    for row in tqdm(rows, desc="router", leave=False, disable=not sys.stderr.isatty()):
        decision = router.route(row["text"], has_image=bool(row["image"]))
        latency.append(decision.elapsed_ms)
        predicted.append((registry.get(decision.tool).capability or "?") if decision.tool else "none")
    return predicted, latency, train_s


def first_tool_call(backend: Any, messages: list[dict[str, Any]], schemas: list[dict[str, Any]],
                    max_tokens: int) -> list[str]:
    """Names of the tool calls in the model's reply; ``[]`` for a direct answer.

    Streams and stops at the first visible text: the backend holds back text that may still
    become a tool call, so visible text means the model is answering by itself. This saves
    decoding a whole answer per row and gives the same verdict as the agent's native mode."""
    if not hasattr(backend, "stream"):
        result = backend.chat(messages, tools=schemas, max_tokens=max_tokens, temperature=0.0)
        return [c.name for c in result.tool_calls]
    chunks = backend.stream(messages, tools=schemas, max_tokens=max_tokens, temperature=0.0)
    try:
        for chunk in chunks:
            if chunk.final is not None:
                return [c.name for c in chunk.final.tool_calls]
            if chunk.text.strip():
                return []
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return []


def run_baseline(registry: ToolRegistry, settings: Settings,
                 rows: list[dict[str, Any]]) -> tuple[list[str], list[float]]:
    """Native tool calling, prompted exactly as the agent's native mode prompts it."""
    from assistant import prompts
    from assistant.llm.factory import make_backend

    backend = make_backend(settings)
    schemas = [t.openai_schema() for t in registry]
    predicted, latency = [], []
    try:
        for row in tqdm(rows, desc="LLM baseline", disable=False):
            text = row["text"] + ("\n[an image is attached]" if row["image"] else "")
            lang = row["lang"] if row["lang"] in prompts.SYSTEM else "en"
            t0 = time.perf_counter()
            names = first_tool_call(backend, prompts.native_messages(lang, [], text), schemas,
                                    min(settings.llm.max_tokens, BASELINE_MAX_TOKENS))
            latency.append((time.perf_counter() - t0) * 1000)
            tool = next((registry.get(n) for n in names if n in registry), None)
            predicted.append((tool.capability or "?") if tool else ("none" if not names else "?"))
    finally:
        _wait_for_cancelled_streams()
    return predicted, latency


def _wait_for_cancelled_streams(timeout_s: float = 60.0) -> None:
    """A stream stopped early still finishes its current token in a worker thread; exiting the
    interpreter while llama.cpp runs there aborts the process, so wait for those threads."""
    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.name.startswith("mentorly-llm"):
            thread.join(max(0.0, deadline - time.monotonic()))


def baseline_subset(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """Every n-th row, so a quick run still covers each capability and both languages."""
    if limit is None or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def report(title: str, figures: dict[str, Any]) -> None:
    print(f"\n== {title}: n={figures['n']}")
    print(f"accuracy {figures['accuracy']:.3f}")
    print("per language: " + ", ".join(f"{k} {v:.3f}" for k, v in figures["per_language"].items()))
    print("per capability: " + ", ".join(
        f"{k} {v:.3f}" for k, v in figures["per_capability"].items()))
    print(f"latency ms p50 {figures['latency_ms_p50']:.1f}  p95 {figures['latency_ms_p95']:.1f}")
    for m in figures["misroutes"]:
        img = " [image]" if m["image"] else ""
        print(f"  MISROUTE {m['lang']} expect={m['expect']} got={m['got']}{img}: {m['text'][:90]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--plugins", help="comma-separated plugin modules (default: settings)")
    parser.add_argument("--quick", action="store_true",
                        help=f"baseline on {QUICK_BASELINE_ROWS} rows only")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--no-baseline", action="store_true", help="skip the LLM baseline")
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="baseline on this many rows spread over the file (default: all)")
    args = parser.parse_args(argv)

    try:
        from mentorly_app import load_registry

        settings = load_settings()
        plugins = ([p.strip() for p in args.plugins.split(",") if p.strip()]
                   if args.plugins else settings.plugins)
        registry = load_registry(plugins)
        rows = read_rows(args.path)
        tools = {c: t.name for c in CAPABILITIES if (t := registry.by_capability(c))}
        print(f"tools by capability: {tools or 'none registered'}")
        scored = [r for r in rows if r["expect"] == "none" or r["expect"] in tools]
        skipped = len(rows) - len(scored)
        print(f"{len(scored)} of {len(rows)} rows scored ({skipped} expect an unregistered capability)")

        predicted, latency, train_s = run_router(registry, settings, scored)
        router_fig = score(scored, predicted, latency) | {"train_s": train_s}
        report("embedding router", router_fig)

        out: dict[str, Any] = {"data": str(args.path), "tools": tools, "rows": len(rows),
                               "scored": len(scored), "router": router_fig, "baseline": None}
        if not args.no_baseline:
            limit = args.baseline_rows or (QUICK_BASELINE_ROWS if args.quick else None)
            subset = baseline_subset(scored, limit)
            try:
                b_pred, b_lat = run_baseline(registry, settings, subset)
            except (MentorlyError, ImportError, OSError) as exc:
                print(f"\nbaseline unavailable: {exc}")
                out["baseline_error"] = str(exc)
            else:
                idx = {id(r): i for i, r in enumerate(scored)}
                same = score(subset, [predicted[idx[id(r)]] for r in subset],
                             [latency[idx[id(r)]] for r in subset])
                base_fig = score(subset, b_pred, b_lat)
                report(f"baseline: native tool calling ({settings.llm.backend} LLM)", base_fig)
                ratio_acc = (same["accuracy"] / base_fig["accuracy"]
                             if base_fig["accuracy"] else float("inf"))
                ratio_lat = base_fig["latency_ms_p50"] / max(same["latency_ms_p50"], 1e-9)
                print(f"\nsame {len(subset)} rows: router accuracy {same['accuracy']:.3f} vs "
                      f"baseline {base_fig['accuracy']:.3f} (x{ratio_acc:.2f}); "
                      f"router p50 {ratio_lat:.0f}x faster")
                out["baseline"] = base_fig
                out["router_on_baseline_rows"] = {k: same[k] for k in ("n", "accuracy")}
                out["accuracy_ratio"] = ratio_acc
                out["latency_ratio"] = ratio_lat
    except MentorlyError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
