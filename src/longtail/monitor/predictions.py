"""What the champion (and a challenger in shadow) predict on a batch, summed up: confidence and
class-frequency histograms, and the frames where champion and challenger disagree.

Shadow mode: the champion acts, the challenger only predicts. Each model's detections are kept at
its own per-class operating thresholds (``thresholds`` in its model.json, else 0.5), and objects
shorter than ``min_height`` of the image are not compared (evaluation ignores them too). What
counts as a disagreement is `longtail.detector.shadow.compare_detections`, the same definition the
fleet test uses (every critical object counts here: a frame has no ego path). A frame with any is
a disagreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.detector.metrics import class_thresholds
from longtail.detector.shadow import compare_detections
from longtail.schemas import CATEGORIES

Boxes = list[dict[str, Any]]

CONFIDENCE_BINS = np.round(np.linspace(0.0, 1.0, 21), 2)


def at_operating_point(preds: Mapping[str, Boxes], thresholds: Mapping[str, float] | float | None,
                       classes: Sequence[str] = CATEGORIES) -> dict[str, Boxes]:
    """Each frame's detections at or above their class's operating threshold (0.5 when none)."""
    values = class_thresholds(thresholds if thresholds is not None else 0.5, classes)
    by_class = dict(zip(classes, values, strict=True))
    return {fid: [b for b in boxes if b["score"] >= by_class.get(b["category"], 0.5)] for fid, boxes in preds.items()}


def confidence_histogram(preds: Mapping[str, Boxes], floor: float) -> list[int]:
    """Detections per confidence bin (`CONFIDENCE_BINS`, 0.05 wide), those scoring at least ``floor``."""
    scores = [b["score"] for boxes in preds.values() for b in boxes if b["score"] >= floor]
    counts, _ = np.histogram(np.asarray(scores, np.float64), bins=CONFIDENCE_BINS)
    return [int(c) for c in counts]


def class_frequency(preds: Mapping[str, Boxes], classes: Sequence[str] = CATEGORIES) -> dict[str, int]:
    """Detections per class."""
    out = dict.fromkeys(classes, 0)
    for boxes in preds.values():
        for b in boxes:
            out[b["category"]] = out.get(b["category"], 0) + 1
    return out


@dataclass(frozen=True)
class Disagreement:
    """One frame where champion and challenger disagree.

    Attributes:
        frame_id: the frame.
        champion_only: groups of objects only the champion sees (one entry per object).
        challenger_only: groups of objects only the challenger sees.
        far_apart: groups of matched objects whose boxes overlap less than the IoU threshold.
    """

    frame_id: str
    champion_only: tuple[str, ...]
    challenger_only: tuple[str, ...]
    far_apart: tuple[str, ...]

    @property
    def objects(self) -> int:
        """Objects disagreed on."""
        return len(self.champion_only) + len(self.challenger_only) + len(self.far_apart)

    def describe(self) -> str:
        """In words, e.g. "pedestrian seen by the champion only; vehicle boxes far apart"."""
        parts = []
        for what, names in (("seen by the champion only", self.champion_only),
                            ("seen by the challenger only", self.challenger_only), ("boxes far apart", self.far_apart)):
            for name in sorted(set(names)):
                n = names.count(name)
                parts.append(f"{n} {name}{'s' if n > 1 else ''} {what}" if n > 1 else f"{name} {what}")
        return "; ".join(parts)


def compare_frame(frame_id: str, champion: Boxes, challenger: Boxes, iou: float, min_px: float) -> Disagreement | None:
    """Compare two models' kept detections on one frame; None when they agree.

    Args:
        frame_id: the frame.
        champion, challenger: box dicts (``category, x1, y1, x2, y2, score``) at each model's
            operating thresholds, in the frame's pixels.
        iou: matched boxes overlapping less than this are far apart.
        min_px: boxes shorter than this (px) are left out.
    """
    found = compare_detections(champion, challenger, iou=iou, min_height_px=min_px)
    if not found:
        return None
    return Disagreement(frame_id, *(tuple(d.group for d in found if (d.seen_by, d.reason) == key)
                                    for key in (("acting", "unseen"), ("challenger", "unseen"), ("both", "far_apart"))))


def compare_models(champion: Mapping[str, Boxes], challenger: Mapping[str, Boxes], heights: Mapping[str, int],
                   iou: float, min_height: float) -> list[Disagreement]:
    """Every frame (of ``champion``'s) where the two models disagree, most objects first.

    Args:
        champion, challenger: frame_id -> kept detections of each model.
        heights: frame_id -> image height, px.
        iou: see `compare_frame`.
        min_height: objects shorter than this share of the image height are left out.
    """
    out = []
    for fid, boxes in champion.items():
        d = compare_frame(fid, boxes, challenger.get(fid, []), iou, min_height * heights[fid])
        if d is not None:
            out.append(d)
    return sorted(out, key=lambda d: (-d.objects, d.frame_id))
