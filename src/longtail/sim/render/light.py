"""Light and weather: how surfaces are lit and fogged, street-lamp pools, glare of lamps and
vehicle lights, rain streaks and drops on the lens, motion blur and sensor noise (passes 3
and 4 of `longtail.sim.render.Renderer`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from longtail.sim.camera import NEAR_Z
from longtail.sim.lighting import LAMP_PEAK, LAMP_SPREAD_M2, headlight_beam
from longtail.sim.render.base import ID_STATIC, STATIC_LIGHT, RenderBase, _Drawable

if TYPE_CHECKING:
    from longtail.sim.world import World


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


class LightMixin(RenderBase):
    """Lighting, glare, weather and sensor effects of a frame."""

    def _build_sensor_and_weather(self) -> None:
        """Precompute the sensor noise frames and, in rain, the streak layers and lens drops."""
        W, H, L = self.W, self.H, self.light
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

    def _sprite(self, radius: int) -> np.ndarray:
        """A radial glow of the given radius, float32 0..1, cached."""
        sprite = self._sprites.get(radius)
        if sprite is None:
            yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float32)
            r = np.sqrt(xx**2 + yy**2) / max(radius, 1)
            sprite = np.clip(np.exp(-(r**2) * 4.0) + 0.25 * np.exp(-r * 6.0) - 0.02, 0, 1).astype(np.float32)
            self._sprites[radius] = sprite
        return sprite

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
