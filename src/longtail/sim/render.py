"""The front-camera renderer: perspective road, roadside, traffic and weather, with exact
ground truth.

One frame is drawn in four passes:

1. Background: a cached sky gradient and far skyline, the ground bands (asphalt, verges,
   sidewalks) and painted lines as polygons, then the static ground light/fog maps.
2. Objects: every prop and actor is built as 3D points in the road frame, all projected in
   one batch, sorted far to near and filled with OpenCV (painter's algorithm). Actors are
   drawn into an ID buffer with the same primitives, so each ground-truth box is the exact
   extent of the pixels the actor covers.
3. Light: lamps, vehicle lights and glare sprites.
4. Weather and sensor: rain streaks, lens blur, motion blur, noise; then JPEG.

Boxes are pixel-edge coordinates: x1, y1 inclusive, x2, y2 exclusive, so a box covering
only pixel (0, 0) is (0, 0, 1, 1).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from longtail.sim.actors import Cyclist, Prop, TrafficLight, Vehicle, Walker
from longtail.sim.camera import NEAR_Z, CameraModel
from longtail.sim.lighting import LAMP_PEAK, LAMP_SPREAD_M2, Lighting, fog_alpha, headlight_beam
from longtail.sim.road import (
    ASPHALT,
    CELL_M,
    CONCRETE,
    GRASS,
    GRAVEL,
    LAYOUTS,
    ROAD_NAMES,
    SIDEWALK,
    RoadView,
)
from longtail.sim.world import World

cv2.setNumThreads(1)

MARGIN = 48
"""Extra canvas rows above and below the image, px, so pitch can shift the horizon."""

GROUND_SAMPLES = np.array(
    [1.5, 2.5, 3.5, 5, 6.5, 8, 10, 12.5, 15, 18, 22, 27, 33, 40, 48, 58, 70, 85, 100, 120, 145, 175, 210, 250, 295],
    dtype=float,
)
GROUND_RGB: dict[int, tuple[int, int, int]] = {
    ASPHALT: (92, 92, 96),
    GRASS: (72, 108, 52),
    SIDEWALK: (168, 163, 156),
    GRAVEL: (128, 120, 106),
    CONCRETE: (150, 148, 144),
}
VEHICLE_BOX_PX = 8.0
"""Vehicles shorter than this on screen are drawn as a rectangle."""
VEHICLE_DETAIL_PX = 22.0
"""Vehicles at least this tall get wheels, glass, lights, a number plate and a shadow."""
MAX_DRAW_M = 200.0
"""Objects beyond this distance (m) are not drawn: a car there is about 4 px tall."""
ID_STATIC = 255
"""ID-buffer value of static occluders (trees, poles, signs...)."""
MAX_ACTORS = 254
STATIC_LIGHT = -1
"""Owner of the glare of a lamp or signal (hidden when an actor covers it)."""


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


def _bgr(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    return (float(rgb[2]), float(rgb[1]), float(rgb[0]))


class Shade:
    """Colour of surfaces at one place: albedo lit by ambient, beam and lamps, then fogged."""

    __slots__ = ("add", "fog_a", "light", "lit")

    def __init__(self, light: tuple[float, float, float], fog_a: float, fog_color: tuple[float, float, float]) -> None:
        self.light = light
        self.fog_a = fog_a
        self.add = tuple(c * fog_a for c in fog_color)
        k = 1.0 - fog_a
        self.lit = (light[0] * k, light[1] * k, light[2] * k)

    def __call__(self, rgb: tuple[int, int, int], factor: float = 1.0) -> tuple[int, int, int]:
        """BGR colour of a surface with albedo ``rgb``; ``factor`` darkens or brightens a face."""
        lit, add = self.lit, self.add
        return (
            min(255, int(rgb[2] * lit[0] * factor + add[0])),
            min(255, int(rgb[1] * lit[1] * factor + add[1])),
            min(255, int(rgb[0] * lit[2] * factor + add[2])),
        )

    def emissive(self, bgr: tuple[float, float, float]) -> tuple[int, int, int]:
        """Colour of a light source (not lit, only fogged)."""
        k = 1.0 - self.fog_a
        return (
            min(255, int(bgr[0] * k + self.add[0])),
            min(255, int(bgr[1] * k + self.add[1])),
            min(255, int(bgr[2] * k + self.add[2])),
        )


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


class Renderer:
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
        self._build_static()

    # ------------------------------------------------------------------ static layers
    def _build_static(self) -> None:
        W, H, cam, L = self.W, self.H, self.cam, self.light
        rows = H + 2 * MARGIN
        self.horizon_canvas = MARGIN + cam.horizon_v()
        v = np.arange(rows, dtype=np.float32) - MARGIN
        # Sky gradient, denser colour towards the top.
        u = np.clip((self.horizon_canvas - np.arange(rows)) / max(self.horizon_canvas, 1), 0, 1) ** 0.6
        top, hor = np.array(L.sky_top, np.float32), np.array(L.sky_horizon, np.float32)
        sky = hor[None, :] * (1 - u[:, None]) + top[None, :] * u[:, None]
        canvas = np.repeat(sky[:, None, :], W, axis=1)
        if self.time_of_day == "day" and self.weather == "clear":
            clouds = self._noise_field(rows, W, 40 * self.scale, 3)
            mask = np.clip((clouds - 0.55) * 3.0, 0, 1) * (u[:, None] > 0.15)
            canvas = canvas * (1 - mask[..., None] * 0.8) + 245 * mask[..., None] * 0.8
        self.sky = np.clip(canvas, 0, 255).astype(np.uint8)
        # Ground: per-pixel distance of the road point seen there, at the static pitch.
        depth = cam.ground_depth(v)
        self.row_depth = depth
        ground_rows = np.isfinite(depth)
        first_ground = int(np.argmax(ground_rows))
        self.first_ground_row = first_ground
        dz = np.where(ground_rows, depth, 1e6)[:, None]
        X = (np.arange(W, dtype=np.float32)[None, :] - cam.cx) / cam.fx * dz
        # Asphalt and verge texture: blotches, patches and grain, sampled on the road plane so it
        # shrinks with distance like real texture does.
        detail = 1.0 + 0.22 * (self._ground_noise(dz, X, 3.0) - 0.5) + 0.12 * (
            self._ground_noise(dz, X, 0.4) - 0.5) + 0.04 * (self._noise_field(rows, W, 1.5 * self.scale, 1) - 0.5)
        light_map = np.ones((rows, W, 3), np.float32) * np.array(L.ambient, np.float32)
        if L.headlights > 0:
            beam = np.asarray(headlight_beam(X, dz, vertical=False)) * L.headlights
            light_map += beam[..., None] * np.array((0.92, 0.97, 1.0), np.float32)
        gmap = light_map * detail[..., None]
        gmap[~ground_rows] = 1.0
        self.ground_map = np.clip(gmap * 128.0, 0, 255).astype(np.uint8)
        self.ground_identity = bool(L.headlights == 0 and abs(L.ambient[0] - 1) < 1e-6)
        alpha = np.asarray(fog_alpha(np.minimum(dz[:, 0], 5000.0), L.fog_beta), dtype=np.float32)
        alpha[~ground_rows] = 1.0
        self.fog_rows = alpha
        self.fog_on = L.fog_beta > 1 / 1000.0
        self.fog_w = np.repeat(alpha[:, None], W, axis=1).astype(np.float32)
        self.fog_w_inv = (1.0 - self.fog_w).astype(np.float32)
        self.fog_img = np.empty((rows, W, 3), np.uint8)
        self.fog_img[:] = np.array(L.fog_color, np.uint8)
        if self.fog_on:
            # Fog hides the sky and far skyline entirely.
            self.sky[:] = self.fog_img
        # Noise frames: a few precomputed fields, picked per frame (cheap and deterministic).
        sigma = L.noise_sigma
        self.noise: list[tuple[np.ndarray, np.ndarray]] = []
        for _ in range(6):
            n = self.rng.normal(0.0, sigma, (H, W, 1)).astype(np.float32)
            n = n + self.rng.normal(0.0, sigma * 0.35, (H, W, 3)).astype(np.float32)
            self.noise.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
        self.rain_layers: list[np.ndarray] = []
        if L.rain > 0:
            for _ in range(4):
                layer = np.zeros((H, W, 3), np.uint8)
                count = int(260 * L.rain * self.scale**2)
                xs = self.rng.uniform(0, W, count)
                ys = self.rng.uniform(0, H, count)
                lengths = self.rng.uniform(8, 26, count) * self.scale
                for x0, y0, ln in zip(xs, ys, lengths, strict=True):
                    val = int(self.rng.uniform(25, 60))
                    cv2.line(layer, (int(x0), int(y0)), (int(x0 - ln * 0.18), int(y0 + ln)), (val, val, val), 1, cv2.LINE_AA)
                self.rain_layers.append(layer)
            self.drops = [
                (int(self.rng.uniform(0, W)), int(self.rng.uniform(0, H)), int(self.rng.uniform(6, 20) * self.scale))
                for _ in range(int(6 * L.rain) + 1)
            ]
        self._cell_cache: dict[int, list[_Drawable]] = {}
        self._lit_windows: dict[int, np.ndarray] = {}
        self._glow_cache: dict[tuple[int, tuple[int, int, int]], np.ndarray] = {}
        self.skylines = {name: self._composite_skyline(self._skyline(name)) for name in ("urban", "highway")}
        self._sprites: dict[int, np.ndarray] = {}

    def _ground_noise(self, depth: np.ndarray, X: np.ndarray, cell_m: float) -> np.ndarray:
        """Value noise on the road plane with features ``cell_m`` metres across, seen in perspective."""
        grid: np.ndarray = cv2.GaussianBlur(self.rng.random((256, 256)).astype(np.float32), (0, 0), 1.0)
        grid = (grid - grid.min()) / max(float(grid.max() - grid.min()), 1e-6)
        zz = np.broadcast_to(np.minimum(depth, 400.0), X.shape) / cell_m
        xx = X / cell_m
        map_x = (np.mod(xx, 256.0)).astype(np.float32)
        map_y = (np.mod(zz, 256.0)).astype(np.float32)
        return cv2.remap(grid, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

    def _noise_field(self, rows: int, cols: int, cell: float, octaves: int) -> np.ndarray:
        """Smooth value noise in 0..1 with features about ``cell`` px across."""
        out = np.zeros((rows, cols), np.float32)
        amp, total = 1.0, 0.0
        for o in range(octaves):
            c = max(cell / (2**o), 1.0)
            small = self.rng.random((int(rows / c) + 2, int(cols / c) + 2)).astype(np.float32)
            out += amp * cv2.resize(small, (cols, rows), interpolation=cv2.INTER_CUBIC)
            total += amp
            amp *= 0.5
        return np.clip(out / total, 0, 1)

    def _skyline(self, road_type: str) -> np.ndarray:
        """A panorama band (4 image widths) of distant buildings or hills, with alpha in channel 3."""
        W = self.W * 4
        height = int(self.H * 0.22)
        band = np.zeros((height, W, 4), np.uint8)
        L = self.light
        base = np.array(L.ambient) * 255
        if road_type == "urban":
            x = 0
            while x < W:
                w = int(self.rng.uniform(14, 50) * self.scale)
                h = int(self.rng.uniform(0.25, 1.0) * height)
                shade = self.rng.uniform(0.45, 0.7)
                color = np.clip(np.array((150, 140, 130)) * shade * base / 255 * 1.2 + 10, 0, 255)
                band[height - h:, x:x + w, :3] = color.astype(np.uint8)
                band[height - h:, x:x + w, 3] = 255
                if L.lamps_on:
                    for _ in range(int(w * h / 90)):
                        yy = int(self.rng.uniform(height - h + 2, height - 2))
                        xx = int(self.rng.uniform(x + 1, x + w - 1))
                        if self.rng.random() < 0.5:
                            band[yy:yy + 2, xx:xx + 2, :3] = (90, 190, 240)
                x += w + int(self.rng.uniform(0, 10))
        else:
            xs = np.arange(W)
            profile = (0.35 + 0.3 * np.sin(xs / (W / 7.0) + self.rng.uniform(0, 6))
                       + 0.2 * np.sin(xs / (W / 23.0) + self.rng.uniform(0, 6))) * height * 0.8
            color = np.clip(np.array((70, 110, 80)) * base / 255 * 0.9, 0, 255).astype(np.uint8)
            for xi in range(W):
                h = int(max(profile[xi], 2))
                band[height - h:, xi, :3] = color
                band[height - h:, xi, 3] = 255
        return band

    def _composite_skyline(self, band: np.ndarray) -> np.ndarray:
        """Blend a skyline band over the sky rows it covers at the static pitch (with haze)."""
        h = band.shape[0]
        top = round(self.horizon_canvas) + 1 - h
        sky_rows = self.sky[max(top, 0):top + h, :1].astype(np.float32)
        if sky_rows.shape[0] < h:
            sky_rows = np.concatenate([np.repeat(sky_rows[:1], h - sky_rows.shape[0], axis=0), sky_rows])
        alpha = band[..., 3:4].astype(np.float32) / 255.0
        haze = float(fog_alpha(3000.0, self.light.fog_beta))
        color = band[..., :3].astype(np.float32) * (1 - haze) + np.array(self.light.fog_color, np.float32) * haze
        out = sky_rows * (1 - alpha) + color * alpha
        return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))

    def _sprite(self, radius: int) -> np.ndarray:
        """A radial glow of the given radius, float32 0..1, cached."""
        sprite = self._sprites.get(radius)
        if sprite is None:
            yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float32)
            r = np.sqrt(xx**2 + yy**2) / max(radius, 1)
            sprite = np.clip(np.exp(-(r**2) * 4.0) + 0.25 * np.exp(-r * 6.0) - 0.02, 0, 1).astype(np.float32)
            self._sprites[radius] = sprite
        return sprite

    # ------------------------------------------------------------------ frame
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
        return frame, self._finish_truth(frame, ids, drawn)

    # ------------------------------------------------------------------ projection helpers
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

    # ------------------------------------------------------------------ background
    def _draw_skyline(self, frame: np.ndarray, world: World, view: RoadView, dv: int) -> None:
        if self.fog_on:
            return
        band = self.skylines[world.road_type]
        h, width = band.shape[0], band.shape[1]
        hv = round(self.cam.horizon_v(world.ego.pitch)) + 1
        top = hv - h
        if hv <= 0 or top >= self.H:
            return
        heading = world.road.pose_at(world.ego.s)[2] + world.ego.psi
        offset = int(heading * self.cam.fx) % width
        y0, y1 = max(top, 0), min(hv, self.H)
        rows = band[y0 - top:y1 - top]
        end = offset + self.W
        if end <= width:
            frame[y0:y1] = rows[:, offset:end]
        else:
            frame[y0:y1, :width - offset] = rows[:, offset:]
            frame[y0:y1, width - offset:] = rows[:, :end - width]

    def _draw_ground(self, frame: np.ndarray, world: World, view: RoadView) -> None:
        """Road surface bands and painted lines, projected in one batch and filled per colour."""
        H = self.H
        ds = GROUND_SAMPLES
        types = np.interp(ds, view.ds, view.road_type.astype(float)).round().astype(int)
        # Fill everything below the horizon with the roadside ground first.
        hv = self.cam.horizon_v(self._pitch)
        base_label = GRASS if world.road_type == "highway" else CONCRETE
        cv2.rectangle(frame, (0, max(int(hv), 0)), (self.W, H), _bgr(GROUND_RGB[base_label]), -1)
        runs: list[tuple[int, int, int]] = []
        start = 0
        for i in range(1, len(ds) + 1):
            if i == len(ds) or types[i] != types[start]:
                runs.append((start, min(i + 1, len(ds)), int(types[start])))
                start = i
        strips: list[np.ndarray] = []
        keys: list[tuple[float, float, float]] = []
        for i0, i1, code in runs:
            layout = LAYOUTS[ROAD_NAMES[code]]
            seg = ds[i0:i1]
            for xa, xb, label in layout.bands:
                if label == base_label:
                    continue
                color = GROUND_RGB[label]
                if label == ASPHALT and self.light.wet:
                    color = (62, 63, 68)
                strips.append(self._strip(seg, max(xa, -45.0), min(xb, 45.0)))
                keys.append(_bgr(color))
            # Darker, polished wheel tracks in each lane.
            if code in (0, 1):
                track = _bgr((87, 87, 91) if not self.light.wet else (57, 58, 63))
                for lane in range(layout.lanes_same):
                    xc = layout.lane_center(lane)
                    for off in (-0.85, 0.85):
                        strips.append(self._strip(seg, xc + off - 0.28, xc + off + 0.28))
                        keys.append(track)
        white = _bgr((225, 225, 220)) if not self.light.wet else _bgr((200, 200, 198))
        yellow = _bgr((230, 190, 60))
        for pts, yellow_line in self._line_geometry(world, runs):
            strips.append(pts)
            keys.append(yellow if yellow_line else white)
        if not strips:
            return
        sizes = [len(p) for p in strips]
        u, v, zc = self._project(np.concatenate(strips))
        ipts = np.round(np.stack([u, v], axis=1).clip(-30000, 30000) * 16).astype(np.int32)
        near = zc >= NEAR_Z
        ends = np.cumsum(sizes)
        n_near = np.add.reduceat(near, ends - np.asarray(sizes)).tolist()
        polys: dict[tuple[float, float, float], list[np.ndarray]] = {}
        for n, end, count, key in zip(sizes, ends.tolist(), n_near, keys, strict=True):
            if count < 3:
                continue
            sl = slice(end - n, end)
            poly = ipts[sl] if count == n else ipts[sl][near[sl]]
            polys.setdefault(key, []).append(poly)
        # Bands first, then lines on top: lines use the white and yellow keys only.
        for key, plist in polys.items():
            if key not in (white, yellow):
                cv2.fillPoly(frame, plist, key, cv2.LINE_8, 4)
        for key in (white, yellow):
            if key in polys:
                cv2.fillPoly(frame, polys[key], key, cv2.LINE_AA, 4)

    @staticmethod
    def _strip(ds: np.ndarray, xa: float, xb: float) -> np.ndarray:
        """Road-frame outline of a ground strip between lateral offsets xa and xb along ``ds``."""
        n = len(ds)
        pts = np.zeros((2 * n, 3))
        pts[:n, 0] = ds
        pts[:n, 1] = xa
        pts[n:, 0] = ds[::-1]
        pts[n:, 1] = xb
        return pts

    def _line_geometry(self, world: World, runs: list[tuple[int, int, int]]) -> list[tuple[np.ndarray, bool]]:
        """Outlines of painted lines, dashes, stop lines and crosswalks, with a yellow flag."""
        s_ego = world.ego.s
        out: list[tuple[np.ndarray, bool]] = []
        for i0, i1, code in runs:
            layout = LAYOUTS[ROAD_NAMES[code]]
            d0, d1 = GROUND_SAMPLES[i0], min(GROUND_SAMPLES[i1 - 1], 160.0)
            if d1 <= d0:
                continue
            period, dash = (12.0, 3.0) if code == 0 else (9.0, 3.0)
            for line in layout.lines:
                hw = line.width_m / 2
                if line.dashed:
                    # Dashes sit at fixed places along the road: k * period - s_ego ahead.
                    ks = np.arange(math.floor((s_ego + d0) / period), math.floor((s_ego + d1) / period) + 1)
                    a = np.maximum(ks * period - s_ego, d0)
                    b = np.minimum(ks * period - s_ego + dash, d1)
                    a, b = a[b > a], b[b > a]
                    if len(a):
                        quads = np.zeros((len(a), 4, 3))
                        quads[:, :, 0] = np.stack([a, a, b, b], axis=1)
                        quads[:, :, 1] = line.x + np.array([-hw, hw, hw, -hw])
                        out.extend((q, line.yellow) for q in quads)
                else:
                    seg = GROUND_SAMPLES[(d0 <= GROUND_SAMPLES) & (d1 >= GROUND_SAMPLES)]
                    if len(seg) >= 2:
                        out.append((self._strip(seg, line.x - hw, line.x + hw), line.yellow))
        for light in world.lights:
            a = light.s - s_ego
            if not 1.0 < a < 120.0:
                continue
            out.append((np.array([[a, 0.0, 0], [a, 6.6, 0], [a + 0.4, 6.6, 0], [a + 0.4, 0.0, 0]]), False))
            for k in range(0, 20, 2):
                x0 = -10.0 + k
                out.append((np.array([[a + 2.0, x0, 0], [a + 2.0, x0 + 0.5, 0], [a + 5.0, x0 + 0.5, 0],
                                      [a + 5.0, x0, 0]]), False))
        return out

    def _apply_ground_light(self, frame: np.ndarray, r0: int) -> None:
        fg = max(self.first_ground_row - r0, 0)
        if fg >= self.H:
            return
        rows = slice(fg, self.H)
        crow = slice(r0 + fg, r0 + self.H)
        region = frame[rows]
        cv2.multiply(region, self.ground_map[crow], dst=region, scale=1 / 128.0)
        if self.fog_on:
            region[:] = cv2.blendLinear(region, self.fog_img[crow], self.fog_w_inv[crow], self.fog_w[crow])

    # ------------------------------------------------------------------ objects
    def _shades(self, items: list[_Drawable]) -> list[Shade]:
        """How each item is lit and fogged: ambient, the ego's beam and nearby street lamps, all
        items at once (one vectorized pass per frame)."""
        L = self.light
        starts = np.array([it.start for it in items], dtype=np.int64)
        n = len(items)
        light = np.tile(np.array(L.ambient), (n, 1))
        X, Z = self._xc[starts], np.maximum(self._zc[starts], 0.1)
        if L.headlights > 0:
            beam = np.asarray(headlight_beam(X, Z, vertical=True)) * L.headlights
            light += beam[:, None] * np.array((0.92, 0.97, 1.0))
        if L.lamps_on and self._lamps:
            lamps = np.array(self._lamps)
            d2 = (self._rel[starts, 0][:, None] - lamps[None, :, 0]) ** 2 + (
                self._rel[starts, 1][:, None] - lamps[None, :, 1]) ** 2
            k = np.where(d2 < 600.0, LAMP_PEAK * np.exp(-d2 / LAMP_SPREAD_M2), 0.0).sum(axis=1)
            k *= 1.0 if self.time_of_day == "night" else 0.4
            light += k[:, None] * np.array(L.lamp_color)
        depth = np.array([it.depth for it in items])
        fog = 1.0 - np.exp(-L.fog_beta * depth)
        color = L.fog_color
        return [Shade((float(a), float(b), float(c)), float(f), color)
                for (a, b, c), f in zip(light.tolist(), fog.tolist(), strict=True)]

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

    # Segment edges of long roadside features, m ahead: short near, long far.
    _SEGMENTS = np.array([1.0, 5, 10, 15, 20, 26, 33, 41, 50, 62, 76, 92, 112, 136, 165, 200])

    def _linear_features(self, world: World, view: RoadView) -> list[_Drawable]:
        """Median barrier and guard rail, cut into segments so they sort with traffic."""
        out: list[_Drawable] = []
        edges = self._SEGMENTS
        for a, b in itertools.pairwise(edges):
            code = int(view.road_type[min(int(a + 40), len(view.road_type) - 1)])
            lay = LAYOUTS[ROAD_NAMES[code]]
            if lay.barrier_x is not None:
                x = lay.barrier_x
                pts = np.array([[(a + b) / 2, x + 0.25, 0.45],
                                [a, x + 0.25, 0.0], [a, x + 0.25, 0.9], [b, x + 0.25, 0.9], [b, x + 0.25, 0.0],
                                [a, x - 0.25, 0.9], [b, x - 0.25, 0.9]])
                out.append(_Drawable("barrier", None, pts))
            if lay.rail_x is not None:
                x = lay.rail_x
                pts = np.array([[(a + b) / 2, x, 0.6],
                                [a, x, 0.5], [a, x, 0.8], [b, x, 0.8], [b, x, 0.5]])
                out.append(_Drawable("rail", None, pts))
        return out

    def _prop_drawables(self, p: Prop, ds: float, tl: TrafficLight | None) -> list[_Drawable]:
        x = p.x
        if p.kind == "tree":
            h, r = p.size
            trunk_h = h - 1.6 * r
            pts = np.array([[ds, x, trunk_h], [ds, x - 0.15, 0], [ds, x + 0.15, 0], [ds, x + 0.15, trunk_h + 0.3],
                            [ds, x - 0.15, trunk_h + 0.3], [ds, x, h - r], [ds, x + r, h - r], [ds, x, h]])
            return [_Drawable("tree", p, pts)]
        if p.kind == "bush":
            h, r = p.size
            return [_Drawable("bush", p, np.array([[ds, x, h / 2], [ds, x + r, h / 2], [ds, x, h]]))]
        if p.kind == "lamp":
            h = p.size[0]
            arm = -p.side * 1.8
            pts = np.array([[ds, x, h * 0.6], [ds, x - 0.09, 0], [ds, x + 0.09, 0], [ds, x + 0.07, h],
                            [ds, x - 0.07, h], [ds, x, h], [ds, x + arm, h + 0.3], [ds, x + arm, h + 0.1],
                            [ds, x + arm * 1.15, h + 0.25]])
            if p.side < 0 and abs(p.x) < 2:  # a median mast lights both carriageways
                pts = np.vstack([pts, [[ds, x - arm, h + 0.3], [ds, x - arm, h + 0.1]]])
            return [_Drawable("lamp", p, pts)]
        if p.kind == "pole":
            return [_Drawable("pole", p, np.array([[ds, x, 0.6], [ds, x - 0.06, 0], [ds, x + 0.06, 0],
                                                   [ds, x + 0.06, p.size[0]], [ds, x - 0.06, p.size[0]]]))]
        if p.kind == "sign":
            h, w = p.size
            board = w if w > 1 else 0.6
            pts = np.array([[ds, x, h], [ds, x - 0.05, 0], [ds, x + 0.05, 0], [ds, x + 0.05, h], [ds, x - 0.05, h],
                            [ds, x - board / 2, h], [ds, x + board / 2, h], [ds, x + board / 2, h + board * 0.6],
                            [ds, x - board / 2, h + board * 0.6]])
            return [_Drawable("sign", p, pts)]
        if p.kind == "traffic_light":
            h = p.size[0]
            pts = np.array([[ds, x, h], [ds, x - 0.08, 0], [ds, x + 0.08, 0], [ds, x + 0.08, h], [ds, x - 0.08, h],
                            [ds, x - 0.2, h], [ds, x + 0.2, h], [ds, x + 0.2, h + 1.0], [ds, x - 0.2, h + 1.0]])
            return [_Drawable("traffic_light", (p, tl), pts)]
        if p.kind == "building":
            length, height, depth = p.size
            side = p.side
            xf = x
            xb = x + side * depth
            a, b = ds, ds + length
            corners = [[a + length / 2, xf, height / 2],
                       [a, xf, 0], [b, xf, 0], [b, xf, height], [a, xf, height],
                       [a, xf, 0], [a, xb, 0], [a, xb, height], [a, xf, height]]
            # Window grid on the facade that faces the road.
            floors = max(int(height / 3.2), 1)
            cols = max(int(length / 3.0), 1)
            wx = length / cols
            for f in range(floors):
                y0, y1 = f * 3.2 + 1.0, f * 3.2 + 2.4
                if y1 > height - 0.3:
                    break
                for c in range(cols):
                    s0 = a + c * wx + wx * 0.25
                    s1 = s0 + wx * 0.5
                    corners.extend([[s0, xf, y0], [s1, xf, y0], [s1, xf, y1], [s0, xf, y1]])
            return [_Drawable("building", p, np.array(corners, dtype=float))]
        return []

    @staticmethod
    def _vehicle_shape(v: Vehicle) -> np.ndarray:
        """Corner points in the vehicle's own frame (along, across, up), m: centre, footprint,
        4 wheels, then the two body boxes (body + cabin, or cab + cargo). Cached on the vehicle."""
        if isinstance(v.shape, np.ndarray):
            return v.shape
        L, Wd, Hh = v.length, v.width, v.height

        def box(l0: float, l1: float, w0: float, w1: float, y0: float, y1: float) -> list[list[float]]:
            return [[lo, wo, y] for lo in (l0, l1) for wo in (w0, w1) for y in (y0, y1)]

        pts: list[list[float]] = [[0.0, 0.0, Hh * 0.5]]
        pts += [[-L / 2, -Wd / 2, 0.0], [-L / 2, Wd / 2, 0.0], [L / 2, Wd / 2, 0.0], [L / 2, -Wd / 2, 0.0]]
        wh = 0.33 if v.kind == "car" else 0.5
        for lo in (-L / 2 + 0.8, L / 2 - 0.9):
            for wo in (-Wd / 2 + 0.02, Wd / 2 - 0.24):
                pts += box(lo - wh, lo + wh, wo, wo + 0.22, 0.0, wh * 2)
        if v.kind == "car":
            pts += box(-L / 2, L / 2, -Wd / 2, Wd / 2, 0.22, Hh * 0.58)
            pts += box(-L / 2 + L * 0.2, L / 2 - L * 0.28, -Wd / 2 + 0.1, Wd / 2 - 0.1, Hh * 0.58, Hh)
        else:
            cab = 2.3
            pts += box(L / 2 - cab, L / 2, -Wd / 2, Wd / 2, 0.5, Hh * 0.82)
            pts += box(-L / 2, L / 2 - cab - 0.3, -Wd / 2, Wd / 2, 0.5, Hh)
        shape = np.array(pts, dtype=float)
        v.shape = shape
        return shape

    def _vehicle_points(self, v: Vehicle, ds: float) -> np.ndarray:
        """The vehicle's corner points in the road frame (ds ahead of the ego, x, height)."""
        local = self._vehicle_shape(v)
        fwd = -1.0 if v.oncoming else 1.0
        out = np.empty_like(local)
        if v.yaw:
            c, s_ = math.cos(v.yaw), math.sin(v.yaw)
            out[:, 0] = ds + fwd * (local[:, 0] * c - local[:, 1] * s_)
            out[:, 1] = v.x + fwd * (local[:, 0] * s_ + local[:, 1] * c)
        else:
            out[:, 0] = ds + fwd * local[:, 0]
            out[:, 1] = v.x + fwd * local[:, 1]
        out[:, 2] = local[:, 2]
        return out

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

    # ------------------------------------------------------------------ primitives
    _FACES = np.array([[0, 2, 3, 1], [4, 6, 7, 5], [0, 4, 5, 1], [2, 6, 7, 3], [1, 3, 7, 5]])
    _FACE_NAMES = ("back", "front", "left", "right", "top")

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

    # ------------------------------------------------------------------ props
    def _draw_prop(self, frame: np.ndarray, ids: np.ndarray, it: _Drawable, shade: Shade, world: World) -> None:
        i0 = it.start
        sid = ID_STATIC
        kind = it.kind
        if kind == "tree":
            p: Prop = it.obj
            self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade((85, 60, 40)), sid, None)
            cu, cv_ = self._px(i0 + 5)
            rx = abs(self._u[i0 + 6] - cu)
            ry = abs(self._v[i0 + 7] - cv_)
            if rx < 0.5:
                return
            center = (int(cu * 16), int(cv_ * 16))
            axes = (max(int(rx * 16), 8), max(int(ry * 16), 8))
            big = rx >= 4.0  # small crowns need neither anti-aliasing nor a highlight
            cv2.ellipse(frame, center, axes, 0, 0, 360, shade(p.color), -1, cv2.LINE_AA if big else cv2.LINE_8, 4)
            cv2.ellipse(ids, center, axes, 0, 0, 360, sid, -1, cv2.LINE_8, 4)
            if big:
                hl = (int((cu - rx * 0.25) * 16), int((cv_ - ry * 0.25) * 16))
                cv2.ellipse(frame, hl, (int(rx * 10), int(ry * 10)), 0, 0, 360, shade(p.color, 1.25), -1, cv2.LINE_AA, 4)
        elif kind == "bush":
            p = it.obj
            cu, cv_ = self._px(i0)
            rx = abs(self._u[i0 + 1] - cu)
            ry = abs(self._v[i0 + 2] - cv_)
            if rx >= 0.5:
                cv2.ellipse(frame, (int(cu * 16), int(cv_ * 16)), (max(int(rx * 16), 8), max(int(ry * 16), 8)), 0, 0,
                            360, shade(p.color, 0.9), -1, cv2.LINE_AA, 4)
        elif kind in ("lamp", "pole"):
            p = it.obj
            self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade(p.color), sid, None)
            if kind == "pole":
                return
            thickness = max(1, int(abs(self._u[i0 + 3] - self._u[i0 + 4]) * 0.7))
            arms = [(i0 + 5, i0 + 6)] + ([(i0 + 5, i0 + 9)] if len(it.pts) > 9 else [])
            for a, b in arms:
                cv2.line(frame, self._ipt(a), self._ipt(b), shade(p.color), thickness, cv2.LINE_AA, 4)
            if self.light.lamps_on:
                heads = [i0 + 7] + ([i0 + 10] if len(it.pts) > 9 else [])
                for h in heads:
                    size = abs(self._u[i0 + 3] - self._u[i0 + 4]) * 3
                    lamp_bgr = tuple(255 * c for c in self.light.lamp_color)
                    hu, hv = self._px(h)
                    cv2.ellipse(frame, (int(hu * 16), int(hv * 16)), (max(int(size * 16), 16), max(int(size * 8), 8)),
                                0, 0, 360, shade.emissive(lamp_bgr), -1, cv2.LINE_AA, 4)  # type: ignore[arg-type]
                    self._glows.append((hu, hv, size * 4 + 2 * self.scale, lamp_bgr, STATIC_LIGHT))  # type: ignore[arg-type]
        elif kind == "sign":
            p = it.obj
            self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade((120, 120, 120)), sid, None)
            self._poly(frame, ids, [i0 + 5, i0 + 6, i0 + 7, i0 + 8], shade(p.color), sid, None)
            w = abs(self._u[i0 + 6] - self._u[i0 + 5])
            if w > 6:
                u0, v0 = self._px(i0 + 8)
                hgt = abs(self._v[i0 + 5] - self._v[i0 + 8])
                for k in range(2):
                    y = v0 + hgt * (0.35 + 0.3 * k)
                    cv2.line(frame, (int((u0 + w * 0.15) * 16), int(y * 16)), (int((u0 + w * 0.85) * 16), int(y * 16)),
                             shade((235, 235, 235)), max(1, int(hgt * 0.08)), cv2.LINE_AA, 4)
        elif kind == "traffic_light":
            p, tl = it.obj
            self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade(p.color), sid, None)
            self._poly(frame, ids, [i0 + 5, i0 + 6, i0 + 7, i0 + 8], shade((25, 25, 25)), sid, None)
            state = tl.state(world.t) if tl is not None else "green"
            u0, v0 = self._px(i0 + 8)
            u1, v1 = self._px(i0 + 6)
            r = max(abs(u1 - u0) * 0.3, 0.6)
            for k, name in enumerate(("red", "amber", "green")):
                cy = v0 + (v1 - v0) * (0.2 + 0.3 * k)
                on = name == state
                col = {"red": (40, 40, 255), "amber": (30, 170, 255), "green": (120, 230, 60)}[name]
                col_bgr = col if on else (30, 30, 30)
                cv2.circle(frame, (int((u0 + u1) / 2 * 16), int(cy * 16)), max(int(r * 16), 8),
                           shade.emissive(col_bgr), -1, cv2.LINE_AA, 4)
                if on and self.light.lamps_on:
                    self._glows.append(((u0 + u1) / 2, cy, r * 5 + 2 * self.scale, col, STATIC_LIGHT))
        elif kind == "building":
            self._draw_building(frame, ids, it, shade)
        elif kind == "barrier":
            self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade((175, 172, 165), 0.85), sid, None)
            self._poly(frame, ids, [i0 + 2, i0 + 3, i0 + 6, i0 + 5], shade((190, 188, 182), 1.05), sid, None)
        elif kind == "rail":
            self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade((190, 192, 196)), sid, None)

    def _ipt(self, i: int) -> tuple[int, int]:
        """Projected point ``i`` in OpenCV's fixed point (4 fractional bits)."""
        a, b = self._ipts[i].tolist()
        return a, b

    def _lamp_pools(self, frame: np.ndarray, lamps: list[tuple[float, float]]) -> None:
        """Pools of lamp light on the road below lamp heads at (ds, x), projected in one batch."""
        if not lamps:
            return
        offsets = np.array([[-7.0, 0.0], [7.0, 0.0], [0.0, -7.0], [0.0, 7.0], [0.0, 0.0]])
        pts = np.zeros((len(lamps) * 5, 3))
        pts[:, :2] = (np.array(lamps)[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
        u, v, zc = self._project(pts)
        color = tuple(70 * c for c in self.light.lamp_color)
        for k in range(len(lamps)):
            sl = slice(5 * k, 5 * k + 5)
            if (zc[sl] < NEAR_Z).any():
                continue
            uu, vv = u[sl], v[sl]
            rx = int(min(abs(uu[3] - uu[2]) / 2, 400))
            ry = int(min(abs(vv[0] - vv[1]) / 2, 200))
            if rx >= 2 and ry >= 1:
                self._add_glow(frame, float(uu[4]), float(vv[4]), rx, ry, color)  # type: ignore[arg-type]

    def _draw_building(self, frame: np.ndarray, ids: np.ndarray, it: _Drawable, shade: Shade) -> None:
        p: Prop = it.obj
        i0 = it.start
        sid = ID_STATIC
        side_factor = 0.92 if p.side > 0 else 0.8
        self._poly(frame, ids, [i0 + 1, i0 + 2, i0 + 3, i0 + 4], shade(p.color, side_factor), sid, None)
        if self._rel[i0 + 5, 0] > 1.0:
            self._poly(frame, ids, [i0 + 5, i0 + 6, i0 + 7, i0 + 8], shade(p.color, 0.65), sid, None)
        n_win = (len(it.pts) - 9) // 4
        if n_win <= 0 or it.hull[3] - it.hull[1] < 12:
            return
        idx = i0 + 9 + np.arange(n_win * 4)
        keep = self._near[idx].reshape(n_win, 4).all(axis=1)
        quads = self._ipts[idx].reshape(n_win, 4, 2)
        span = quads[:, :, 0].max(axis=1) - quads[:, :, 0].min(axis=1)
        keep &= span > 11  # narrower than 0.7 px: not worth a polygon
        if not keep.any():
            return
        glass = shade((70, 85, 100)) if self.time_of_day == "day" else shade((40, 45, 55))
        if self.light.lamps_on:
            # Which windows are lit is a property of the building, not of the view.
            lit = self._lit_windows.get(p.variant)
            if lit is None or len(lit) != n_win:
                share = 0.45 if self.time_of_day == "night" else 0.25
                lit = np.random.default_rng(p.variant).random(n_win) < share
                self._lit_windows[p.variant] = lit
            warm = shade.emissive((120, 200, 250) if self.time_of_day == "night" else (110, 170, 215))
            dark, bright = keep & ~lit, keep & lit
            if dark.any():
                cv2.fillPoly(frame, quads[dark], glass, cv2.LINE_8, 4)
            if bright.any():
                cv2.fillPoly(frame, quads[bright], warm, cv2.LINE_8, 4)
        else:
            cv2.fillPoly(frame, quads[keep], glass, cv2.LINE_8, 4)

    # ------------------------------------------------------------------ actors
    def _draw_actor(self, frame: np.ndarray, ids: np.ndarray, it: _Drawable, shade: Shade, aid: int,
                    world: World) -> list[float] | None:
        ext = [1e9, 1e9, -1e9, -1e9]
        if it.kind == "vehicle":
            self._draw_vehicle(frame, ids, it, shade, aid, ext, world)
        elif it.kind == "walker":
            self._draw_walker(frame, ids, it, shade, aid, ext)
        else:
            self._draw_cyclist(frame, ids, it, shade, aid, ext, world)
        if ext[2] < 0 or ext[3] < 0 or ext[0] >= self.W or ext[1] >= self.H or ext[2] < ext[0]:
            return None
        return ext

    def _box_faces(self, base: int) -> list[tuple[int, str]]:
        """Visible faces (number, name) of the box whose 8 corners start at ``base``
        (corner = base + 4l + 2w + y)."""
        vis = self._fv_vis[self._fv_index[base]]
        return [(k, self._FACE_NAMES[k]) for k in range(5) if vis[k]]

    def _fill_box(self, frame: np.ndarray, ids: np.ndarray, base: int, colors: dict[int, tuple[int, int, int]],
                  aid: int) -> None:
        """Fill the visible faces of a box; ``colors`` maps face number to BGR."""
        j = self._fv_index[base]
        vis, near, pts = self._fv_vis[j], self._fv_near[j], self._fv_pts[j]
        for k in range(5):
            if not vis[k]:
                continue
            if near[k]:
                cv2.fillConvexPoly(frame, pts[k], colors[k], cv2.LINE_8, 4)
                cv2.fillConvexPoly(ids, pts[k], aid, cv2.LINE_8, 4)
            else:
                self._poly(frame, ids, base + self._FACES[k], colors[k], aid, None)

    def _face_points(self, base: int, k: int) -> np.ndarray | None:
        """Pixel corners (float) of face ``k`` of a box, or None when it crosses the near plane."""
        j = self._fv_index[base]
        if not self._fv_near[j][k]:
            return None
        return np.asarray(self._fv_pts[j][k], dtype=np.float64) / 16.0

    def _draw_vehicle(self, frame: np.ndarray, ids: np.ndarray, it: _Drawable, shade: Shade, aid: int,
                      ext: list[float], world: World) -> None:
        """Draw a vehicle at one of three levels of detail chosen by its height on screen:
        a rectangle (< 8 px), its body boxes (< 22 px), or boxes with wheels, glass, lights,
        number plate and shadow."""
        v: Vehicle = it.obj
        i0 = it.start
        L = self.light
        body = v.color
        hull = list(it.hull)
        if not np.isfinite(hull[0]):
            return
        all_near = it.all_near
        if not all_near:
            # Part of the vehicle is beside or behind the camera: it runs off the image edge.
            sl = slice(i0, i0 + len(it.pts))
            xs = self._xc[sl][~self._near[sl]]
            if (xs < 0).any():
                hull[0] = min(hull[0], -float(self.W))
            if (xs > 0).any():
                hull[2] = max(hull[2], 2.0 * self.W)
        if hull[2] < 0 or hull[0] >= self.W or hull[3] < 0 or hull[1] >= self.H:
            return
        ext[:] = hull
        ph = hull[3] - hull[1]
        lights_on = L.lamps_on or self.weather != "clear"
        if ph < VEHICLE_BOX_PX and all_near:
            # Far away: one rectangle of body colour, and its lights as points.
            p0 = (int(hull[0] * 16), int(hull[1] * 16))
            p1 = (int(hull[2] * 16), int(hull[3] * 16))
            cv2.rectangle(frame, p0, p1, shade(body, 0.8), -1, cv2.LINE_8, 4)
            cv2.rectangle(ids, p0, p1, aid, -1, cv2.LINE_8, 4)
            if lights_on or v.brake:
                y = hull[1] + ph * 0.6
                if v.oncoming:
                    self._glows.append(((hull[0] + hull[2]) / 2, y, 2.0 * self.scale, (200, 235, 255), 0))
                else:
                    size = (1.4 if v.brake else 0.9) * self.scale
                    self._glows.append((hull[0], y, size, (40, 40, 255), 0))
                    self._glows.append((hull[2], y, size, (40, 40, 255), 0))
            return
        detail = ph >= VEHICLE_DETAIL_PX or not all_near
        dark = shade((28, 28, 30))
        if detail and self.time_of_day != "night" and self.weather != "fog":
            # Shadow on the road under the car, a little larger than its footprint.
            fp = self._ipts[i0 + 1:i0 + 5]
            if self._near[i0 + 1:i0 + 5].all():
                c = fp.mean(axis=0)
                cv2.fillConvexPoly(frame, (c + (fp - c) * 1.15).astype(np.int32), shade((40, 40, 42)), cv2.LINE_AA, 4)
            wheel_colors = dict.fromkeys(range(5), dark)
            for k in range(4):
                self._fill_box(frame, ids, i0 + 5 + 8 * k, wheel_colors, aid)
        b1, b2 = i0 + 5 + 32, i0 + 5 + 40
        order = [(b1, "lower"), (b2, "upper")]
        if v.kind == "truck" and float(self._zc[b2:b2 + 8].sum()) > float(self._zc[b1:b1 + 8].sum()):
            order.reverse()
        colors = {0: shade(body), 1: shade(body), 2: shade(body, 0.78), 3: shade(body, 0.78), 4: shade(body, 1.12)}
        if not detail:
            for base, _part in order:
                self._fill_box(frame, ids, base, colors, aid)
            if lights_on or v.brake:
                for k, name in self._box_faces(b1):
                    q = self._face_points(b1, k) if k in (0, 1) else None
                    if q is not None:
                        self._lights_tiny(q, v, name, shade, lights_on)
            return
        blink = (world.t * 1.5) % 1.0 < 0.5
        glass = shade((35, 45, 55))
        for base, part in order:
            self._fill_box(frame, ids, base, colors, aid)
            for k, name in self._box_faces(base):
                glass_face = v.kind == "car" and part == "upper" and name != "top"
                details = name in ("back", "front") and (part == "lower" or v.kind == "truck")
                if not (glass_face or details):
                    continue
                q = self._face_points(base, k)
                if q is None:
                    continue
                if glass_face:
                    self._inset(frame, q, glass, 0.12, 0.1, 0.12, 0.15)
                if details:
                    self._vehicle_face_details(frame, q, v, name, part, shade, aid, lights_on, blink)

    def _inset(self, frame: np.ndarray, q: np.ndarray, color: tuple[int, int, int], left: float, right: float,
               top: float, bottom: float) -> None:
        """Fill a sub-rectangle of a projected face ``q`` (4x2 pixel corners ordered bottom-left,
        bottom-right, top-right, top-left), given as fractions of its width and height."""
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = q.tolist()
        pts = []
        for h, t in ((left, bottom), (1 - right, bottom), (1 - right, 1 - top), (left, 1 - top)):
            lx, ly = ax + (bx - ax) * h, ay + (by - ay) * h
            ux, uy = dx + (cx - dx) * h, dy + (cy - dy) * h
            pts.append((round((lx + (ux - lx) * t) * 16), round((ly + (uy - ly) * t) * 16)))
        cv2.fillConvexPoly(frame, np.array(pts, np.int32), color, cv2.LINE_8, 4)

    def _vehicle_face_details(self, frame: np.ndarray, q: np.ndarray, v: Vehicle, name: str, part: str,
                              shade: Shade, aid: int, lights_on: bool, blink: bool) -> None:
        """Lights, number plate, grille or cargo doors on the back or front face ``q`` (pixel corners)."""
        width = float(np.abs(q[:, 0].max() - q[:, 0].min()))
        if width < 5:
            if width >= 1.5 and (lights_on or v.brake):
                self._lights_tiny(q, v, name, shade, lights_on)
            return
        # Corners of the face in a consistent order: take min/max in image space.
        u0, u1 = float(q[:, 0].min()), float(q[:, 0].max())
        vt, vb = float(q[:, 1].min()), float(q[:, 1].max())
        hgt = vb - vt
        facing_rear = name == "back"
        if v.kind == "truck" and part == "upper" and facing_rear:
            # Cargo doors: a dark seam and an underride bar.
            mid = (u0 + u1) / 2
            cv2.line(frame, (int(mid * 16), int((vt + hgt * 0.05) * 16)), (int(mid * 16), int((vb - hgt * 0.05) * 16)),
                     shade((50, 50, 50)), max(1, int(width / 80)), cv2.LINE_AA, 4)
        y_l = vt + hgt * (0.25 if v.kind == "car" else 0.8)
        lh = max(hgt * (0.22 if v.kind == "car" else 0.08), 1.0)
        lw = max(width * 0.16, 1.0)
        if facing_rear:
            lit = lights_on or v.brake
            red = (40, 30, 235) if v.brake else ((40, 30, 190) if lit else (40, 30, 120))
            col = shade.emissive(red) if lit else shade((120, 30, 40))
            for uu in (u0 + width * 0.04, u1 - width * 0.04 - lw):
                cv2.rectangle(frame, (int(uu * 16), int(y_l * 16)), (int((uu + lw) * 16), int((y_l + lh) * 16)), col, -1,
                              cv2.LINE_AA, 4)
                if lit and (self.time_of_day != "day" or v.brake or self.weather != "clear"):
                    gain = 1.4 if v.brake else 0.7
                    self._glows.append((uu + lw / 2, y_l + lh / 2, lw * gain + self.scale, (40, 40, 255), aid))
            if v.kind == "car":
                pw, ph = width * 0.26, hgt * 0.16
                cv2.rectangle(frame, (int((u0 + width / 2 - pw / 2) * 16), int((vt + hgt * 0.55) * 16)),
                              (int((u0 + width / 2 + pw / 2) * 16), int((vt + hgt * 0.55 + ph) * 16)),
                              shade((225, 225, 215)), -1, cv2.LINE_AA, 4)
            if (v.hazard and blink) or (v.indicator and blink):
                sides = [u0, u1 - lw] if v.hazard else ([u0] if v.indicator < 0 else [u1 - lw])
                for uu in sides:
                    cv2.rectangle(frame, (int(uu * 16), int((y_l + lh) * 16)), (int((uu + lw) * 16), int((y_l + lh * 1.5) * 16)),
                                  shade.emissive((20, 160, 255)), -1, cv2.LINE_AA, 4)
                    self._glows.append((uu + lw / 2, y_l + lh * 1.25, lw * 1.5 + self.scale, (20, 160, 255), aid))
        else:
            # Front: grille and headlights.
            lit = lights_on
            col = shade.emissive((230, 245, 255)) if lit else shade((200, 200, 190))
            for uu in (u0 + width * 0.05, u1 - width * 0.05 - lw):
                cv2.rectangle(frame, (int(uu * 16), int(y_l * 16)), (int((uu + lw) * 16), int((y_l + lh * 0.7) * 16)), col,
                              -1, cv2.LINE_AA, 4)
                if lit:
                    self._glows.append((uu + lw / 2, y_l + lh * 0.35, lw * 2.5 + 3 * self.scale, (200, 235, 255), aid))
            cv2.rectangle(frame, (int((u0 + width * 0.3) * 16), int((y_l + lh * 0.1) * 16)),
                          (int((u1 - width * 0.3) * 16), int((y_l + lh * 0.8) * 16)), shade((30, 30, 32)), -1, cv2.LINE_AA, 4)

    def _lights_tiny(self, q: np.ndarray, v: Vehicle, name: str, shade: Shade, lights_on: bool) -> None:
        facing_rear = name == "back"
        u0, u1 = float(q[:, 0].min()), float(q[:, 0].max())
        y = float(q[:, 1].min() + (q[:, 1].max() - q[:, 1].min()) * 0.3)
        color = (40, 40, 255) if facing_rear else (200, 235, 255)
        size = (1.2 if facing_rear else 2.5) * self.scale
        if v.brake and facing_rear:
            size = 1.8 * self.scale
        for uu in (u0, u1):
            self._glows.append((uu, y, size, color, 0))

    def _draw_walker(self, frame: np.ndarray, ids: np.ndarray, it: _Drawable, shade: Shade, aid: int,
                     ext: list[float]) -> None:
        w: Walker = it.obj
        i0 = it.start
        fu, fv = self._px(i0)
        _hu, hv = self._px(i0 + 1)
        ph = fv - hv
        if ph < 1.5 or self._zc[i0] < NEAR_Z:
            return
        m = ph / w.height  # pixels per metre at this distance
        side_view = abs(w.vx) > abs(w.vs)
        swing = math.sin(w.phase) if w.moving else 0.0
        head_r = (0.12 if w.child else 0.105) * m
        hip = fv - ph * (0.47 if w.child else 0.52)
        shoulder = fv - ph * (0.80 if w.child else 0.82)
        torso_w = (0.30 if w.child else 0.38) * m * (0.62 if side_view else 1.0)
        leg_w = 0.13 * m
        pants, shirt, skin = shade(w.pants), shade(w.shirt), shade(w.skin)
        # Legs.
        for k, sgn in enumerate((-1, 1)):
            if side_view:
                dx = sgn * swing * 0.28 * (fv - hip)
                top = (fu, hip)
                bottom = (fu + dx, fv)
            else:
                off = sgn * torso_w * 0.22
                lift = max(0.0, sgn * swing) * 0.06 * ph
                top = (fu + off, hip)
                bottom = (fu + off, fv - lift)
            self._limb(frame, ids, top, bottom, leg_w, pants if k == 0 else shade(w.pants, 0.85), aid, ext)
        # Torso.
        self._fill(frame, ids, ((fu - torso_w / 2, shoulder), (fu + torso_w / 2, shoulder), (fu + torso_w * 0.42, hip),
                                (fu - torso_w * 0.42, hip)), shirt, aid, ext)
        # Arms.
        arm_len = (hip - shoulder) * 1.05
        for sgn in (-1, 1):
            if side_view:
                dx = -sgn * swing * 0.35 * arm_len
                self._limb(frame, ids, (fu, shoulder + 0.02 * ph), (fu + dx, shoulder + arm_len), leg_w * 0.75,
                           shade(w.shirt, 0.85), aid, ext)
            else:
                x0 = fu + sgn * torso_w * 0.55
                self._limb(frame, ids, (x0, shoulder + 0.02 * ph), (x0 + sgn * 0.03 * m, shoulder + arm_len),
                           leg_w * 0.75, shade(w.shirt, 0.85), aid, ext)
        # Head and hair.
        hc = (fu, hv + head_r)
        self._circle(frame, ids, hc, head_r, skin, aid, ext)
        if head_r >= 1.5:
            cv2.ellipse(frame, (int(hc[0] * 16), int((hc[1] - head_r * 0.25) * 16)),
                        (int(head_r * 16), int(head_r * 0.8 * 16)), 0, 180, 360, shade(w.hair), -1, cv2.LINE_AA, 4)

    def _draw_cyclist(self, frame: np.ndarray, ids: np.ndarray, it: _Drawable, shade: Shade, aid: int,
                      ext: list[float], world: World) -> None:
        c: Cyclist = it.obj
        i0 = it.start
        fu, fv = self._px(i0)
        _hu, hv = self._px(i0 + 1)
        ph = fv - hv
        if ph < 1.5 or self._zc[i0] < NEAR_Z:
            return
        m = ph / 1.75
        side_view = abs(c.vx) > abs(c.vs)
        wheel_r = 0.34 * m
        bike = shade(c.bike)
        rider_top = hv
        if side_view:
            direction = 1 if c.vx > 0 else -1
            # Perspective: a crossing bike seen from the ego is roughly side-on.
            wb = 0.52 * m
            back, front = (fu - direction * wb, fv - wheel_r), (fu + direction * wb, fv - wheel_r)
            th = max(1, int(0.05 * m))
            for centre in (back, front):
                self._ring(frame, ids, centre, wheel_r, th, shade((25, 25, 25)), aid, ext)
            seat = (fu - direction * 0.15 * m, fv - 0.95 * m)
            bar = (fu + direction * 0.42 * m, fv - 1.05 * m)
            crank = (fu, fv - wheel_r)
            for a, b in ((back, seat), (seat, crank), (crank, back), (crank, bar), (bar, front), (seat, bar)):
                self._limb(frame, ids, a, b, max(0.05 * m, 1.0), bike, aid, ext)
            hip = (seat[0], seat[1] - 0.05 * m)
            shoulder = (fu + direction * 0.22 * m, fv - 1.45 * m)
            self._limb(frame, ids, hip, shoulder, 0.3 * m, shade(c.shirt), aid, ext)
            ang = c.phase
            for sgn in (-1, 1):
                pedal = (crank[0] + sgn * math.cos(ang) * 0.17 * m, crank[1] + sgn * math.sin(ang) * 0.17 * m)
                knee = ((hip[0] + pedal[0]) / 2 + direction * 0.18 * m, (hip[1] + pedal[1]) / 2 - 0.1 * m)
                self._limb(frame, ids, hip, knee, 0.13 * m, shade(c.pants), aid, ext)
                self._limb(frame, ids, knee, pedal, 0.11 * m, shade(c.pants, 0.85), aid, ext)
            self._limb(frame, ids, shoulder, bar, 0.08 * m, shade(c.shirt, 0.85), aid, ext)
            self._circle(frame, ids, (shoulder[0] + direction * 0.06 * m, shoulder[1] - 0.14 * m), 0.11 * m,
                         shade(c.skin), aid, ext)
            if c.light and self.light.lamps_on:
                self._glows.append((front[0], front[1] - wheel_r * 0.9, 0.12 * m + 1.5 * self.scale, (220, 240, 255), aid))
        else:
            # Seen from behind (or the front): a narrow wheel, the rider's back, legs either side.
            self._fill(frame, ids, ((fu - 0.03 * m, fv - 2 * wheel_r), (fu + 0.03 * m, fv - 2 * wheel_r),
                                    (fu + 0.03 * m, fv), (fu - 0.03 * m, fv)), shade((25, 25, 25)), aid, ext)
            seat_y = fv - 0.95 * m
            for sgn in (-1, 1):
                lift = math.sin(c.phase + (0 if sgn < 0 else math.pi)) * 0.12 * m
                self._limb(frame, ids, (fu + sgn * 0.1 * m, seat_y), (fu + sgn * 0.14 * m, fv - 0.3 * m + lift),
                           0.13 * m, shade(c.pants, 0.9 if sgn > 0 else 1.0), aid, ext)
            torso = ((fu - 0.2 * m, seat_y - 0.55 * m), (fu + 0.2 * m, seat_y - 0.55 * m),
                     (fu + 0.16 * m, seat_y), (fu - 0.16 * m, seat_y))
            self._fill(frame, ids, torso, shade(c.shirt), aid, ext)
            for sgn in (-1, 1):
                self._limb(frame, ids, (fu + sgn * 0.19 * m, seat_y - 0.5 * m), (fu + sgn * 0.28 * m, seat_y - 0.2 * m),
                           0.09 * m, shade(c.shirt, 0.85), aid, ext)
            self._circle(frame, ids, (fu, rider_top + 0.11 * m), 0.11 * m, shade(c.skin), aid, ext)
            if c.light and self.light.lamps_on:
                self._glows.append((fu, fv - 0.75 * m, 0.1 * m + 1.5 * self.scale, (40, 40, 255), aid))

    def _fill(self, frame: np.ndarray, ids: np.ndarray, pts: Any, color: tuple[int, int, int], aid: int,
              ext: list[float]) -> None:
        """Fill a small convex polygon given as (u, v) pixel pairs, in colour and in the ID buffer.

        Plain Python on purpose: for 4 points it is several times faster than numpy.
        """
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        ext[0] = min(ext[0], min(xs))
        ext[1] = min(ext[1], min(ys))
        ext[2] = max(ext[2], max(xs))
        ext[3] = max(ext[3], max(ys))
        ip = np.array([(round(x * 16), round(y * 16)) for x, y in zip(xs, ys, strict=True)], np.int32)
        cv2.fillConvexPoly(frame, ip, color, cv2.LINE_8, 4)
        cv2.fillConvexPoly(ids, ip, aid, cv2.LINE_8, 4)

    def _limb(self, frame: np.ndarray, ids: np.ndarray, a: tuple[float, float], b: tuple[float, float], width: float,
              color: tuple[int, int, int], aid: int, ext: list[float]) -> None:
        dx, dy = b[0] - a[0], b[1] - a[1]
        n = math.hypot(dx, dy)
        if n < 1e-6:
            return
        ox, oy = -dy / n * width / 2, dx / n * width / 2
        self._fill(frame, ids, ((a[0] + ox, a[1] + oy), (b[0] + ox, b[1] + oy), (b[0] - ox, b[1] - oy),
                                (a[0] - ox, a[1] - oy)), color, aid, ext)

    def _circle(self, frame: np.ndarray, ids: np.ndarray, c: tuple[float, float], r: float, color: tuple[int, int, int],
                aid: int, ext: list[float]) -> None:
        r = max(r, 0.5)
        ext[0] = min(ext[0], c[0] - r)
        ext[1] = min(ext[1], c[1] - r)
        ext[2] = max(ext[2], c[0] + r)
        ext[3] = max(ext[3], c[1] + r)
        center, rad = (int(c[0] * 16), int(c[1] * 16)), int(r * 16)
        cv2.circle(frame, center, rad, color, -1, cv2.LINE_8, 4)
        cv2.circle(ids, center, rad, aid, -1, cv2.LINE_8, 4)

    def _ring(self, frame: np.ndarray, ids: np.ndarray, c: tuple[float, float], r: float, th: int,
              color: tuple[int, int, int], aid: int, ext: list[float]) -> None:
        r = max(r, 1.0)
        ext[0] = min(ext[0], c[0] - r - th)
        ext[1] = min(ext[1], c[1] - r - th)
        ext[2] = max(ext[2], c[0] + r + th)
        ext[3] = max(ext[3], c[1] + r + th)
        center, rad = (int(c[0] * 16), int(c[1] * 16)), int(r * 16)
        cv2.circle(frame, center, rad, color, th, cv2.LINE_8, 4)
        cv2.circle(ids, center, rad, aid, th, cv2.LINE_8, 4)

    # ------------------------------------------------------------------ light and weather
    def _add_glow(self, frame: np.ndarray, u: float, v: float, rx: int, ry: int, color: tuple[float, float, float]) -> None:
        rx, ry = min(rx, 160), min(ry, 160)
        h, w = 2 * ry + 1, 2 * rx + 1
        x0, y0 = int(u) - w // 2, int(v) - h // 2
        x1, y1 = x0 + w, y0 + h
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, self.W), min(y1, self.H)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        key = (rx * 1000 + ry, (int(color[0]), int(color[1]), int(color[2])))
        colored = self._glow_cache.get(key)
        if colored is None:
            sprite = self._sprite(max(rx, ry, 1))
            if rx != ry:
                sprite = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_LINEAR)
            colored = (sprite[..., None] * np.array(key[1], np.float32)).astype(np.uint8)
            if len(self._glow_cache) < 4000:
                self._glow_cache[key] = colored
        region = frame[cy0:cy1, cx0:cx1]
        cv2.add(region, colored[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], dst=region)

    def _draw_glows(self, frame: np.ndarray, ids: np.ndarray) -> None:
        gain = self.light.emissive_gain
        for u, v, r, color, owner in self._glows:
            # A light hidden behind a nearer object casts no glare: an actor's light must still
            # show its own ID there; a lamp or signal must not be behind any actor.
            if owner and 0 <= int(v) < self.H and 0 <= int(u) < self.W:
                seen = int(ids[int(v), int(u)])
                if (owner == STATIC_LIGHT and seen not in (0, ID_STATIC)) or (owner > 0 and seen != owner):
                    continue
            radius = int(min(r * gain, 150))
            if radius < 1:
                continue
            scale = 0.55 if self.time_of_day == "day" else 0.9
            self._add_glow(frame, u, v, radius, radius, tuple(c * scale for c in color))  # type: ignore[arg-type]

    def _weather(self, frame: np.ndarray, world: World) -> None:
        L = self.light
        if L.rain > 0:
            k = int(world.t * 25) % len(self.rain_layers)
            cv2.add(frame, self.rain_layers[k], dst=frame)
            for x, y, r in self.drops:
                x0, y0, x1, y1 = max(x - r, 0), max(y - r, 0), min(x + r, self.W), min(y + r, self.H)
                if x1 - x0 > 2 and y1 - y0 > 2:
                    roi = frame[y0:y1, x0:x1]
                    roi[:] = cv2.GaussianBlur(roi, (0, 0), max(r / 3, 1))
        # Motion blur when the camera swings fast (emergency manoeuvres) or at night at speed.
        yaw_px = abs(world.ego.yaw_rate) * self.cam.fx * 0.02
        if yaw_px >= 2.0:
            k = int(min(yaw_px, 12))
            cv2.blur(frame, (k, 1), dst=frame)

    def _sensor(self, frame: np.ndarray, world: World) -> None:
        idx = int(world.t * 10 * 7.3) % len(self.noise)
        pos, neg = self.noise[idx]
        cv2.add(frame, pos, dst=frame)
        cv2.subtract(frame, neg, dst=frame)

    # ------------------------------------------------------------------ ground truth
    def _finish_truth(self, frame: np.ndarray, ids: np.ndarray, drawn: list[dict[str, Any]]) -> list[ObjectTruth]:
        if not drawn:
            return []
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        out: list[ObjectTruth] = []
        W, H = self.W, self.H
        for d in drawn:
            aid, it, ext = d["id"], d["item"], d["bounds"]
            full_box = d.get("full_box")
            if full_box is None:
                continue
            x1, y1, x2, y2, drawn_px = full_box
            if y2 - y1 < self.min_box_px:
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
            category, pose = self._category_pose(it)
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

    @staticmethod
    def _category_pose(it: _Drawable) -> tuple[str, str]:
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
