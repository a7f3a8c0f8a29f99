"""The simulated world of one drive: the road and its roadside cells, traffic, the ego vehicle
and its ADAS, and the scripts that stage critical scenarios.

Physics runs at the vehicle-state rate (50 Hz by default). `World` holds the shared state (the
ego, the actors, the clock and the random streams) and composes four collaborators, one job
each:

- `longtail.sim.cells.Roadside`: the road ahead and its roadside cells;
- `longtail.sim.traffic.Traffic`: other vehicles, pedestrians and cyclists;
- `longtail.sim.ego.EgoDriver`: the ego, its adaptive cruise control, FCW and AEB, and the driver;
- `longtail.sim.scenarios.Scenarios`: the critical scenarios of the drive plan.
"""

from __future__ import annotations

import math

import numpy as np

from longtail.config import SimConfig
from longtail.sim.actors import Cell, Cyclist, TrafficLight, Vehicle, Walker
from longtail.sim.cells import WINDOW_AHEAD, WINDOW_BEHIND, Roadside
from longtail.sim.ego import ACC_DECEL_LIMIT, AEB_TTC_S, EGO_SPECS, EgoDriver, EgoState
from longtail.sim.plan import DrivePlan, ScenarioEvent
from longtail.sim.road import LAYOUTS, Road, RoadLayout
from longtail.sim.scenarios import PREARM_S, Scenarios
from longtail.sim.traffic import LANE_END_LOOKAHEAD_M, Traffic

__all__ = [
    "ACC_DECEL_LIMIT",
    "AEB_TTC_S",
    "EGO_SPECS",
    "LANE_END_LOOKAHEAD_M",
    "PREARM_S",
    "WINDOW_AHEAD",
    "WINDOW_BEHIND",
    "EgoState",
    "World",
]


class World:
    """All dynamic state of one drive, advanced by `step`.

    Args:
        plan: the drive's plan (conditions, segments, scenario schedule).
        cfg: the simulator configuration.
    """

    def __init__(self, plan: DrivePlan, cfg: SimConfig) -> None:
        self.plan = plan
        self.cfg = cfg
        # One random stream per collaborator, so that changing one does not shift the others.
        seeds = np.random.SeedSequence(plan.seed).spawn(5)
        self.rng_road, self.rng_cells, self.rng, self.rng_ego, self.rng_scn = (np.random.default_rng(s) for s in seeds)
        self.spec = EGO_SPECS[plan.vehicle_type]
        self.t = 0.0
        self.ego = EgoState(s=60.0, x=0.0, v=0.0)
        self.lights: list[TrafficLight] = []
        self.vehicles: list[Vehicle] = []
        self.walkers: list[Walker] = []
        self.cyclists: list[Cyclist] = []
        self._next_id = 1
        self.roadside = Roadside(self)
        self.traffic = Traffic(self)
        self.driver = EgoDriver(self)
        self.scenarios = Scenarios(self)
        self.roadside.ensure()
        layout = self.layout
        lane = 1 if layout.lanes_same > 1 else 0
        self.ego.x = layout.lane_center(lane)
        self.ego.v = self.driver.desired_speed()
        self.ego.adas_engaged = bool(self.rng_ego.random() < (0.85 if self.road_type == "highway" else 0.3))
        self.traffic.populate()

    # ------------------------------------------------------------------ context
    @property
    def road(self) -> Road:
        """The road's geometry and road types."""
        return self.roadside.road

    @property
    def cells(self) -> dict[int, Cell]:
        """Roadside cells within the window around the ego, by index."""
        return self.roadside.cells

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
        return self.scenarios.event

    def new_id(self) -> int:
        """A fresh actor id (track id in the ground truth)."""
        self._next_id += 1
        return self._next_id

    # ------------------------------------------------------------------ step
    def step(self, dt: float) -> None:
        """Advance the world by ``dt`` seconds."""
        self.roadside.ensure()
        self.scenarios.update_merger()
        self.traffic.tick()
        self.driver.ordinary_behaviour()
        self.traffic.advance(dt)
        self.driver.longitudinal(dt)
        self.driver.lateral(dt)
        self.driver.clear_hazard()
        # Round to whole nanoseconds: summing dt drifts (300 x 0.02 = 5.9999999), and frame
        # times and event bounds must compare exactly.
        self.t = round(self.t + dt, 9)
        # Scenarios start and end as part of the state at the new time, so a frame taken at
        # an event's start already shows it (events are [start, end)).
        self.scenarios.tick()

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
