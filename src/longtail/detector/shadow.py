"""Shadow mode's one definition of a disagreement between two perceptions on one frame.

The acting perception (the deployed champion) acts; a challenger beside it only predicts. The
fleet test (`longtail.sim.fleet_test`) and the monitor (`longtail.monitor`) both compare them
with `compare_detections`:

1. Only critical object groups are compared (`SHADOW_GROUPS`): vehicles (car and truck, one
   group, so calling a truck a car is no disagreement), pedestrians, cyclists. Boxes shorter
   than ``min_height_px`` are left out (evaluation ignores objects that small too).
2. Within a group, boxes are matched one to one, greedily by IoU in COCO's order (each side's
   boxes by descending score, `longtail.detector.metrics.match_greedy`) at IoU `MATCH_IOU` or
   more: two boxes overlapping that much are taken for the same object.
3. An unmatched box is an object one side sees and the other does not (``unseen``); a matched
   pair overlapping less than ``iou`` is one object whose boxes are far apart (``far_apart``).
4. A caller may say which boxes are critical (``critical``, e.g. the simulator's "vehicles only
   in the ego's path"): then an unmatched box counts only when it is critical, and a far-apart
   pair when either of its boxes is. Matching still uses every box, so an object on the edge of
   the path that one side places just inside and the other just outside is not "unseen".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from longtail.boxes import iou_matrix
from longtail.detector.metrics import match_greedy

Box = dict[str, Any]
"""A box dict: ``category, x1, y1, x2, y2, score`` in the frame's pixels."""

SHADOW_GROUPS: dict[str, str] = {"car": "vehicle", "truck": "vehicle", "pedestrian": "pedestrian",
                                 "cyclist": "cyclist"}
"""Critical object groups shadow mode compares; a class not listed here is not compared."""
MATCH_IOU = 0.1
"""Two boxes of one group overlapping at least this much are taken for the same object."""
DEFAULT_SHADOW_IOU = 0.3
"""Matched boxes overlapping less than this are far apart."""


@dataclass(frozen=True)
class ObjectDisagreement:
    """One object two perceptions disagree on.

    Attributes:
        seen_by: "acting" or "challenger" (the side that sees an ``unseen`` object), "both" for
            a ``far_apart`` pair.
        reason: "unseen" or "far_apart".
        group: the object's group (`SHADOW_GROUPS`).
        category: the recorded box's class.
        iou: the far-apart pair's IoU; for an unseen object its largest IoU with a box of its
            group on the other side (below `MATCH_IOU`, or a box matched to another object).
        box: the recorded box, x1, y1, x2, y2 in pixels (the acting side's of a far-apart pair).
    """

    seen_by: Literal["acting", "challenger", "both"]
    reason: Literal["unseen", "far_apart"]
    group: str
    category: str
    iou: float
    box: tuple[float, float, float, float]

    def to_json(self) -> dict[str, Any]:
        """``seen_by, reason, category, group, iou`` and ``x1, y1, x2, y2`` (rounded to 0.01 px)."""
        return {"seen_by": self.seen_by, "reason": self.reason, "category": self.category, "group": self.group,
                "iou": round(self.iou, 4), **{k: round(v, 2) for k, v in zip(("x1", "y1", "x2", "y2"), self.box,
                                                                                strict=True)}}


def _xyxy(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in boxes], dtype=np.float64).reshape(-1, 4)


def _record(seen_by: Literal["acting", "challenger", "both"], reason: Literal["unseen", "far_apart"], group: str,
            box: Box, iou: float) -> ObjectDisagreement:
    return ObjectDisagreement(seen_by, reason, group, str(box["category"]), float(iou),
                              (float(box["x1"]), float(box["y1"]), float(box["x2"]), float(box["y2"])))


def compare_detections(acting: Sequence[Box], challenger: Sequence[Box], *, iou: float = DEFAULT_SHADOW_IOU,
                       min_height_px: float = 0.0, critical: Callable[[Box], bool] | None = None
                       ) -> list[ObjectDisagreement]:
    """The objects two perceptions disagree on in one frame (empty when they agree); see the module docstring.

    Args:
        acting: the acting perception's boxes (``category, x1, y1, x2, y2, score``, pixels),
            already cut at its operating thresholds.
        challenger: the challenger's boxes on the same frame, likewise.
        iou: matched boxes overlapping less than this are far apart (default `DEFAULT_SHADOW_IOU`).
        min_height_px: boxes shorter than this are not compared, px (default 0: all are).
        critical: which boxes count (default: every box of a compared group).

    Returns:
        The disagreements, by group name, then the acting side's unseen objects, the
        challenger's, and the far-apart pairs.
    """
    out: list[ObjectDisagreement] = []

    def counts(box: Box) -> bool:
        return critical is None or critical(box)

    for group in sorted(set(SHADOW_GROUPS.values())):
        a, b = ([x for x in side if SHADOW_GROUPS.get(x["category"]) == group and x["y2"] - x["y1"] >= min_height_px]
                for side in (acting, challenger))
        if not a and not b:
            continue
        for side in (a, b):  # COCO's order (the challenger's too: match_greedy's ties go by it)
            side.sort(key=lambda x: -float(x["score"]))
        ious = iou_matrix(_xyxy(a), _xyxy(b))
        matched = match_greedy(ious, MATCH_IOU) if len(a) and len(b) else np.full(len(a), -1)
        taken = set(int(g) for g in matched if g >= 0)
        best_a = ious.max(axis=1) if len(b) else np.zeros(len(a))
        best_b = ious.max(axis=0) if len(a) else np.zeros(len(b))
        out += [_record("acting", "unseen", group, x, best_a[i]) for i, x in enumerate(a)
                if matched[i] < 0 and counts(x)]
        out += [_record("challenger", "unseen", group, x, best_b[j]) for j, x in enumerate(b)
                if j not in taken and counts(x)]
        out += [_record("both", "far_apart", group, a[i], ious[i, g]) for i, g in enumerate(matched)
                if g >= 0 and ious[i, g] < iou and (counts(a[i]) or counts(b[g]))]
    return out
