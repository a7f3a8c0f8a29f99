"""Ground truth of a frame: every drawn actor's full and visible box, visible fraction,
truncation, distance, luminance, category and pose, measured exactly on the ID buffer.

Boxes are pixel-edge coordinates: x1, y1 inclusive, x2, y2 exclusive, so a box covering
only pixel (0, 0) is (0, 0, 1, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from longtail.sim.actors import Cyclist, Vehicle, Walker
from longtail.sim.render.base import _Drawable


@dataclass(frozen=True)
class ObjectTruth:
    """Ground truth of one actor in one frame (see `longtail.schemas.GT_OBJECT_FIELDS`)."""

    track_id: int
    category: str
    box: tuple[int, int, int, int]
    visible_box: tuple[int, int, int, int]
    visible_fraction: float
    truncation: float
    distance_m: float
    pixel_height: int
    luminance: float
    pose: str
    scenario: str
    critical: bool


def compute_truth(frame: np.ndarray, ids: np.ndarray, drawn: list[dict[str, Any]], min_box_px: int) -> list[ObjectTruth]:
    """Ground truth of the actors drawn in a frame, measured on its ID buffer.

    Args:
    frame: the finished BGR image (H, W, 3), for each actor's mean luminance.
    ids: the frame's ID buffer (H, W): each pixel holds the ID of the actor seen there.
    drawn: one dict per drawn actor: ``id`` (its value in ``ids``), ``item`` (the drawable),
        ``bounds`` (its projected extent, px, possibly beyond the image) and ``full_box``
        (x1, y1, x2, y2, pixel count as drawn, before nearer things covered it).
    min_box_px: actors shorter than this, px, are left out.

    Returns:
    One `ObjectTruth` per actor still visible in the frame.
    """
    if not drawn:
        return []
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    out: list[ObjectTruth] = []
    H, W = ids.shape
    for d in drawn:
        aid, it, ext = d["id"], d["item"], d["bounds"]
        full_box = d.get("full_box")
        if full_box is None:
            continue
        x1, y1, x2, y2, drawn_px = full_box
        if y2 - y1 < min_box_px:
            continue
        eq = ids[y1:y2, x1:x2] == aid
        vis_px = int(np.count_nonzero(eq))
        if vis_px == 0:
            continue
        vis = eq.view(np.uint8)
        bx, by, bw, bh = cv2.boundingRect(vis)
        vbox = (x1 + bx, y1 + by, x1 + bx + bw, y1 + by + bh)
        lum = float(np.asarray(cv2.mean(gray[y1:y2, x1:x2], vis))[0]) / 255.0
        ux0, uy0, ux1, uy1 = ext
        full_area = max((ux1 - ux0) * (uy1 - uy0), 1e-6)
        in_area = max(0.0, min(ux1, W) - max(ux0, 0)) * max(0.0, min(uy1, H) - max(uy0, 0))
        obj = it.obj
        category, pose = category_pose(it)
        out.append(ObjectTruth(
            track_id=obj.id,
            category=category,
            box=(x1, y1, x2, y2),
            visible_box=vbox,
            visible_fraction=round(min(vis_px / max(drawn_px, 1), 1.0), 4),
            truncation=round(float(np.clip(1.0 - in_area / full_area, 0.0, 1.0)), 4),
            distance_m=round(it.depth, 3),
            pixel_height=y2 - y1,
            luminance=round(lum, 4),
            pose=pose,
            scenario=obj.scenario or "",
            critical=bool(obj.critical),
        ))
    return out


def category_pose(it: _Drawable) -> tuple[str, str]:
    """Category and pose names of a drawn actor (see `longtail.schemas.GT_OBJECT_FIELDS`)."""
    obj = it.obj
    if it.kind == "vehicle":
        v: Vehicle = obj
        if v.parked:
            pose = "parked"
        elif v.broken_down:
            pose = "stopped"
        elif v.oncoming:
            pose = "oncoming"
        elif v.lc is not None:
            pose = "changing_lane"
        else:
            pose = "ahead"
        return v.kind, pose
    if it.kind == "walker":
        w: Walker = obj
        if not w.moving:
            return "pedestrian", "standing"
        return "pedestrian", "crossing" if abs(w.vx) > abs(w.vs) else "walking"
    c: Cyclist = obj
    return "cyclist", "crossing" if abs(c.vx) > abs(c.vs) else "riding"
