"""Typed, frozen configuration for each stage, validated on creation.

Every config is saved with the products it made (drive logs carry the simulator config in
their metadata; later stages save theirs with runs, checkpoints and reports).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCENARIOS: tuple[str, ...] = (
    "cut_in",
    "emergency_braking",
    "occluded_pedestrian",
    "night_vru",
    "emergency_lane_change",
)
"""Critical scenarios the simulator stages, in a fixed order (used for tables and seeds)."""

SCENARIO_ELIGIBILITY: dict[str, str] = {
    "cut_in": "any road",
    "emergency_braking": "any road",
    "occluded_pedestrian": "urban road",
    "night_vru": "night",
    "emergency_lane_change": "highway",
}
"""Which frames a scenario's rate is a share of: it can only happen in that context."""

DEFAULT_SCENARIO_RATES: dict[str, float] = {
    "cut_in": 0.0025,
    "emergency_braking": 0.0015,
    "occluded_pedestrian": 0.002,
    "night_vru": 0.004,
    "emergency_lane_change": 0.0015,
}
"""Share of eligible frames inside each scenario. With the default condition mix, all
critical scenarios together cover about 0.7% of frames: the long tail is under 1%."""

NO_SCENARIO_RATES: dict[str, float] = dict.fromkeys(SCENARIOS, 0.0)
"""Rates that stage no critical scenario (for scenes where the caller stages its own)."""

TIMES_OF_DAY: tuple[str, ...] = ("day", "dusk", "night")
WEATHERS: tuple[str, ...] = ("clear", "rain", "fog")
VEHICLE_TYPES: tuple[str, ...] = ("car", "truck")
ROAD_TYPES: tuple[str, ...] = ("highway", "urban")
PROFILES: tuple[str, ...] = ("foxglove", "ros2")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_mix(name: str, mix: dict[str, float], keys: tuple[str, ...]) -> dict[str, float]:
    unknown = sorted(set(mix) - set(keys))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown}; valid keys are {list(keys)}")
    if any(v < 0 for v in mix.values()):
        raise ValueError(f"{name}: weights must be >= 0, got {mix}")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError(f"{name}: weights must not all be zero, got {mix}")
    return {k: mix.get(k, 0.0) / total for k in keys}


