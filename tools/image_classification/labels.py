"""The project's ImageNet-1k label file: 1000 class names in English and Chinese, in the
standard class-index order the pretrained weights use (index 0 = tench … 999 = toilet paper)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

LABELS_FILE = Path(__file__).with_name("labels.json")


class Label(NamedTuple):
    en: str
    zh: str


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[Label, ...]:
    items = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    labels = tuple(Label(str(i["en"]), str(i["zh"])) for i in items)
    if len(labels) != 1000:
        raise ValueError(f"{LABELS_FILE} must hold 1000 labels, found {len(labels)}")
    return labels
