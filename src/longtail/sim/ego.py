"""The ego vehicle and its driver assistance.

The ego follows its lane with an adaptive cruise controller (IDM) when ADAS is engaged; when
the controller's braking limit is not enough, it raises a forward-collision warning (FCW), brakes
automatically below the AEB time to collision, and the driver overrides after a reaction time,
which is what makes signals, alerts and disengagements coherent with what the camera sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.errors import ConfigError
from longtail.sim.actors import LaneChange
from longtail.sim.perception import PerceivedPath
from longtail.sim.road import LAYOUTS
from longtail.sim.scenarios import PREARM_S
from longtail.sim.traffic import LANE_END_LOOKAHEAD_M

if TYPE_CHECKING:
    from longtail.sim.world import World

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


class EgoDriver:
    """Drives the ego: lane keeping and lane changes, ADAS (ACC, FCW, AEB) and the human driver.

    Args:
        world: the world whose ``ego`` it drives.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        rng = world.rng_ego
        self._next_lane_change = 20.0 + float(rng.uniform(0, 60))
        self._next_override = float(rng.exponential(720.0))
        self._speed_bias = float(rng.uniform(0.92, 1.06))
        self._blocked_since: float | None = None
        self.perception: PerceivedPath | None = None
        self.a_truth = 0.0  # what the road truly demands of the ego this step, m/s^2 (metrics read it)
        self.missed_hazards = 0  # unwarned take-overs: the road demanded braking the ADAS did not see
        self._unwarned_since: float | None = None
        self._unwarned_reaction = 0.0
        self._rng_unwarned = np.random.default_rng([world.plan.seed, 0x5EE])

    def use_perception(self, perception: PerceivedPath) -> None:
        """Switch the ADAS (ACC, FCW, AEB) from the simulator's truth to ``perception``.

        The driver still sees the road as it is: when it demands braking beyond what the ADAS
        does, the driver takes over, unwarned and later than after a warning (`longitudinal`).
        """
        self.perception = perception

    def perceive(self, boxes: list[dict[str, Any]]) -> None:
        """Hand the ADAS the detections of the camera frame taken now."""
        if self.perception is None:
            raise ConfigError("perceive() called on a driver without perception; call use_perception first")
        w = self.world
        self.perception.update(w.t, boxes, w.ego.v, w.ego.kappa, w.ego.pitch)

    def clear_hazard(self) -> None:
        """Switch the hazard lights off once the ego drives on after a scenario."""
        ego = self.world.ego
        if ego.hazard and ego.v > 5.0 and self.world.scenarios.event is None:
            ego.hazard = False
            if ego.turn_signal == "hazard":
                ego.turn_signal = "off"

    def desired_speed(self) -> float:
        """Speed the ego's driver or cruise control aims for in its lane and the curves ahead, m/s."""
        w = self.world
        layout = w.layout
        lane = layout.lane_of(w.ego.x)
        base = (31.0, 29.0, 26.0)[lane] if w.road_type == "highway" else 13.0
        speed = base * w.spec["speed_factor"] * self._speed_bias
        kappa = w.road.max_abs_kappa(w.ego.s, w.ego.s + 80.0)
        if kappa > 1e-5:
            speed = min(speed, math.sqrt(2.0 / kappa))
        return speed

    def start_lane_change(self, target_lane: int, duration: float, emergency: bool, delay: float = 0.0) -> None:
        """Start moving the ego to ``target_lane`` over ``duration`` s after ``delay`` s (``emergency``: no indicator)."""
        w = self.world
        ego = w.ego
        x1 = w.layout.lane_center(target_lane)
        ego.lc = LaneChange(w.t + delay, duration, ego.x, x1, emergency)
        ego.turn_signal = "off" if emergency else ("right" if x1 > ego.x else "left")

    def ordinary_behaviour(self) -> None:
        """Lane choice, going around a blocked lane, and the driver's own take-overs and re-engagements."""
        w = self.world
        ego, t, rng = w.ego, w.t, w.rng_ego
        layout = w.layout
        lane = layout.lane_of(ego.x)
        # A lane that ends ahead (highway into town): merge before it ends, signalling.
        ahead = LAYOUTS[w.road.type_at(ego.s + LANE_END_LOOKAHEAD_M)]
        if ego.lc is None and lane >= ahead.lanes_same:
            self.start_lane_change(ahead.lanes_same - 1, 4.0, False, delay=1.0)
            return
        # After a change of road type the ego settles into a lane that exists.
        if ego.lc is None and abs(ego.x - layout.lane_center(lane)) > 0.6:
            self.start_lane_change(lane, 4.0, False, delay=0.0)
            return
        # Stopped behind something that is not going to move (and not at a red light): go around.
        gap, lead_v = w.traffic.leader_gap(ego.s, ego.x, w.spec["width"])
        blocked = ego.v < 0.5 and lead_v < 0.3 and gap < 15 and not self.red_ahead(ego.s, 20.0)
        self._blocked_since = (self._blocked_since or t) if blocked else None
        if blocked and ego.lc is None and w.event is None and t - (self._blocked_since or t) > 8.0:
            for target in (lane - 1, lane + 1):
                if 0 <= target < layout.lanes_same and w.traffic.lane_clear(ego.s, layout.lane_center(target), 15, 25):
                    self.start_lane_change(target, 3.0, False, delay=1.0)
                    self._blocked_since = None
                    break
        stuck_behind_slow = gap < 60 and lead_v < self.desired_speed() - 4.0
        if (w.event is None and not self.event_soon() and ego.lc is None and w.road_type == "highway"
                and (t > self._next_lane_change or (stuck_behind_slow and t > self._next_lane_change - 150))):
            self._next_lane_change = t + float(rng.uniform(40, 200))
            options = []
            if lane > 0 and gap < 80 and lead_v < self.desired_speed() - 2.0:
                options.append(lane - 1)
            if lane < layout.lanes_same - 1 and rng.random() < 0.5:
                options.append(lane + 1)
            for target in options:
                if w.traffic.lane_clear(ego.s, layout.lane_center(target), 30, 40):
                    self.start_lane_change(target, float(rng.uniform(4.0, 6.0)), False, delay=1.5)
                    break
        # Now and then the driver takes over for reasons of their own (roadworks, an exit).
        if ego.adas_engaged and t > self._next_override and w.event is None:
            self.override(reason_alert="none")
            self._next_override = t + float(rng.exponential(720.0))
        if not ego.adas_engaged and t > ego.reengage_at and w.event is None:
            ego.adas_engaged = True
            ego.reengage_at = 1e18

    def red_ahead(self, s: float, within: float) -> bool:
        """True when a traffic light within ``within`` metres ahead of ``s`` is not green."""
        w = self.world
        return any(0.0 < light.s - s < within and light.state(w.t) != "green" for light in w.lights)

    def event_soon(self) -> bool:
        """True when a scenario starts within the prearm window (its actors are being set up)."""
        w = self.world
        return any(0.0 <= ev.start - w.t <= PREARM_S + 3.0 for ev in w.plan.events)

    def override(self, reason_alert: str) -> None:
        """The driver takes over from ADAS (a disengagement), with ``reason_alert`` shown when not "none"."""
        w = self.world
        ego = w.ego
        if ego.adas_engaged:
            ego.adas_engaged = False
            ego.driver_override = True
            ego.override_until = w.t + 1.5
            p_reengage = 0.9 if w.road_type == "highway" else 0.35
            if w.rng_ego.random() < p_reengage:
                ego.reengage_at = w.t + float(w.rng_ego.uniform(6, 25))
        if reason_alert != "none":
            ego.adas_alert = reason_alert

    def longitudinal(self, dt: float) -> None:
        """Ego speed control for ``dt`` s: cruise control with FCW and AEB when engaged, else the driver."""
        w = self.world
        ego, spec = w.ego, w.spec
        gap, lead_v = w.traffic.leader_gap(ego.s, ego.x, spec["width"])
        if ego.lc is not None and ego.lc.emergency:
            gap2, lead2 = w.traffic.leader_gap(ego.s, ego.lc.x1, spec["width"])
            if abs(ego.x - ego.lc.x1) < 1.2:
                gap, lead_v = gap2, lead2
        a_req = self._request(gap, lead_v)
        self.a_truth = a_req
        if self.perception is None:
            alert, a_cmd = self._truth_control(a_req, gap, lead_v)
        else:
            alert, a_cmd = self._perceived_control(a_req)
        if ego.lc is not None and ego.lc.emergency and w.t >= ego.lc.t0:
            alert = "ldw" if alert == "none" else alert
        ego.adas_alert = alert
        ego.a_cmd = a_cmd
        jerk = 30.0 if a_cmd < -4 else 8.0
        ego.a += float(np.clip(a_cmd - ego.a, -jerk * dt, jerk * dt))
        if ego.v <= 0.0 and ego.a < 0:
            ego.a = 0.0
        ego.v = max(0.0, ego.v + ego.a * dt)
        ego.s += ego.v * dt

    def lateral(self, dt: float) -> None:
        """Ego lateral motion for ``dt`` s: lane changes, lane-keeping wander, steering and pitch signals."""
        w = self.world
        ego, spec, t = w.ego, w.spec, w.t
        ax = 0.0
        if ego.lc is not None and t >= ego.lc.t0:
            ego.x, vx, ax = ego.lc.state(t)
            ego.psi = vx / max(ego.v, 1.0)
            if ego.lc.done(t):
                ego.lc = None
                ego.psi = 0.0
                ego.turn_signal = "hazard" if ego.hazard else "off"
        # Lane keeping is not perfect: a slow wander of a few centimetres.
        ego.wander += -ego.wander * dt / 3.0 + float(w.rng_ego.normal(0, 0.02)) * math.sqrt(dt)
        kappa_road = w.road.kappa_at(ego.s)
        v = max(ego.v, 1.0)
        ego.kappa = kappa_road + ax / v**2 + ego.wander * 0.002
        ego.yaw_rate = ego.v * ego.kappa
        ego.lat_acc = ego.v**2 * ego.kappa
        ego.steer_deg = math.degrees(math.atan(spec["wheelbase"] * ego.kappa)) * spec["steer_ratio"]
        ego.bump += -ego.bump * dt / 0.15 + float(w.rng_ego.normal(0, 0.0012)) * math.sqrt(dt) * min(ego.v / 10, 2.5)
        ego.pitch = -ego.a * spec["pitch_per_acc"] + ego.bump
        if ego.driver_override and t > ego.override_until:
            ego.driver_override = False

    def _request(self, gap: float, lead_v: float) -> float:
        """Acceleration the cruise controller (IDM) asks for behind an obstacle ``gap`` m ahead at ``lead_v`` m/s."""
        w = self.world
        ego, spec = w.ego, w.spec
        v_des = self.desired_speed()
        time_gap = ego.time_gap if ego.time_gap is not None else spec["time_gap"]
        a_req = w.traffic.idm(ego.v, v_des, gap, lead_v, spec["a_max"], spec["b_comf"], time_gap)
        if ego.forced_accel is not None:
            a_req = min(a_req, ego.forced_accel)
        if w.t < ego.hold_until:
            # Perception delay of a critical event: the hazard is not yet recognised.
            a_req = max(a_req, -0.3)
        return max(a_req, -spec["decel_max"])

    def _driver_reacts_to_fcw(self) -> bool:
        """While a forward collision warning lasts: True once the driver's reaction time (drawn when the
        warning starts, 0.4-0.9 s) has passed, in truth and perception mode alike."""
        w = self.world
        ego = w.ego
        if ego.fcw_since is None:
            ego.fcw_since = w.t
            ego.reaction_s = float(w.rng_ego.uniform(0.4, 0.9))
        return w.t - ego.fcw_since >= ego.reaction_s

    def _truth_control(self, a_req: float, gap: float, lead_v: float) -> tuple[str, float]:
        """ADAS alert and acceleration command when the ADAS sees the simulator's truth."""
        w = self.world
        ego = w.ego
        closing = ego.v - lead_v
        ttc = gap / closing if closing > 0.1 else 1e9
        alert = "none"
        if ego.adas_engaged:
            if a_req < -ACC_DECEL_LIMIT:
                alert = "fcw"
                if self._driver_reacts_to_fcw():
                    self.override("fcw")
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
        return alert, a_cmd

    def _perceived_control(self, a_truth: float) -> tuple[str, float]:
        """ADAS alert and acceleration command when the ADAS sees through the perception source.

        1. The ACC follows the nearest object of the perceived path (or a red light from the map).
        2. FCW, AEB and the warned take-over work as with truth, on the perceived gap and TTC; the
           driver who takes over drives by the road as it is (``a_truth``).
        3. The driver watches the road: when it demands braking harder than the ACC limit while
           the ADAS brakes at least 1 m/s^2 less and warns of nothing, the driver takes over after
           an unwarned reaction time of 1.0-1.5 s (a missed hazard).
        """
        w = self.world
        ego = w.ego
        assert self.perception is not None
        gap, lead_v = self.perception.lead(w.t, ego.v)
        light = w.traffic.light_gap(ego.s, ego.x)
        if light < gap:
            gap, lead_v = light, 0.0
        a_adas = self._request(gap, lead_v)
        closing = ego.v - lead_v
        ttc = gap / closing if closing > 0.1 else 1e9
        alert = "none"
        if not ego.adas_engaged:
            self._unwarned_since = None
            if ttc < 2.0 and closing > 3.0:
                alert = "fcw"
            if ttc < AEB_TTC_S and a_adas < -4.0:
                alert = "aeb"
            return alert, a_truth
        if a_adas < -ACC_DECEL_LIMIT:
            alert = "fcw"
            if self._driver_reacts_to_fcw():
                self.override("fcw")
                return alert, a_truth
            if ttc < AEB_TTC_S:
                alert, a_cmd = "aeb", a_adas
            else:
                a_cmd = -ACC_DECEL_LIMIT
        else:
            ego.fcw_since = None
            a_cmd = a_adas
        if alert == "none" and a_truth < -ACC_DECEL_LIMIT and a_cmd > a_truth + 1.0:
            if self._unwarned_since is None:
                self._unwarned_since = w.t
                self._unwarned_reaction = float(self._rng_unwarned.uniform(1.0, 1.5))
            if w.t - self._unwarned_since >= self._unwarned_reaction:
                self._unwarned_since = None
                self.missed_hazards += 1
                self.override("none")
                return alert, a_truth
        else:
            self._unwarned_since = None
        return alert, a_cmd
