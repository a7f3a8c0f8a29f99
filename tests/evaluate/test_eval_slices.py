"""Slices of a small hand-made labels table, and regression suites passing and failing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from longtail.catalog.failure_modes import load_registry
from longtail.detector.metrics import evaluate_detections
from longtail.errors import ConfigError, InputError
from longtail.evaluate.slices import Suite, default_suites, make_slices, metric_value, run_suites


def _box(category: str, x1: float, y1: float, x2: float, y2: float) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": 1.0}


CAR = _box("car", 10, 10, 60, 40)
PED = _box("pedestrian", 100, 20, 120, 80)       # 60 px tall
SMALL_PED = _box("pedestrian", 200, 30, 206, 45)  # 15 px tall


def _row(fid: str, split: str, tags: list[str], boxes: list[dict[str, Any]], triggers: tuple[str, ...] = (),
         fm_name: str = "") -> dict[str, Any]:
    return {"frame_id": fid, "split": split, "tags": tags, "triggers": list(triggers), "fm_name": fm_name,
            "boxes": boxes, "height": 192}


FRAMES = pd.DataFrame([
    _row("c1", "test_common", [], [CAR]),
    _row("c2", "test_common", ["night"], [PED]),
    _row("c3", "test_common", ["fog", "truck_view"], [CAR]),
    _row("l1", "test_longtail", ["trigger:hard_braking"], [CAR], ("hard_braking",), "cut_ins"),
    _row("l2", "test_longtail", ["night", "glare"], [CAR]),
    _row("l3", "test_longtail", ["night", "crowded"], [SMALL_PED]),
    _row("t1", "train", ["night", "glare"], [PED], ("hard_braking",), "cut_ins"),
])


@pytest.fixture
def modes(tmp_path: Path) -> dict[str, Any]:
    """The built-in failure-mode catalogue (what a data root without a registry holds)."""
    return load_registry(tmp_path)


def test_slices_of_a_hand_made_table(modes: dict[str, Any]) -> None:
    slices = {s.name: s.frame_ids for s in make_slices(FRAMES, modes.values())}
    expected = {
        "suite:test_longtail": ("l1", "l2", "l3"), "suite:test_common": ("c1", "c2", "c3"),
        "condition:night": ("c2", "l2", "l3"), "condition:fog": ("c3",), "condition:glare": ("l2",),
        "condition:day_clear": ("c1", "l1"),
        "vehicle:truck": ("c3",), "vehicle:unknown": ("c1", "c2", "l1", "l2", "l3"),
        "scenario:trigger:hard_braking": ("l1",), "scenario:crowded": ("l3",),
        # fm_name, or the query on tags/triggers; a query with signals counts fm_name only.
        "failure_mode:cut_ins": ("l1",), "failure_mode:occluded_pedestrians": (),
        "failure_mode:hard_brake_events": ("l1",), "failure_mode:night_glare": ("l2",),
        "failure_mode:emergency_lane_changes": (), "failure_mode:disengagements": (),
        # label conditions are checked on the ground truth: a night frame with a pedestrian; one <= 20 px tall.
        "failure_mode:night_pedestrians": ("c2", "l3"), "failure_mode:small_pedestrians": ("l3",),
    }
    assert {k: tuple(sorted(v)) for k, v in slices.items()} == expected  # train frame t1 is in none
    assert "condition:rain" not in slices  # a condition without frames is left out


def test_vehicle_type_from_a_mapping_or_column() -> None:
    by_map = {s.name: s.frame_ids for s in make_slices(FRAMES, (), {"c1": "car", "c2": "car", "l1": "truck"})}
    assert by_map["vehicle:car"] == ("c1", "c2") and set(by_map["vehicle:truck"]) == {"c3", "l1"}
    col = FRAMES.assign(vehicle_type=["car", "car", "truck", "car", "car", "truck", "car"])
    by_col = {s.name: s.frame_ids for s in make_slices(col)}
    assert by_col["vehicle:truck"] == ("c3", "l3") and "vehicle:unknown" not in by_col


def test_missing_column_is_named() -> None:
    with pytest.raises(InputError, match=r"lacks column\(s\) \['fm_name'\]"):
        make_slices(FRAMES.drop(columns=["fm_name"]))


def _results(preds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    gt = dict(zip(FRAMES["frame_id"], FRAMES["boxes"], strict=True))
    out = {}
    for s in make_slices(FRAMES, ()):
        metrics = evaluate_detections({f: gt[f] for f in s.frame_ids}, {f: preds[f] for f in s.frame_ids if f in preds}) \
            if s.frame_ids else None
        out[s.name] = {"frames": len(s.frame_ids), "metrics": metrics}
    return out


def test_suites_pass_and_fail() -> None:
    gt = dict(zip(FRAMES["frame_id"], FRAMES["boxes"], strict=True))
    perfect = {f: [dict(b, score=0.9) for b in boxes] for f, boxes in gt.items()}
    # Misses every long-tail object but finds the common ones.
    weak = {f: boxes for f, boxes in perfect.items() if f.startswith("c")}
    suites = default_suites()
    assert [(s.name, s.metric, s.threshold) for s in suites] == [("test_common", "map50", 0.6),
                                                                  ("test_longtail", "map50", 0.5)]
    assert [r.status for r in run_suites(_results(perfect), suites)] == ["passed", "passed"]
    results = run_suites(_results(weak), suites)
    assert [(r.name, r.status, r.passed, r.value, r.frames) for r in results] == [
        ("test_common", "passed", True, pytest.approx(1.0), 3), ("test_longtail", "failed", False, 0.0, 3)]


def test_suite_thresholds_metrics_and_no_data(modes: dict[str, Any]) -> None:
    # Finds c2's pedestrian and misses l3's small one: pedestrian recall 1 on test_common, 0.5 at night.
    preds = {"c2": [dict(PED, score=0.9)]}
    res = _results(preds)
    assert metric_value(res["suite:test_common"]["metrics"], "recall:pedestrian") == 1.0
    assert metric_value(res["condition:night"]["metrics"], "recall:pedestrian") == 0.5
    suites = default_suites(list(modes.values())[:1], metric="recall:pedestrian", overrides={"test_longtail": 0.0})
    by = {s.name: s for s in suites}
    assert by["test_longtail"].threshold == 0.0 and by["test_common"].threshold == 0.6
    res["failure_mode:hard_brake_events"] = {"frames": 0, "metrics": None}
    out = {r.name: r for r in run_suites(res, suites)}
    assert out["test_common"].status == "passed"
    # The long-tail suite holds one pedestrian, missed: recall 0 >= threshold 0 passes.
    assert out["test_longtail"].status == "passed" and out["test_longtail"].value == 0.0
    assert out["hard_brake_events"].status == "no_data" and out["hard_brake_events"].passed is None
    # No pedestrian at all in a slice: the per-class metric is undefined -> no_data, not a failure.
    assert run_suites({"x": res["condition:fog"]}, [Suite("fog", "x", "recall:pedestrian", 0.5)])[0].status == "no_data"


def test_bad_suite_configuration_is_named() -> None:
    with pytest.raises(ConfigError, match="suite_thresholds"):
        default_suites(overrides={"nope": 0.1})
    with pytest.raises(ConfigError, match="metric='mAP'"):
        metric_value({"map": 1.0}, "mAP")
    with pytest.raises(InputError, match="slice 'suite:test_common' was not evaluated"):
        run_suites({}, default_suites())
