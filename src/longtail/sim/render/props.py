"""Roadside props: trees, bushes, lamps, poles, signs, traffic lights, buildings, and the
median barrier and guard rail. They are static occluders: drawn into the ID buffer as
`ID_STATIC`, never in the ground truth."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import cv2
import numpy as np

from longtail.sim.actors import Prop, TrafficLight
from longtail.sim.render.base import ID_STATIC, STATIC_LIGHT, RenderBase, _Drawable
from longtail.sim.render.light import Shade
from longtail.sim.road import LAYOUTS, ROAD_NAMES, RoadView

if TYPE_CHECKING:
    from longtail.sim.world import World


class PropsMixin(RenderBase):
    """Builds the 3D points of roadside props and draws them."""

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
