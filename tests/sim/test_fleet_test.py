"""The fleet test: a tiny test fleet with truth perception and with a real (untrained) detector,
its logs carry the detections for Foxglove, shadow disagreements are recorded, and the measures
and intervals are computed as stated."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from longtail.cli import main
from longtail.config import SCENARIOS
from longtail.detector.model import save_model
from longtail.detector.predict import make_frame_predictor
from longtail.detector.presets import build_model
from longtail.detector.shadow import compare_detections
from longtail.logs import iter_messages
from longtail.schemas import CATEGORIES
from longtail.sim.camera import make_camera
from longtail.sim.fleet_metrics import METRICS, compute_rates, empty_counts
from longtail.sim.fleet_test import FleetTestConfig, plan_fleet_test, run_fleet_test
from longtail.sim.perception import make_critical_test
from longtail.sim.record import DETECTIONS_TOPIC, SHADOW_DETECTIONS_TOPIC, DriveRecorder

TINY = FleetTestConfig(minutes=0.25, max_drives=2, n_boot=200)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return build_model("fcos-small-p2", len(CATEGORIES)).eval()


def test_the_plan_covers_every_scenario_vehicle_and_condition() -> None:
    plans = plan_fleet_test(FleetTestConfig(minutes=1.0))
    assert len(plans) == 36 and len({p.drive_id for p in plans}) == 36
    assert {p.vehicle_type for p in plans} == {"car", "truck"}
    assert {(p.time_of_day, p.weather) for p in plans} == {(t, w) for t in ("day", "dusk", "night")
                                                           for w in ("clear", "rain", "fog")}
    assert {e.name for p in plans for e in p.events} == set(SCENARIOS)
    assert plan_fleet_test(FleetTestConfig(minutes=1.0)) == plans
    assert plan_fleet_test(FleetTestConfig(minutes=1.0, seed=1)) != plans


def test_fleet_test_with_truth_and_a_detector_writes_results_and_detections(tmp_path: Path, model: torch.nn.Module
                                                                            ) -> None:
    # Untrained, the detector's scores sit near FCOS's prior (0.01): a threshold just above it keeps
    # a few boxes per frame, so that the ADAS and the shadow comparison have something to act on.
    acting = make_frame_predictor(model, 0.0105)
    challenger = make_frame_predictor(model, 0.0108)
    results = run_fleet_test(TINY, {"model": acting}, tmp_path, challenger=challenger, progress=False)
    on_disk = json.loads((tmp_path / "fleet_test.json").read_text())
    assert on_disk["arms"] == results["arms"] and list(results["arms"]) == ["truth", "model"]
    truth, drives = results["drives"]["truth"], results["drives"]["model"]
    assert [d["drive_id"] for d in truth] == [d["drive_id"] for d in drives]
    assert all(d["perceived_frames"] == d["frames"] // 2 for d in drives)
    assert all(d["perceived_frames"] == 0 for d in truth)
    assert all(d["km"] > 0.05 for d in drives)
    # Truth perception never brakes for nothing nor misses a hazard: the reference row.
    ref = {(r["scenario"], r["metric"]): r for r in results["rates"] if r["arm"] == "truth"}
    assert ref[("all", "phantom_braking")]["count"] == 0 and ref[("all", "missed_hazard")]["count"] == 0
    assert {(p["scenario"], p["metric"]) for p in results["paired"]} == set(ref)
    # The model arm's logs carry its detections, one message per perceived frame, on the camera's clock.
    log = tmp_path / drives[0]["log"]
    images = {m.log_time_ns for m in iter_messages(log, topics=["/camera/front/image"])}
    detections = list(iter_messages(log, topics=[DETECTIONS_TOPIC]))
    assert len(detections) == drives[0]["perceived_frames"]
    assert {m.log_time_ns for m in detections} <= images
    assert detections[0].schema == "foxglove.ImageAnnotations"
    boxes = [p for m in detections for p in m.message.points]
    assert boxes and all(len(p.points) == 4 for p in boxes)
    assert len(list(iter_messages(log, topics=[SHADOW_DETECTIONS_TOPIC]))) == len(detections)
    assert not list(iter_messages(tmp_path / truth[0]["log"], topics=[DETECTIONS_TOPIC]))
    # Shadow mode: two thresholds see different critical objects on some frames.
    shadow = results["shadow"]
    assert shadow["arm"] == "model" and shadow["frames"] == sum(d["perceived_frames"] for d in drives)
    assert 0 < shadow["disagreement_frames"] <= shadow["frames"]
    assert shadow["per_1000_frames"] == pytest.approx(1000 * shadow["disagreement_frames"] / shadow["frames"], abs=1e-3)
    first = shadow["disagreements"][0]
    assert first["reason"] in ("unseen", "far_apart") and first["seen_by"] in ("acting", "challenger", "both")
    assert first["drive_id"] in {d["drive_id"] for d in drives}


def test_cli_runs_a_saved_model_and_prints_the_table(tmp_path: Path, model: torch.nn.Module,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    save_model(tmp_path / "model", model, {"preset": "fcos-small-p2", "num_classes": len(CATEGORIES),
                                           "min_size": 192, "max_size": 320})
    rc = main(["fleet-test", "--out", str(tmp_path / "ft"), "--perception", f"m={tmp_path / 'model'}",
               "--minutes", "0.15", "--max-drives", "1", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "missed_hazard" in out and "vs truth (paired)" in out
    assert main(["fleet-test", "--out", str(tmp_path / "x"), "--perception", "truth=" + str(tmp_path)]) == 2
    assert main(["fleet-test", "--out", str(tmp_path / "x"), "--perception-hz", "3"]) == 2


def test_ros2_logs_carry_detections_as_foxglove_msgs_image_annotations() -> None:
    stream = io.BytesIO()
    recorder = DriveRecorder(stream, "ros2", make_camera("car", 320, 192), {})
    recorder.detections(1_000_000_000, [{"category": "pedestrian", "x1": 10.0, "y1": 20.0, "x2": 14.0, "y2": 40.0,
                                         "score": 0.8}])
    recorder.finish()
    path = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    log = path / f"ros2-detections-{id(stream)}.mcap"
    log.write_bytes(stream.getvalue())
    try:
        (msg,) = list(iter_messages(log, topics=[DETECTIONS_TOPIC]))
    finally:
        log.unlink()
    assert msg.schema == "foxglove_msgs/msg/ImageAnnotations"
    (outline,) = msg.message.points
    assert [(p.x, p.y) for p in outline.points] == [(10.0, 20.0), (14.0, 20.0), (14.0, 40.0), (10.0, 40.0)]
    assert msg.message.texts[0].text == "pedestrian 0.80"


def test_shadow_compares_critical_objects_only() -> None:
    cam = make_camera("car", 320, 192)
    critical = make_critical_test(cam, 1.9, 0.0, 0.0)
    ped = {"category": "pedestrian", "x1": 150.0, "y1": 90.0, "x2": 156.0, "y2": 110.0, "score": 0.9}
    beside = {"category": "car", "x1": 0.0, "y1": 100.0, "x2": 30.0, "y2": 120.0, "score": 0.9}  # far left: not in path
    ahead = {"category": "car", "x1": 145.0, "y1": 100.0, "x2": 175.0, "y2": 120.0, "score": 0.9}
    assert [critical(b) for b in (ped, beside, ahead)] == [True, False, True]
    assert compare_detections([ped, ahead], [ped, ahead], critical=critical) == []
    assert compare_detections([beside], [], critical=critical) == []  # a vehicle out of the path is not critical
    (miss,) = compare_detections([ped, ahead], [ahead], critical=critical)
    assert (miss.seen_by, miss.reason, miss.category) == ("acting", "unseen", "pedestrian")
    moved = dict(ahead, x1=160.0, x2=190.0)  # IoU 15/45 = 1/3 with a 0.5 threshold
    (apart,) = compare_detections([ahead], [moved], iou=0.5, critical=critical)
    assert (apart.seen_by, apart.reason) == ("both", "far_apart")
    assert apart.iou == pytest.approx(1 / 3)


def test_rates_per_100km_and_paired_intervals_worked_by_hand() -> None:
    def drive(km: float, phantom: int) -> dict:
        counts = empty_counts()
        counts["cut_in"]["phantom_braking"] = phantom
        return {"km": km, "counts": counts}

    truth = [drive(1.0, 0), drive(1.0, 0)]
    model = [drive(1.0, 1), drive(1.0, 3)]
    rates, paired = compute_rates({"truth": truth, "model": model}, "truth", n_boot=500)
    row = next(r for r in rates if (r["arm"], r["scenario"], r["metric"]) == ("model", "all", "phantom_braking"))
    assert (row["count"], row["km"], row["per_100km"]) == (4, 2.0, 200.0)
    # Resampling two drives: 0, 1 or 2 copies of the 3-episode drive -> 100, 200 or 300 per 100 km.
    assert row["ci_low"] == 100.0 and row["ci_high"] == 300.0
    diff = next(p for p in paired if (p["scenario"], p["metric"]) == ("cut_in", "phantom_braking"))
    assert diff["difference_per_100km"] == 200.0 and diff["ci_low"] == 100.0
    assert len(rates) == 2 * (len(SCENARIOS) + 2) * len(METRICS)


def test_shadow_counts_frames_where_the_challenger_misses_what_the_acting_perception_sees(tmp_path: Path) -> None:
    """An acting perception that sees one pedestrian in every frame, beside a challenger that sees the same
    (no disagreement) and one that sees nothing (every perception frame disagrees)."""
    cfg = FleetTestConfig(minutes=0.1, max_drives=1, width=160, height=96, n_boot=200)

    def sees_a_pedestrian(images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        return [[{"category": "pedestrian", "x1": 70.0, "y1": 40.0, "x2": 78.0, "y2": 70.0, "score": 0.9}]
                for _ in images]

    def sees_nothing(images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        return [[] for _ in images]

    same = run_fleet_test(cfg, {"model": sees_a_pedestrian}, tmp_path / "same", challenger=sees_a_pedestrian,
                          progress=False)["shadow"]
    blind = run_fleet_test(cfg, {"model": sees_a_pedestrian}, tmp_path / "blind", challenger=sees_nothing,
                           progress=False)["shadow"]
    assert same["frames"] == blind["frames"] > 0
    assert same["disagreement_frames"] == 0 and same["per_1000_frames"] == 0
    assert blind["disagreement_frames"] == blind["frames"] and blind["per_1000_frames"] == 1000
    assert {(d["seen_by"], d["category"]) for d in blind["disagreements"]} == {("acting", "pedestrian")}
