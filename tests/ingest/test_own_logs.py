"""Logs as fleets have them (issue 22): signals in other schemas, no camera, lidar and radar topics.

Every log is written here with the real mcap writers (ROS 2 CDR and JSON); no blob is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcap.writer import CompressionType, Writer
from mcap_ros2._dynamic import serialize_dynamic

from longtail.catalog.frames import list_manifests, load_signal_index
from longtail.cli import main
from longtail.config import IngestConfig, SignalSource
from longtail.errors import ConfigError
from longtail.ingest.ingest import ingest
from longtail.ingest.report import log_table
from longtail.ingest.signals import load_signal_map
from longtail.sim.record import ROS2_MSGDEFS

T0 = 1_760_000_000_000_000_000
BRAKE_AT_S = 20.0
FLOAT64 = "float64 data"


def _speed_profile(seconds: np.ndarray) -> np.ndarray:
    """25 m/s, then braking at 6 m/s^2 from BRAKE_AT_S for 2 s, then 13 m/s: km/h on the bus."""
    v = np.where(seconds < BRAKE_AT_S, 25.0, np.maximum(25.0 - 6.0 * (seconds - BRAKE_AT_S), 13.0))
    return v * 3.6


def _uneven_times(duration_s: float, hz: float, seed: int) -> np.ndarray:
    """Jittered sampling with one message in ten dropped: what a CAN logger records."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, duration_s, 1 / hz) + rng.uniform(-0.3, 0.3, int(np.ceil(duration_s * hz))) / hz
    return np.sort(t[(rng.uniform(size=len(t)) > 0.1) & (t >= 0)])


