"""Drive plans: conditions, road-type segments and the schedule of critical scenarios.

A plan is decided before anything is rendered, from the drive's seed alone, so the long tail
of a fleet can be planned (and its rates tested) for hundreds of hours in seconds.

Scenario rates are shares of *eligible* frames (see `longtail.config.SCENARIO_ELIGIBILITY`):
a night-time VRU can only happen at night, an occluded pedestrian only in town. Events are
placed by a piecewise-constant hazard: in a context where scenarios k are eligible, event k
starts at rate share_k / (E[duration_k] * (1 - sum of eligible shares)), which makes the
expected share of time inside k exactly share_k (events never overlap).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from longtail.config import SCENARIOS, TIMES_OF_DAY, WEATHERS, SimConfig

# Duration ranges of each scenario, seconds (uniform).
SCENARIO_DURATION_S: dict[str, tuple[float, float]] = {
    "cut_in": (3.0, 5.0),
    "emergency_braking": (4.0, 6.0),
    "occluded_pedestrian": (3.5, 5.0),
    "night_vru": (4.0, 7.0),
    "emergency_lane_change": (3.5, 5.0),
}

WARMUP_S = 3.0
"""No scenario starts in a drive's first seconds, while traffic populates the road."""

# Cities the simulated fleet drives around (latitude, longitude, degrees).
ORIGINS: tuple[tuple[str, float, float], ...] = (
    ("munich", 48.137, 11.575),
    ("detroit", 42.331, -83.046),
    ("gothenburg", 57.709, 11.974),
    ("nagoya", 35.181, 136.906),
)


@dataclass(frozen=True)
class Segment:
    """A stretch of the drive on one road type, from ``start`` to ``end`` seconds."""

    start: float
    end: float
    road_type: str


@dataclass(frozen=True)
class ScenarioEvent:
    """One critical scenario, active from ``start`` to ``end`` seconds after the drive starts."""

    name: str
    start: float
    end: float
    seed: int

    def active(self, t: float) -> bool:
        """True while ``t`` (s) is inside the event (start inclusive, end exclusive)."""
        return self.start <= t < self.end


@dataclass(frozen=True)
class DrivePlan:
    """Everything decided about a drive before it is simulated."""

    drive_id: str
    vehicle_id: str
    vehicle_type: str
    drive_index: int
    seed: int
    duration_s: float
    time_of_day: str
    weather: str
    weather_intensity: float
    segments: tuple[Segment, ...]
    events: tuple[ScenarioEvent, ...]
    start_ns: int
    city: str
    origin_lat: float
    origin_lon: float
    traffic_level: float
    extra: dict[str, str] = field(default_factory=dict)

    def road_type_at(self, t: float) -> str:
        """Planned road type at time ``t`` (s); past the end, the last segment's."""
        for seg in self.segments:
            if t < seg.end:
                return seg.road_type
        return self.segments[-1].road_type

    def event_at(self, t: float) -> ScenarioEvent | None:
        """The scenario event active at ``t`` (s), if any."""
        for ev in self.events:
            if ev.active(t):
                return ev
            if ev.start > t:
                break
        return None


def eligible(name: str, road_type: str, time_of_day: str) -> bool:
    """Whether scenario ``name`` can happen on ``road_type`` at ``time_of_day``."""
    if name == "occluded_pedestrian":
        return road_type == "urban"
    if name == "night_vru":
        return time_of_day == "night"
    if name == "emergency_lane_change":
        return road_type == "highway"
    return True


