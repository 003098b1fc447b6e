"""Image classification benchmark.

1. Pretrained inference: latency per image at batch 1 and throughput at batch 16 for the
   optimised path (batch norm folded into convolutions, padding merged, in-place ReLU6,
   channels-last, ``inference_mode``) versus the naive eager path (the package's own module,
   autograd on, NCHW), measured in the same run, interleaved, on a fixed set of real photos;
   top-1 labels must be identical. Target: optimised / naive ≤ 0.5 at batch 1.
2. Custom classifiers: test accuracy versus training time of ``transfer`` and ``cnn`` on digits
   and on a Fashion-MNIST subset, through the real training pipeline (PNG folders, decoding,
   stratified split, early stopping), with no feature cache, and ``cnn`` given the same
   wall-clock budget as ``transfer`` took. Targets: ``transfer`` ≥ 0.95 on digits and above
   ``cnn`` on Fashion-MNIST.

    .venv/bin/python benchmarks/image.py [--quick] [--json]

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``); without it that part is skipped with a message.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tools.image_classification.backbone import load_backbone, load_reference  # noqa: E402
from tools.image_classification.labels import imagenet_labels  # noqa: E402
from tools.image_classification.preprocess import imagenet_array, normalise  # noqa: E402
from tools.image_classification.training import train_image_classifier  # noqa: E402

FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle_boot"]


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- 1. inference ----------------------------------------------------------------------------


def photo_set() -> dict[str, Image.Image]:
    import skimage.data as skdata
    from sklearn.datasets import load_sample_images

    photos = {n: Image.fromarray(getattr(skdata, n)())
              for n in ("chelsea", "coffee", "rocket", "astronaut")}
    china, flower = load_sample_images().images
    photos["china"], photos["flower"] = Image.fromarray(china), Image.fromarray(flower)
    return photos


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def bench_inference(quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    photos = photo_set()
    t0 = time.perf_counter()
    arrays = [imagenet_array(normalise(im)) for im in photos.values()]
    preprocess_ms = (time.perf_counter() - t0) * 1000.0 / len(arrays)
    naive = load_reference()
    optimised = load_backbone()

    def run_naive(batch: np.ndarray) -> np.ndarray:
        return naive(torch.from_numpy(batch)).detach().numpy()  # eager, autograd on, NCHW

    def run_opt(batch: np.ndarray) -> np.ndarray:
        return optimised.logits(batch)

    singles = [a[None] for a in arrays]
    naive_top = [int(run_naive(b).argmax()) for b in singles]  # also warms up
    opt_top = [int(run_opt(b).argmax()) for b in singles]
    labels = imagenet_labels()
    rounds = 3 if quick else 8
    naive_ms: list[float] = []
    opt_ms: list[float] = []
    for _ in range(rounds):  # interleaved so load from other processes hits both alike
        for b in singles:
            naive_ms.append(_time_ms(lambda b=b: run_naive(b)))
            opt_ms.append(_time_ms(lambda b=b: run_opt(b)))
    batch16 = np.stack([arrays[i % len(arrays)] for i in range(16)])
    b16_rounds = 2 if quick else 4
    naive16: list[float] = []
    opt16: list[float] = []
    for _ in range(b16_rounds):
        naive16.append(_time_ms(lambda: run_naive(batch16)))
        opt16.append(_time_ms(lambda: run_opt(batch16)))
    out = {
        "images": list(photos),
        "top1": {n: labels[i].en for n, i in zip(photos, opt_top, strict=True)},
        "same_top1": naive_top == opt_top,
        "preprocess_ms_per_image": round(preprocess_ms, 2),
        "batch1_naive_ms": round(statistics.median(naive_ms), 2),
        "batch1_optimised_ms": round(statistics.median(opt_ms), 2),
        "batch16_naive_img_per_s": round(16 * 1000 / statistics.median(naive16), 2),
        "batch16_optimised_img_per_s": round(16 * 1000 / statistics.median(opt16), 2),
    }
    out["batch1_naive_img_per_s"] = round(1000 / out["batch1_naive_ms"], 2)
    out["batch1_optimised_img_per_s"] = round(1000 / out["batch1_optimised_ms"], 2)
    out["batch1_latency_ratio"] = round(out["batch1_optimised_ms"] / out["batch1_naive_ms"], 3)
    out["batch16_time_ratio"] = round(
        out["batch16_naive_img_per_s"] / out["batch16_optimised_img_per_s"], 3)
    out["target_ratio_le_0_5"] = out["batch1_latency_ratio"] <= 0.5 and out["same_top1"]
    return out


# ---- 2. training -----------------------------------------------------------------------------


def write_folder(root: Path, images: np.ndarray, targets: np.ndarray, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (pixels, y) in enumerate(zip(images, targets, strict=True)):
        Image.fromarray(pixels).save(root / names[int(y)] / f"{i:05d}.png")
    return root


def balanced_subset(targets: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(targets == c))[:per_class]
             for c in np.unique(targets)]
    return np.sort(np.concatenate(picks))


def load_digits_u8(per_class: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * 255.0 / 16.0).astype(np.uint8)
    idx = (np.arange(len(images)) if per_class is None
           else balanced_subset(digits.target, per_class))
    return images[idx], digits.target[idx], [f"digit_{i}" for i in range(10)]


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_u8(per_class: int) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    images_path = FASHION_DIR / "train-images-idx3-ubyte.gz"
    labels_path = FASHION_DIR / "train-labels-idx1-ubyte.gz"
    if not (images_path.is_file() and labels_path.is_file()):
        return None
    images, targets = _read_idx(images_path), _read_idx(labels_path)
    idx = balanced_subset(targets, per_class)
    return images[idx], targets[idx].astype(np.int64), FASHION_CLASSES


def run_method(data_dir: Path, method: str, workdir: Path, budget_s: float | None = None,
               epochs: int | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    report = train_image_classifier(
        data_dir, f"bench-{method}", models_root=workdir / "models", method=method,
        epochs=epochs, cache_dir=None, progress=False, echo=lambda _: None,
        time_budget_s=budget_s, plot=workdir / f"{data_dir.name}-{method}.png")
    return {"test_accuracy": round(report.metrics["test_accuracy"], 4),
            "train_time_s": round(time.perf_counter() - start, 2),
            "epochs_run": report.metrics["epochs_run"], "n_train": report.metrics["n_train"],
            "n_test": report.metrics["n_test"], "time_budget_s": budget_s}


def compare(name: str, data: tuple[np.ndarray, np.ndarray, list[str]], workdir: Path
            ) -> dict[str, Any]:
    images, targets, names = data
    folder = write_folder(workdir / name, images, targets, names)
    log(f"[{name}] {len(images)} images, {len(names)} classes: training transfer ...")
    transfer = run_method(folder, "transfer", workdir)
    log(f"[{name}] transfer: accuracy {transfer['test_accuracy']:.4f} in "
        f"{transfer['train_time_s']:.1f}s; cnn with the same budget ...")
    cnn = run_method(folder, "cnn", workdir, budget_s=transfer["train_time_s"], epochs=200)
    log(f"[{name}] cnn: accuracy {cnn['test_accuracy']:.4f} in {cnn['train_time_s']:.1f}s "
        f"({cnn['epochs_run']} epochs)")
    return {"images": int(len(images)), "transfer": transfer, "cnn_same_budget": cnn,
            "accuracy_gain": round(transfer["test_accuracy"] - cnn["test_accuracy"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subsets, ~1 minute")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, Any] = {"quick": args.quick, "threads": torch.get_num_threads(),
                               "cpu_count": os.cpu_count()}

    log("== pretrained inference: optimised vs naive eager (same run) ==")
    inf = bench_inference(args.quick)
    results["inference"] = inf
    log(f"batch 1 : optimised {inf['batch1_optimised_ms']:.1f} ms/img vs naive "
        f"{inf['batch1_naive_ms']:.1f} ms/img -> ratio {inf['batch1_latency_ratio']:.3f} "
        f"(target <= 0.5) ; same top-1 on {len(inf['images'])} photos: {inf['same_top1']}")
    log(f"batch 16: optimised {inf['batch16_optimised_img_per_s']:.1f} img/s vs naive "
        f"{inf['batch16_naive_img_per_s']:.1f} img/s -> time ratio {inf['batch16_time_ratio']:.3f}")
    log(f"preprocessing {inf['preprocess_ms_per_image']:.1f} ms/img; top-1: {inf['top1']}")

    if not args.skip_training:
        log("== custom classifiers: accuracy vs training time (transfer vs cnn) ==")
        with tempfile.TemporaryDirectory(prefix="mentorly-bench-image-") as tmp:
            work = Path(tmp)
            digits = load_digits_u8(20 if args.quick else None)
            results["digits"] = compare("digits", digits, work)
            results["digits"]["target_transfer_ge_0_95"] = (
                results["digits"]["transfer"]["test_accuracy"] >= 0.95)
            fashion = load_fashion_u8(20 if args.quick else 200)
            if fashion is None:
                msg = (f"Fashion-MNIST not found in {FASHION_DIR}: skipped. Install it with "
                       "`apt-get install dataset-fashion-mnist`.")
                log(msg)
                results["fashion_mnist"] = {"skipped": msg}
            else:
                results["fashion_mnist"] = compare("fashion_mnist", fashion, work)
                results["fashion_mnist"]["target_transfer_beats_cnn"] = (
                    results["fashion_mnist"]["accuracy_gain"] > 0)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
