"""Perception mode: the ego's ADAS sees the road through a detector run on its own camera frames.

A perception source is any callable ``perceive(images) -> detections``: ``images`` are HxWx3
uint8 RGB frames (several vehicles' frames may come in one batch), and it returns, per frame,
box dicts ``category, x1, y1, x2, y2, score`` in the frame's pixels, already cut at the
operating thresholds. `longtail.detector.export.load_deployed_detector(folder).predict` is one;
`longtail.detector.predict.make_frame_predictor(model)` wraps a torchvision model as another.

From boxes to the ADAS's lead object (method):

1. Distance. Every box is assumed to stand on the flat road: its bottom edge ``y2`` is where it
   touches the ground, so the ray through that image row, from a camera ``height_m`` above the
   road pitched down by ``pitch = pitch_rad + vehicle pitch``, meets the road at forward
   distance ``Z = height_m / tan(pitch + atan((y2 - cy) / fy))`` (`CameraModel.ground_depth`
   with the vehicle's pitch added). The vehicle's pitch comes from its IMU: braking dips the
   nose by a degree or two, which at 35 m would otherwise more than double the estimate. What
   remains is the pixel: one row of bottom edge is metres at 50 m on a 320 px wide camera.
2. Lateral position and width. The box's centre column gives the object's lateral offset
   ``X = (u - cx) / fx * zc`` with ``zc`` the camera-frame depth of that ground point; its width
   in pixels gives its width in metres the same way.
3. In-path test. The ego's predicted path bends with its own curvature ``kappa`` (from the yaw
   rate, as ACC systems predict their path): at distance ``Z`` its centre is ``kappa * Z^2 / 2``
   to the side. An object is in the path when its estimated lateral extent overlaps the ego's
   width plus ``PATH_MARGIN_M`` on each side around that centre.
4. Speed. A box has no speed: the nearest in-path object is tracked from one perception frame
   to the next (same object when its distance moved by less than ``ASSOCIATION_M`` plus 30 %),
   and its range rate is the least-squares slope of its distances over the last
   ``RANGE_RATE_WINDOW_S`` (one pixel of bottom edge is metres at 50 m on a 320 px wide
   camera: a slope over several frames tames that). A new pedestrian or cyclist is assumed
   still along the road (what ACC must assume of a crossing person); a new vehicle is assumed to
   move with the ego until its range rate is measured. Between perception frames the last
   detections are held and the tracked distance is carried forward by the range rate.

Traffic lights are not detector categories: the ACC keeps stopping at red lights from the map,
in both modes. A missed pedestrian is therefore not braked for, and a phantom box is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.sim.camera import CameraModel

Perceive = Callable[[list[np.ndarray]], list[list[dict[str, Any]]]]
"""A perception source: RGB frames in, per frame the thresholded box dicts (pixels) out."""

PATH_MARGIN_M = 0.3
"""Margin on each side of the ego's width within which an object is in its path, m."""
ASSOCIATION_M = 4.0
"""An in-path object whose distance moved by less than this (plus 30 %) is the same object, m."""
RANGE_RATE_WINDOW_S = 1.0
"""The range rate is fitted to the tracked distances of this last stretch of time, s."""
VRU_CATEGORIES = frozenset({"pedestrian", "cyclist"})
BOX_KEYS = ("category", "x1", "y1", "x2", "y2", "score")


@dataclass(frozen=True)
class GroundObject:
    """A detected object placed on the road in the ego's frame.

    Attributes:
        category: the detector's class name.
        distance_m: forward distance from the camera to the box's ground contact, m.
        lateral_m: lateral offset of the box's centre, m (right +).
        half_width_m: half the box's width at that distance, m.
        score: the detector's confidence.
    """

    category: str
    distance_m: float
    lateral_m: float
    half_width_m: float
    score: float


def check_boxes(boxes: Sequence[dict[str, Any]], source: str) -> None:
    """Raise `InputError` unless every box has the keys and finite, ordered corners.

    Zero-width or zero-height boxes pass: detectors clip boxes at the image edge and may emit them.

    Args:
        boxes: box dicts of one frame.
        source: what produced them, for the message.
    """
    for box in boxes:
        missing = [k for k in BOX_KEYS if k not in box]
        if missing:
            raise InputError(f"{source}: a box lacks {missing}; perceive() must return dicts with {list(BOX_KEYS)} "
                             "in pixels")
        corners = [float(box[k]) for k in ("x1", "y1", "x2", "y2")]
        if not all(math.isfinite(c) for c in corners) or corners[2] < corners[0] or corners[3] < corners[1]:
            raise InputError(f"{source}: box {box} is inverted or not finite; boxes are x1 <= x2, y1 <= y2 pixel edges")