class SimConfig(_Frozen):
    """How the simulated fleet drives and records. Units are in each field's description."""

    vehicles: int = Field(2, ge=1, le=10_000, description="number of vehicles in the fleet")
    drives_per_vehicle: int = Field(1, ge=1, le=10_000, description="drives recorded per vehicle")
    first_drive: int = Field(
        0, ge=0, le=1_000_000, description="index of each vehicle's first drive: a later week of the same fleet starts "
                                           "after the drives it already recorded (drive ids and seeds follow the index)")
    minutes: float = Field(1.0, gt=0, le=24 * 60, description="length of each drive, minutes")
    seed: int = Field(0, ge=0, lt=2**63, description="fleet seed; same seed, same bytes")
    profile: Literal["foxglove", "ros2"] = Field(
        "foxglove", description="message encoding: foxglove protobuf + JSON, or ROS 2 cdr"
    )
    width: int = Field(640, ge=64, le=4096, description="camera image width, px")
    height: int = Field(384, ge=48, le=4096, description="camera image height, px")
    fps: float = Field(10.0, gt=0, le=60, description="camera frame rate, Hz")
    signal_hz: float = Field(50.0, ge=10, le=1000, description="vehicle state rate, Hz")
    gps_hz: float = Field(10.0, gt=0, le=100, description="GPS fix rate, Hz")
    jpeg_quality: int = Field(85, ge=30, le=100, description="JPEG quality of camera frames")
    truck_share: float = Field(0.3, ge=0, le=1, description="share of the fleet that are trucks")
    time_of_day: dict[str, float] = Field(
        default_factory=lambda: {"day": 0.55, "dusk": 0.15, "night": 0.30},
        description="relative weights of a drive's time of day",
    )
    weather: dict[str, float] = Field(
        default_factory=lambda: {"clear": 0.7, "rain": 0.18, "fog": 0.12},
        description="relative weights of a drive's weather",
    )
    urban_share_car: float = Field(0.5, ge=0, le=1, description="share of car driving in town")
    urban_share_truck: float = Field(0.2, ge=0, le=1, description="share of truck driving in town")
    scenario_rates: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SCENARIO_RATES),
        description="share of eligible frames inside each critical scenario (0..0.5)",
    )
    min_box_px: int = Field(4, ge=1, le=100, description="objects shorter than this are not in the ground truth, px")
    # Several cameras (issue 22): the front camera always, others on their own topics.
    cameras: tuple[Literal["front", "wide"], ...] = Field(
        ("front",), description="cameras recorded, each on its own topic with its own calibration: front, and "
                                "wide (a 100 degree front camera); the ground truth is the front camera's",
    )

    @field_validator("time_of_day")
    @classmethod
    def _tod(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_mix("time_of_day", v, TIMES_OF_DAY)

    @field_validator("weather")
    @classmethod
    def _weather(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_mix("weather", v, WEATHERS)

    @field_validator("scenario_rates")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; valid scenarios are {list(SCENARIOS)}")
        for name, rate in v.items():
            if not 0 <= rate <= 0.5:
                raise ValueError(f"rate of {name} must be within 0..0.5 (a share of frames), got {rate}")
        merged = dict(DEFAULT_SCENARIO_RATES)
        merged.update(v)
        if sum(merged.values()) > 0.9:
            raise ValueError(f"scenario rates add up to {sum(merged.values()):.2f}; keep the sum under 0.9")
        return merged

    @field_validator("cameras")
    @classmethod
    def _cameras(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or v[0] != "front" or len(set(v)) != len(v):
            raise ValueError(f"cameras must start with 'front' and name each camera once, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _even_size(self) -> SimConfig:
        if self.width % 2 or self.height % 2:
            raise ValueError(f"width and height must be even (JPEG chroma subsampling), got {self.width}x{self.height}")
        return self

    @property
    def frames_per_drive(self) -> int:
        """Camera frames in one drive."""
        return round(self.minutes * 60 * self.fps)


class TriggerConfig(_Frozen):
    """Thresholds of the triggers ingest fires from vehicle signals.

    Defaults: adaptive cruise control brakes at most 3.5 m/s^2 and comfortable driving stays under
    3, so 4 m/s^2 held for 0.3 s is a hard stop; an emergency swerve turns the steering wheel at
    60-100 deg/s while lane changes and curves stay under 20.
    """

    hard_brake_mps2: float = Field(4.0, gt=0, le=15, description="deceleration that counts as hard braking, m/s^2")
    hard_brake_min_s: float = Field(0.3, ge=0, le=5, description="how long the deceleration must last, s")
    harsh_steer_dps: float = Field(60.0, gt=0, le=2000, description="steering-wheel rate that counts as harsh, deg/s")
    harsh_steer_min_s: float = Field(0.15, ge=0, le=5, description="how long the rate must last, s")
    alerts: tuple[str, ...] = Field(("fcw", "aeb", "ldw"), description="ADAS alerts that fire the adas_alert trigger")
    smooth_s: float = Field(0.2, ge=0.02, le=2, description="moving-average window of deceleration and steering, s")
    pre_s: float = Field(2.0, ge=0, le=30, description="frames kept before a trigger's onset, s")
    post_s: float = Field(1.5, ge=0, le=30, description="frames kept after a trigger ends, s")
    max_gap_s: float = Field(
        0.5, gt=0, le=10,
        description="a signal silent for longer than this breaks a sustained run: dropped messages are not "
                    "assumed to have held the value, s",
    )


SIGNAL_UNITS: dict[str, dict[str, float]] = {
    "speed": {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704},
    "accel": {"m/s^2": 1.0, "g": 9.80665},
    "lateral_accel": {"m/s^2": 1.0, "g": 9.80665},
    "yaw_rate": {"rad/s": 1.0, "deg/s": math.pi / 180},
    "steering_angle": {"deg": 1.0, "rad": 180 / math.pi},
    "brake": {"bar": 1.0, "kPa": 0.01, "MPa": 10.0, "psi": 0.0689476},
    "throttle": {"%": 1.0, "ratio": 100.0},
    "adas_engaged": {"bool": 1.0},
    "driver_override": {"bool": 1.0},
    "adas_alert": {"label": 1.0},
    "turn_signal": {"label": 1.0},
    "latitude": {"deg": 1.0, "rad": 180 / math.pi},
    "longitude": {"deg": 1.0, "rad": 180 / math.pi},
}
"""The vehicle signals Longtail reads, and the units a signal map may give each one in, with the
factor to Longtail's unit (the first: SI; degrees for angles). Conventions (Longtail's, the
vehicle frame): accel negative when braking; lateral accel, yaw rate and steering angle
positive to the right; booleans for ADAS state and driver override; alerts and turn signals as
strings (none, fcw, aeb, ldw; off, left, right, hazard)."""


class SignalSource(_Frozen):
    """Where one signal is in a drive log: topic, field, unit and scale.

    The value Longtail uses is ``(field * scale + offset)`` converted from ``unit`` to the
    signal's unit (`SIGNAL_UNITS`).
    """

    topic: str = Field(..., min_length=1, description="topic carrying the signal")
    field: str = Field("data", min_length=1,
                       description="field of the message, dots for nesting (twist.linear.x); std_msgs values are 'data'")
    unit: str | None = Field(None, description="unit of the field (default: the signal's own unit)")
    scale: float = Field(1.0, description="factor on the field before the unit conversion (-1 flips a sign "
                                          "convention, 0.01 a CAN factor)")
    offset: float = Field(0.0, description="added after the scale, in the field's unit")


def _check_signal_map(v: dict[str, SignalSource]) -> dict[str, SignalSource]:
    unknown = sorted(set(v) - set(SIGNAL_UNITS))
    if unknown:
        raise ValueError(f"unknown signal(s) {unknown}; valid signals are {list(SIGNAL_UNITS)}")
    for name, src in v.items():
        if src.unit is not None and src.unit not in SIGNAL_UNITS[name]:
            raise ValueError(f"{name}.unit: {src.unit!r} is not a unit of {name}; valid units are "
                             f"{list(SIGNAL_UNITS[name])}")
    return dict(sorted(v.items()))


class IngestConfig(_Frozen):
    """How drive logs are ingested. Topics left empty are found by their schema."""

    keyframe_hz: float = Field(2.0, gt=0, le=100, description="keyframes kept per second outside trigger windows")
    keep_trigger_frames: bool = Field(True, description="keep every camera frame inside a trigger window")
    image_topic: str | None = Field(None, description="camera topic (default: the one Longtail's logs use)")
    vehicle_state_topic: str | None = Field(None, description="vehicle-state topic")
    gps_topic: str | None = Field(None, description="GPS topic")
    calibration_topic: str | None = Field(None, description="camera calibration topic")
    cameras: dict[str, str] = Field(
        default_factory=dict,
        description="camera name -> topic, for a log with several cameras; the name is the camera's slice in the "
                    "curated dataset, 'front' (else the first) the default one. Empty: every compressed-image topic "
                    "is a camera named from its topic (front, rear, left, fisheye, ...), unless image_topic picks one",
    )
    signal_map: dict[str, SignalSource] = Field(
        default_factory=dict,
        description="signal -> where it is in the log; wins over the built-in maps (longtail.ingest.signals)",
    )
    triggers: TriggerConfig = Field(default_factory=TriggerConfig)

    @field_validator("signal_map")
    @classmethod
    def _signal_map(cls, v: dict[str, SignalSource]) -> dict[str, SignalSource]:
        return _check_signal_map(v)

    @field_validator("cameras")
    @classmethod
    def _cameras(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in v if not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,39}", name))
        if bad:
            raise ValueError(f"camera name(s) {bad}: use lower-case letters, digits and _ (e.g. front, rear_left)")
        if len(set(v.values())) != len(v):
            raise ValueError(f"each camera needs its own topic, got {v}")
        return v

    @model_validator(mode="after")
    def _one_way_to_name_cameras(self) -> IngestConfig:
        if self.cameras and self.image_topic is not None:
            raise ValueError("give image_topic (one camera) or cameras (several), not both")
        return self

    def digest(self) -> str:
        """sha256 of the config: an ingest with another config is a different ingest."""
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Monitor (longtail.monitor): thresholds and sizes; values come from env/<target>.yaml `monitor:`.

class MonitorConfig(_Frozen):
    """How a newly ingested batch of drive logs is monitored, and what counts as a breach.

    A threshold left at None is reported, never breached. Drift needs at least 2 drives on each
    side: drives, not frames, are the unit of its permutations and folds (`longtail.monitor.drift`).
    """

    drift_frames: int = Field(300, ge=20, le=5000,
                              description="keyframes per side (training drives, batch) the drift tests embed, "
                                          "spread evenly over drives and time")
    predict_frames: int = Field(1000, ge=10, le=100_000,
                                description="batch keyframes the champion (and a challenger in shadow) predict on")
    permutations: int = Field(500, ge=20, le=100_000, description="permutations of the MMD test")
    folds: int = Field(5, ge=2, le=20, description="cross-validation folds of the domain classifier")
    group_by: Literal["drive", "frame"] = Field(
        "drive", description="unit the MMD test permutes and the domain classifier folds by: whole drives, or "
                             "frames one by one (alibi-detect's and Evidently's way; false alarms on same-mix batches)")
    seed: int = Field(0, ge=0, description="seed of the permutations and folds")
    score_floor: float = Field(0.1, gt=0, lt=1, description="detections scoring below this are left out of the "
                                                            "confidence histogram")
    domain_auc_max: float | None = Field(0.8, gt=0.5, le=1,
                                         description="breach: the domain classifier tells batch from training drives "
                                                     "with a higher ROC AUC than this")
    mmd_p_min: float | None = Field(0.01, gt=0, lt=1,
                                    description="breach: the MMD test's p-value is below this")
    confidence_tv_max: float | None = Field(None, gt=0, le=1,
                                            description="breach: total variation distance between the batch's and the "
                                                        "reference's confidence histograms above this")
    class_tv_max: float | None = Field(None, gt=0, le=1,
                                       description="breach: total variation distance between the class frequencies of "
                                                   "detections (at the operating thresholds) above this")
    rate_ratio_max: float | None = Field(2.0, gt=1,
                                         description="breach: a trigger's rate per 100 km is more than this many times "
                                                     "the training drives' rate ...")
    rate_alpha: float = Field(0.01, gt=0, lt=1,
                              description="... and the one-sided exact rate test's p-value is below this")
    shadow: bool = Field(True, description="run a challenger, when the registry has one, beside the champion")
    shadow_iou: float = Field(0.3, gt=0, le=1,
                              description="matched champion and challenger boxes overlapping less than this disagree")
    shadow_min_height: float = Field(0.05, ge=0, lt=1,
                                     description="objects shorter than this share of the image height are not compared "
                                                 "(evaluation ignores them too)")
    shadow_per_1000_max: float | None = Field(None, gt=0,
                                              description="breach: frames of disagreement per 1,000 frames above this")
    examples: int = Field(24, ge=1, le=500, description="example frames a breach records (and marks for curation)")

    @model_validator(mode="after")
    def _resolvable(self) -> MonitorConfig:
        if self.mmd_p_min is not None and 1.0 / (self.permutations + 1) >= self.mmd_p_min:
            raise ValueError(f"permutations={self.permutations} cannot give a p-value below mmd_p_min={self.mmd_p_min:g} "
                             f"(the smallest is 1/(permutations+1)); use at least {math.ceil(1 / self.mmd_p_min)} "
                             "permutations")
        return self

    def digest(self) -> str:
        """sha256 of the config."""
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()
