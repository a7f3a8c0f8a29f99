"""Scene and ground: the sky, the far skyline, the road surface bands and painted lines, and
the static light and fog maps of the ground (pass 1 of `longtail.sim.render.Renderer`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from longtail.sim.camera import NEAR_Z
from longtail.sim.lighting import fog_alpha, headlight_beam
from longtail.sim.render.base import MARGIN, RenderBase, _bgr
from longtail.sim.road import ASPHALT, CONCRETE, GRASS, GRAVEL, LAYOUTS, ROAD_NAMES, SIDEWALK, RoadView

if TYPE_CHECKING:
    from longtail.sim.world import World

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


class SceneMixin(RenderBase):
    """Draws the background of a frame: sky, skyline, ground and painted lines."""

    def _build_sky_and_ground(self) -> None:
        """Precompute the sky, the ground light and texture maps, and the fog of the static pitch."""
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

    def _build_skylines(self) -> None:
        """Precompute the urban and highway skyline bands, blended over the sky."""
        self.skylines = {name: self._composite_skyline(self._skyline(name)) for name in ("urban", "highway")}

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