def _ros2_signals_log(path: Path, lidar: bool = True) -> Path:
    """A signals-only ROS 2 log: /can/speed_kph (std_msgs/Float64), GNSS fixes, lidar and radar packets."""
    with open(path, "wb") as f:
        w = Writer(f, compression=CompressionType.ZSTD, chunk_size=64 * 1024)
        w.start(profile="ros2", library="longtail-tests")
        float_schema = w.register_schema("std_msgs/msg/Float64", "ros2msg", FLOAT64.encode())
        fix_text = ROS2_MSGDEFS["sensor_msgs/msg/NavSatFix"]
        fix_schema = w.register_schema("sensor_msgs/msg/NavSatFix", "ros2msg", fix_text.encode())
        speed = w.register_channel("/can/speed_kph", "cdr", float_schema)
        gnss = w.register_channel("/gnss/fix", "cdr", fix_schema)
        enc_float = serialize_dynamic("std_msgs/msg/Float64", FLOAT64)["std_msgs/msg/Float64"]
        enc_fix = serialize_dynamic("sensor_msgs/msg/NavSatFix", fix_text)["sensor_msgs/msg/NavSatFix"]
        seconds = _uneven_times(40.0, 50.0, seed=1)
        for s, v in zip(seconds, _speed_profile(seconds), strict=True):
            t = T0 + int(s * 1e9)
            w.add_message(speed, t, enc_float({"data": float(v)}), t)
        for k in range(40 * 5):
            t = T0 + k * 200_000_000
            w.add_message(gnss, t, enc_fix({
                "header": {"stamp": {"sec": t // 10**9, "nanosec": t % 10**9}, "frame_id": "gnss"},
                "status": {"status": 0, "service": 1}, "latitude": 48.0 + k * 1e-5, "longitude": 11.0,
                "altitude": 500.0, "position_covariance": [0.0] * 9, "position_covariance_type": 0}), t)
        if lidar:
            cloud = w.register_schema("sensor_msgs/msg/PointCloud2", "ros2msg", b"")
            radar = w.register_schema("radar_msgs/msg/RadarScan", "ros2msg", b"")
            lid = w.register_channel("/velodyne_points", "cdr", cloud)
            rad = w.register_channel("/radar/front/scan", "cdr", radar)
            for k in range(40 * 10):
                t = T0 + k * 100_000_000
                w.add_message(lid, t, b"\x00\x01" * 64, t)
                if k % 2 == 0:
                    w.add_message(rad, t, b"\x02" * 32, t)
        w.finish()
    return path


CAN_MAP = """\
signal_map:
  speed: {topic: /can, field: VehSpd, unit: km/h}
  accel: {topic: /can, field: LongAccel, unit: g}
  steering_angle: {topic: /can, field: SteerWhlAng, unit: deg, scale: -1}  # the bus counts left positive
  adas_engaged: {topic: /can, field: AccActive}
"""


def _json_can_log(path: Path) -> Path:
    """A JSON CAN log with its own field names: a stop at 20 s, a swerve at 30 s, ACC off at 35 s."""
    with open(path, "wb") as f:
        w = Writer(f, compression=CompressionType.ZSTD)
        w.start(profile="", library="longtail-tests")
        schema = w.register_schema("acme.CanFrame", "jsonschema", b'{"type": "object"}')
        can = w.register_channel("/can", "json", schema)
        seconds = _uneven_times(40.0, 100.0, seed=2)
        kph = _speed_profile(seconds)
        for s, v in zip(seconds, kph, strict=True):
            braking = BRAKE_AT_S <= s < BRAKE_AT_S + 2
            steer = -90.0 * np.sin(np.pi * (s - 30.0)) if 30.0 <= s < 31.0 else 0.0  # 280 deg/s at its fastest
            msg = {"VehSpd": round(float(v), 2), "LongAccel": -6.0 / 9.80665 if braking else 0.0,
                   "SteerWhlAng": steer, "AccActive": int(s < 35.0), "Odo": 1000.0}
            t = T0 + int(s * 1e9)
            w.add_message(can, t, json.dumps(msg).encode(), t)
        w.finish()
    return path


def _manifest(root: Path, log_id: str) -> dict:  # type: ignore[type-arg]
    return next(m for m in list_manifests(root) if m["log_id"] == log_id)


def test_signals_only_ros2_log_brakes_hard_from_derived_deceleration(tmp_path: Path) -> None:
    log = _ros2_signals_log(tmp_path / "can.mcap")
    (result,) = ingest([log], tmp_path / "data", progress=False)
    # Nothing was lost: ingested, with notes (no camera; lidar and radar not decoded).
    assert result.status == "ingested" and result.reasons == [] and result.frames_kept == 0
    notes = " | ".join(result.notes)
    assert "no camera" in notes and "signals-only" in notes
    assert "lidar topic(s) listed and counted" in notes and "/velodyne_points (400 messages)" in notes
    assert "radar topic(s) listed and counted" in notes and "/radar/front/scan (200 messages)" in notes
    # Hard braking from the speed alone, at the right time (causal smoothing: a few tenths late).
    assert result.triggers_found == {"hard_braking": 1}
    manifest = _manifest(tmp_path / "data", result.log_id)
    (event,) = manifest["triggers"]
    assert BRAKE_AT_S <= (event["onset_ns"] - T0) / 1e9 <= BRAKE_AT_S + 0.4
    assert (event["end_ns"] - T0) / 1e9 == pytest.approx(BRAKE_AT_S + 2.0, abs=0.4)
    assert event["peak"] == pytest.approx(6.0, abs=0.5)
    signals = manifest["signals"]
    assert signals["speed"]["topic"] == "/can/speed_kph" and signals["speed"]["unit"] == "km/h"
    assert signals["accel"]["derived"].startswith("from speed")
    assert "steering ratio" in signals["yaw_rate"]["missing"]
    assert signals["latitude"]["topic"] == "/gnss/fix"
    # Triggers whose signals the log lacks are not evaluated, which is not "did not fire".
    assert set(manifest["triggers_not_evaluated"]) == {"harsh_steering", "disengagement", "adas_alert"}
    assert "not evaluated" in notes and "steering_angle" in manifest["triggers_not_evaluated"]["harsh_steering"]
    # Every topic is in the inventory, used or not.
    inventory = {row["topic"]: row for row in manifest["inventory"]}
    assert set(inventory) == {"/can/speed_kph", "/gnss/fix", "/velodyne_points", "/radar/front/scan"}
    assert inventory["/can/speed_kph"]["used"] == "signals: speed"
    assert inventory["/gnss/fix"]["used"] == "signals: latitude longitude"
    assert inventory["/velodyne_points"]["kind"] == "lidar" and inventory["/velodyne_points"]["used"] == ""
    assert inventory["/radar/front/scan"]["kind"] == "radar" and inventory["/radar/front/scan"]["messages"] == 200
    assert inventory["/can/speed_kph"]["median_hz"] == pytest.approx(50, rel=0.15)
    assert inventory["/gnss/fix"]["largest_gap_s"] == pytest.approx(0.2)
    assert inventory["/can/speed_kph"]["messages"] == result.messages_read - 200
    # The signals are indexed: speed, derived deceleration, GNSS track, the trigger window.
    sig = load_signal_index(tmp_path / "data")
    assert len(sig) == pytest.approx(400, abs=5) and sig.latitude.notna().all()
    assert sig.speed_mps.iloc[0] == pytest.approx(25.0, abs=0.01)
    assert (sig[sig.decel_mps2 > 5].timestamp_ns.between(T0 + 20e9, T0 + 22.5e9)).all()
    assert sig.triggers.map(len).sum() > 0
    # The ingest notebook's table shows the notes.
    (row,) = log_table(tmp_path / "data").itertuples()
    assert row.status == "ingested" and "no camera" in row.notes and row.reasons == ""
    # 20 s at 25 m/s, 2 s braking to 13 m/s, 18 s at 13 m/s.
    assert manifest["distance_km"] == pytest.approx((20 * 25 + 2 * 19 + 18 * 13) / 1000, rel=0.01)


def test_json_signals_log_with_a_users_signal_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _json_can_log(tmp_path / "can.mcap")
    mapping = tmp_path / "acme.yaml"
    mapping.write_text(CAN_MAP)
    # Without the map the keys name nothing Longtail knows: nothing usable, and a note says how to map them.
    (bare,) = ingest([log], tmp_path / "bare", progress=False)
    assert bare.status == "quarantined" and any("nothing usable" in r for r in bare.reasons)
    assert any(n.startswith("no vehicle signals") and "--signal-map" in n for n in bare.notes)
    assert main(["ingest", str(log), "--root", str(tmp_path / "data"), "--signal-map", str(mapping), "--json",
                 "--no-progress"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["logs"]
    assert entry["status"] == "ingested" and entry["reasons"] == []
    # The wheel turns out and back: two harsh-steering runs (the rate is zero at the turning point).
    assert entry["triggers_found"] == {"hard_braking": 1, "harsh_steering": 2, "disengagement": 1}
    assert set(entry["triggers_not_evaluated"]) == {"adas_alert"}
    manifest = _manifest(tmp_path / "data", entry["log_id"])
    assert manifest["signals"]["accel"] == {"topic": "/can", "field": "LongAccel", "unit": "g", "scale": 1.0,
                                            "offset": 0.0, "from": "signal map", "samples": manifest["signals"][
                                                "accel"]["samples"]}
    onsets = {t["name"]: (t["onset_ns"] - T0) / 1e9 for t in manifest["triggers"][::-1]}  # the first of each
    assert BRAKE_AT_S <= onsets["hard_braking"] <= BRAKE_AT_S + 0.3
    assert 30.0 <= onsets["harsh_steering"] <= 30.5
    assert onsets["disengagement"] == pytest.approx(35.0, abs=0.05)
    assert [t["detail"] for t in manifest["triggers"] if t["name"] == "disengagement"] == ["switched off"]
    sig = load_signal_index(tmp_path / "data")
    # The sign flip and the unit: -90 deg on the bus (left positive) is 90 deg to the right; km/h reads m/s.
    assert sig.steering_angle_deg.max() == pytest.approx(90.0, abs=3) and sig.steering_angle_deg.min() == 0
    assert sig.speed_mps.max() == pytest.approx(25.0)


def test_a_wrong_map_names_the_topic_the_field_and_the_fields_there(tmp_path: Path) -> None:
    log = _json_can_log(tmp_path / "can.mcap")
    cfg = IngestConfig(signal_map={"speed": SignalSource(topic="/can", field="VehicleSpeed", unit="km/h"),
                                   "steering_angle": SignalSource(topic="/can/steering"),
                                   "accel": SignalSource(topic="/can", field="LongAccel", unit="g")})
    (result,) = ingest([log], tmp_path / "data", cfg, progress=False)
    # What was mapped right is used: the wrong entries are notes, not damage.
    assert result.status == "ingested" and result.reasons == [] and result.triggers_found == {"hard_braking": 1}
    notes = " | ".join(result.notes)
    assert "topic /can (acme.CanFrame)" in notes and "speed looked for field 'VehicleSpeed'" in notes
    assert "'VehSpd', 'LongAccel', 'SteerWhlAng', 'AccActive', 'Odo'" in notes
    assert "steering_angle is mapped to topic /can/steering, which is not in this log (its topics: ['/can'])" in notes


def test_vehicle_state_topic_on_a_speed_topic_says_which_fields_it_needs(tmp_path: Path) -> None:
    log = _ros2_signals_log(tmp_path / "can.mcap", lidar=False)
    (result,) = ingest([log], tmp_path / "data", IngestConfig(vehicle_state_topic="/can/speed_kph"), progress=False)
    assert result.status == "ingested" and result.reasons == []
    note = next(n for n in result.notes if n.startswith("vehicle_state_topic"))
    assert "/can/speed_kph (std_msgs/msg/Float64): its messages have fields ['data']" in note
    assert "accel_mps2" in note and "--signal-map" in note


@pytest.mark.parametrize(("text", "message"), [
    ("speed: {topic: /can, unit: furlong/fortnight}", "speed.unit: 'furlong/fortnight' is not a unit of speed; "
                                                      "valid units are ['m/s', 'km/h', 'mph']"),
    ("velocity: {topic: /can}", "unknown signal(s) ['velocity']; valid signals are ['speed'"),
    ("speed: {field: VehSpd}", "speed.topic: Field required"),
    ("speed: [/can]", "speed: Input should be a valid dictionary"),
    ("- speed", "a signal map is a mapping signal -> {topic, field, unit}"),
])
def test_a_bad_map_file_names_the_file_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)) as info:
        load_signal_map(path)
    assert message in str(info.value)


def test_cli_names_a_missing_or_non_image_camera_topic(sim_logs: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    town = str(sim_logs["town"])
    assert main(["ingest", town, "--root", str(tmp_path / "a"), "--image-topic", "/does/not/exist",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ingested" in out and "note: no camera: image_topic (--image-topic) /does/not/exist is not a topic" in out
    assert "'/camera/front/image', '/camera/front/calibration'" not in out  # sorted, all of them:
    assert "['/camera/front/calibration', '/camera/front/image', '/gps', '/vehicle/state']" in out
    assert main(["ingest", town, "--root", str(tmp_path / "b"), "--image-topic", "/vehicle/state",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "/vehicle/state carries longtail.VehicleState, not a compressed image" in out
    assert "compressed-image topics in the log: ['/camera/front/image']" in out and "KeyError" not in out


def test_help_and_select_errors_say_things_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    shown = capsys.readouterr().out
    assert "(default: None)" not in shown and "--signal-map FILE" in shown
    assert main(["select", "--root", str(tmp_path), "--budget", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("longtail") == 1 and err.startswith("longtail: error: select: --budget: ")


def test_damage_in_a_log_without_camera_is_found_and_reported(tmp_path: Path, rewrite) -> None:  # type: ignore[no-untyped-def]
    from mcap.reader import make_reader

    source = _ros2_signals_log(tmp_path / "can.mcap", lidar=False)

    def clock_jump(topic: str, t: int, data: bytes) -> tuple[int, bytes]:
        # From 30 s in, the logger's clock jumps 5 s back for 1 s.
        return (t - 5_000_000_000, data) if T0 + 30e9 <= t < T0 + 31e9 else (t, data)

    bad = rewrite(source, tmp_path / "bad.mcap", change=clock_jump, chunk_size=16 * 1024)
    with open(bad, "rb") as f:
        chunks = sorted(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)
    victim = chunks[1]
    data = bytearray(bad.read_bytes())
    middle = victim.chunk_start_offset + victim.chunk_length // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    bad.write_bytes(bytes(data))
    (result,) = ingest([bad], tmp_path / "data", progress=False)
    assert result.status == "partial" and any(n.startswith("no camera") for n in result.notes)
    assert any(f"chunk at byte {victim.chunk_start_offset}" in r and "corrupted" in r for r in result.reasons)
    assert any("timestamps going backwards were dropped" in r for r in result.reasons)
    manifest = _manifest(tmp_path / "data", result.log_id)
    inventory = {row["topic"]: row for row in manifest["inventory"]}
    assert inventory["/can/speed_kph"]["backwards"] >= 1
    # The stop at 20 s is still found in what was intact.
    assert result.triggers_found == {"hard_braking": 1}


# ------------------------------------------------------------------ a signal map in the target's env file
def test_the_targets_signal_map_reaches_the_ingest_task_and_binds_the_signals(tmp_path: Path) -> None:
    import yaml

    from longtail.ingest.signals import resolve_signal_map
    from longtail.pipeline import make_dag

    inline = yaml.safe_load(CAN_MAP)["signal_map"]
    dag = make_dag("ci", overrides={"root": str(tmp_path / "data"), "ingest.signal_map": inline})
    params = dag["ingest"].params.to_dict()
    assert params["signal_map"] == inline  # through Ploomber's rendering, as a mapping
    # What notebooks/01_ingest.py does with it.
    config = IngestConfig(signal_map=resolve_signal_map(params["signal_map"]))
    (result,) = ingest([_json_can_log(tmp_path / "can.mcap")], tmp_path / "data", config, progress=False)
    assert result.status == "ingested" and result.reasons == []
    assert result.triggers_found == {"hard_braking": 1, "harsh_steering": 2, "disengagement": 1}
    assert _manifest(tmp_path / "data", result.log_id)["signals"]["speed"]["from"] == "signal map"


def test_a_signal_map_file_in_the_env_is_found_from_the_repository(tmp_path: Path) -> None:
    from longtail.ingest.signals import resolve_signal_map
    from longtail.pipeline import load_env, project_root

    env = load_env("ci", overrides={"ingest.signal_map": "maps/acme.yaml"})
    assert env["ingest"]["signal_map"] == str(project_root() / "maps" / "acme.yaml")
    with pytest.raises(ConfigError, match=r"maps/acme\.yaml: cannot read the signal map"):
        resolve_signal_map(env["ingest"]["signal_map"])
    mapping = tmp_path / "acme.yaml"
    mapping.write_text(CAN_MAP)
    env = load_env("ci", overrides={"ingest.signal_map": str(mapping)})
    assert set(resolve_signal_map(env["ingest"]["signal_map"])) == {"speed", "accel", "steering_angle", "adas_engaged"}
    assert resolve_signal_map(load_env("ci")["ingest"]["signal_map"]) == {}  # the shipped targets: built-in maps


def test_longtail_run_refuses_a_wrong_map_in_the_env_before_any_task(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--target", "ci", "--root", str(tmp_path / "data"),
                 "--set", "ingest.signal_map={speedo: {topic: /can}, accel: {topic: /can, unit: furlong}}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "env/ci.yaml ingest.signal_map: invalid signal map" in err and "unknown signal(s) ['speedo']" in err
    assert not (tmp_path / "data").exists()  # nothing ran
