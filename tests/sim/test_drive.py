"""Drive logs: both recording profiles round-trip, logs are deterministic, and the ground truth
agrees with the log and the plan."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from mcap.reader import make_reader

from longtail.catalog.truth import load_ground_truth
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.logs import field, iter_messages, read_metadata
from longtail.schemas import PROFILE_TOPICS, VEHICLE_STATE_SCHEMA
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan, plan_drive
from longtail.storage import sha256_file

SCHEMAS = {
    "foxglove": {"foxglove.CompressedImage": "protobuf", "foxglove.CameraCalibration": "protobuf",
                 "foxglove.LocationFix": "protobuf", "longtail.VehicleState": "jsonschema"},
    "ros2": {"sensor_msgs/msg/CompressedImage": "ros2msg", "sensor_msgs/msg/CameraInfo": "ros2msg",
             "sensor_msgs/msg/NavSatFix": "ros2msg", "longtail_msgs/msg/VehicleState": "ros2msg"},
}


def _drive(tmp: Path, profile: str, seed: int = 3, minutes: float = 0.2, **kw) -> tuple[Path, Path, SimConfig]:
    cfg = SimConfig(minutes=minutes, width=320, height=192, profile=profile, scenario_rates=NO_SCENARIO_RATES, **kw)
    plan = plan_drive(cfg, "car-001", "car", 0, seed)
    log, gt = tmp / f"{profile}-{seed}.mcap", tmp / f"{profile}-{seed}.parquet"
    simulate_drive(plan, cfg, log, gt)
    return log, gt, cfg


@pytest.mark.parametrize("profile", ["foxglove", "ros2"])
def test_log_has_indexed_zstd_chunks_topics_schemas_and_counts(tmp_path: Path, profile: str) -> None:
    log, _, cfg = _drive(tmp_path, profile)
    with open(log, "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
    assert header.profile == ("ros2" if profile == "ros2" else "")
    assert summary is not None and summary.chunk_indexes, "summary and chunk index expected (Foxglove seeks with them)"
    assert {c.compression for c in summary.chunk_indexes} == {"zstd"}
    assert all(c.message_index_offsets for c in summary.chunk_indexes)
    assert {s.name: s.encoding for s in summary.schemas.values()} == SCHEMAS[profile]
    topics = PROFILE_TOPICS[profile]
    by_topic = {summary.channels[cid].topic: n for cid, n in summary.statistics.channel_message_counts.items()}
    seconds = cfg.minutes * 60
    assert by_topic == {
        topics.image: cfg.frames_per_drive,
        topics.calibration: int(seconds),
        topics.gps: int(seconds * cfg.gps_hz),
        topics.vehicle_state: int(seconds * cfg.signal_hz),
    }
    meta = read_metadata(log)
    assert meta["vehicle"]["vehicle_id"] == "car-001" and meta["vehicle"]["vehicle_type"] == "car"
    assert meta["drive"]["drive_id"] == "car-001_drive000"
    assert json.loads(meta["simulator"]["config"])["profile"] == profile


@pytest.mark.parametrize("profile", ["foxglove", "ros2"])
def test_every_message_decodes_to_valid_values(tmp_path: Path, profile: str) -> None:
    log, _, cfg = _drive(tmp_path, profile)
    topics = PROFILE_TOPICS[profile]
    counts = dict.fromkeys(("image", "calibration", "gps", "state"), 0)
    last_ns = 0
    for msg in iter_messages(log):
        assert msg.log_time_ns >= last_ns
        last_ns = msg.log_time_ns
        m = msg.message
        if msg.topic == topics.image:
            assert field(m, "format") == "jpeg"
            image = cv2.imdecode(np.frombuffer(bytes(field(m, "data")), np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (cfg.height, cfg.width, 3)
            counts["image"] += 1
        elif msg.topic == topics.calibration:
            k = list(field(m, "K" if profile == "foxglove" else "k"))
            assert k[2] == cfg.width / 2 and k[5] == cfg.height / 2 and k[0] > 0
            assert field(m, "width") == cfg.width and field(m, "height") == cfg.height
            counts["calibration"] += 1
        elif msg.topic == topics.gps:
            assert abs(field(m, "latitude")) <= 90 and abs(field(m, "longitude")) <= 180
            counts["gps"] += 1
        elif msg.topic == topics.vehicle_state:
            if profile == "foxglove":
                jsonschema.validate(m, VEHICLE_STATE_SCHEMA)
            assert field(m, "turn_signal") in ("off", "left", "right", "hazard")
            assert 0 <= field(m, "speed_mps") < 60
            counts["state"] += 1
    assert counts["image"] == cfg.frames_per_drive and counts["state"] > 0 and counts["gps"] > 0


def test_ros2_profile_records_the_same_drive_as_foxglove(tmp_path: Path) -> None:
    fox, _, _ = _drive(tmp_path, "foxglove")
    ros, _, _ = _drive(tmp_path, "ros2")
    fox_images = [bytes(m.message.data) for m in iter_messages(fox, topics=[PROFILE_TOPICS["foxglove"].image])]
    ros_images = [bytes(m.message.data) for m in iter_messages(ros, topics=[PROFILE_TOPICS["ros2"].image])]
    assert fox_images == ros_images
    fox_speed = [m.message["speed_mps"] for m in iter_messages(fox, topics=["/vehicle/state"])]
    ros_speed = [m.message.speed_mps for m in iter_messages(ros, topics=["/vehicle/state"])]
    assert fox_speed == pytest.approx(ros_speed)


@pytest.mark.parametrize("profile", ["foxglove", "ros2"])
def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path, profile: str) -> None:
    a = _drive(tmp_path / "a", profile, seed=5)
    b = _drive(tmp_path / "b", profile, seed=5)
    c = _drive(tmp_path / "c", profile, seed=6)
    assert sha256_file(a[0]) == sha256_file(b[0]) and sha256_file(a[1]) == sha256_file(b[1])
    assert sha256_file(a[0]) != sha256_file(c[0])


def test_ground_truth_frames_match_the_log_and_the_scenario_schedule(tmp_path: Path) -> None:
    cfg = SimConfig(minutes=0.3, width=320, height=192, scenario_rates=NO_SCENARIO_RATES)
    plan = fixed_plan(cfg, 4, road="highway", events=(("emergency_braking", 6.0, 11.0),))
    log, gt = tmp_path / "d.mcap", tmp_path / "d.parquet"
    simulate_drive(plan, cfg, log, gt)
    frames, objects = load_ground_truth(gt)
    image_times = [m.log_time_ns for m in iter_messages(log, topics=[PROFILE_TOPICS["foxglove"].image])]
    assert frames["timestamp_ns"].tolist() == image_times
    assert frames["frame_index"].tolist() == list(range(cfg.frames_per_drive))
    t = (frames["timestamp_ns"] - plan.start_ns) / 1e9
    inside = (t >= 6.0) & (t < 11.0)
    assert (frames.loc[inside, "scenario"] == "emergency_braking").all()
    assert (frames.loc[~inside, "scenario"] == "").all()
    critical_frames = set(objects.loc[objects.critical, "frame_index"])
    assert critical_frames and critical_frames <= set(frames.loc[inside, "frame_index"])
    assert set(objects.category) <= {"car", "truck", "pedestrian", "cyclist"}
    assert ((objects.x2 <= cfg.width) & (objects.y2 <= cfg.height) & (objects.x1 >= 0) & (objects.y1 >= 0)).all()
