"""The simulated world of one drive: the ego vehicle, traffic, vulnerable road users, and the
scripts that stage critical scenarios.

Physics runs at the vehicle-state rate (50 Hz by default). The ego follows its lane with an
adaptive cruise controller (IDM) when ADAS is engaged; when the controller's braking limit is
not enough, it raises a forward-collision warning and the driver overrides, which is what
makes signals, alerts and disengagements coherent with what the camera sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail.config import SimConfig
from longtail.sim.actors import (
    CAR_COLORS,
    DARK_COLORS,
    PANTS_COLORS,
    SHIRT_COLORS,
    SKIN_COLORS,
    TRUCK_COLORS,
    Cell,
    Cyclist,
    LaneChange,
    Prop,
    TrafficLight,
    Vehicle,
    Walker,
)
from longtail.sim.plan import DrivePlan, ScenarioEvent
from longtail.sim.road import CELL_M, LAYOUTS, Road, RoadLayout

EGO_SPECS: dict[str, dict[str, float]] = {
    "car": {
        "length": 4.7, "width": 1.9, "a_max": 2.0, "b_comf": 2.5, "decel_max": 9.5, "wheelbase": 2.8,
        "steer_ratio": 15.0, "time_gap": 1.5, "speed_factor": 1.0, "pitch_per_acc": 0.004,
        "brake_bar_per_acc": 11.0,
    },
    "truck": {
        "length": 16.5, "width": 2.55, "a_max": 0.8, "b_comf": 2.0, "decel_max": 6.5, "wheelbase": 3.8,
        "steer_ratio": 20.0, "time_gap": 1.9, "speed_factor": 0.85, "pitch_per_acc": 0.0025,
        "brake_bar_per_acc": 1.3,
    },
}
ACC_DECEL_LIMIT = 3.5
"""Adaptive cruise control brakes at most this hard, m/s^2; beyond it the driver must act."""
AEB_TTC_S = 1.3
"""Automatic emergency braking acts below this time to collision, s."""
WINDOW_BEHIND = 90.0
WINDOW_AHEAD = 280.0
LANE_END_LOOKAHEAD_M = 150.0
"""Vehicles in a lane that ends within this distance (highway into town) merge, m."""
PREARM_S = 7.0
"""Scenario scripts prepare their actors this long before the event starts, s."""


@dataclass(slots=True)
class EgoState:
    """The ego vehicle. ``s`` is the camera's position along the road, m."""

    s: float
    x: float
    v: float
    a: float = 0.0
    a_cmd: float = 0.0
    psi: float = 0.0
    kappa: float = 0.0
    yaw_rate: float = 0.0
    steer_deg: float = 0.0
    lat_acc: float = 0.0
    pitch: float = 0.0
    lc: LaneChange | None = None
    turn_signal: str = "off"
    adas_engaged: bool = False
    driver_override: bool = False
    override_until: float = -1.0
    reengage_at: float = 1e18
    adas_alert: str = "none"
    fcw_since: float | None = None
    reaction_s: float = 0.7
    hazard: bool = False
    forced_accel: float | None = None
    hold_until: float = -1.0
    time_gap: float | None = None
    wander: float = 0.0
    bump: float = 0.0


