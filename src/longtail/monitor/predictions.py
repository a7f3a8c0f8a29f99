"""What the champion (and a challenger in shadow) predict on a batch, summed up: confidence and
class-frequency histograms, and the frames where champion and challenger disagree.

Shadow mode: the champion acts, the challenger only predicts. Each model's detections are kept at
its own per-class operating thresholds (``thresholds`` in its model.json, else 0.5), and objects
shorter than ``min_height`` of the image are not compared (evaluation ignores them too). Vehicles
(car and truck) are one group, so calling a truck a car is no disagreement; pedestrians and
cyclists are groups of their own. Within a group, boxes are matched greedily by IoU (COCO's
order, highest score first) at IoU 0.1 or more: an unmatched box is an object one model sees and
the other does not; a matched pair overlapping less than ``iou`` is two boxes far apart. A frame
with either is a disagreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.boxes import iou_matrix
from longtail.detector.metrics import class_thresholds, match_greedy
from longtail.schemas import CATEGORIES

Boxes = list[dict[str, Any]]

GROUPS: dict[str, str] = {"car": "vehicle", "truck": "vehicle", "pedestrian": "pedestrian", "cyclist": "cyclist"}
"""Critical object groups shadow mode compares: a class not listed here is not compared."""
MATCH_IOU = 0.1
"""Two boxes of one group overlapping at least this much are taken for the same object."""
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


def _tall(boxes: Boxes, min_px: float) -> Boxes:
    return [b for b in boxes if b["category"] in GROUPS and b["y2"] - b["y1"] >= min_px]


def compare_frame(frame_id: str, champion: Boxes, challenger: Boxes, iou: float, min_px: float) -> Disagreement | None:
    """Compare two models' kept detections on one frame; None when they agree.

    Args:
        frame_id: the frame.
        champion, challenger: box dicts (``category, x1, y1, x2, y2, score``) at each model's
            operating thresholds, in the frame's pixels.
        iou: matched boxes overlapping less than this are far apart.
        min_px: boxes shorter than this (px) are left out.
    """
    a, b = _tall(champion, min_px), _tall(challenger, min_px)
    only_a: list[str] = []
    only_b: list[str] = []
    apart: list[str] = []
    for group in sorted(set(GROUPS.values())):
        ga = sorted((x for x in a if GROUPS[x["category"]] == group), key=lambda x: -x["score"])
        gb = sorted((x for x in b if GROUPS[x["category"]] == group), key=lambda x: -x["score"])
        if not ga and not gb:
            continue
        ious = iou_matrix([[x["x1"], x["y1"], x["x2"], x["y2"]] for x in ga],
                          [[x["x1"], x["y1"], x["x2"], x["y2"]] for x in gb])
        matched = match_greedy(ious, MATCH_IOU) if len(ga) and len(gb) else np.full(len(ga), -1)
        only_a += [group] * int((matched < 0).sum())
        only_b += [group] * (len(gb) - int((matched >= 0).sum()))
        apart += [group for d, g in enumerate(matched) if g >= 0 and ious[d, g] < iou]
    if not (only_a or only_b or apart):
        return None
    return Disagreement(frame_id, tuple(only_a), tuple(only_b), tuple(apart))


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
