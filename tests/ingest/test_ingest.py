"""Ingest of simulated drive logs: what is kept, both profiles, idempotence, triggers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from longtail.catalog.frames import list_manifests, load_frame_index
from longtail.cli import main
from longtail.config import IngestConfig, SimConfig
from longtail.ingest.ingest import ingest
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan
from longtail.storage import sha256_file


def test_simulated_log_ingests_keyframes_and_trigger_windows(sim_logs: dict[str, Path], tmp_path: Path) -> None:
    (result,) = ingest([sim_logs["foxglove"]], tmp_path, progress=False)
    assert result.status == "ingested" and not result.reasons
    assert result.log_id == sha256_file(sim_logs["foxglove"])
    df = load_frame_index(tmp_path)
    assert len(df) == result.frames_kept and df.frame_id.is_unique
    # Keyframes on a 2 Hz grid; the rest of the frames sit inside trigger windows.
    keys = df[df.keyframe].timestamp_ns.to_numpy()
    assert np.allclose(np.diff(keys) / 1e9, 0.5, atol=0.06)
    assert len(keys) == pytest.approx(40 * 2, abs=2)
    assert (df[~df.keyframe].triggers.map(len) > 0).all()
    assert {"hard_braking", "harsh_steering"} <= set(df.triggers.explode().dropna())
    # Every stored frame is the exact bytes of its content address.
    for row in df.itertuples():
        data = (tmp_path / row.store_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.image_sha256 and len(data) == row.image_bytes
        assert data[:2] == b"\xff\xd8" and (row.width, row.height) == (320, 192)
    assert not df[["speed_mps", "decel_mps2", "jerk_mps3", "steering_rate_dps"]].isna().any().any()
    manifest = list_manifests(tmp_path)[0]
    assert manifest["status"] == "ingested" and manifest["frames_kept"] == len(df)
    assert manifest["topics_used"]["image"] == "/camera/front/image" and manifest["vehicle"]["vehicle_type"] == "car"
    assert manifest["messages_read"]["/vehicle/state"] == 40 * 50
    assert manifest["duration_s"] == pytest.approx(40 - 0.1, abs=0.01)


def test_ros2_and_foxglove_logs_of_one_drive_give_the_same_index(sim_logs: dict[str, Path], tmp_path: Path) -> None:
    ingest([sim_logs["foxglove"]], tmp_path / "fox", progress=False)
    ingest([sim_logs["ros2"]], tmp_path / "ros", progress=False)
    fox, ros = load_frame_index(tmp_path / "fox"), load_frame_index(tmp_path / "ros")
    assert fox.timestamp_ns.tolist() == ros.timestamp_ns.tolist()
    assert fox.image_sha256.tolist() == ros.image_sha256.tolist()
    assert fox.triggers.map(tuple).tolist() == ros.triggers.map(tuple).tolist()
    assert np.allclose(fox.speed_mps, ros.speed_mps, atol=1e-4)
    assert set(ros.camera) == {"/camera/front/image/compressed"}


def test_reingesting_does_nothing_and_a_new_config_reingests(sim_logs: dict[str, Path], tmp_path: Path,
                                                             snapshot) -> None:
    ingest([sim_logs["town"]], tmp_path, progress=False)
    before = snapshot(tmp_path)
    (again,) = ingest([sim_logs["town"]], tmp_path, progress=False)
    assert again.status == "skipped" and snapshot(tmp_path) == before
    # A copy of the same bytes under another name is the same log.
    copy = tmp_path / "copy.mcap"
    copy.write_bytes(sim_logs["town"].read_bytes())
    (dup,) = ingest([copy], tmp_path, progress=False)
    assert dup.status == "skipped" and snapshot(tmp_path) == before
    (denser,) = ingest([sim_logs["town"]], tmp_path, IngestConfig(keyframe_hz=5.0), progress=False)
    assert denser.status == "ingested" and denser.frames_kept == pytest.approx(15 * 5, abs=2)


def test_batch_of_logs_in_parallel_equals_one_by_one(sim_logs: dict[str, Path], tmp_path: Path) -> None:
    logs = [sim_logs["foxglove"], sim_logs["town"]]
    ingest(logs, tmp_path / "serial", progress=False)
    results = ingest(logs, tmp_path / "parallel", workers=2, progress=False)
    assert [r.status for r in results] == ["ingested", "ingested"]
    pd.testing.assert_frame_equal(load_frame_index(tmp_path / "serial"), load_frame_index(tmp_path / "parallel"))


@pytest.mark.slow
def test_triggers_against_the_simulator_truth(tmp_path: Path) -> None:
    """Precision and recall of triggers over scenario events the simulator staged."""
    cfg = SimConfig(minutes=2.0, width=256, height=160, fps=5.0, scenario_rates={k: 0.0 for k in (
        "cut_in", "emergency_braking", "occluded_pedestrian", "night_vru", "emergency_lane_change")})
    spans = ((10.0, 15.0), (40.0, 45.0), (70.0, 75.0), (100.0, 105.0))
    drives = [("highway", "emergency_braking"), ("highway", "emergency_lane_change"), ("urban", "occluded_pedestrian"),
              ("highway", "cut_in")]
    events = []
    for k, (road, name) in enumerate(drives):
        plan = fixed_plan(cfg, 40 + k, road=road, events=tuple((name, a, b) for a, b in spans))
        log = tmp_path / "fleet" / f"{k}.mcap"
        log.parent.mkdir(exist_ok=True)
        simulate_drive(plan, cfg, log, tmp_path / f"{k}.parquet")
        events += [(name, plan.start_ns + int(a * 1e9), plan.start_ns + int(b * 1e9)) for a, b in spans]
    ingest([tmp_path / "fleet"], tmp_path / "data", progress=False)
    fired = [t for m in list_manifests(tmp_path / "data") for t in m["triggers"]]

    def hits(trigger: dict, margin_ns: int = 3_000_000_000) -> bool:
        return any(a - margin_ns <= trigger["onset_ns"] <= b + margin_ns for _, a, b in events)

    def recall(name: str, kinds: tuple[str, ...]) -> float:
        spans_ = [(a, b) for n, a, b in events if n == name]
        found = [any(a - 1e9 <= t["onset_ns"] <= b + 3e9 for t in fired if t["name"] in kinds) for a, b in spans_]
        return sum(found) / len(found)

    report = {
        "hard_braking precision": np.mean([hits(t) for t in fired if t["name"] == "hard_braking"]),
        "all triggers precision": np.mean([hits(t) for t in fired]),
        "emergency_braking recall (hard_braking)": recall("emergency_braking", ("hard_braking",)),
        "emergency_lane_change recall (harsh_steering)": recall("emergency_lane_change", ("harsh_steering",)),
        "occluded_pedestrian recall (any)": recall("occluded_pedestrian", ("hard_braking", "adas_alert", "disengagement")),
        "cut_in recall (any)": recall("cut_in", ("hard_braking", "adas_alert", "disengagement")),
    }
    print(json.dumps({k: round(float(v), 3) for k, v in report.items()}, indent=1))
    assert report["emergency_braking recall (hard_braking)"] == 1.0
    assert report["emergency_lane_change recall (harsh_steering)"] == 1.0
    assert report["hard_braking precision"] >= 0.9
    assert report["all triggers precision"] >= 0.8
    assert report["cut_in recall (any)"] >= 0.75
    # At town speeds the ego is often slow already when the pedestrian steps out, and stops
    # gently: no trigger is the right answer then. Reported, and only a total miss fails.
    assert report["occluded_pedestrian recall (any)"] >= 0.25


def test_cli_reports_json_per_log_and_names_a_missing_source(sim_logs: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert main(["ingest", str(sim_logs["town"]), "--root", str(tmp_path), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    (entry,) = out["logs"]
    assert entry["status"] == "ingested" and entry["frames_kept"] > 0 and entry["messages_read"] > 0
    assert set(entry) >= {"path", "log_id", "status", "frames_kept", "messages_read", "triggers_found", "reasons"}
    assert main(["ingest", str(tmp_path / "nope.mcap"), "--root", str(tmp_path), "--no-progress"]) == 2
    assert "nope.mcap: no such file or folder" in capsys.readouterr().err
    assert main(["ingest", str(sim_logs["town"]), "--root", str(tmp_path), "--keyframe-hz", "0"]) == 2
    assert "--keyframe-hz: Input should be greater than 0" in capsys.readouterr().err
