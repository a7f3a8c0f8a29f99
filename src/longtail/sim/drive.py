"""Simulate one drive: step the world, render and encode frames, record signals (and, in perception
mode, the detections the ADAS acted on), write the MCAP log and the ground-truth sidecar, each atomically."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from longtail import __version__
from longtail.config import SCENARIOS, SimConfig
from longtail.schemas import GT_SCHEMA, validate_ground_truth
from longtail.sim.camera import make_camera
from longtail.sim.lighting import make_lighting
from longtail.sim.perception import PerceivedPath, check_boxes
from longtail.sim.plan import DrivePlan
from longtail.sim.record import DriveRecorder
from longtail.sim.render import ObjectTruth, Renderer
from longtail.sim.world import World
from longtail.storage import atomic_writer, sha256_file

EARTH_RADIUS_M = 6_378_137.0
GT_ROW_GROUP = 600
"""Frames per ground-truth row group (one minute at 10 Hz)."""

# Sensor noise on the vehicle bus, one standard deviation per signal (SI units).
SIGNAL_NOISE: dict[str, float] = {
    "speed_mps": 0.03,
    "accel_mps2": 0.12,
    "lateral_accel_mps2": 0.08,
    "steering_wheel_angle_deg": 0.3,
    "yaw_rate_rps": 0.0015,
}


@dataclass
class DriveSummary:
    """What one simulated drive produced (one row of the `longtail sim` table)."""

    drive_id: str
    vehicle_id: str
    vehicle_type: str
    time_of_day: str
    weather: str
    log: str
    ground_truth: str
    sha256: str
    bytes: int
    frames: int
    duration_s: float
    urban_share: float
    scenario_frames: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    critical_objects: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return asdict(self)


def _frame_steps(n_frames: int, fps: float, signal_hz: float) -> list[int]:
    """Physics step index at which each camera frame is taken (nearest step)."""
    return [round(k * signal_hz / fps) for k in range(n_frames)]


def drive_metadata(plan: DrivePlan, cfg: SimConfig, camera_desc: dict[str, float]) -> dict[str, dict[str, str]]:
    """MCAP metadata records of a drive: vehicle, drive, and the simulator config."""
    return {
        "vehicle": {
            "vehicle_id": plan.vehicle_id,
            "vehicle_type": plan.vehicle_type,
            **{k: f"{v:g}" for k, v in camera_desc.items()},
        },
        "drive": {
            "drive_id": plan.drive_id,
            "start_time_ns": str(plan.start_ns),
            "duration_s": f"{plan.duration_s:g}",
            "city": plan.city,
            "recording_profile": cfg.profile,
            "source": "longtail-sim",
        },
        "simulator": {
            "version": __version__,
            "seed": str(plan.seed),
            "config": json.dumps(cfg.model_dump(mode="json"), sort_keys=True),
        },
    }


def simulate_drive(
    plan: DrivePlan,
    cfg: SimConfig,
    log_path: Path,
    gt_path: Path,
    on_frame: Callable[[int], None] | None = None,
) -> DriveSummary:
    """Simulate ``plan`` and write its MCAP log and ground-truth sidecar.

    Both files are written to temporary names and renamed into place only when complete.

    Args:
        plan: the drive's plan.
        cfg: simulator configuration.
        log_path: destination of the MCAP log.
        gt_path: destination of the ground-truth Parquet file.
        on_frame: called with the number of frames rendered since the last call (progress).

    Returns:
        The drive's summary.
    """
    with DriveSession(plan, cfg, log_path, gt_path, on_frame=on_frame) as session:
        while session.next_frame() is not None:  # no perception: runs the whole drive
            pass
    return session.summary()


class DriveSession:
    """One drive, stepped from outside, so that a detector can drive its ADAS and several drives can
    share one detector call (`longtail.sim.perception`). Use it as a context manager: the log and the
    ground truth are renamed into place when the block ends without an error.

    Without perception, one `next_frame` call simulates the whole drive. With ``perceive_every=k``,
    `next_frame` stops at every k-th camera frame and returns its image; `deliver` then hands the
    ADAS that frame's detections (and records them on `DETECTIONS_TOPIC`) and the drive goes on.

    Args:
        plan: the drive's plan.
        cfg: simulator configuration.
        log_path: destination of the MCAP log.
        gt_path: destination of the ground-truth Parquet file.
        perceive_every: perceive every this many camera frames (0: the ADAS sees the truth).
        on_frame: called with the number of frames rendered since the last call (progress).
        on_step: called with the world after every physics step (fleet-test measures).
    """

    def __init__(self, plan: DrivePlan, cfg: SimConfig, log_path: Path, gt_path: Path, perceive_every: int = 0,
                 on_frame: Callable[[int], None] | None = None, on_step: Callable[[World], None] | None = None) -> None:
        seeds = np.random.SeedSequence([plan.seed, 7]).spawn(3)
        rng_light, self._rng_signal, rng_render = (np.random.default_rng(s) for s in seeds)
        self.plan, self.cfg = plan, cfg
        self.log_path, self.gt_path = log_path, gt_path
        self.world = World(plan, cfg)
        self.camera = make_camera(plan.vehicle_type, cfg.width, cfg.height)
        lighting = make_lighting(plan.time_of_day, plan.weather, plan.weather_intensity,
                                 urban_glow=True, rng=rng_light)
        self.renderer = Renderer(self.camera, lighting, plan.time_of_day, plan.weather,
                                 seed=int(rng_render.integers(2**63)), min_box_px=cfg.min_box_px)
        self.perceive_every = perceive_every
        if perceive_every:
            self.world.driver.use_perception(PerceivedPath(self.camera, self.world.spec["width"]))
        self._on_frame, self._on_step = on_frame, on_step
        self._dt = 1.0 / cfg.signal_hz
        self.n_frames = cfg.frames_per_drive
        self.n_steps = round(plan.duration_s * cfg.signal_hz)
        self._frame_at = dict.fromkeys(_frame_steps(self.n_frames, cfg.fps, cfg.signal_hz))
        self._gps_every = max(round(cfg.signal_hz / cfg.gps_hz), 1)
        self._calib_every = round(cfg.signal_hz)
        self._encode = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
        self._gps_bias: np.ndarray = np.zeros(2)
        self._columns: dict[str, list[object]] = {name: [] for name in GT_SCHEMA.names}
        self._scenario_frames = dict.fromkeys(SCENARIOS, 0)
        self._urban_frames = self._n_objects = self._n_critical = 0
        self.frame_index = 0
        self._pending = 0
        self._step = 0
        self._frame_ns = 0
        self.truths: list[ObjectTruth] = []  # ground truth of the last frame taken
        self._stack = ExitStack()

    def __enter__(self) -> DriveSession:
        camera = self.camera
        camera_desc = {
            "camera_height_m": camera.height_m, "camera_hfov_deg": camera.hfov_deg,
            "camera_pitch_deg": math.degrees(camera.pitch_rad),
        }
        with ExitStack() as stack:
            gt_stream = stack.enter_context(atomic_writer(self.gt_path))
            stream = stack.enter_context(atomic_writer(self.log_path))
            # Ground truth is streamed in row groups, so memory stays flat however long the drive.
            self._gt_writer = pq.ParquetWriter(gt_stream, GT_SCHEMA, compression="zstd")
            self.recorder = DriveRecorder(stream, self.cfg.profile, camera,
                                          drive_metadata(self.plan, self.cfg, camera_desc))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.recorder.finish()
            _flush_truth(self._gt_writer, self._columns, self.gt_path, self.cfg)
            self._gt_writer.close()
        else:
            with contextlib.suppress(Exception):  # the partial files are about to be removed
                self._gt_writer.close()
        self._stack.__exit__(exc_type, exc, tb)  # type: ignore[arg-type]
        if exc_type is None and self._on_frame is not None and self._pending:
            self._on_frame(self._pending)

    @property
    def last_frame_ns(self) -> int:
        """Time of the last camera frame taken, UNIX ns."""
        return self._frame_ns

    @property
    def done(self) -> bool:
        """True once every physics step of the drive has run."""
        return self._step >= self.n_steps

    def next_frame(self) -> np.ndarray | None:
        """Simulate up to the next camera frame to perceive, and return it (HxWx3 uint8 RGB, decoded
        from the recorded JPEG, so the model sees what the log holds); None at the end of the drive."""
        while self._step < self.n_steps:
            jpeg = self._record_step()
            if jpeg is not None and self.perceive_every and (self.frame_index - 1) % self.perceive_every == 0:
                bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                rgb: np.ndarray = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # type: ignore[arg-type]
                return rgb
            self._advance()
        return None

    def deliver(self, boxes: list[dict[str, Any]], shadow: list[dict[str, Any]] | None = None) -> None:
        """Hand the ADAS the detections of the frame `next_frame` returned, record them, and go on.

        Args:
            boxes: the acting perception's box dicts (pixels, thresholded).
            shadow: a challenger's boxes on the same frame, recorded on their own topic.
        """
        check_boxes(boxes, f"perception of {self.plan.drive_id} frame {self.frame_index - 1}")
        self.world.driver.perceive(boxes)
        self.recorder.detections(self._frame_ns, boxes)
        if shadow is not None:
            self.recorder.detections(self._frame_ns, shadow, shadow=True)
        self._advance()

    def _advance(self) -> None:
        self.world.step(self._dt)
        self._step += 1
        if self._on_step is not None:
            self._on_step(self.world)

    def _record_step(self) -> bytes | None:
        """Record the signals of the current step and, at a frame step, the camera frame (its JPEG)."""
        plan, cfg, world, recorder, step = self.plan, self.cfg, self.world, self.recorder, self._step
        rng_signal = self._rng_signal
        ns = plan.start_ns + round(step * self._dt * 1e9)
        if step % self._calib_every == 0:
            recorder.calibration(ns)
        state = world.vehicle_state()
        for key, sigma in SIGNAL_NOISE.items():
            state[key] = float(state[key]) + float(rng_signal.normal(0.0, sigma))  # type: ignore[arg-type]
        state["speed_mps"] = max(0.0, float(state["speed_mps"]))  # type: ignore[arg-type]
        recorder.vehicle_state(ns, {k: round(v, 5) if isinstance(v, float) else v for k, v in state.items()})
        if step % self._gps_every == 0:
            east, north, _heading = world.gps()
            self._gps_bias = self._gps_bias * 0.995 + rng_signal.normal(0.0, 0.08, 2)
            east_n = east + self._gps_bias[0] + float(rng_signal.normal(0, 0.7))
            north_n = north + self._gps_bias[1] + float(rng_signal.normal(0, 0.7))
            lat = plan.origin_lat + math.degrees(north_n / EARTH_RADIUS_M)
            lon = plan.origin_lon + math.degrees(east_n / (EARTH_RADIUS_M * math.cos(math.radians(plan.origin_lat))))
            recorder.gps(ns, lat, lon, 520.0, 1.2)
        if step not in self._frame_at or self.frame_index >= self.n_frames:
            return None
        image, truths = self.renderer.render(world)
        ok, encoded = cv2.imencode(".jpg", image, self._encode)
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for frame {self.frame_index} of {plan.drive_id}")
        jpeg = encoded.tobytes()
        recorder.image(ns, jpeg)
        event = world.event
        scenario = event.name if event is not None else ""
        if scenario:
            self._scenario_frames[scenario] += 1
        road = world.road_type
        self._urban_frames += road == "urban"
        _append_frame(self._columns, plan, self.frame_index, ns, road, scenario, truths)
        self._n_objects += len(truths)
        self._n_critical += sum(t.critical for t in truths)
        self.truths = truths
        self._frame_ns = ns
        self.frame_index += 1
        self._pending += 1
        if len(self._columns["frame_index"]) >= GT_ROW_GROUP:
            _flush_truth(self._gt_writer, self._columns, self.gt_path, cfg)
        if self._on_frame is not None and self._pending >= 25:
            self._on_frame(self._pending)
            self._pending = 0
        return jpeg

    def summary(self) -> DriveSummary:
        """What the drive produced (call after the ``with`` block)."""
        plan = self.plan
        return DriveSummary(
            drive_id=plan.drive_id,
            vehicle_id=plan.vehicle_id,
            vehicle_type=plan.vehicle_type,
            time_of_day=plan.time_of_day,
            weather=plan.weather,
            log=self.log_path.name,
            ground_truth=f"{self.gt_path.parent.name}/{self.gt_path.name}",
            sha256=sha256_file(self.log_path),
            bytes=self.log_path.stat().st_size,
            frames=self.frame_index,
            duration_s=plan.duration_s,
            urban_share=self._urban_frames / max(self.frame_index, 1),
            scenario_frames=self._scenario_frames,
            objects=self._n_objects,
            critical_objects=self._n_critical,
        )


def _flush_truth(writer: pq.ParquetWriter, columns: dict[str, list[object]], gt_path: Path, cfg: SimConfig) -> None:
    """Validate and write the buffered ground-truth rows as one row group, then clear the buffer."""
    if not columns["frame_index"]:
        return
    table = pa.Table.from_pydict(columns, schema=GT_SCHEMA)
    validate_ground_truth(table, str(gt_path), cfg.width, cfg.height)
    writer.write_table(table)
    for values in columns.values():
        values.clear()


def _append_frame(columns: dict[str, list[object]], plan: DrivePlan, index: int, ns: int, road: str,
                  scenario: str, truths: list[ObjectTruth]) -> None:
    columns["drive_id"].append(plan.drive_id)
    columns["frame_index"].append(index)
    columns["timestamp_ns"].append(ns)
    columns["time_of_day"].append(plan.time_of_day)
    columns["weather"].append(plan.weather)
    columns["road_type"].append(road)
    columns["scenario"].append(scenario)
    columns["objects"].append([
        {
            "track_id": t.track_id, "category": t.category,
            "x1": t.box[0], "y1": t.box[1], "x2": t.box[2], "y2": t.box[3],
            "vx1": t.visible_box[0], "vy1": t.visible_box[1], "vx2": t.visible_box[2], "vy2": t.visible_box[3],
            "visible_fraction": t.visible_fraction, "truncation": t.truncation, "distance_m": t.distance_m,
            "pixel_height": t.pixel_height, "luminance": t.luminance, "pose": t.pose, "scenario": t.scenario,
            "critical": t.critical,
        }
        for t in truths
    ])
