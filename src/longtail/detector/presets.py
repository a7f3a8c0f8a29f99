"""Named detector presets, all built from scratch (no weights can be downloaded here).

- ``fcos-small-p2`` (default): torchvision FCOS with a small residual conv backbone, an FPN over
  P2-P5 (strides 4-32, 32 channels) and a 2-conv head (0.58M parameters in all), made for the
  simulated fleet's 320x192 frames and their pedestrians a few pixels wide. It learns on 2 CPU
  cores in minutes (bench/RESULTS.md, "A stride-4 level for the default preset").
- ``fcos-small``: the same backbone with an FPN over P3-P5 (64 channels; ~0.77M parameters), the
  default until the P2 level replaced it (../shared/ENVIRONMENT.md: mAP@0.5 0.79 after 8 minutes
  at ~40 images/s, batch 16, on a fleet of cars and trucks). 1.2x faster to train, but it misses
  more of the smallest objects; models trained with it still load and resume as ``fcos-small``.
- ``fcos-resnet50``: torchvision's ``fcos_resnet50_fpn`` (ResNet-50 + FPN P3-P7), for GPUs.

Each preset fixes its input size (``min_size``/``max_size`` of torchvision's resize) and its
post-processing; `TrainConfig` may override the input size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS, fcos_resnet50_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.ops import FeaturePyramidNetwork

from longtail.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """One named detector: how to build it and the input size it was designed for."""

    name: str
    description: str
    min_size: int  # torchvision resizes the short side to this, px
    max_size: int  # ... unless the long side would exceed this, px
    builder: Callable[[int, dict[str, Any]], nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)  # FCOS keyword arguments (thresholds, ...)


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """Two 3x3 convs with an identity shortcut (ResNet's basic block, same channels, stride 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(channels, channels, 1)
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(self.conv1(x)))


class SmallBackbone(nn.Module):
    """A small residual conv net with an FPN: C3-C5 (strides 8, 16, 32) -> P3-P5, ``out_channels`` each.

    With ``p2``, the stem's stride-4 output joins the FPN as a fourth level P2 (for objects a few
    pixels wide), and the maps come out P2-P5.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 80, 96), out_channels: int = 64,
                 p2: bool = False) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(_conv_bn(3, w0, 2), _conv_bn(w0, w1, 2))  # stride 4
        self.c3 = nn.Sequential(_conv_bn(w1, w2, 2), _Residual(w2))  # stride 8
        self.c4 = nn.Sequential(_conv_bn(w2, w3, 2), _Residual(w3))  # stride 16
        self.c5 = nn.Sequential(_conv_bn(w3, w4, 2), _Residual(w4))  # stride 32
        self.fpn = FeaturePyramidNetwork([w1, w2, w3, w4] if p2 else [w2, w3, w4], out_channels)
        self.p2 = p2
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        c2 = self.stem(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        levels = [("p2", c2)] if self.p2 else []
        return self.fpn(OrderedDict([*levels, ("p3", c3), ("p4", c4), ("p5", c5)]))


def _build_fcos_small(num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    backbone = SmallBackbone()
    # One anchor per location; FCOS uses its size only to assign objects to levels:
    # P3 takes objects up to 8*8=64 px, P4 64-128 px, P5 the rest (torchvision fcos.py).
    anchors = AnchorGenerator(sizes=((8,), (16,), (32,)), aspect_ratios=((1.0,),) * 3)
    head = FCOSHead(backbone.out_channels, 1, num_classes, num_convs=2)
    return FCOS(backbone, num_classes, anchor_generator=anchors, head=head, **kwargs)


def _build_fcos_small_p2(num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    backbone = SmallBackbone(out_channels=32, p2=True)
    # P2 takes objects up to 4*8=32 px from their centre point, P3 32-64 px, P4 64-128 px, P5 the rest.
    # 32 channels in the FPN and head (GroupNorm of 32 groups: one channel each) keep the stride-4
    # level's head at the cost of fcos-small's stride-8 one.
    anchors = AnchorGenerator(sizes=((4,), (8,), (16,), (32,)), aspect_ratios=((1.0,),) * 4)
    head = FCOSHead(backbone.out_channels, 1, num_classes, num_convs=2)
    return FCOS(backbone, num_classes, anchor_generator=anchors, head=head, **kwargs)


def _build_fcos_resnet50(num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    return fcos_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)


_FCOS_DEFAULTS: dict[str, Any] = {"score_thresh": 0.05, "nms_thresh": 0.6, "detections_per_img": 100,
                                  "topk_candidates": 1000}
"""Post-processing every preset shares (FCOS keyword arguments)."""

PRESETS: dict[str, Preset] = {
    "fcos-small": Preset(
        "fcos-small", "FCOS on a small residual conv backbone + FPN P3-P5; learns on 2 CPU cores in minutes",
        min_size=192, max_size=320, builder=_build_fcos_small,
        defaults=_FCOS_DEFAULTS,
    ),
    "fcos-small-p2": Preset(
        "fcos-small-p2", "fcos-small with a stride-4 P2 level and a 32-channel FPN and head, for small objects; "
                         "the default",
        min_size=192, max_size=320, builder=_build_fcos_small_p2,
        defaults=_FCOS_DEFAULTS,
    ),
    "fcos-resnet50": Preset(
        "fcos-resnet50", "torchvision fcos_resnet50_fpn from scratch (ResNet-50 + FPN P3-P7); for GPUs",
        min_size=384, max_size=640, builder=_build_fcos_resnet50,
        defaults=_FCOS_DEFAULTS,
    ),
}
"""Named detector presets; ``fcos-small-p2`` is the default."""

DEFAULT_PRESET = "fcos-small-p2"


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ConfigError: for an unknown name, listing the valid ones.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets are {sorted(PRESETS)}")
    return PRESETS[name]


def build_model(preset: str, num_classes: int, min_size: int | None = None, max_size: int | None = None,
                **overrides: Any) -> nn.Module:
    """Build a preset's detector with freshly initialised weights (seed torch first for repeatable ones).

    Args:
        preset: a name in `PRESETS`.
        num_classes: number of object classes (FCOS has no background class).
        min_size: input short side, px (default: the preset's).
        max_size: input long-side limit, px (default: the preset's).
        **overrides: FCOS keyword arguments replacing the preset's (``score_thresh``, ...).

    Returns:
        A torchvision detector: in train mode ``model(images, targets)`` returns its loss terms,
        in eval mode ``model(images)`` returns boxes (x1, y1, x2, y2 in input pixels), labels, scores.

    Raises:
        ConfigError: unknown preset or ``num_classes < 1``.
    """
    spec = get_preset(preset)
    if num_classes < 1:
        raise ConfigError(f"build_model: invalid num_classes={num_classes!r}; a detector needs at least one class")
    kwargs = {**spec.defaults, "min_size": min_size or spec.min_size, "max_size": max_size or spec.max_size,
              **overrides}
    return spec.builder(num_classes, kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