class World:
    """All dynamic state of one drive, advanced by `step`.

    Args:
        plan: the drive's plan (conditions, segments, scenario schedule).
        cfg: the simulator configuration.
    """

    def __init__(self, plan: DrivePlan, cfg: SimConfig) -> None:
        self.plan = plan
        self.cfg = cfg
        seeds = np.random.SeedSequence(plan.seed).spawn(5)
        self.rng_road, self.rng_cells, self.rng, self.rng_ego, self.rng_scn = (np.random.default_rng(s) for s in seeds)
        self.spec = EGO_SPECS[plan.vehicle_type]
        self.t = 0.0
        self.ego = EgoState(s=60.0, x=0.0, v=0.0)
        self.road = Road(self.rng_road, self._type_for_new_cell)
        self.cells: dict[int, Cell] = {}
        self._next_cell = 0
        self.lights: list[TrafficLight] = []
        self.vehicles: list[Vehicle] = []
        self.walkers: list[Walker] = []
        self.cyclists: list[Cyclist] = []
        self._next_id = 1
        self._event: ScenarioEvent | None = None
        self._prearmed: set[float] = set()
        self._scn: dict[str, object] = {}
        self._traffic_dt = 0.0
        self._traffic_phase = False
        self._blocked_since: float | None = None
        # (time, vehicle): scenario vehicles handed back to ordinary traffic at that time.
        self._releases: list[tuple[float, Vehicle]] = []
        self._next_lane_change = 20.0 + float(self.rng_ego.uniform(0, 60))
        self._next_override = float(self.rng_ego.exponential(720.0))
        self._last_spawn = -1.0
        self._speed_bias = float(self.rng_ego.uniform(0.92, 1.06))
        self._ensure_cells()
        layout = self.layout
        lane = 1 if layout.lanes_same > 1 else 0
        self.ego.x = layout.lane_center(lane)
        self.ego.v = self._desired_speed()
        self.ego.adas_engaged = bool(self.rng_ego.random() < (0.85 if self.road_type == "highway" else 0.3))
        self._populate()

    # ------------------------------------------------------------------ context
    @property
    def road_type(self) -> str:
        """Road type under the ego vehicle."""
        return self.road.type_at(self.ego.s)

    @property
    def layout(self) -> RoadLayout:
        """Cross-section of the road under the ego vehicle."""
        return LAYOUTS[self.road_type]

    @property
    def event(self) -> ScenarioEvent | None:
        """The critical scenario in progress, if any."""
        return self._event

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _type_for_new_cell(self, s: float) -> str:
        v = max(self.ego.v, 8.0)
        return self.plan.road_type_at(self.t + (s - self.ego.s) / v)

    def _ensure_cells(self) -> None:
        self.road.ensure(self.ego.s + WINDOW_AHEAD + 2 * CELL_M)
        n = self.road.cell_type.size
        for idx in range(self._next_cell, n):
            self.cells[idx] = self._make_cell(idx)
        self._next_cell = n
        behind = int((self.ego.s - WINDOW_BEHIND) // CELL_M) - 1
        for idx in [i for i in self.cells if i < behind]:
            del self.cells[idx]

    # ------------------------------------------------------------------ roadside content
    def _make_cell(self, idx: int) -> Cell:
        rng = self.rng_cells
        road_type = self.road.type_at(idx * CELL_M)
        cell = Cell(idx, road_type)
        s0 = idx * CELL_M
        layout = LAYOUTS[road_type]
        if road_type == "urban":
            self._urban_cell(cell, s0, layout, rng)
        else:
            self._highway_cell(cell, s0, layout, rng)
        return cell

    def _urban_cell(self, cell: Cell, s0: float, layout: RoadLayout, rng: np.random.Generator) -> None:
        for side in (1, -1):
            state = self._scn.setdefault(f"bld{side}", {"left": 0.0})
            assert isinstance(state, dict)
            if state["left"] <= 0:
                length = float(rng.uniform(12, 30))
                gap = float(rng.uniform(0, 6)) if rng.random() < 0.4 else 0.0
                setback = (layout.building_setback or 14.0) + float(rng.uniform(0, 4))
                height = float(rng.choice([rng.uniform(7, 13), rng.uniform(12, 26)]))
                facade = [(210, 200, 185), (180, 160, 140), (150, 90, 70), (225, 225, 220), (120, 120, 125),
                          (200, 180, 120), (170, 190, 200), (140, 110, 90)][int(rng.integers(8))]
                cell.props.append(
                    Prop("building", s0 + gap, side * setback, (length, height, float(rng.uniform(10, 20))),
                         facade, int(rng.integers(1 << 30)), side)
                )
                state["left"] = length + gap
            state["left"] -= CELL_M
            # Street lights every 30 m, trees between them, parked cars in the parking strip.
            if cell.index % 3 == 0:
                cell.props.append(Prop("lamp", s0 + 1.0, side * 10.4, (8.0,), (90, 92, 95), 0, side))
            elif rng.random() < 0.35:
                cell.props.append(Prop("tree", s0 + float(rng.uniform(2, 8)), side * 10.5,
                                       (float(rng.uniform(5, 9)), float(rng.uniform(1.6, 2.8))), (40, 95, 40),
                                       int(rng.integers(1 << 30)), side))
            if rng.random() < 0.06:
                cell.props.append(Prop("sign", s0 + float(rng.uniform(0, 10)), side * 10.2, (2.4, 0.6),
                                       [(200, 30, 30), (30, 80, 200), (240, 240, 240)][int(rng.integers(3))],
                                       int(rng.integers(1 << 30)), side))
            for slot in range(2):
                if rng.random() < 0.45:
                    s = s0 + 2.5 + slot * 5.2
                    self._add_parked(s, side * (layout.parking_x or 8.95), rng, oncoming=side < 0)
        # A signalised junction every few hundred metres, with a crosswalk after the stop line.
        last = self.lights[-1].s if self.lights else -1e9
        if s0 - last > 250 and rng.random() < 0.08 and s0 > self.ego.s + 150:
            light = TrafficLight(s0, float(rng.uniform(0, 60)))
            self.lights.append(light)
            cell.crosswalk = True
            for side in (1, -1):
                cell.props.append(Prop("traffic_light", s0 - 1.0, side * 10.2, (4.5,), (40, 40, 40), 0, side))
            # No parked cars on the crosswalk.
            self.vehicles = [v for v in self.vehicles if not (v.parked and s0 - 6 < v.s < s0 + 8)]

    def _highway_cell(self, cell: Cell, s0: float, layout: RoadLayout, rng: np.random.Generator) -> None:
        if cell.index % 5 == 0:
            cell.props.append(Prop("lamp", s0, layout.barrier_x or -1.1, (10.0,), (120, 122, 125), 0, -1))
        for side, x0 in ((1, 16.0), (-1, -16.0)):
            if rng.random() < 0.5:
                n = int(rng.integers(1, 3))
                for _ in range(n):
                    x = x0 + side * float(rng.uniform(0, 25))
                    kind = "tree" if rng.random() < 0.8 else "bush"
                    size = (float(rng.uniform(6, 14)), float(rng.uniform(2.0, 4.5))) if kind == "tree" else (
                        float(rng.uniform(1.0, 2.0)), float(rng.uniform(1.2, 2.5)))
                    green = (int(rng.integers(25, 60)), int(rng.integers(70, 120)), int(rng.integers(25, 55)))
                    cell.props.append(Prop(kind, s0 + float(rng.uniform(0, 10)), x, size, green,
                                           int(rng.integers(1 << 30)), side))
        if rng.random() < 0.015:
            cell.props.append(Prop("sign", s0 + 5, 15.0, (4.5, 2.2), (20, 110, 60), int(rng.integers(1 << 30)), 1))
        if cell.index % 4 == 0:
            cell.props.append(Prop("pole", s0, 14.1, (1.2,), (200, 200, 200), 0, 1))

    def _add_parked(self, s: float, x: float, rng: np.random.Generator, oncoming: bool) -> Vehicle:
        v = Vehicle(
            id=self._new_id(), kind="car", s=s, x=x, v=0.0,
            length=float(rng.uniform(3.9, 4.8)), width=float(rng.uniform(1.7, 1.9)),
            height=float(rng.uniform(1.4, 1.75)), color=CAR_COLORS[int(rng.integers(len(CAR_COLORS)))],
            oncoming=oncoming, parked=True, variant=int(rng.integers(1 << 30)),
        )
        self.vehicles.append(v)
        return v

    # ------------------------------------------------------------------ traffic
    def _lane_speed(self, layout: RoadLayout, lane: int) -> float:
        if layout is LAYOUTS["highway"]:
            return (34.0, 30.0, 25.5)[lane]
        return 13.5 if lane == 0 else 12.5

    def _make_vehicle(self, s: float, x: float, v: float, rng: np.random.Generator, truck_p: float,
                      oncoming: bool = False) -> Vehicle:
        truck = rng.random() < truck_p
        if truck:
            length, width, height = float(rng.uniform(7.0, 16.5)), 2.5, float(rng.uniform(3.2, 4.0))
            color = TRUCK_COLORS[int(rng.integers(len(TRUCK_COLORS)))]
        else:
            length, width = float(rng.uniform(4.0, 4.9)), float(rng.uniform(1.75, 1.95))
            height = float(rng.uniform(1.4, 1.8))
            color = CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]
        return Vehicle(
            id=self._new_id(), kind="truck" if truck else "car", s=s, x=x, v=v, length=length, width=width,
            height=height, color=color, v_des=abs(v), oncoming=oncoming, variant=int(rng.integers(1 << 30)),
        )

    def _lane_clear(self, s: float, x: float, before: float, after: float, skip: Vehicle | None = None) -> bool:
        for v in self.vehicles:
            if v is skip or abs(v.x - x) > 1.6:
                continue
            if s - before < v.s < s + after:
                return False
        return True

    def _populate(self) -> None:
        """Fill the road with traffic at the start of the drive."""
        for _ in range(60):
            self._spawn(initial=True)

    def _spawn(self, initial: bool = False) -> None:
        rng = self.rng
        ego = self.ego
        level = self.plan.traffic_level
        lo, hi = (ego.s + 12, ego.s + WINDOW_AHEAD - 20) if initial else (ego.s + WINDOW_AHEAD - 40, ego.s + WINDOW_AHEAD)
        s = float(rng.uniform(lo, hi))
        road_type = self.road.type_at(s)
        layout = LAYOUTS[road_type]
        window = (WINDOW_AHEAD + WINDOW_BEHIND) / 1000.0
        # Same-direction traffic.
        lane = int(rng.integers(layout.lanes_same))
        x = layout.lane_center(lane)
        count = sum(1 for v in self.vehicles if not v.oncoming and not v.parked and abs(v.x - x) < 1.6)
        density = (16.0 if road_type == "highway" else 14.0) * level
        if count < density * window and self._lane_clear(s, x, 25, 25) and abs(s - ego.s) > 8:
            speed = self._lane_speed(layout, lane) * float(rng.uniform(0.9, 1.08))
            truck_p = 0.35 if (road_type == "highway" and lane == layout.lanes_same - 1) else 0.08
            self.vehicles.append(self._make_vehicle(s, x, speed, rng, truck_p))
        # A faster vehicle arriving from behind, so the ego gets overtaken too.
        if not initial and rng.random() < 0.15 and layout.lanes_same > 1:
            lane = int(rng.integers(layout.lanes_same))
            x = layout.lane_center(lane)
            speed = self._lane_speed(layout, lane) * float(rng.uniform(1.0, 1.1))
            s_b = ego.s - float(rng.uniform(60, 85))
            if speed > ego.v + 2 and abs(x - ego.x) > 1.5 and self._lane_clear(s_b, x, 25, 25):
                self.vehicles.append(self._make_vehicle(s_b, x, speed, rng, 0.1))
        # Oncoming traffic.
        s_on = float(rng.uniform(lo, hi))
        on_layout = LAYOUTS[self.road.type_at(s_on)]
        if on_layout.oncoming_lanes:
            x = on_layout.oncoming_lanes[int(rng.integers(len(on_layout.oncoming_lanes)))]
            count = sum(1 for v in self.vehicles if v.oncoming and not v.parked and abs(v.x - x) < 1.6)
            if count < 12.0 * level * window and self._lane_clear(s_on, x, 30, 30):
                speed = on_layout.speed_mps * float(rng.uniform(0.85, 1.1))
                self.vehicles.append(self._make_vehicle(s_on, x, -speed, rng, 0.12, oncoming=True))
        # Pedestrians and cyclists in town.
        s_w = float(rng.uniform(lo, hi))
        if self.road.type_at(s_w) == "urban":
            night = self.plan.time_of_day == "night"
            walkers = 6.0 if not night else 2.0
            if len(self.walkers) < walkers * level * (hi - lo + (WINDOW_AHEAD if initial else 0)) / 100.0:
                side = 1 if rng.random() < 0.5 else -1
                x = side * float(rng.uniform(10.3, 12.7))
                moving = rng.random() < 0.75
                vs = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.9, 1.6)) if moving else 0.0
                self.walkers.append(self._make_walker(s_w, x, vs, 0.0, rng, dark=False))
            if rng.random() < 0.12 and len(self.cyclists) < 3:
                self.cyclists.append(self._make_cyclist(s_w, 7.25, float(rng.uniform(4.0, 6.0)), 0.0, rng,
                                                        light=not night or rng.random() < 0.85))

    def _make_walker(self, s: float, x: float, vs: float, vx: float, rng: np.random.Generator, dark: bool,
                     child: bool = False) -> Walker:
        shirt = DARK_COLORS[int(rng.integers(len(DARK_COLORS)))] if dark else SHIRT_COLORS[int(rng.integers(len(SHIRT_COLORS)))]
        pants = DARK_COLORS[int(rng.integers(len(DARK_COLORS)))] if dark else PANTS_COLORS[int(rng.integers(len(PANTS_COLORS)))]
        height = float(rng.uniform(1.0, 1.3)) if child else float(rng.uniform(1.55, 1.95))
        hair = ((30, 25, 20), (90, 60, 30), (200, 170, 110), (120, 120, 120))[int(rng.integers(4))]
        return Walker(
            id=self._new_id(), s=s, x=x, vs=vs, vx=vx, height=height, shirt=shirt, pants=pants,
            skin=SKIN_COLORS[int(rng.integers(len(SKIN_COLORS)))], hair=hair, phase=float(rng.uniform(0, 6.28)),
            child=child,
        )

    def _make_cyclist(self, s: float, x: float, vs: float, vx: float, rng: np.random.Generator, light: bool,
                      dark: bool = False) -> Cyclist:
        shirts = DARK_COLORS if dark else SHIRT_COLORS
        pants = DARK_COLORS if dark else PANTS_COLORS
        bikes = ((25, 25, 28),) if dark else ((30, 30, 30), (160, 30, 30), (40, 70, 150), (200, 200, 200))
        return Cyclist(
            id=self._new_id(), s=s, x=x, vs=vs, vx=vx, shirt=shirts[int(rng.integers(len(shirts)))],
            pants=pants[int(rng.integers(len(pants)))], skin=SKIN_COLORS[int(rng.integers(len(SKIN_COLORS)))],
            bike=bikes[int(rng.integers(len(bikes)))], light=light, phase=float(rng.uniform(0, 6.28)),
        )

    def _despawn(self) -> None:
        ego_s = self.ego.s
        lo, hi = ego_s - WINDOW_BEHIND, ego_s + WINDOW_AHEAD + 40
        self.vehicles = [v for v in self.vehicles if v.critical or lo < v.s < hi]
        self.walkers = [w for w in self.walkers if w.critical or (lo < w.s < hi and abs(w.x) < 16)]
        self.cyclists = [c for c in self.cyclists if c.critical or lo < c.s < hi]
        self.lights = [li for li in self.lights if li.s > lo]

    def _leader_gap(self, s: float, x: float, width: float, skip: object = None) -> tuple[float, float]:
        """Gap (m) and speed (m/s) of the nearest obstacle ahead of ``s`` in the corridor around ``x``."""
        best, speed = 1e9, 0.0
        ego = self.ego
        half = width / 2
        for v in self.vehicles:
            if v is skip or (v.oncoming and not v.parked):
                continue
            if abs(v.x - x) < half + v.width / 2 + 0.2:
                gap = v.s - v.length / 2 - s
                if -1.0 < gap < best:
                    best, speed = gap, max(v.v, 0.0)
        if skip is not None and abs(ego.x - x) < half + self.spec["width"] / 2 + 0.2:
            gap = ego.s - self.spec["length"] - s
            if -1.0 < gap < best:
                best, speed = gap, ego.v
        for w in self.walkers:
            if abs(w.x - x) < half + 0.5:
                gap = w.s - 0.4 - s
                if -0.5 < gap < best:
                    best, speed = gap, max(w.vs, 0.0)
        for c in self.cyclists:
            if abs(c.x - x) < half + 0.5:
                gap = c.s - 1.0 - s
                if -0.5 < gap < best:
                    best, speed = gap, max(c.vs, 0.0)
        for light in self.lights:
            gap = light.s - s
            if 0.5 < gap < best and x >= 0:
                state = light.state(self.t)
                v_here = ego.v if skip is None else 13.0
                if state == "red" or (state == "amber" and gap > v_here**2 / 6.0):
                    best, speed = gap, 0.0
        return best, speed

    @staticmethod
    def _idm(v: float, v_des: float, gap: float, lead_v: float, a_max: float, b: float, t_gap: float) -> float:
        free = 1.0 - (v / max(v_des, 0.1)) ** 4
        if gap > 250:
            return a_max * free
        s_star = 3.0 + v * t_gap + v * (v - lead_v) / (2 * math.sqrt(a_max * b))
        return a_max * (free - (max(s_star, 0.0) / max(gap, 0.1)) ** 2)

    def _leaders(self, movers: list[Vehicle]) -> tuple[np.ndarray, np.ndarray]:
        """Gap (m) to, and speed (m/s) of, the nearest obstacle ahead of each mover, vectorized.

        Same rules as `_leader_gap` for a traffic vehicle: vehicles (not moving oncoming ones),
        the ego, pedestrians, cyclists and red lights in its corridor.
        """
        n = len(movers)
        front = np.array([m.s + m.length / 2 for m in movers])
        mx = np.array([m.x for m in movers])
        mhalf = np.array([m.width / 2 for m in movers])
        obs = [v for v in self.vehicles if not (v.oncoming and not v.parked)]
        ego = self.ego
        rear = [v.s - v.length / 2 for v in obs] + [ego.s - self.spec["length"]]
        ox = [v.x for v in obs] + [ego.x]
        ohalf = [v.width / 2 + 0.2 for v in obs] + [self.spec["width"] / 2 + 0.2]
        ospeed = [max(v.v, 0.0) for v in obs] + [ego.v]
        omin = [-1.0] * (len(obs) + 1)
        for w in self.walkers:
            rear.append(w.s - 0.4)
            ox.append(w.x)
            ohalf.append(0.5)
            ospeed.append(max(w.vs, 0.0))
            omin.append(-0.5)
        for c in self.cyclists:
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
        for light in self.lights:
            state = light.state(self.t)
            if state == "green":
                continue
            lgap = light.s - front
            stop = (lgap > 0.5) & (lgap < gaps) & (mx >= 0)
            if state == "amber":
                stop &= lgap > 13.0**2 / 6.0
            gaps = np.where(stop, lgap, gaps)
            speeds = np.where(stop, 0.0, speeds)
        return gaps, speeds

    def _move_traffic(self, dt: float) -> None:
        t = self.t
        movers = [v for v in self.vehicles if not v.parked and not v.oncoming and not v.broken_down]
        if movers:
            gaps, speeds = self._leaders(movers)
            lead = {id(m): (float(g), float(sp)) for m, g, sp in zip(movers, gaps, speeds, strict=True)}
        for v in self.vehicles:
            if v.parked:
                continue
            if v.lc is None and not v.oncoming and not v.broken_down:
                # Traffic leaves a lane that ends ahead, like the ego does.
                lanes_ahead = LAYOUTS[self.road.type_at(v.s + LANE_END_LOOKAHEAD_M)].lanes_same
                road = self.road.type_at(v.s)
                here = LAYOUTS[road]
                if road != v.road:
                    # Onto another road type: take up its typical speed (scripted speeds excepted).
                    if v.road and not v.critical and v.forced_accel is None:
                        factor = 0.9 + 0.18 * ((v.variant % 1000) / 1000.0)
                        v.v_des = self._lane_speed(here, here.lane_of(v.x)) * factor
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
            a = self._idm(v.v, v.v_des, gap, lead_v, 1.5 if v.kind == "car" else 0.7, 3.0, 1.4)
            if v.forced_accel is not None:
                a = v.forced_accel
            v.a = float(np.clip(a, -9.0, 2.5))
            v.v = max(0.0, v.v + v.a * dt)
            v.s += v.v * dt
            v.brake = v.a < -1.0 or (v.v < 0.5 and v.forced_accel is None)
        for w in self.walkers:
            if w.start_at is not None and t >= w.start_at:
                w.vs, w.vx = w.pending_v
                w.start_at = None
            if w.stop_x is not None and ((w.vx < 0 and w.x <= w.stop_x) or (w.vx > 0 and w.x >= w.stop_x)):
                w.vx, w.vs, w.stop_x = 0.0, 0.0, None
            w.s += w.vs * dt
            w.x += w.vx * dt
            w.phase += math.hypot(w.vs, w.vx) * dt * 4.2
        for c in self.cyclists:
            c.s += c.vs * dt
            c.x += c.vx * dt
            c.phase += math.hypot(c.vs, c.vx) * dt * 2.5

    def _crossings(self) -> None:
        """Pedestrians use the crosswalk while the ego's direction has red."""
        rng = self.rng
        for light in self.lights:
            if not 8 < light.s - self.ego.s < 120 or light.state(self.t) != "red":
                continue
            if rng.random() < 0.04:
                side = 1 if rng.random() < 0.5 else -1
                speed = float(rng.uniform(1.1, 1.6))
                w = self._make_walker(light.s + float(rng.uniform(2.5, 5.5)), side * 10.6, 0.0, -side * speed, rng,
                                      dark=False)
                w.stop_x = -side * 11.0
                self.walkers.append(w)

    # ------------------------------------------------------------------ ego
    def _desired_speed(self) -> float:
        layout = self.layout
        lane = layout.lane_of(self.ego.x)
        base = (31.0, 29.0, 26.0)[lane] if self.road_type == "highway" else 13.0
        speed = base * self.spec["speed_factor"] * self._speed_bias
        kappa = self.road.max_abs_kappa(self.ego.s, self.ego.s + 80.0)
        if kappa > 1e-5:
            speed = min(speed, math.sqrt(2.0 / kappa))
        return speed

    def _start_lane_change(self, target_lane: int, duration: float, emergency: bool, delay: float = 0.0) -> None:
        ego = self.ego
        x1 = self.layout.lane_center(target_lane)
        ego.lc = LaneChange(self.t + delay, duration, ego.x, x1, emergency)
        ego.turn_signal = "off" if emergency else ("right" if x1 > ego.x else "left")

    def _ordinary_behaviour(self) -> None:
        ego, t, rng = self.ego, self.t, self.rng_ego
        layout = self.layout
        lane = layout.lane_of(ego.x)
        # A lane that ends ahead (highway into town): merge before it ends, signalling.
        ahead = LAYOUTS[self.road.type_at(ego.s + LANE_END_LOOKAHEAD_M)]
        if ego.lc is None and lane >= ahead.lanes_same:
            self._start_lane_change(ahead.lanes_same - 1, 4.0, False, delay=1.0)
            return
        # After a change of road type the ego settles into a lane that exists.
        if ego.lc is None and abs(ego.x - layout.lane_center(lane)) > 0.6:
            self._start_lane_change(lane, 4.0, False, delay=0.0)
            return
        # Stopped behind something that is not going to move (and not at a red light): go around.
        gap, lead_v = self._leader_gap(ego.s, ego.x, self.spec["width"])
        blocked = ego.v < 0.5 and lead_v < 0.3 and gap < 15 and not self._red_ahead(ego.s, 20.0)
        self._blocked_since = (self._blocked_since or t) if blocked else None
        if blocked and ego.lc is None and self._event is None and t - (self._blocked_since or t) > 8.0:
            for target in (lane - 1, lane + 1):
                if 0 <= target < layout.lanes_same and self._lane_clear(ego.s, layout.lane_center(target), 15, 25):
                    self._start_lane_change(target, 3.0, False, delay=1.0)
                    self._blocked_since = None
                    break
        stuck_behind_slow = gap < 60 and lead_v < self._desired_speed() - 4.0
        if (self._event is None and not self._event_soon() and ego.lc is None and self.road_type == "highway"
                and (t > self._next_lane_change or (stuck_behind_slow and t > self._next_lane_change - 150))):
            self._next_lane_change = t + float(rng.uniform(40, 200))
            options = []
            if lane > 0 and gap < 80 and lead_v < self._desired_speed() - 2.0:
                options.append(lane - 1)
            if lane < layout.lanes_same - 1 and rng.random() < 0.5:
                options.append(lane + 1)
            for target in options:
                if self._lane_clear(ego.s, layout.lane_center(target), 30, 40):
                    self._start_lane_change(target, float(rng.uniform(4.0, 6.0)), False, delay=1.5)
                    break
        # Now and then the driver takes over for reasons of their own (roadworks, an exit).
        if ego.adas_engaged and t > self._next_override and self._event is None:
            self._override(reason_alert="none")
            self._next_override = t + float(rng.exponential(720.0))
        if not ego.adas_engaged and t > ego.reengage_at and self._event is None:
            ego.adas_engaged = True
            ego.reengage_at = 1e18

    def _red_ahead(self, s: float, within: float) -> bool:
        """True when a traffic light within ``within`` metres ahead of ``s`` is not green."""
        return any(0.0 < light.s - s < within and light.state(self.t) != "green" for light in self.lights)

    def _event_soon(self) -> bool:
        """True when a scenario starts within the prearm window (its actors are being set up)."""
        return any(0.0 <= ev.start - self.t <= PREARM_S + 3.0 for ev in self.plan.events)

    def _override(self, reason_alert: str) -> None:
        ego = self.ego
        if ego.adas_engaged:
            ego.adas_engaged = False
            ego.driver_override = True
            ego.override_until = self.t + 1.5
            p_reengage = 0.9 if self.road_type == "highway" else 0.35
            if self.rng_ego.random() < p_reengage:
                ego.reengage_at = self.t + float(self.rng_ego.uniform(6, 25))
        if reason_alert != "none":
            ego.adas_alert = reason_alert

    def _ego_longitudinal(self, dt: float) -> None:
        ego, spec = self.ego, self.spec
        gap, lead_v = self._leader_gap(ego.s, ego.x, spec["width"])
        if ego.lc is not None and ego.lc.emergency:
            gap2, lead2 = self._leader_gap(ego.s, ego.lc.x1, spec["width"])
            if abs(ego.x - ego.lc.x1) < 1.2:
                gap, lead_v = gap2, lead2
        v_des = self._desired_speed()
        time_gap = ego.time_gap if ego.time_gap is not None else spec["time_gap"]
        a_req = self._idm(ego.v, v_des, gap, lead_v, spec["a_max"], spec["b_comf"], time_gap)
        if ego.forced_accel is not None:
            a_req = min(a_req, ego.forced_accel)
        if self.t < ego.hold_until:
            # Perception delay of a critical event: the hazard is not yet recognised.
            a_req = max(a_req, -0.3)
        a_req = max(a_req, -spec["decel_max"])
        closing = ego.v - lead_v
        ttc = gap / closing if closing > 0.1 else 1e9
        alert = "none"
        if ego.adas_engaged:
            if a_req < -ACC_DECEL_LIMIT:
                alert = "fcw"
                if ego.fcw_since is None:
                    ego.fcw_since = self.t
                    ego.reaction_s = float(self.rng_ego.uniform(0.4, 0.9))
                if self.t - ego.fcw_since >= ego.reaction_s:
                    self._override("fcw")
                    a_cmd = a_req
                elif ttc < AEB_TTC_S:
                    alert, a_cmd = "aeb", a_req
                else:
                    a_cmd = -ACC_DECEL_LIMIT
            else:
                ego.fcw_since = None
                a_cmd = a_req
        else:
            a_cmd = a_req
            if ttc < 2.0 and closing > 3.0:
                alert = "fcw"
            if ttc < AEB_TTC_S and a_req < -4.0:
                alert = "aeb"
        if ego.lc is not None and ego.lc.emergency and self.t >= ego.lc.t0:
            alert = "ldw" if alert == "none" else alert
        ego.adas_alert = alert
        ego.a_cmd = a_cmd
        jerk = 30.0 if a_cmd < -4 else 8.0
        ego.a += float(np.clip(a_cmd - ego.a, -jerk * dt, jerk * dt))
        if ego.v <= 0.0 and ego.a < 0:
            ego.a = 0.0
        ego.v = max(0.0, ego.v + ego.a * dt)
        ego.s += ego.v * dt

    def _ego_lateral(self, dt: float) -> None:
        ego, spec, t = self.ego, self.spec, self.t
        ax = 0.0
        if ego.lc is not None and t >= ego.lc.t0:
            ego.x, vx, ax = ego.lc.state(t)
            ego.psi = vx / max(ego.v, 1.0)
            if ego.lc.done(t):
                ego.lc = None
                ego.psi = 0.0
                ego.turn_signal = "hazard" if ego.hazard else "off"
        # Lane keeping is not perfect: a slow wander of a few centimetres.
        ego.wander += -ego.wander * dt / 3.0 + float(self.rng_ego.normal(0, 0.02)) * math.sqrt(dt)
        kappa_road = self.road.kappa_at(ego.s)
        v = max(ego.v, 1.0)
        ego.kappa = kappa_road + ax / v**2 + ego.wander * 0.002
        ego.yaw_rate = ego.v * ego.kappa
        ego.lat_acc = ego.v**2 * ego.kappa
        ego.steer_deg = math.degrees(math.atan(spec["wheelbase"] * ego.kappa)) * spec["steer_ratio"]
        ego.bump += -ego.bump * dt / 0.15 + float(self.rng_ego.normal(0, 0.0012)) * math.sqrt(dt) * min(ego.v / 10, 2.5)
        ego.pitch = -ego.a * spec["pitch_per_acc"] + ego.bump
        if ego.driver_override and t > ego.override_until:
            ego.driver_override = False

    # ------------------------------------------------------------------ scenarios
    def _scenario_tick(self) -> None:
        t = self.t
        ev = self.plan.event_at(t)
        if self._event is not None and (ev is None or ev is not self._event):
            self._end_scenario()
        for upcoming in self.plan.events:
            if upcoming.start - PREARM_S <= t < upcoming.start and upcoming.start not in self._prearmed:
                self._prearmed.add(upcoming.start)
                getattr(self, f"_prearm_{upcoming.name}", lambda e: None)(upcoming)
            if upcoming.start > t + PREARM_S:
                break
        if ev is not None and self._event is None:
            self._event = ev
            self._scn["rng"] = np.random.default_rng(ev.seed)
            getattr(self, f"_start_{ev.name}")(ev)
        if self._event is not None:
            getattr(self, f"_update_{self._event.name}", lambda e: None)(self._event)

    def _mark(self, actor: Vehicle | Walker | Cyclist) -> None:
        assert self._event is not None
        actor.scenario = self._event.name
        actor.critical = True
        subjects = self._scn.setdefault("subjects", [])
        assert isinstance(subjects, list)
        subjects.append(actor)

    def _end_scenario(self) -> None:
        for actor in self._scn.get("subjects", []):  # type: ignore[attr-defined]
            actor.critical = False
            actor.scenario = None
        self.ego.forced_accel = None
        self.ego.time_gap = None
        self._scn = {k: v for k, v in self._scn.items() if k.startswith("bld")}
        self._event = None

    def _lead(self, max_gap: float) -> Vehicle | None:
        ego = self.ego
        best, lead = max_gap, None
        for v in self.vehicles:
            if v.oncoming or v.parked or abs(v.x - ego.x) > 1.4:
                continue
            gap = v.s - v.length / 2 - ego.s
            if 0 < gap < best:
                best, lead = gap, v
        return lead

    def _bring_lead(self, ev: ScenarioEvent) -> None:
        """Make sure a vehicle drives ahead in the ego's lane when ``ev`` starts.

        A faster vehicle comes from behind in the next lane and merges in front of the ego,
        as traffic does, rather than appearing out of nowhere.
        """
        if self._lead(45.0) is not None:
            return
        rng = np.random.default_rng(ev.seed + 1)
        layout, ego = self.layout, self.ego
        lane = layout.lane_of(ego.x)
        side = -1 if lane > 0 else 1
        if not 0 <= lane + side < layout.lanes_same:
            side = -side
        if not 0 <= lane + side < layout.lanes_same:
            v = self._make_vehicle(ego.s + 55, ego.x, ego.v, rng, 0.1)
        else:
            v = self._make_vehicle(ego.s - 12, layout.lane_center(lane + side), ego.v + 7.0, rng, 0.1)
            v.v_des = ego.v + 7.0
            self._scn["merger"] = v
        self.vehicles.append(v)

    def _update_merger(self) -> None:
        merger = self._scn.get("merger")
        if isinstance(merger, Vehicle) and merger.lc is None and merger.s - merger.length / 2 - self.ego.s > 22:
            merger.lc = LaneChange(self.t, 2.5, merger.x, self.ego.x)
            merger.v_des = self.ego.v
            self._scn.pop("merger")

    def _prearm_emergency_braking(self, ev: ScenarioEvent) -> None:
        self._bring_lead(ev)
        # Close following, as many drivers do: what turns a lead's hard stop into an emergency.
        self.ego.time_gap = float(np.random.default_rng(ev.seed + 4).uniform(0.8, 1.1))

    def _prearm_emergency_lane_change(self, ev: ScenarioEvent) -> None:
        self._bring_lead(ev)
        ego = self.ego
        rng = np.random.default_rng(ev.seed + 2)
        # A broken-down vehicle far ahead in the ego's lane, timed to be reached as the event starts.
        dist = ego.v * (ev.start - self.t) + ego.v * float(rng.uniform(1.6, 2.2)) + 30
        s = ego.s + min(dist, WINDOW_AHEAD - 10)
        stopped = self._make_vehicle(s, ego.x, 0.0, rng, 0.3)
        stopped.broken_down = True
        stopped.hazard = bool(rng.random() < 0.5)
        stopped.v_des = 0.0
        self.vehicles = [v for v in self.vehicles if not (abs(v.x - ego.x) < 1.5 and ego.s + 60 < v.s and abs(v.s - s) < 60)]
        self.vehicles.append(stopped)
        self._scn["stopped"] = stopped

    def _prearm_occluded_pedestrian(self, ev: ScenarioEvent) -> None:
        ego = self.ego
        rng = np.random.default_rng(ev.seed + 3)
        dist = ego.v * (ev.start - self.t) + ego.v * float(rng.uniform(2.2, 3.0)) + 10
        s = ego.s + min(dist, WINDOW_AHEAD - 10)
        layout = LAYOUTS["urban"]
        x = layout.parking_x or 8.95
        self.vehicles = [v for v in self.vehicles if not (v.parked and v.x > 0 and abs(v.s - s) < 9)]
        van = self._make_vehicle(s, x, 0.0, rng, 0.5)
        van.parked = True
        van.v_des = 0.0
        if van.kind == "truck":
            van.length, van.width, van.height = float(rng.uniform(5.5, 7.0)), 2.1, float(rng.uniform(2.4, 2.9))
        else:
            van.length, van.width, van.height = float(rng.uniform(4.6, 5.2)), 1.95, float(rng.uniform(1.85, 2.1))
        self.vehicles.append(van)
        self._scn["van"] = van

    def _start_cut_in(self, ev: ScenarioEvent) -> None:
        """A vehicle overtakes in the next lane, then cuts in close in front and slows down.

        It comes from beside the camera, so it first sweeps into view truncated at the image
        edge. Where a vehicle already drives just ahead in the next lane, that one cuts in.
        """
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        layout, ego = self.layout, self.ego
        lane = layout.lane_of(ego.x)
        sides = [d for d in (-1, 1) if 0 <= lane + d < layout.lanes_same] or [1]
        rng.shuffle(sides)
        cutter = None
        x_from = ego.x + sides[0] * layout.lane_width
        for side in sides:
            x_side = ego.x + side * layout.lane_width
            near = [v for v in self.vehicles if not v.oncoming and not v.parked and abs(v.x - x_side) < 1.2
                    and -15 < v.s - ego.s < 45]
            ahead = [v for v in near if 4 < v.s - v.length / 2 - ego.s < 20]
            if ahead:
                cutter, x_from = ahead[0], x_side
                break
            if not near:
                x_from = x_side
                break
        if cutter is None:
            # Make room beside and just behind the camera (out of view), then come from there.
            self.vehicles = [v for v in self.vehicles if v.critical or not (
                abs(v.x - x_from) < 1.2 and -20 < v.s - ego.s < 3)]
            cutter = self._make_vehicle(ego.s - 1.0, x_from, ego.v + 6.0, rng, 0.25)
            self.vehicles.append(cutter)
        cutter.v = max(cutter.v, ego.v + 3.0)
        self._scn["cutter"] = cutter
        self._scn["cut_gap"] = float(rng.uniform(4.0, 10.0))
        self._scn["cut_speed"] = max(ego.v - float(rng.uniform(3.0, 7.0)), 3.0)
        self._mark(cutter)

    def _update_cut_in(self, ev: ScenarioEvent) -> None:
        cutter = self._scn.get("cutter")
        if not isinstance(cutter, Vehicle) or self._scn.get("cut_started"):
            return
        ego = self.ego
        gap = cutter.s - cutter.length / 2 - ego.s
        late = self.t > ev.start + 0.5 * (ev.end - ev.start)
        if gap >= float(self._scn["cut_gap"]) or late:  # type: ignore[arg-type]
            rng = self._scn["rng"]
            assert isinstance(rng, np.random.Generator)
            cutter.lc = LaneChange(self.t, float(rng.uniform(1.0, 1.8)), cutter.x, ego.x)
            cutter.v_des = float(self._scn["cut_speed"])  # type: ignore[arg-type]
            cutter.forced_accel = -float(rng.uniform(1.5, 3.5))
            self._scn["cut_started"] = True
            self._releases.append((self.t + 2.5, cutter))
        else:
            # Overtake: hold about 5 m/s over the ego, whatever the lane ahead does.
            cutter.forced_accel = float(np.clip((ego.v + 5.0 - cutter.v) * 1.5, -3.0, 3.0))

    def _start_emergency_braking(self, ev: ScenarioEvent) -> None:
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        lead = self._lead(70.0)
        if lead is None:
            lead = self._make_vehicle(self.ego.s + 40, self.ego.x, self.ego.v, rng, 0.15)
            self.vehicles.append(lead)
        lead.forced_accel = -float(rng.uniform(6.5, 9.0))
        self._scn["lead"] = lead
        self.ego.hold_until = self.t + float(rng.uniform(0.6, 1.2))
        self._mark(lead)

    def _update_emergency_braking(self, ev: ScenarioEvent) -> None:
        lead = self._scn.get("lead")
        if isinstance(lead, Vehicle) and lead.v <= 0.0 and not self._scn.get("lead_stopped"):
            # Stopped: hazard lights on, then it drives off again a few seconds later.
            lead.forced_accel = 0.0
            lead.hazard = True
            self._scn["lead_stopped"] = True
            self._releases.append((self.t + 3.0, lead))
        if self.ego.v < 0.3 and self.t > ev.start + 1.0:
            self.ego.hazard = True
            self.ego.turn_signal = "hazard"

    def _start_emergency_lane_change(self, ev: ScenarioEvent) -> None:
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        layout, ego = self.layout, self.ego
        lane = layout.lane_of(ego.x)
        stopped = self._scn.get("stopped")
        if not isinstance(stopped, Vehicle) or stopped not in self.vehicles:
            stopped = self._make_vehicle(ego.s + max(ego.v * 2.0, 35.0), ego.x, 0.0, rng, 0.3)
            stopped.broken_down = True
            self.vehicles.append(stopped)
        stopped.x = ego.x
        self._mark(stopped)
        sides = [d for d in (-1, 1) if 0 <= lane + d < layout.lanes_same]
        side = sides[int(rng.integers(len(sides)))] if sides else 1
        target = lane + side if sides else lane
        x_target = layout.lane_center(target)
        # Clear the escape lane near the ego (out of view: beside and behind the camera).
        self.vehicles = [v for v in self.vehicles if v.critical or not (abs(v.x - x_target) < 1.6 and -40 < v.s - ego.s < 45)]
        lead = self._lead(stopped.s - ego.s - 3)
        if lead is not None and lead is not stopped:
            lead.lc = LaneChange(self.t, 1.3, lead.x, x_target + float(rng.uniform(-0.3, 0.3)), emergency=True)
            self._mark(lead)
        self._start_lane_change(target, float(rng.uniform(1.6, 2.3)), True, delay=float(rng.uniform(0.4, 0.8)))
        ego.forced_accel = -float(rng.uniform(2.0, 4.5))
        self._override("fcw")

    def _update_emergency_lane_change(self, ev: ScenarioEvent) -> None:
        if self.ego.lc is None:
            self.ego.forced_accel = None

    def _start_occluded_pedestrian(self, ev: ScenarioEvent) -> None:
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        ego = self.ego
        van = self._scn.get("van")
        if not isinstance(van, Vehicle) or van not in self.vehicles or van.s - ego.s < 12:
            van = self._make_vehicle(ego.s + max(ego.v * 2.6, 25.0), 8.95, 0.0, rng, 0.5)
            van.parked, van.height = True, max(van.height, 1.9)
            self.vehicles.append(van)
        child = bool(rng.random() < 0.5)
        # Just beyond the van's far end, in line with it: hidden by the van from the ego.
        s = van.s + van.length / 2 + float(rng.uniform(0.3, 0.9))
        ped = self._make_walker(s, van.x + float(rng.uniform(-0.5, 0.3)), 0.0, 0.0, rng,
                                dark=bool(rng.random() < 0.4), child=child)
        speed = float(rng.uniform(1.8, 3.0) if child else rng.uniform(1.3, 2.2))
        ped.pending_v = (0.0, -speed)
        ped.start_at = 1e18
        if rng.random() < 0.3:
            ped.stop_x = ego.x + float(rng.uniform(-0.5, 0.8))
        self.walkers.append(ped)
        self._scn["ped"] = ped
        self._scn["ttc"] = float(rng.uniform(1.8, 2.8))
        self._mark(ped)
        self._mark(van)

    def _update_occluded_pedestrian(self, ev: ScenarioEvent) -> None:
        ped = self._scn.get("ped")
        if not isinstance(ped, Walker) or ped.start_at is None:
            return
        ttc = (ped.s - self.ego.s) / max(self.ego.v, 1.0)
        if ttc < float(self._scn["ttc"]) or self.t > ev.start + 0.4 * (ev.end - ev.start):  # type: ignore[arg-type]
            ped.start_at = self.t

    def _start_night_vru(self, ev: ScenarioEvent) -> None:
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        ego = self.ego
        dist = float(rng.uniform(35, 70)) + ego.v * 0.5 * (ev.end - ev.start)
        s = ego.s + min(dist, 160.0)
        pedestrian = rng.random() < 0.6
        if self.road_type == "highway":
            x = float(rng.uniform(11.2, 12.9))
            if pedestrian:
                actor: Walker | Cyclist = self._make_walker(s, x, float(rng.uniform(-1.3, 1.3)), 0.0, rng, dark=True)
            else:
                actor = self._make_cyclist(s, x, float(rng.uniform(4, 6)), 0.0, rng, light=False, dark=True)
        elif pedestrian:
            walker = self._make_walker(s, 10.2, 0.0, -float(rng.uniform(0.8, 1.4)), rng, dark=True)
            walker.stop_x = -10.5
            if rng.random() < 0.5:
                walker.vx, walker.x = 0.0, float(rng.uniform(6.8, 8.0))
                walker.vs = float(rng.uniform(0.8, 1.3))
            actor = walker
        else:
            if rng.random() < 0.5:
                actor = self._make_cyclist(s, 7.25, float(rng.uniform(3.5, 5.5)), 0.0, rng, light=False, dark=True)
            else:
                actor = self._make_cyclist(s, 10.5, 0.0, -float(rng.uniform(3.0, 4.5)), rng, light=False, dark=True)
        if isinstance(actor, Walker):
            self.walkers.append(actor)
        else:
            self.cyclists.append(actor)
        self._mark(actor)

    # ------------------------------------------------------------------ step
    def step(self, dt: float) -> None:
        """Advance the world by ``dt`` seconds."""
        self._ensure_cells()
        self._update_merger()
        if self._releases:
            due = [v for at, v in self._releases if at <= self.t]
            self._releases = [(at, v) for at, v in self._releases if at > self.t]
            for v in due:
                v.forced_accel = None
                v.hazard = False
                if v.v_des < 5.0:
                    v.v_des = self._lane_speed(LAYOUTS[self.road.type_at(v.s)], 0) * 0.8
        if self.t - self._last_spawn >= 0.5:
            self._last_spawn = self.t
            self._spawn()
            self._crossings()
            self._despawn()
        self._ordinary_behaviour()
        # Other road users move at half the ego's rate: nobody sees the 20 ms difference,
        # and it halves the cost of the traffic model.
        self._traffic_dt += dt
        self._traffic_phase = not self._traffic_phase
        if self._traffic_phase:
            self._move_traffic(self._traffic_dt)
            self._traffic_dt = 0.0
        self._ego_longitudinal(dt)
        self._ego_lateral(dt)
        if self.ego.hazard and self.ego.v > 5.0 and self._event is None:
            self.ego.hazard = False
            if self.ego.turn_signal == "hazard":
                self.ego.turn_signal = "off"
        # Round to whole nanoseconds: summing dt drifts (300 x 0.02 = 5.9999999), and frame
        # times and event bounds must compare exactly.
        self.t = round(self.t + dt, 9)
        # Scenarios start and end as part of the state at the new time, so a frame taken at
        # an event's start already shows it (events are [start, end)).
        self._scenario_tick()

    # ------------------------------------------------------------------ outputs
    def vehicle_state(self) -> dict[str, object]:
        """The ego's signals as its CAN bus would report them (SI units, before sensor noise)."""
        ego, spec = self.ego, self.spec
        drag = 0.15 + 0.0004 * ego.v**2
        brake = max(0.0, -ego.a - 0.3) * spec["brake_bar_per_acc"]
        throttle = 0.0 if ego.a < -0.3 else min(100.0, max(0.0, (ego.a + drag) / (spec["a_max"] + 0.6) * 100.0))
        return {
            "speed_mps": ego.v,
            "accel_mps2": ego.a,
            "lateral_accel_mps2": ego.lat_acc,
            "steering_wheel_angle_deg": ego.steer_deg,
            "yaw_rate_rps": ego.yaw_rate,
            "brake_pressure_bar": brake,
            "throttle_pct": throttle,
            "turn_signal": ego.turn_signal,
            "adas_engaged": ego.adas_engaged,
            "driver_override": ego.driver_override,
            "adas_alert": ego.adas_alert,
        }

    def gps(self) -> tuple[float, float, float]:
        """(east, north, heading) of the ego in the drive's local frame: m, m, rad from north."""
        e, n, h = self.road.pose_at(self.ego.s)
        x = self.ego.x
        return e + x * math.cos(h), n - x * math.sin(h), h + self.ego.psi
