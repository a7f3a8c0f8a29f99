"""Actors: vehicles at three levels of detail, pedestrians and cyclists, drawn into the image
and, with the same primitives, into the ID buffer that the ground truth is measured on."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from longtail.sim.actors import Cyclist, Vehicle, Walker
from longtail.sim.camera import NEAR_Z
from longtail.sim.render.base import RenderBase, _Drawable
from longtail.sim.render.light import Shade

if TYPE_CHECKING:
    from longtail.sim.world import World

VEHICLE_BOX_PX = 8.0
"""Vehicles shorter than this on screen are drawn as a rectangle."""
VEHICLE_DETAIL_PX = 22.0
"""Vehicles at least this tall get wheels, glass, lights, a number plate and a shadow."""


class ActorsMixin(RenderBase):
    """Builds the 3D points of vehicles and draws vehicles, pedestrians and cyclists."""

    _FACE_NAMES = ("back", "front", "left", "right", "top")

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
