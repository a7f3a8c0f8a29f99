"""The scripts that stage critical scenarios (`longtail.config.SCENARIOS`) in a world.

Each scenario ``name`` may have three hooks: ``_prearm_<name>`` prepares its actors
`PREARM_S` before the event (a lead vehicle, a parked van, a broken-down car far ahead),
``_start_<name>`` sets it off when the event starts, and ``_update_<name>`` runs every step
while it lasts. The actors it involves are marked critical for the ground truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from longtail.sim.actors import Cyclist, LaneChange, Vehicle, Walker
from longtail.sim.cells import WINDOW_AHEAD
from longtail.sim.plan import ScenarioEvent
from longtail.sim.road import LAYOUTS

if TYPE_CHECKING:
    from longtail.sim.world import World

PREARM_S = 7.0
"""Scenario scripts prepare their actors this long before the event starts, s."""


class Scenarios:
    """Runs the drive plan's scenario events in a world.

    Args:
        world: the world the scenarios are staged in.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self._event: ScenarioEvent | None = None
        self._prearmed: set[float] = set()
        self._scn: dict[str, object] = {}

    @property
    def event(self) -> ScenarioEvent | None:
        """The critical scenario in progress, if any."""
        return self._event

    def tick(self) -> None:
        """Prepare, start, update and end scenario events at the world's current time."""
        w = self.world
        t = w.t
        ev = w.plan.event_at(t)
        if self._event is not None and (ev is None or ev is not self._event):
            self._end()
        for upcoming in w.plan.events:
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

    def _end(self) -> None:
        w = self.world
        for actor in self._scn.get("subjects", []):  # type: ignore[attr-defined]
            actor.critical = False
            actor.scenario = None
        w.ego.forced_accel = None
        w.ego.time_gap = None
        self._scn = {}
        self._event = None

    def _lead(self, max_gap: float) -> Vehicle | None:
        w = self.world
        ego = w.ego
        best, lead = max_gap, None
        for v in w.vehicles:
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
        w = self.world
        if self._lead(45.0) is not None:
            return
        rng = np.random.default_rng(ev.seed + 1)
        layout, ego = w.layout, w.ego
        lane = layout.lane_of(ego.x)
        side = -1 if lane > 0 else 1
        if not 0 <= lane + side < layout.lanes_same:
            side = -side
        if not 0 <= lane + side < layout.lanes_same:
            v = w.traffic.make_vehicle(ego.s + 55, ego.x, ego.v, rng, 0.1)
        else:
            v = w.traffic.make_vehicle(ego.s - 12, layout.lane_center(lane + side), ego.v + 7.0, rng, 0.1)
            v.v_des = ego.v + 7.0
            self._scn["merger"] = v
        w.vehicles.append(v)

    def update_merger(self) -> None:
        """Let a vehicle brought up from behind merge in front of the ego once it is far enough ahead."""
        w = self.world
        merger = self._scn.get("merger")
        if isinstance(merger, Vehicle) and merger.lc is None and merger.s - merger.length / 2 - w.ego.s > 22:
            merger.lc = LaneChange(w.t, 2.5, merger.x, w.ego.x)
            merger.v_des = w.ego.v
            self._scn.pop("merger")

    def _prearm_emergency_braking(self, ev: ScenarioEvent) -> None:
        self._bring_lead(ev)
        # Close following, as many drivers do: what turns a lead's hard stop into an emergency.
        self.world.ego.time_gap = float(np.random.default_rng(ev.seed + 4).uniform(0.8, 1.1))

    def _prearm_emergency_lane_change(self, ev: ScenarioEvent) -> None:
        w = self.world
        self._bring_lead(ev)
        ego = w.ego
        rng = np.random.default_rng(ev.seed + 2)
        # A broken-down vehicle far ahead in the ego's lane, timed to be reached as the event starts.
        dist = ego.v * (ev.start - w.t) + ego.v * float(rng.uniform(1.6, 2.2)) + 30
        s = ego.s + min(dist, WINDOW_AHEAD - 10)
        stopped = w.traffic.make_vehicle(s, ego.x, 0.0, rng, 0.3)
        stopped.broken_down = True
        stopped.hazard = bool(rng.random() < 0.5)
        stopped.v_des = 0.0
        w.vehicles = [v for v in w.vehicles if not (abs(v.x - ego.x) < 1.5 and ego.s + 60 < v.s and abs(v.s - s) < 60)]
        w.vehicles.append(stopped)
        self._scn["stopped"] = stopped

    def _prearm_occluded_pedestrian(self, ev: ScenarioEvent) -> None:
        w = self.world
        ego = w.ego
        rng = np.random.default_rng(ev.seed + 3)
        dist = ego.v * (ev.start - w.t) + ego.v * float(rng.uniform(2.2, 3.0)) + 10
        s = ego.s + min(dist, WINDOW_AHEAD - 10)
        layout = LAYOUTS["urban"]
        x = layout.parking_x or 8.95
        w.vehicles = [v for v in w.vehicles if not (v.parked and v.x > 0 and abs(v.s - s) < 9)]
        van = w.traffic.make_vehicle(s, x, 0.0, rng, 0.5)
        van.parked = True
        van.v_des = 0.0
        if van.kind == "truck":
            van.length, van.width, van.height = float(rng.uniform(5.5, 7.0)), 2.1, float(rng.uniform(2.4, 2.9))
        else:
            van.length, van.width, van.height = float(rng.uniform(4.6, 5.2)), 1.95, float(rng.uniform(1.85, 2.1))
        w.vehicles.append(van)
        self._scn["van"] = van

    def _start_cut_in(self, ev: ScenarioEvent) -> None:
        """A vehicle overtakes in the next lane, then cuts in close in front and slows down.

        It comes from beside the camera, so it first sweeps into view truncated at the image
        edge. Where a vehicle already drives just ahead in the next lane, that one cuts in.
        """
        w = self.world
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        layout, ego = w.layout, w.ego
        lane = layout.lane_of(ego.x)
        sides = [d for d in (-1, 1) if 0 <= lane + d < layout.lanes_same] or [1]
        rng.shuffle(sides)
        cutter = None
        x_from = ego.x + sides[0] * layout.lane_width
        for side in sides:
            x_side = ego.x + side * layout.lane_width
            near = [v for v in w.vehicles if not v.oncoming and not v.parked and abs(v.x - x_side) < 1.2
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
            w.vehicles = [v for v in w.vehicles if v.critical or not (
                abs(v.x - x_from) < 1.2 and -20 < v.s - ego.s < 3)]
            cutter = w.traffic.make_vehicle(ego.s - 1.0, x_from, ego.v + 6.0, rng, 0.25)
            w.vehicles.append(cutter)
        cutter.v = max(cutter.v, ego.v + 3.0)
        self._scn["cutter"] = cutter
        self._scn["cut_gap"] = float(rng.uniform(4.0, 10.0))
        self._scn["cut_speed"] = max(ego.v - float(rng.uniform(3.0, 7.0)), 3.0)
        self._mark(cutter)

    def _update_cut_in(self, ev: ScenarioEvent) -> None:
        w = self.world
        cutter = self._scn.get("cutter")
        if not isinstance(cutter, Vehicle) or self._scn.get("cut_started"):
            return
        ego = w.ego
        gap = cutter.s - cutter.length / 2 - ego.s
        late = w.t > ev.start + 0.5 * (ev.end - ev.start)
        if gap >= float(self._scn["cut_gap"]) or late:  # type: ignore[arg-type]
            rng = self._scn["rng"]
            assert isinstance(rng, np.random.Generator)
            cutter.lc = LaneChange(w.t, float(rng.uniform(1.0, 1.8)), cutter.x, ego.x)
            cutter.v_des = float(self._scn["cut_speed"])  # type: ignore[arg-type]
            cutter.forced_accel = -float(rng.uniform(1.5, 3.5))
            self._scn["cut_started"] = True
            w.traffic.release(w.t + 2.5, cutter)
        else:
            # Overtake: hold about 5 m/s over the ego, whatever the lane ahead does.
            cutter.forced_accel = float(np.clip((ego.v + 5.0 - cutter.v) * 1.5, -3.0, 3.0))

    def _start_emergency_braking(self, ev: ScenarioEvent) -> None:
        w = self.world
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        lead = self._lead(70.0)
        if lead is None:
            lead = w.traffic.make_vehicle(w.ego.s + 40, w.ego.x, w.ego.v, rng, 0.15)
            w.vehicles.append(lead)
        lead.forced_accel = -float(rng.uniform(6.5, 9.0))
        self._scn["lead"] = lead
        w.ego.hold_until = w.t + float(rng.uniform(0.6, 1.2))
        self._mark(lead)

    def _update_emergency_braking(self, ev: ScenarioEvent) -> None:
        w = self.world
        lead = self._scn.get("lead")
        if isinstance(lead, Vehicle) and lead.v <= 0.0 and not self._scn.get("lead_stopped"):
            # Stopped: hazard lights on, then it drives off again a few seconds later.
            lead.forced_accel = 0.0
            lead.hazard = True
            self._scn["lead_stopped"] = True
            w.traffic.release(w.t + 3.0, lead)
        if w.ego.v < 0.3 and w.t > ev.start + 1.0:
            w.ego.hazard = True
            w.ego.turn_signal = "hazard"

    def _start_emergency_lane_change(self, ev: ScenarioEvent) -> None:
        w = self.world
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        layout, ego = w.layout, w.ego
        lane = layout.lane_of(ego.x)
        stopped = self._scn.get("stopped")
        if not isinstance(stopped, Vehicle) or stopped not in w.vehicles:
            stopped = w.traffic.make_vehicle(ego.s + max(ego.v * 2.0, 35.0), ego.x, 0.0, rng, 0.3)
            stopped.broken_down = True
            w.vehicles.append(stopped)
        stopped.x = ego.x
        self._mark(stopped)
        sides = [d for d in (-1, 1) if 0 <= lane + d < layout.lanes_same]
        side = sides[int(rng.integers(len(sides)))] if sides else 1
        target = lane + side if sides else lane
        x_target = layout.lane_center(target)
        # Clear the escape lane near the ego (out of view: beside and behind the camera).
        w.vehicles = [v for v in w.vehicles if v.critical or not (abs(v.x - x_target) < 1.6 and -40 < v.s - ego.s < 45)]
        lead = self._lead(stopped.s - ego.s - 3)
        if lead is not None and lead is not stopped:
            lead.lc = LaneChange(w.t, 1.3, lead.x, x_target + float(rng.uniform(-0.3, 0.3)), emergency=True)
            self._mark(lead)
        w.driver.start_lane_change(target, float(rng.uniform(1.6, 2.3)), True, delay=float(rng.uniform(0.4, 0.8)))
        ego.forced_accel = -float(rng.uniform(2.0, 4.5))
        w.driver.override("fcw")

    def _update_emergency_lane_change(self, ev: ScenarioEvent) -> None:
        w = self.world
        if w.ego.lc is None:
            w.ego.forced_accel = None

    def _start_occluded_pedestrian(self, ev: ScenarioEvent) -> None:
        w = self.world
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        ego = w.ego
        van = self._scn.get("van")
        if not isinstance(van, Vehicle) or van not in w.vehicles or van.s - ego.s < 12:
            van = w.traffic.make_vehicle(ego.s + max(ego.v * 2.6, 25.0), 8.95, 0.0, rng, 0.5)
            van.parked, van.height = True, max(van.height, 1.9)
            w.vehicles.append(van)
        child = bool(rng.random() < 0.5)
        # Just beyond the van's far end, in line with it: hidden by the van from the ego.
        s = van.s + van.length / 2 + float(rng.uniform(0.3, 0.9))
        ped = w.traffic.make_walker(s, van.x + float(rng.uniform(-0.5, 0.3)), 0.0, 0.0, rng,
                                    dark=bool(rng.random() < 0.4), child=child)
        speed = float(rng.uniform(1.8, 3.0) if child else rng.uniform(1.3, 2.2))
        ped.pending_v = (0.0, -speed)
        ped.start_at = 1e18
        if rng.random() < 0.3:
            ped.stop_x = ego.x + float(rng.uniform(-0.5, 0.8))
        w.walkers.append(ped)
        self._scn["ped"] = ped
        self._scn["ttc"] = float(rng.uniform(1.8, 2.8))
        self._mark(ped)
        self._mark(van)

    def _update_occluded_pedestrian(self, ev: ScenarioEvent) -> None:
        w = self.world
        ped = self._scn.get("ped")
        if not isinstance(ped, Walker) or ped.start_at is None:
            return
        ttc = (ped.s - w.ego.s) / max(w.ego.v, 1.0)
        if ttc < float(self._scn["ttc"]) or w.t > ev.start + 0.4 * (ev.end - ev.start):  # type: ignore[arg-type]
            ped.start_at = w.t

    def _start_night_vru(self, ev: ScenarioEvent) -> None:
        w = self.world
        rng = self._scn["rng"]
        assert isinstance(rng, np.random.Generator)
        ego = w.ego
        dist = float(rng.uniform(35, 70)) + ego.v * 0.5 * (ev.end - ev.start)
        s = ego.s + min(dist, 160.0)
        pedestrian = rng.random() < 0.6
        if w.road_type == "highway":
            x = float(rng.uniform(11.2, 12.9))
            if pedestrian:
                actor: Walker | Cyclist = w.traffic.make_walker(s, x, float(rng.uniform(-1.3, 1.3)), 0.0, rng, dark=True)
            else:
                actor = w.traffic.make_cyclist(s, x, float(rng.uniform(4, 6)), 0.0, rng, light=False, dark=True)
        elif pedestrian:
            walker = w.traffic.make_walker(s, 10.2, 0.0, -float(rng.uniform(0.8, 1.4)), rng, dark=True)
            walker.stop_x = -10.5
            if rng.random() < 0.5:
                walker.vx, walker.x = 0.0, float(rng.uniform(6.8, 8.0))
                walker.vs = float(rng.uniform(0.8, 1.3))
            actor = walker
        else:
            if rng.random() < 0.5:
                actor = w.traffic.make_cyclist(s, 7.25, float(rng.uniform(3.5, 5.5)), 0.0, rng, light=False, dark=True)
            else:
                actor = w.traffic.make_cyclist(s, 10.5, 0.0, -float(rng.uniform(3.0, 4.5)), rng, light=False, dark=True)
        if isinstance(actor, Walker):
            w.walkers.append(actor)
        else:
            w.cyclists.append(actor)
        self._mark(actor)
