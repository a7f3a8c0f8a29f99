"""Shadow mode: a challenger perception runs beside the acting one on the same frames, and the
frames where they disagree about a critical object are recorded.

A critical object is a pedestrian, a cyclist, or a vehicle (car, truck) in the ego's path (the
path test of `longtail.sim.perception`, on the box's estimated position). A frame disagrees when
one perception has a critical object that the other has no same-category box overlapping at all
(``unseen``), or only with an IoU below the threshold (``far_apart``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.boxes import iou_matrix
from longtail.sim.camera import CameraModel
from longtail.sim.perception import VRU_CATEGORIES, in_path, place_on_ground

VEHICLE_CATEGORIES = frozenset({"car", "truck"})
DEFAULT_SHADOW_IOU = 0.3
"""Matched boxes overlapping less than this disagree."""


def critical_boxes(boxes: list[dict[str, Any]], camera: CameraModel, ego_width: float, kappa: float,
                   pitch: float) -> list[dict[str, Any]]:
    """The boxes of critical objects: pedestrians and cyclists anywhere, vehicles in the ego's path.

    Args:
        boxes: box dicts of one frame (pixels).
        camera: the camera that took it.
        ego_width: the ego's width, m.
        kappa: the ego's path curvature, 1/m.
        pitch: the vehicle's pitch when the frame was taken, rad.
    """
    out = []
    for box in boxes:
        if box["category"] in VRU_CATEGORIES:
            out.append(box)
        elif box["category"] in VEHICLE_CATEGORIES:
            placed = place_on_ground([box], camera, pitch)
            if placed and in_path(placed[0], ego_width, kappa):
                out.append(box)
    return out


def _xyxy(boxes: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in boxes], dtype=float).reshape(-1, 4)


def compare_shadow(acting: list[dict[str, Any]], challenger: list[dict[str, Any]], camera: CameraModel,
                   ego_width: float, kappa: float, pitch: float, iou_threshold: float = DEFAULT_SHADOW_IOU
                   ) -> list[dict[str, Any]]:
    """Disagreements between two perceptions on one frame (empty when they agree).

    Args:
        acting: the acting perception's boxes.
        challenger: the challenger's boxes on the same frame.
        camera, ego_width, kappa, pitch: as for `critical_boxes`.
        iou_threshold: matched boxes overlapping less than this disagree.

    Returns:
        One dict per critical box the other side misses or places apart: ``seen_by`` ("acting"
        or "challenger"), ``reason`` ("unseen" or "far_apart"), ``category``, ``iou`` (best
        same-category IoU on the other side) and the box ``x1, y1, x2, y2``.
    """
    out = []
    for seen_by, mine, other in (("acting", acting, challenger), ("challenger", challenger, acting)):
        for box in critical_boxes(mine, camera, ego_width, kappa, pitch):
            same = [b for b in other if b["category"] == box["category"]]
            best = float(iou_matrix(_xyxy([box]), _xyxy(same)).max()) if same else 0.0
            if best >= iou_threshold:
                continue
            out.append({"seen_by": seen_by, "reason": "unseen" if best == 0.0 else "far_apart",
                        "category": box["category"], "iou": round(best, 4),
                        **{k: round(float(box[k]), 2) for k in ("x1", "y1", "x2", "y2")}})
    return out
