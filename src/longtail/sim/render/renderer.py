"""The renderer: one frame of a world, drawn in four passes (see `longtail.sim.render`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from longtail.sim.camera import NEAR_Z, CameraModel
from longtail.sim.lighting import Lighting
from longtail.sim.render.actors import VEHICLE_BOX_PX, VEHICLE_DETAIL_PX, ActorsMixin
from longtail.sim.render.base import MARGIN, MAX_ACTORS, _Drawable
from longtail.sim.render.light import LightMixin
from longtail.sim.render.props import PropsMixin
from longtail.sim.render.scene import SceneMixin
from longtail.sim.render.truth import ObjectTruth, compute_truth
from longtail.sim.road import CELL_M, RoadView

if TYPE_CHECKING:
    from longtail.sim.world import World

MAX_DRAW_M = 200.0
"""Objects beyond this distance (m) are not drawn: a car there is about 4 px tall."""


class Renderer(SceneMixin, PropsMixin, ActorsMixin, LightMixin):
    """Draws frames of one drive.

    Args:
        camera: the vehicle's front camera.
        lighting: the drive's lighting.
        time_of_day, weather: condition names (for the skyline and emissive choices).
        seed: seed of the renderer's own randomness (textures, rain, noise).
        min_box_px: objects shorter than this are left out of the ground truth.
    """

    def __init__(self, camera: CameraModel, lighting: Lighting, time_of_day: str, weather: str, seed: int,
                 min_box_px: int = 4) -> None:
        self.cam = camera
        self.light = lighting
        self.time_of_day = time_of_day
        self.weather = weather
        self.rng = np.random.default_rng(seed)
        self.min_box_px = min_box_px
        self.W, self.H = camera.width, camera.height
        self.scale = self.W / 640.0
        self._cell_cache: dict[int, list[_Drawable]] = {}
        self._lit_windows = {}
        self._glow_cache = {}
        self._sprites = {}
        # The order of these calls is the order in which they draw from ``rng``.
        self._build_sky_and_ground()
        self._build_sensor_and_weather()
        self._build_skylines()

    def render(self, world: World) -> tuple[np.ndarray, list[ObjectTruth]]:
        """Draw the current state of ``world``.

        After the call, ``last_ids`` holds the frame's ID buffer (0 background, 255 static
        occluders, else an actor) and ``last_id_of`` maps each actor's track id to its value.

        Returns:
            The BGR image (H, W, 3) uint8 and the ground truth of every actor in view.
        """
        cam, ego = self.cam, world.ego
        view = world.road.view(ego.s)
        dv = round(cam.fy * math.tan(ego.pitch))
        dv = max(-MARGIN, min(MARGIN, dv))
        r0 = MARGIN + dv
        frame = self.sky[r0:r0 + self.H].copy()
        self._draw_skyline(frame, world, view, dv)
        self._yaw = ego.psi
        self._pitch = ego.pitch
        self._ego_x = ego.x
        self._view = view
        self._draw_ground(frame, world, view)
        self._apply_ground_light(frame, r0)
        self._glows: list[tuple[float, float, float, tuple[float, float, float], int]] = []
        ids = np.zeros((self.H, self.W), np.uint8)
        drawn = self._draw_objects(frame, ids, world, view)
        self._draw_glows(frame, ids)
        self._weather(frame, world)
        self._sensor(frame, world)
        self.last_ids = ids
        self.last_id_of = {d["item"].obj.id: d["id"] for d in drawn}
        return frame, compute_truth(frame, ids, drawn, self.min_box_px)

    def _collect(self, world: World, view: RoadView) -> list[_Drawable]:
        """Everything that may be in view, as drawables with road-frame points.

        Props never move: their points are built once per road cell in absolute ``s`` and
        cached; the caller subtracts the ego's position from all of them in one operation.
        """
        s_ego = world.ego.s
        items: list[_Drawable] = []
        self._lamps: list[tuple[float, float]] = []
        lo, hi = int((s_ego - 5) // CELL_M), int((s_ego + 260) // CELL_M)
        for idx in [k for k in self._cell_cache if k < lo - 30]:
            del self._cell_cache[idx]
        lights_by_s = {round(li.s - 1.0, 3): li for li in world.lights}
        for idx in range(lo, hi + 1):
            cached = self._cell_cache.get(idx)
            if cached is None:
                cell = world.cells.get(idx)
                if cell is None:
                    continue
                cached = []
                for p in cell.props:
                    tl = lights_by_s.get(round(p.s, 3)) if p.kind == "traffic_light" else None
                    cached.extend(self._prop_drawables(p, p.s, tl))
                self._cell_cache[idx] = cached
            for d in cached:
                p = d.obj[0] if d.kind == "traffic_light" else d.obj
                ds = p.s - s_ego
                if d.kind == "building":
                    if ds + p.size[0] < -2 or ds > 260:
                        continue
                elif not -1.0 < ds < 250:
                    continue
                if d.kind == "lamp":
                    self._lamps.append((ds, p.x - p.side * 1.8))
                items.append(_Drawable(d.kind, d.obj, d.pts, absolute=True))
        items.extend(self._linear_features(world, view))
        for v in world.vehicles:
            ds = v.s - s_ego
            if -v.length / 2 - 2 < ds < 270:
                items.append(_Drawable("vehicle", v, self._vehicle_points(v, ds)))
        for w in world.walkers:
            ds = w.s - s_ego
            if 0.5 < ds < 160:
                items.append(_Drawable("walker", w, np.array([[ds, w.x, 0.0], [ds, w.x, w.height]])))
        for c in world.cyclists:
            ds = c.s - s_ego
            if 0.5 < ds < 160:
                items.append(_Drawable("cyclist", c, np.array([[ds, c.x, 0.0], [ds, c.x, 1.75]])))
        return items

    def _draw_objects(self, frame: np.ndarray, ids: np.ndarray, world: World, view: RoadView) -> list[dict[str, Any]]:
        items = self._collect(world, view)
        if not items:
            return []
        sizes = np.array([len(it.pts) for it in items])
        allpts = np.concatenate([it.pts for it in items])
        shift = np.array([world.ego.s if it.absolute else 0.0 for it in items])
        allpts[:, 0] -= np.repeat(shift, sizes)
        self._rel = allpts
        xc, yc, zc = self._camera_points(allpts)
        zs = np.maximum(zc, 1e-3)
        u, v = self.cam.project_camera(xc, yc, zs)
        self._u, self._v, self._zc, self._xc, self._yc = u, v, zc, xc, yc
        near = zc >= NEAR_Z
        self._near = near
        self._ipts = np.round(np.stack([u, v], axis=1).clip(-30000, 30000) * 16).astype(np.int32)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        # Screen extent of every item in one pass (points behind the camera left out).
        umin = np.minimum.reduceat(np.where(near, u, np.inf), starts)
        umax = np.maximum.reduceat(np.where(near, u, -np.inf), starts)
        vmin = np.minimum.reduceat(np.where(near, v, np.inf), starts)
        vmax = np.maximum.reduceat(np.where(near, v, -np.inf), starts)
        allnear = np.logical_and.reduceat(near, starts)
        depth = np.sqrt(xc[starts] ** 2 + yc[starts] ** 2 + zc[starts] ** 2)
        W, H = self.W, self.H
        visible = (umax >= 0) & (umin < W) & (vmax >= 0) & (vmin < H)
        bases: list[int] = []
        kept: list[_Drawable] = []
        for k, it in enumerate(items):
            it.start = int(starts[k])
            it.depth = float(depth[k])
            it.all_near = bool(allnear[k])
            it.hull = (float(umin[k]), float(vmin[k]), float(umax[k]), float(vmax[k]))
            # Vehicles partly beside or behind the camera still reach into the image.
            if not (visible[k] or (it.kind in ("vehicle", "building") and not it.all_near)):
                continue
            # Sub-pixel things cost time and show nothing; beyond MAX_DRAW_M everything is a
            # speck under the ground truth's minimum box height, and hidden by nearer things.
            if it.all_near and vmax[k] - vmin[k] < 1.5 and umax[k] - umin[k] < 1.5:
                continue
            if it.depth > MAX_DRAW_M and it.kind != "building":
                continue
            if it.kind == "vehicle":
                height = vmax[k] - vmin[k]
                if height >= VEHICLE_BOX_PX or not it.all_near:
                    first = 0 if height >= VEHICLE_DETAIL_PX or not it.all_near else 4
                    bases.extend(it.start + 5 + 8 * j for j in range(first, 6))
            kept.append(it)
        items = kept
        self._visible_faces(np.array(bases, dtype=np.int64))
        # Buildings stand behind everything else at the roadside: draw them first.
        items.sort(key=lambda it: (it.kind != "building", -it.depth))
        if self.time_of_day == "night" and self.light.lamps_on:
            self._lamp_pools(frame, [(lds, lx) for lds, lx in self._lamps if 2.0 < lds < 120.0])
        truths: list[dict[str, Any]] = []
        next_id = 1
        W, H = self.W, self.H
        items = [it for it in items if zc[it.start] >= NEAR_Z or it.kind in ("vehicle", "building")]
        shades = self._shades(items) if items else []
        for it, shade in zip(items, shades, strict=True):
            if it.kind in ("vehicle", "walker", "cyclist"):
                if next_id > MAX_ACTORS:
                    continue
                aid = next_id
                bounds = self._draw_actor(frame, ids, it, shade, aid, world)
                if bounds is None:
                    continue
                # The actor's full extent is what it covers now, before nearer things hide it.
                x0, y0 = max(int(bounds[0]) - 1, 0), max(int(bounds[1]) - 1, 0)
                x1, y1 = min(math.ceil(bounds[2]) + 2, W), min(math.ceil(bounds[3]) + 2, H)
                if x1 <= x0 or y1 <= y0:
                    continue
                eq = ids[y0:y1, x0:x1] == aid
                drawn_px = int(np.count_nonzero(eq))
                if drawn_px == 0:
                    continue
                bx, by, bw, bh = cv2.boundingRect(eq.view(np.uint8))
                full_box = (x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh, drawn_px)
                next_id += 1
                truths.append({"id": aid, "item": it, "bounds": bounds, "full_box": full_box})
            else:
                self._draw_prop(frame, ids, it, shade, world)
        return truths
