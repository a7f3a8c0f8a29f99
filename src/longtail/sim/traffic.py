"""Traffic of one drive: vehicles (same direction, oncoming, overtaking), pedestrians and
cyclists are spawned ahead, follow the intelligent driver model (IDM) behind whatever is in
their corridor, change lanes where a lane ends, and are dropped once out of the window.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from longtail.sim.actors import (
    CAR_COLORS,
    DARK_COLORS,
    PANTS_COLORS,
    SHIRT_COLORS,
    SKIN_COLORS,
    TRUCK_COLORS,
    Cyclist,
    LaneChange,
    Vehicle,
    Walker,
)
from longtail.sim.cells import WINDOW_AHEAD, WINDOW_BEHIND
from longtail.sim.road import LAYOUTS, RoadLayout

if TYPE_CHECKING:
    from longtail.sim.world import World

LANE_END_LOOKAHEAD_M = 150.0
"""Vehicles in a lane that ends within this distance (highway into town) merge, m."""


class Traffic:
    """Spawns, moves and drops the other road users of a world.

    Args:
        world: the world whose ``vehicles``, ``walkers`` and ``cyclists`` lists it keeps.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self._traffic_dt = 0.0
        self._traffic_phase = False
        # (time, vehicle): scenario vehicles handed back to ordinary traffic at that time.
        self._releases: list[tuple[float, Vehicle]] = []
        self._last_spawn = -1.0

    def release(self, at: float, vehicle: Vehicle) -> None:
        """Hand a scenario vehicle back to ordinary traffic at time ``at``, s."""
        self._releases.append((at, vehicle))

    def tick(self) -> None:
        """Release scenario vehicles that are due, and every 0.5 s spawn, cross and drop actors."""
        w = self.world
        if self._releases:
            due = [v for at, v in self._releases if at <= w.t]
            self._releases = [(at, v) for at, v in self._releases if at > w.t]
            for v in due:
                v.forced_accel = None
                v.hazard = False
                if v.v_des < 5.0:
                    v.v_des = self.lane_speed(LAYOUTS[w.road.type_at(v.s)], 0) * 0.8
        if w.t - self._last_spawn >= 0.5:
            self._last_spawn = w.t
            self.spawn()
            self.crossings()
            self.despawn()

    def advance(self, dt: float) -> None:
        """Move the other road users, at half the ego's rate.

        Nobody sees the 20 ms difference, and it halves the cost of the traffic model.
        """
        self._traffic_dt += dt
        self._traffic_phase = not self._traffic_phase
        if self._traffic_phase:
            self.move(self._traffic_dt)
            self._traffic_dt = 0.0

    def lane_speed(self, layout: RoadLayout, lane: int) -> float:
        """Typical speed of ``lane`` (numbered as in `RoadLayout.lane_center`) on a road of ``layout``, m/s."""
        if layout is LAYOUTS["highway"]:
            return (34.0, 30.0, 25.5)[lane]
        return 13.5 if lane == 0 else 12.5

    def make_vehicle(self, s: float, x: float, v: float, rng: np.random.Generator, truck_p: float,
                     oncoming: bool = False) -> Vehicle:
        """A new car or truck (a truck with probability ``truck_p``) at ``s``, ``x`` driving at ``v``, m/s."""
        truck = rng.random() < truck_p
        if truck:
            length, width, height = float(rng.uniform(7.0, 16.5)), 2.5, float(rng.uniform(3.2, 4.0))
            color = TRUCK_COLORS[int(rng.integers(len(TRUCK_COLORS)))]
        else:
            length, width = float(rng.uniform(4.0, 4.9)), float(rng.uniform(1.75, 1.95))
            height = float(rng.uniform(1.4, 1.8))
            color = CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]
        return Vehicle(
            id=self.world.new_id(), kind="truck" if truck else "car", s=s, x=x, v=v, length=length, width=width,
            height=height, color=color, v_des=abs(v), oncoming=oncoming, variant=int(rng.integers(1 << 30)),
        )

    def lane_clear(self, s: float, x: float, before: float, after: float, skip: Vehicle | None = None) -> bool:
        """True when no vehicle but ``skip`` is in the lane at ``x`` from ``before`` m behind to ``after`` m ahead of ``s``."""
        for v in self.world.vehicles:
            if v is skip or abs(v.x - x) > 1.6:
                continue
            if s - before < v.s < s + after:
                return False
        return True

    def populate(self) -> None:
        """Fill the road with traffic at the start of the drive."""
        for _ in range(60):
            self.spawn(initial=True)

    def spawn(self, initial: bool = False) -> None:
        """Add traffic ahead of the ego (or anywhere in the window when ``initial``) up to the traffic level."""
        w = self.world
        rng = w.rng
        ego = w.ego
        level = w.plan.traffic_level
        lo, hi = (ego.s + 12, ego.s + WINDOW_AHEAD - 20) if initial else (ego.s + WINDOW_AHEAD - 40, ego.s + WINDOW_AHEAD)
        s = float(rng.uniform(lo, hi))
        road_type = w.road.type_at(s)
        layout = LAYOUTS[road_type]
        window = (WINDOW_AHEAD + WINDOW_BEHIND) / 1000.0
        # Same-direction traffic.
        lane = int(rng.integers(layout.lanes_same))
        x = layout.lane_center(lane)
        count = sum(1 for v in w.vehicles if not v.oncoming and not v.parked and abs(v.x - x) < 1.6)
        density = (16.0 if road_type == "highway" else 14.0) * level
        if count < density * window and self.lane_clear(s, x, 25, 25) and abs(s - ego.s) > 8:
            speed = self.lane_speed(layout, lane) * float(rng.uniform(0.9, 1.08))
            truck_p = 0.35 if (road_type == "highway" and lane == layout.lanes_same - 1) else 0.08
            w.vehicles.append(self.make_vehicle(s, x, speed, rng, truck_p))
        # A faster vehicle arriving from behind, so the ego gets overtaken too.
        if not initial and rng.random() < 0.15 and layout.lanes_same > 1:
            lane = int(rng.integers(layout.lanes_same))
            x = layout.lane_center(lane)
            speed = self.lane_speed(layout, lane) * float(rng.uniform(1.0, 1.1))
            s_b = ego.s - float(rng.uniform(60, 85))
            if speed > ego.v + 2 and abs(x - ego.x) > 1.5 and self.lane_clear(s_b, x, 25, 25):
                w.vehicles.append(self.make_vehicle(s_b, x, speed, rng, 0.1))
        # Oncoming traffic.
        s_on = float(rng.uniform(lo, hi))
        on_layout = LAYOUTS[w.road.type_at(s_on)]
        if on_layout.oncoming_lanes:
            x = on_layout.oncoming_lanes[int(rng.integers(len(on_layout.oncoming_lanes)))]
            count = sum(1 for v in w.vehicles if v.oncoming and not v.parked and abs(v.x - x) < 1.6)
            if count < 12.0 * level * window and self.lane_clear(s_on, x, 30, 30):
                speed = on_layout.speed_mps * float(rng.uniform(0.85, 1.1))
                w.vehicles.append(self.make_vehicle(s_on, x, -speed, rng, 0.12, oncoming=True))
        # Pedestrians and cyclists in town.
        s_w = float(rng.uniform(lo, hi))
        if w.road.type_at(s_w) == "urban":
            night = w.plan.time_of_day == "night"
            walkers = 6.0 if not night else 2.0
            if len(w.walkers) < walkers * level * (hi - lo + (WINDOW_AHEAD if initial else 0)) / 100.0:
                side = 1 if rng.random() < 0.5 else -1
                x = side * float(rng.uniform(10.3, 12.7))
                moving = rng.random() < 0.75
                vs = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.9, 1.6)) if moving else 0.0
                w.walkers.append(self.make_walker(s_w, x, vs, 0.0, rng, dark=False))
            if rng.random() < 0.12 and len(w.cyclists) < 3:
                w.cyclists.append(self.make_cyclist(s_w, 7.25, float(rng.uniform(4.0, 6.0)), 0.0, rng,
                                                    light=not night or rng.random() < 0.85))

    def make_walker(self, s: float, x: float, vs: float, vx: float, rng: np.random.Generator, dark: bool,
                    child: bool = False) -> Walker:
        """A new pedestrian at ``s``, ``x`` walking at (``vs``, ``vx``), m/s; ``dark`` clothes, or a ``child``."""
        shirt = DARK_COLORS[int(rng.integers(len(DARK_COLORS)))] if dark else SHIRT_COLORS[int(rng.integers(len(SHIRT_COLORS)))]
        pants = DARK_COLORS[int(rng.integers(len(DARK_COLORS)))] if dark else PANTS_COLORS[int(rng.integers(len(PANTS_COLORS)))]
        height = float(rng.uniform(1.0, 1.3)) if child else float(rng.uniform(1.55, 1.95))
        hair = ((30, 25, 20), (90, 60, 30), (200, 170, 110), (120, 120, 120))[int(rng.integers(4))]
        return Walker(
            id=self.world.new_id(), s=s, x=x, vs=vs, vx=vx, height=height, shirt=shirt, pants=pants,
            skin=SKIN_COLORS[int(rng.integers(len(SKIN_COLORS)))], hair=hair, phase=float(rng.uniform(0, 6.28)),
            child=child,
        )

    def make_cyclist(self, s: float, x: float, vs: float, vx: float, rng: np.random.Generator, light: bool,
                     dark: bool = False) -> Cyclist:
        """A new cyclist at ``s``, ``x`` riding at (``vs``, ``vx``), m/s, with or without ``light`` at night."""
        shirts = DARK_COLORS if dark else SHIRT_COLORS
        pants = DARK_COLORS if dark else PANTS_COLORS
        bikes = ((25, 25, 28),) if dark else ((30, 30, 30), (160, 30, 30), (40, 70, 150), (200, 200, 200))
        return Cyclist(
            id=self.world.new_id(), s=s, x=x, vs=vs, vx=vx, shirt=shirts[int(rng.integers(len(shirts)))],
            pants=pants[int(rng.integers(len(pants)))], skin=SKIN_COLORS[int(rng.integers(len(SKIN_COLORS)))],
            bike=bikes[int(rng.integers(len(bikes)))], light=light, phase=float(rng.uniform(0, 6.28)),
        )

    def despawn(self) -> None:
        """Drop actors and traffic lights that have left the window (scenario actors stay)."""
        ego_s = self.world.ego.s
        lo, hi = ego_s - WINDOW_BEHIND, ego_s + WINDOW_AHEAD + 40
        self.world.vehicles = [v for v in self.world.vehicles if v.critical or lo < v.s < hi]
        self.world.walkers = [w for w in self.world.walkers if w.critical or (lo < w.s < hi and abs(w.x) < 16)]
        self.world.cyclists = [c for c in self.world.cyclists if c.critical or lo < c.s < hi]
        self.world.lights = [li for li in self.world.lights if li.s > lo]

    def leader_gap(self, s: float, x: float, width: float, skip: object = None, lights: bool = True
                   ) -> tuple[float, float]:
        """Gap (m) and speed (m/s) of the nearest obstacle ahead of ``s`` in the corridor around ``x``.

        ``lights=False`` leaves red lights out: only road users (for collision and TTC measures).
        """
        best, speed = 1e9, 0.0
        ego = self.world.ego
        half = width / 2
        for v in self.world.vehicles:
            if v is skip or (v.oncoming and not v.parked):
                continue
            if abs(v.x - x) < half + v.width / 2 + 0.2:
                gap = v.s - v.length / 2 - s
                if -1.0 < gap < best:
                    best, speed = gap, max(v.v, 0.0)
        if skip is not None and abs(ego.x - x) < half + self.world.spec["width"] / 2 + 0.2:
            gap = ego.s - self.world.spec["length"] - s
            if -1.0 < gap < best:
                best, speed = gap, ego.v
        for w in self.world.walkers:
            if abs(w.x - x) < half + 0.5:
                gap = w.s - 0.4 - s
                if -0.5 < gap < best:
                    best, speed = gap, max(w.vs, 0.0)
        for c in self.world.cyclists:
            if abs(c.x - x) < half + 0.5:
                gap = c.s - 1.0 - s
                if -0.5 < gap < best:
                    best, speed = gap, max(c.vs, 0.0)
        for light in self.world.lights if lights else ():
            gap = light.s - s
            if 0.5 < gap < best and x >= 0:
                state = light.state(self.world.t)
                v_here = ego.v if skip is None else 13.0
                if state == "red" or (state == "amber" and gap > v_here**2 / 6.0):
                    best, speed = gap, 0.0
        return best, speed

    def light_gap(self, s: float, x: float) -> float:
        """Gap (m) to the stop line of the nearest light ahead of ``s`` that the ego must stop at (1e9: none).

        The same rule as `leader_gap` applies for the ego: red, or amber while it can still stop.
        """
        w = self.world
        best = 1e9
        for light in w.lights:
            gap = light.s - s
            if 0.5 < gap < best and x >= 0:
                state = light.state(w.t)
                if state == "red" or (state == "amber" and gap > w.ego.v**2 / 6.0):
                    best = gap
        return best

    @staticmethod
    def idm(v: float, v_des: float, gap: float, lead_v: float, a_max: float, b: float, t_gap: float) -> float:
        """Acceleration of the intelligent driver model, m/s^2, behind a leader ``gap`` m ahead at ``lead_v`` m/s."""
        free = 1.0 - (v / max(v_des, 0.1)) ** 4
        if gap > 250:
            return a_max * free
        s_star = 3.0 + v * t_gap + v * (v - lead_v) / (2 * math.sqrt(a_max * b))
        return a_max * (free - (max(s_star, 0.0) / max(gap, 0.1)) ** 2)

    def leaders(self, movers: list[Vehicle]) -> tuple[np.ndarray, np.ndarray]:
        """Gap (m) to, and speed (m/s) of, the nearest obstacle ahead of each mover, vectorized.

        Same rules as `_leader_gap` for a traffic vehicle: vehicles (not moving oncoming ones),
        the ego, pedestrians, cyclists and red lights in its corridor.
        """
        n = len(movers)
        front = np.array([m.s + m.length / 2 for m in movers])
        mx = np.array([m.x for m in movers])
        mhalf = np.array([m.width / 2 for m in movers])
        obs = [v for v in self.world.vehicles if not (v.oncoming and not v.parked)]
        ego = self.world.ego
        rear = [v.s - v.length / 2 for v in obs] + [ego.s - self.world.spec["length"]]
        ox = [v.x for v in obs] + [ego.x]
        ohalf = [v.width / 2 + 0.2 for v in obs] + [self.world.spec["width"] / 2 + 0.2]
        ospeed = [max(v.v, 0.0) for v in obs] + [ego.v]
        omin = [-1.0] * (len(obs) + 1)
        for w in self.world.walkers:
            rear.append(w.s - 0.4)
            ox.append(w.x)
            ohalf.append(0.5)
            ospeed.append(max(w.vs, 0.0))
            omin.append(-0.5)
        for c in self.world.cyclists:
            rear.append(c.s - 1.0)
            ox.append(c.x)
            ohalf.append(0.5)
            ospeed.append(max(c.vs, 0.0))
            omin.append(-0.5)
        gap = np.asarray(rear)[None, :] - front[:, None]
        overlap = np.abs(np.asarray(ox)[None, :] - mx[:, None]) < (mhalf[:, None] + np.asarray(ohalf)[None, :])
        valid = overlap & (gap > np.asarray(omin)[None, :])
        index = {id(v): k for k, v in enumerate(obs)}
        for i, m in enumerate(movers):
            k = index.get(id(m))
            if k is not None:
                valid[i, k] = False
        masked = np.where(valid, gap, 1e9)
        best = masked.argmin(axis=1)
        gaps = masked[np.arange(n), best]
        speeds = np.asarray(ospeed)[best]
        for light in self.world.lights:
            state = light.state(self.world.t)
            if state == "green":
                continue
            lgap = light.s - front
            stop = (lgap > 0.5) & (lgap < gaps) & (mx >= 0)
            if state == "amber":
                stop &= lgap > 13.0**2 / 6.0
            gaps = np.where(stop, lgap, gaps)
            speeds = np.where(stop, 0.0, speeds)
        return gaps, speeds

    def move(self, dt: float) -> None:
        """Move every other road user by ``dt`` seconds."""
        t = self.world.t
        movers = [v for v in self.world.vehicles if not v.parked and not v.oncoming and not v.broken_down]
        if movers:
            gaps, speeds = self.leaders(movers)
            lead = {id(m): (float(g), float(sp)) for m, g, sp in zip(movers, gaps, speeds, strict=True)}
        for v in self.world.vehicles:
            if v.parked:
                continue
            if v.lc is None and not v.oncoming and not v.broken_down:
                # Traffic leaves a lane that ends ahead, like the ego does.
                lanes_ahead = LAYOUTS[self.world.road.type_at(v.s + LANE_END_LOOKAHEAD_M)].lanes_same
                road = self.world.road.type_at(v.s)
                here = LAYOUTS[road]
                if road != v.road:
                    # Onto another road type: take up its typical speed (scripted speeds excepted).
                    if v.road and not v.critical and v.forced_accel is None:
                        factor = 0.9 + 0.18 * ((v.variant % 1000) / 1000.0)
                        v.v_des = self.lane_speed(here, here.lane_of(v.x)) * factor
                    v.road = road
                if here.lane_of(v.x) >= lanes_ahead or v.x > here.lane_center(here.lanes_same - 1) + 1.0:
                    target = min(here.lane_of(v.x), lanes_ahead - 1)
                    v.lc = LaneChange(t, 4.0, v.x, here.lane_center(target))
            if v.lc is not None:
                v.x, vx, _ = v.lc.state(t)
                v.yaw = vx / max(abs(v.v), 1.0)
                v.indicator = 0 if v.lc.emergency else (1 if v.lc.x1 > v.lc.x0 else -1)
                if v.lc.done(t):
                    v.lc, v.yaw, v.indicator = None, 0.0, 0
            if v.oncoming:
                v.s += v.v * dt
                continue
            if v.broken_down:
                v.v, v.a = 0.0, 0.0
                continue
            gap, lead_v = lead[id(v)]
            a = self.idm(v.v, v.v_des, gap, lead_v, 1.5 if v.kind == "car" else 0.7, 3.0, 1.4)
            if v.forced_accel is not None:
                a = v.forced_accel
            v.a = float(np.clip(a, -9.0, 2.5))
            v.v = max(0.0, v.v + v.a * dt)
            v.s += v.v * dt
            v.brake = v.a < -1.0 or (v.v < 0.5 and v.forced_accel is None)
        for w in self.world.walkers:
            if w.start_at is not None and t >= w.start_at:
                w.vs, w.vx = w.pending_v
                w.start_at = None
            if w.stop_x is not None and ((w.vx < 0 and w.x <= w.stop_x) or (w.vx > 0 and w.x >= w.stop_x)):
                w.vx, w.vs, w.stop_x = 0.0, 0.0, None
            w.s += w.vs * dt
            w.x += w.vx * dt
            w.phase += math.hypot(w.vs, w.vx) * dt * 4.2
        for c in self.world.cyclists:
            c.s += c.vs * dt
            c.x += c.vx * dt
            c.phase += math.hypot(c.vs, c.vx) * dt * 2.5

    def crossings(self) -> None:
        """Pedestrians use the crosswalk while the ego's direction has red."""
        rng = self.world.rng
        for light in self.world.lights:
            if not 8 < light.s - self.world.ego.s < 120 or light.state(self.world.t) != "red":
                continue
            if rng.random() < 0.04:
                side = 1 if rng.random() < 0.5 else -1
                speed = float(rng.uniform(1.1, 1.6))
                w = self.make_walker(light.s + float(rng.uniform(2.5, 5.5)), side * 10.6, 0.0, -side * speed, rng,
                                     dark=False)
                w.stop_x = -side * 11.0
                self.world.walkers.append(w)