def _pick(rng: np.random.Generator, mix: dict[str, float], keys: tuple[str, ...]) -> str:
    p = np.array([mix[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def plan_segments(rng: np.random.Generator, duration_s: float, urban_share: float) -> tuple[Segment, ...]:
    """Split a drive into road-type segments of 1-8 minutes; each is urban with ``urban_share``."""
    segments: list[Segment] = []
    t = 0.0
    while t < duration_s:
        length = float(np.clip(rng.exponential(240.0), 60.0, 480.0))
        road = "urban" if rng.random() < urban_share else "highway"
        end = min(t + length, duration_s)
        if segments and segments[-1].road_type == road:
            segments[-1] = Segment(segments[-1].start, end, road)
        else:
            segments.append(Segment(t, end, road))
        t = end
    return tuple(segments)


def plan_events(
    rng: np.random.Generator,
    segments: tuple[Segment, ...],
    time_of_day: str,
    rates: dict[str, float],
) -> tuple[ScenarioEvent, ...]:
    """Schedule non-overlapping critical scenarios over the segments (see the module docstring)."""
    events: list[ScenarioEvent] = []
    mean_d = {k: sum(SCENARIO_DURATION_S[k]) / 2 for k in SCENARIOS}
    t = WARMUP_S
    for seg in segments:
        t = max(t, seg.start)
        names = [k for k in SCENARIOS if rates.get(k, 0) > 0 and eligible(k, seg.road_type, time_of_day)]
        if not names:
            continue
        total_share = sum(rates[k] for k in names)
        hazards = np.array([rates[k] / (mean_d[k] * (1.0 - total_share)) for k in names])
        total = float(hazards.sum())
        while True:
            t += float(rng.exponential(1.0 / total))
            if t >= seg.end:
                # Memoryless: the next segment starts its own clock at the boundary.
                t = seg.end
                break
            name = names[int(rng.choice(len(names), p=hazards / total))]
            lo, hi = SCENARIO_DURATION_S[name]
            end = min(t + float(rng.uniform(lo, hi)), seg.end)
            events.append(ScenarioEvent(name, t, end, int(rng.integers(2**31))))
            t = end
    return tuple(events)


def plan_drive(
    cfg: SimConfig, vehicle_id: str, vehicle_type: str, drive_index: int, seed: int
) -> DrivePlan:
    """Decide a drive's conditions, road segments and scenario schedule from its ``seed``."""
    rng = np.random.default_rng(seed)
    duration = cfg.minutes * 60.0
    time_of_day = _pick(rng, cfg.time_of_day, TIMES_OF_DAY)
    weather = _pick(rng, cfg.weather, WEATHERS)
    urban_share = cfg.urban_share_truck if vehicle_type == "truck" else cfg.urban_share_car
    segments = plan_segments(rng, duration, urban_share)
    events = plan_events(rng, segments, time_of_day, cfg.scenario_rates)
    city, lat, lon = ORIGINS[int(rng.integers(len(ORIGINS)))]
    hour = {"day": rng.uniform(8, 16), "dusk": rng.uniform(17.5, 18.5), "night": rng.uniform(21, 27)}[time_of_day]
    day = int(rng.integers(0, 180))
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(days=day, hours=float(hour))
    return DrivePlan(
        drive_id=f"{vehicle_id}_drive{drive_index:03d}",
        vehicle_id=vehicle_id,
        vehicle_type=vehicle_type,
        drive_index=drive_index,
        seed=seed,
        duration_s=duration,
        time_of_day=time_of_day,
        weather=weather,
        weather_intensity=float(rng.uniform(0.4, 1.0)) if weather != "clear" else 0.0,
        segments=segments,
        events=events,
        start_ns=int(start.timestamp()) * 1_000_000_000,
        city=city,
        origin_lat=lat + float(rng.uniform(-0.05, 0.05)),
        origin_lon=lon + float(rng.uniform(-0.05, 0.05)),
        traffic_level=float(rng.uniform(0.5, 1.3)),
    )


def fixed_plan(
    cfg: SimConfig,
    seed: int,
    *,
    road: str = "highway",
    vehicle: str = "car",
    time_of_day: str = "day",
    weather: str = "clear",
    events: tuple[tuple[str, float, float], ...] = (),
) -> DrivePlan:
    """A drive plan whose road type, conditions and scenario events are chosen, not drawn.

    Used for the preview gallery and for targeted tests; everything else comes from ``seed``.

    Args:
        cfg: simulator configuration (its duration is used).
        seed: the drive's seed.
        road: road type for the whole drive.
        vehicle: "car" or "truck".
        time_of_day, weather: the drive's conditions.
        events: (scenario, start s, end s) to stage.
    """
    plan = plan_drive(cfg, f"{vehicle}-fixed", vehicle, 0, seed)
    return dataclasses.replace(
        plan,
        segments=(Segment(0.0, plan.duration_s, road),),
        events=tuple(ScenarioEvent(name, a, b, seed + k) for k, (name, a, b) in enumerate(events)),
        time_of_day=time_of_day,
        weather=weather,
        weather_intensity=0.8 if weather != "clear" else 0.0,
    )
