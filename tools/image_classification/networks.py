"""The two trainable networks: a head for the pretrained features, and a small CNN from scratch."""

from __future__ import annotations

import torch
from torch import nn


class FeatureHead(nn.Module):
    """``transfer``: standardised 1280-d backbone features → dropout → linear classifier."""

    def __init__(self, dim: int, n_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dim, n_classes)

    def set_standardisation(self, features: torch.Tensor) -> None:
        """Per-feature mean and std from the training set. Many pooled ReLU6 features are
        almost constant on a small data set; dividing by their tiny std would blow unseen
        images up, so the std is floored at the median std."""
        std = features.std(0)
        self.mean.copy_(features.mean(0))
        self.std.copy_(std.clamp_min(max(float(std.median()), 1e-6)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout((x - self.mean) / self.std))


class SmallCNN(nn.Module):
    """``cnn``: the classic baseline — three conv/ReLU/max-pool stages, then two dense layers."""

    def __init__(self, n_classes: int, size: int = 32, width: int = 32) -> None:
        super().__init__()
        if size % 8:
            raise ValueError("SmallCNN input size must be a multiple of 8")
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        flat = 2 * width * (size // 8) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
