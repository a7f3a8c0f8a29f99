"""Simulate one drive: step the world, render and encode frames, record signals, write the
MCAP log and the ground-truth sidecar, each atomically."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from longtail import __version__
from longtail.config import SCENARIOS, SimConfig
from longtail.schemas import GT_SCHEMA, validate_ground_truth
from longtail.sim.camera import make_camera
from longtail.sim.lighting import make_lighting
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
    seeds = np.random.SeedSequence([plan.seed, 7]).spawn(3)
    rng_light, rng_signal, rng_render = (np.random.default_rng(s) for s in seeds)
    world = World(plan, cfg)
    camera = make_camera(plan.vehicle_type, cfg.width, cfg.height)
    lighting = make_lighting(plan.time_of_day, plan.weather, plan.weather_intensity,
                             urban_glow=True, rng=rng_light)
    renderer = Renderer(camera, lighting, plan.time_of_day, plan.weather,
                        seed=int(rng_render.integers(2**63)), min_box_px=cfg.min_box_px)
    dt = 1.0 / cfg.signal_hz
    n_frames = cfg.frames_per_drive
    n_steps = round(plan.duration_s * cfg.signal_hz)
    frame_at = dict.fromkeys(_frame_steps(n_frames, cfg.fps, cfg.signal_hz))
    gps_every = max(round(cfg.signal_hz / cfg.gps_hz), 1)
    calib_every = round(cfg.signal_hz)
    encode = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
    gps_bias: np.ndarray = np.zeros(2)
    columns: dict[str, list[object]] = {name: [] for name in GT_SCHEMA.names}
    scenario_frames = dict.fromkeys(SCENARIOS, 0)
    urban_frames = 0
    n_objects = n_critical = 0
    frame_index = 0
    pending = 0
    camera_desc = {
        "camera_height_m": camera.height_m, "camera_hfov_deg": camera.hfov_deg,
        "camera_pitch_deg": math.degrees(camera.pitch_rad),
    }
    with atomic_writer(gt_path) as gt_stream, atomic_writer(log_path) as stream:
        # Ground truth is streamed in row groups, so memory stays flat however long the drive.
        gt_writer = pq.ParquetWriter(gt_stream, GT_SCHEMA, compression="zstd")
        recorder = DriveRecorder(stream, cfg.profile, camera, drive_metadata(plan, cfg, camera_desc))
        for step in range(n_steps):
            ns = plan.start_ns + round(step * dt * 1e9)
            if step % calib_every == 0:
                recorder.calibration(ns)
            state = world.vehicle_state()
            for key, sigma in SIGNAL_NOISE.items():
                state[key] = float(state[key]) + float(rng_signal.normal(0.0, sigma))  # type: ignore[arg-type]
            state["speed_mps"] = max(0.0, float(state["speed_mps"]))  # type: ignore[arg-type]
            recorder.vehicle_state(ns, {k: round(v, 5) if isinstance(v, float) else v for k, v in state.items()})
            if step % gps_every == 0:
                east, north, _heading = world.gps()
                gps_bias = gps_bias * 0.995 + rng_signal.normal(0.0, 0.08, 2)
                east_n = east + gps_bias[0] + float(rng_signal.normal(0, 0.7))
                north_n = north + gps_bias[1] + float(rng_signal.normal(0, 0.7))
                lat = plan.origin_lat + math.degrees(north_n / EARTH_RADIUS_M)
                lon = plan.origin_lon + math.degrees(east_n / (EARTH_RADIUS_M * math.cos(math.radians(plan.origin_lat))))
                recorder.gps(ns, lat, lon, 520.0, 1.2)
            if step in frame_at and frame_index < n_frames:
                image, truths = renderer.render(world)
                ok, jpeg = cv2.imencode(".jpg", image, encode)
                if not ok:
                    raise RuntimeError(f"JPEG encoding failed for frame {frame_index} of {plan.drive_id}")
                recorder.image(ns, jpeg.tobytes())
                event = world.event
                scenario = event.name if event is not None else ""
                if scenario:
                    scenario_frames[scenario] += 1
                road = world.road_type
                urban_frames += road == "urban"
                _append_frame(columns, plan, frame_index, ns, road, scenario, truths)
                n_objects += len(truths)
                n_critical += sum(t.critical for t in truths)
                frame_index += 1
                pending += 1
                if len(columns["frame_index"]) >= GT_ROW_GROUP:
                    _flush_truth(gt_writer, columns, gt_path, cfg)
                if on_frame is not None and pending >= 25:
                    on_frame(pending)
                    pending = 0
            world.step(dt)
        recorder.finish()
        _flush_truth(gt_writer, columns, gt_path, cfg)
        gt_writer.close()
    if on_frame is not None and pending:
        on_frame(pending)
    return DriveSummary(
        drive_id=plan.drive_id,
        vehicle_id=plan.vehicle_id,
        vehicle_type=plan.vehicle_type,
        time_of_day=plan.time_of_day,
        weather=plan.weather,
        log=log_path.name,
        ground_truth=f"{gt_path.parent.name}/{gt_path.name}",
        sha256=sha256_file(log_path),
        bytes=log_path.stat().st_size,
        frames=frame_index,
        duration_s=plan.duration_s,
        urban_share=urban_frames / max(frame_index, 1),
        scenario_frames=scenario_frames,
        objects=n_objects,
        critical_objects=n_critical,
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
