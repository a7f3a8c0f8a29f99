"""What the renderer's passes share: the frame's projected points, the projection and
near-plane clipping, and polygon filling into the image and the ID buffer.

Coordinates: road-frame points are (ds ahead of the ego, x across the road, height), m;
pixels are (u right, v down). OpenCV draws in fixed point with 4 fractional bits (x16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from longtail.sim.camera import NEAR_Z, CameraModel
from longtail.sim.lighting import Lighting
from longtail.sim.road import RoadView

# Frames are rendered one per process; parallelism is across drives, not inside OpenCV.
cv2.setNumThreads(1)

MARGIN = 48
"""Extra canvas rows above and below the image, px, so pitch can shift the horizon."""
ID_STATIC = 255
"""ID-buffer value of static occluders (trees, poles, signs...)."""
MAX_ACTORS = 254
STATIC_LIGHT = -1
"""Owner of the glare of a lamp or signal (hidden when an actor covers it)."""


def _bgr(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    return (float(rgb[2]), float(rgb[1]), float(rgb[0]))


@dataclass
class _Drawable:
    kind: str
    obj: Any
    pts: np.ndarray
    absolute: bool = False
    start: int = 0
    depth: float = 0.0
    hull: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    all_near: bool = True


class RenderBase:
    """State and primitives shared by the renderer's passes (see `longtail.sim.render.Renderer`).

    Attributes set per frame hold every projected point of the frame's drawables, indexed by
    each drawable's ``start``: road-frame points (``_rel``), camera-frame coordinates
    (``_xc``, ``_yc``, ``_zc``), pixels (``_u``, ``_v``, fixed point ``_ipts``) and whether
    each point is in front of the near plane (``_near``).
    """

    cam: CameraModel
    light: Lighting
    time_of_day: str
    weather: str
    rng: np.random.Generator
    min_box_px: int
    W: int
    H: int
    scale: float
    _view: RoadView
    _yaw: float
    _pitch: float
    _ego_x: float
    _rel: np.ndarray
    _u: np.ndarray
    _v: np.ndarray
    _xc: np.ndarray
    _yc: np.ndarray
    _zc: np.ndarray
    _near: np.ndarray
    _ipts: np.ndarray
    _fv_index: dict[int, int]
    _fv_vis: list[Any]
    _fv_pts: np.ndarray
    _fv_near: list[Any]
    _glows: list[tuple[float, float, float, tuple[float, float, float], int]]
    _lamps: list[tuple[float, float]]
    _lit_windows: dict[int, np.ndarray]
    _glow_cache: dict[tuple[int, tuple[int, int, int]], np.ndarray]
    _sprites: dict[int, np.ndarray]

    def _project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project road-frame points (ds, x, y) to pixels; returns u, v and camera depth."""
        X, Z = self._view.place(pts[:, 0], pts[:, 1])
        xc, yc, zc = self.cam.to_camera(X - self._ego_x, pts[:, 2], Z, self._yaw, self._pitch)
        zs = np.maximum(zc, 1e-3)
        u, v = self.cam.project_camera(xc, yc, zs)
        return u, v, zc

    def _camera_points(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, Z = self._view.place(pts[:, 0], pts[:, 1])
        return self.cam.to_camera(X - self._ego_x, pts[:, 2], Z, self._yaw, self._pitch)

    # ------------------------------------------------------------------ primitives
    _FACES = np.array([[0, 2, 3, 1], [4, 6, 7, 5], [0, 4, 5, 1], [2, 6, 7, 3], [1, 3, 7, 5]])

    def _visible_faces(self, bases: np.ndarray) -> None:
        """For each box (8 corners from a base index): which of its 5 faces (back, front, left,
        right, top) face the camera, their fixed-point pixel corners, and whether each face is in
        front of the near plane. One vectorized pass for every box drawn in the frame."""
        self._fv_index = {b: j for j, b in enumerate(bases.tolist())}
        if not len(bases):
            return
        idx = bases[:, None] + np.arange(8)[None, :]
        P = np.stack([self._xc[idx], self._yc[idx], self._zc[idx]], axis=-1)
        center = P.mean(axis=1)
        fc = P[:, self._FACES].mean(axis=2)
        self._fv_vis = (((fc - center[:, None, :]) * fc).sum(axis=-1) < 0).tolist()
        face_idx = idx[:, self._FACES]
        self._fv_pts = self._ipts[face_idx]
        self._fv_near = self._near[face_idx].all(axis=-1).tolist()

    def _poly(self, frame: np.ndarray, ids: np.ndarray, idx: list[int] | np.ndarray, color: tuple[int, int, int],
              aid: int, ext: list[float] | None, all_near: bool = False) -> None:
        """Fill the convex polygon of projected points ``idx`` (near-plane clipped) in colour and ID.

        ``all_near`` says the caller knows every point is in front of the near plane.
        """
        if all_near or self._near[idx].all():
            ipts = self._ipts[idx]
            if ext is not None:
                lo, hi = ipts.min(axis=0), ipts.max(axis=0)
                ext[0] = min(ext[0], lo[0] / 16)
                ext[1] = min(ext[1], lo[1] / 16)
                ext[2] = max(ext[2], hi[0] / 16)
                ext[3] = max(ext[3], hi[1] / 16)
        else:
            pts = self._clip_near(np.asarray(idx))
            if pts is None:
                return
            if ext is not None:
                ext[0] = min(ext[0], float(pts[:, 0].min()))
                ext[1] = min(ext[1], float(pts[:, 1].min()))
                ext[2] = max(ext[2], float(pts[:, 0].max()))
                ext[3] = max(ext[3], float(pts[:, 1].max()))
            ipts = np.round(pts.clip(-30000, 30000) * 16).astype(np.int32)
        cv2.fillConvexPoly(frame, ipts, color, cv2.LINE_8, 4)
        if aid:
            cv2.fillConvexPoly(ids, ipts, aid, cv2.LINE_8, 4)

    def _clip_near(self, idx: np.ndarray) -> np.ndarray | None:
        """Clip a polygon against the near plane in camera space (Sutherland-Hodgman)."""
        P = np.stack([self._xc[idx], self._yc[idx], self._zc[idx]], axis=1)
        out = []
        n = len(P)
        for i in range(n):
            a, b = P[i], P[(i + 1) % n]
            ina, inb = a[2] >= NEAR_Z, b[2] >= NEAR_Z
            if ina:
                out.append(a)
            if ina != inb:
                t = (NEAR_Z - a[2]) / (b[2] - a[2])
                out.append(a + t * (b - a))
        if len(out) < 3:
            return None
        Q = np.array(out)
        u, v = self.cam.project_camera(Q[:, 0], Q[:, 1], Q[:, 2])
        return np.stack([u, v], axis=1)

    def _px(self, i: int) -> tuple[float, float]:
        return float(self._u[i]), float(self._v[i])

    def _ipt(self, i: int) -> tuple[int, int]:
        """Projected point ``i`` in OpenCV's fixed point (4 fractional bits)."""
        a, b = self._ipts[i].tolist()
        return a, b
