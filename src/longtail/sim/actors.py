"""The things on and beside the road: vehicles, pedestrians, cyclists and roadside props.

Positions are in the road frame (see `longtail.sim.road`): ``s`` along the road, ``x`` across
it, metres. Vehicles are located by the centre of their footprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RGB = tuple[int, int, int]

CAR_COLORS: tuple[RGB, ...] = (
    (235, 235, 232), (20, 20, 22), (128, 130, 135), (175, 178, 182), (40, 60, 120), (150, 25, 30),
    (30, 70, 45), (95, 70, 45), (200, 190, 160), (60, 90, 140), (230, 200, 40), (90, 20, 60),
)
TRUCK_COLORS: tuple[RGB, ...] = (
    (240, 240, 238), (210, 212, 215), (40, 80, 150), (180, 30, 30), (50, 110, 60), (230, 160, 30),
)
SHIRT_COLORS: tuple[RGB, ...] = (
    (200, 40, 40), (40, 90, 180), (230, 200, 50), (60, 140, 70), (240, 240, 240), (140, 60, 160),
    (240, 130, 40), (90, 90, 95), (30, 30, 35), (170, 120, 80),
)
DARK_COLORS: tuple[RGB, ...] = ((22, 22, 26), (30, 28, 24), (18, 22, 32), (35, 32, 38), (26, 30, 26))
PANTS_COLORS: tuple[RGB, ...] = ((40, 45, 70), (30, 30, 32), (110, 100, 80), (70, 70, 75), (50, 60, 90))
SKIN_COLORS: tuple[RGB, ...] = ((245, 205, 175), (225, 180, 140), (180, 130, 95), (120, 85, 60), (90, 60, 45))


@dataclass(slots=True)
class LaneChange:
    """A lateral move from ``x0`` to ``x1`` (m) over ``duration`` s, starting at ``t0`` s.

    The lateral position follows a quintic smoothstep, so lateral velocity and acceleration
    are continuous (what a steering wheel can do).
    """

    t0: float
    duration: float
    x0: float
    x1: float
    emergency: bool = False

    def state(self, t: float) -> tuple[float, float, float]:
        """Lateral position (m), velocity (m/s) and acceleration (m/s^2) at ``t``."""
        u = min(max((t - self.t0) / self.duration, 0.0), 1.0)
        d = self.x1 - self.x0
        pos = self.x0 + d * (10 * u**3 - 15 * u**4 + 6 * u**5)
        if u <= 0.0 or u >= 1.0:
            return pos, 0.0, 0.0
        vel = d * (30 * u**2 - 60 * u**3 + 30 * u**4) / self.duration
        acc = d * (60 * u - 180 * u**2 + 120 * u**3) / self.duration**2
        return pos, vel, acc

    def done(self, t: float) -> bool:
        """True once the move is complete."""
        return t >= self.t0 + self.duration


@dataclass(slots=True, eq=False)
class Vehicle:
    """A car or truck. ``v`` is speed along the road (negative when oncoming), m/s."""

    id: int
    kind: str
    s: float
    x: float
    v: float
    length: float
    width: float
    height: float
    color: RGB
    v_des: float = 0.0
    a: float = 0.0
    oncoming: bool = False
    parked: bool = False
    broken_down: bool = False
    lc: LaneChange | None = None
    yaw: float = 0.0
    brake: bool = False
    hazard: bool = False
    indicator: int = 0
    forced_accel: float | None = None
    scenario: str | None = None
    critical: bool = False
    variant: int = 0
    road: str = ""  # road type it last drove on; its desired speed follows the road's
    shape: object = None  # renderer's cache of the vehicle's corner points in its own frame

    @property
    def rear_s(self) -> float:
        """s of the rear bumper (the end facing a follower), m."""
        return self.s + self.length / 2 if self.oncoming else self.s - self.length / 2


@dataclass(slots=True, eq=False)
class Walker:
    """A pedestrian; ``vs``/``vx`` are velocities along and across the road, m/s."""

    id: int
    s: float
    x: float
    vs: float
    vx: float
    height: float
    shirt: RGB
    pants: RGB
    skin: RGB
    hair: RGB
    phase: float = 0.0
    child: bool = False
    start_at: float | None = None
    stop_x: float | None = None
    pending_v: tuple[float, float] = (0.0, 0.0)
    scenario: str | None = None
    critical: bool = False

    @property
    def moving(self) -> bool:
        """True when the pedestrian is walking."""
        return abs(self.vs) + abs(self.vx) > 0.05


@dataclass(slots=True, eq=False)
class Cyclist:
    """A person on a bicycle; ``light`` is whether the bike carries lights at night."""

    id: int
    s: float
    x: float
    vs: float
    vx: float
    shirt: RGB
    pants: RGB
    skin: RGB
    bike: RGB
    light: bool
    phase: float = 0.0
    scenario: str | None = None
    critical: bool = False


@dataclass(slots=True, eq=False)
class Prop:
    """A roadside object that only the camera cares about (and, for lamps, the lighting).

    ``kind`` is one of tree, lamp, building, sign, pole, bush, traffic_light. ``size`` holds
    kind-specific dimensions in metres; ``color`` the main albedo; ``variant`` a seed for details.
    """

    kind: str
    s: float
    x: float
    size: tuple[float, ...]
    color: RGB
    variant: int = 0
    side: int = 1


@dataclass(slots=True, eq=False)
class TrafficLight:
    """A signal controlling the ego's direction at stop line ``s`` (m); cycle in seconds."""

    s: float
    offset: float
    green: float = 22.0
    amber: float = 3.0
    red: float = 16.0

    def state(self, t: float) -> str:
        """"green", "amber" or "red" at time ``t`` (s)."""
        cycle = self.green + self.amber + self.red
        u = (t + self.offset) % cycle
        if u < self.green:
            return "green"
        if u < self.green + self.amber:
            return "amber"
        return "red"


@dataclass(slots=True, eq=False)
class Cell:
    """The roadside content of one 10 m road cell."""

    index: int
    road_type: str
    props: list[Prop] = field(default_factory=list)
    crosswalk: bool = False