def place_on_ground(boxes: Sequence[dict[str, Any]], camera: CameraModel, pitch: float = 0.0) -> list[GroundObject]:
    """Distance and lateral position of each box on the flat road (steps 1-2 of the module docstring).

    Boxes whose bottom edge is at or above the horizon touch no road and are left out.

    Args:
        boxes: box dicts (pixel edges) of one frame.
        camera: the camera that took the frame.
        pitch: the vehicle's pitch when it was taken, on top of the camera's static pitch, rad (nose down +).

    Returns:
        One `GroundObject` per box below the horizon.
    """
    out = []
    for box in boxes:
        tilt = camera.pitch_rad + pitch
        below = tilt + math.atan((float(box["y2"]) - camera.cy) / camera.fy)  # ray below the horizontal, rad
        if below <= 1e-4:
            continue
        depth = camera.height_m / math.tan(below)
        # Camera-frame depth of the ground point: the pitch tilts the optical axis down.
        zc = depth * math.cos(tilt) + camera.height_m * math.sin(tilt)
        centre = (float(box["x1"]) + float(box["x2"])) / 2
        out.append(GroundObject(
            category=str(box["category"]),
            distance_m=depth,
            lateral_m=(centre - camera.cx) / camera.fx * zc,
            half_width_m=(float(box["x2"]) - float(box["x1"])) / 2 / camera.fx * zc,
            score=float(box["score"]),
        ))
    return out


def in_path(obj: GroundObject, ego_width: float, kappa: float) -> bool:
    """True when ``obj`` overlaps the ego's predicted path (step 3 of the module docstring).

    Args:
        obj: the object on the road.
        ego_width: the ego's width, m.
        kappa: the ego's path curvature, 1/m (right +).
    """
    centre = kappa * obj.distance_m**2 / 2
    return abs(obj.lateral_m - centre) < ego_width / 2 + PATH_MARGIN_M + obj.half_width_m


def make_critical_test(camera: CameraModel, ego_width: float, kappa: float, pitch: float
                       ) -> Callable[[dict[str, Any]], bool]:
    """Which boxes of one frame are critical objects for shadow mode (`longtail.detector.shadow`):
    pedestrians and cyclists anywhere, anything else only when it is in the ego's path.

    Args:
        camera: the camera that took the frame.
        ego_width: the ego's width, m.
        kappa: the ego's path curvature, 1/m.
        pitch: the vehicle's pitch when the frame was taken, rad.
    """
    def critical(box: dict[str, Any]) -> bool:
        if box["category"] in VRU_CATEGORIES:
            return True
        placed = place_on_ground([box], camera, pitch)
        return bool(placed) and in_path(placed[0], ego_width, kappa)
    return critical


class PerceivedPath:
    """What the ADAS knows of its path: the last detections, and the tracked nearest object in it.

    Args:
        camera: the ego's camera.
        ego_width: the ego's width, m.
    """

    def __init__(self, camera: CameraModel, ego_width: float) -> None:
        self.camera = camera
        self.ego_width = ego_width
        self.objects: list[GroundObject] = []
        self.boxes: list[dict[str, Any]] = []
        self.frames = 0
        self._track: list[tuple[float, float]] = []  # (time s, distance m) of the tracked object
        self._prior_rate = 0.0
        self._range_rate = 0.0
        self._fitted = 0.0  # the track's fitted distance at its last time, m

    def update(self, t: float, boxes: list[dict[str, Any]], ego_v: float, kappa: float, pitch: float) -> None:
        """Take the detections of a frame taken at ``t`` (s), with the ego at ``ego_v`` m/s on a path of
        curvature ``kappa`` (1/m), pitched by ``pitch`` (rad, nose down +)."""
        self.boxes = boxes
        self.objects = place_on_ground(boxes, self.camera, pitch)
        self.frames += 1
        lead = self._nearest(kappa)
        if lead is None:
            self._track = []
            return
        predicted = self.distance(t)
        if predicted is None or abs(lead.distance_m - predicted) >= ASSOCIATION_M + 0.3 * predicted:
            self._track = []
            self._prior_rate = -ego_v if lead.category in VRU_CATEGORIES else 0.0
        self._track = [(tk, d) for tk, d in self._track if t - tk <= RANGE_RATE_WINDOW_S] + [(t, lead.distance_m)]
        times = np.array([tk for tk, _ in self._track])
        if len(times) >= 2 and times[-1] - times[0] >= 0.3:
            dists = np.array([d for _, d in self._track])
            slope, intercept = np.polyfit(times - times[-1], dists, 1)
            self._range_rate, self._fitted = float(slope), float(intercept)
        else:
            self._range_rate, self._fitted = self._prior_rate, lead.distance_m

    def _nearest(self, kappa: float) -> GroundObject | None:
        path = [o for o in self.objects if in_path(o, self.ego_width, kappa)]
        return min(path, key=lambda o: o.distance_m) if path else None

    def distance(self, t: float) -> float | None:
        """Distance to the tracked object at ``t``, carried forward by its range rate, m (None: path clear)."""
        if not self._track:
            return None
        return self._fitted + self._range_rate * (t - self._track[-1][0])

    def lead(self, t: float, ego_v: float) -> tuple[float, float]:
        """Gap (m) to and speed (m/s) of the nearest object in the path at ``t``; (1e9, 0) when clear."""
        gap = self.distance(t)
        if gap is None:
            return 1e9, 0.0
        return gap, max(ego_v + self._range_rate, 0.0)
