"""The training methods ``mentorly train image --method`` offers: ``transfer`` (a head on the
pretrained backbone) and ``cnn`` (a small CNN from scratch).

A module of its own, free of torch, so that the command line (``cli.py``) and the trainer
(``training.py``) share one list without importing each other.
"""

from __future__ import annotations

METHODS: tuple[str, ...] = ("transfer", "cnn")
