"""One internal box convention, converted only at the edges.

Internal: ``(x1, y1, x2, y2)`` in continuous pixel-edge coordinates, origin at the top-left
corner of the top-left pixel. A box covering exactly pixel column i spans ``[i, i + 1)``, so
width = x2 - x1 and a box holding only pixel (0, 0) is (0, 0, 1, 1). The simulator's ground
truth is already in this convention.

Edges:
- KITTI ``x1 y1 x2 y2``: 0-based pixel indices with the right and bottom pixels *included*
  (KITTI devkit readme), so the internal x2 is KITTI's x2 + 1.
- COCO ``[x, y, w, h]``: continuous, top-left corner plus size (what nuScenes' 2D export uses).
- FiftyOne ``[x, y, w, h]``: like COCO but relative to the image size, in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]


def from_kitti(x1: float, y1: float, x2: float, y2: float) -> Box:
    """KITTI inclusive pixel box -> internal."""
    return (x1, y1, x2 + 1.0, y2 + 1.0)


def to_kitti(box: Box) -> Box:
    """Internal -> KITTI inclusive pixel box."""
    x1, y1, x2, y2 = box
    return (x1, y1, x2 - 1.0, y2 - 1.0)


def from_coco(xywh: Sequence[float]) -> Box:
    """COCO [x, y, w, h] (pixels) -> internal."""
    x, y, w, h = xywh
    return (x, y, x + w, y + h)


def to_coco(box: Box) -> list[float]:
    """Internal -> COCO [x, y, w, h] (pixels)."""
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1, y2 - y1]


def from_fiftyone(xywh: Sequence[float], width: int, height: int) -> Box:
    """FiftyOne relative [x, y, w, h] -> internal pixels for an image of ``width`` x ``height``."""
    x, y, w, h = xywh
    return (x * width, y * height, (x + w) * width, (y + h) * height)


def to_fiftyone(box: Box, width: int, height: int) -> list[float]:
    """Internal pixels -> FiftyOne relative [x, y, w, h]."""
    x1, y1, x2, y2 = box
    return [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]


def clip(box: Box, width: int, height: int) -> Box:
    """Clip a box to the image."""
    x1, y1, x2, y2 = box
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def area(box: Box) -> float:
    """Area in square pixels (0 for degenerate boxes)."""
    x1, y1, x2, y2 = box
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


def iou_matrix(a: Any, b: Any) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``: the library's one IoU.

    torchvision's `box_iou` computes areas as (x2 - x1) * (y2 - y1), which is exactly the width
    and height of a box in the internal pixel-edge convention (and COCO's w * h).

    Args:
        a: (N, 4) x1, y1, x2, y2 in the internal convention (array-like).
        b: (M, 4), same convention.

    Returns:
        (N, M) float64 in [0, 1]. Inverted boxes count as empty; pairs with a zero union or a
        non-finite coordinate get 0.
    """
    import torch
    from torchvision.ops import box_iou

    ta = torch.as_tensor(np.asarray(a, dtype=np.float64).reshape(-1, 4))
    tb = torch.as_tensor(np.asarray(b, dtype=np.float64).reshape(-1, 4))
    if not len(ta) or not len(tb):
        return np.zeros((len(ta), len(tb)))
    # 1. An inverted box (x2 < x1 or y2 < y1) is empty, not negative: clamp its far edges.
    ta = torch.cat([ta[:, :2], torch.maximum(ta[:, 2:], ta[:, :2])], dim=1)
    tb = torch.cat([tb[:, :2], torch.maximum(tb[:, 2:], tb[:, :2])], dim=1)
    # 2. 0/0 (empty union) and non-finite coordinates come out as NaN: they overlap nothing.
    out = box_iou(ta, tb).numpy()
    return np.where(np.isfinite(out), out, 0.0)
