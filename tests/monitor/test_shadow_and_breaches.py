"""Shadow mode's comparison of champion and challenger on hand-built frames; breaches against
thresholds; a breach opening, updating and reopening a failure mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from longtail.catalog.failure_modes import FailureModeQuery, load_registry, record_breach, save_registry
from longtail.config import MonitorConfig
from longtail.errors import LongtailError
from longtail.monitor.breaches import find_breaches
from longtail.monitor.predictions import at_operating_point, compare_frame, compare_models


def _box(cat: str, x1: float, y1: float, x2: float, y2: float, score: float = 0.9) -> dict:
    return {"category": cat, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


def test_the_same_objects_are_no_disagreement_and_a_car_called_a_truck_neither() -> None:
    a = [_box("car", 10, 10, 50, 40), _box("pedestrian", 60, 10, 70, 40)]
    b = [_box("truck", 11, 10, 51, 40), _box("pedestrian", 61, 11, 71, 40)]
    assert compare_frame("f", a, b, iou=0.3, min_px=5) is None


def test_a_pedestrian_only_the_champion_sees_and_boxes_far_apart_disagree() -> None:
    a = [_box("pedestrian", 60, 10, 70, 40), _box("car", 0, 0, 40, 40)]
    b = [_box("car", 25, 0, 65, 40)]  # IoU with the champion's car: 15*40 / (65*40) = 0.23
    d = compare_frame("f", a, b, iou=0.3, min_px=5)
    assert d is not None
    assert (d.champion_only, d.challenger_only, d.far_apart) == (("pedestrian",), (), ("vehicle",))
    assert d.objects == 2
    assert d.describe() == "pedestrian seen by the champion only; vehicle boxes far apart"
    # With a looser IoU the two car boxes are the same object, placed alike enough.
    assert compare_frame("f", a[1:], b, iou=0.2, min_px=5) is None


def test_objects_too_small_to_score_are_not_compared() -> None:
    tiny = [_box("cyclist", 10, 10, 14, 14)]  # 4 px tall
    assert compare_frame("f", tiny, [], iou=0.3, min_px=5) is None
    d = compare_frame("f", [], tiny, iou=0.3, min_px=4)
    assert d is not None and d.challenger_only == ("cyclist",)


def test_operating_thresholds_per_class_then_frames_ordered_by_objects() -> None:
    preds = {"f1": [_box("car", 0, 0, 20, 20, 0.4), _box("pedestrian", 30, 0, 40, 30, 0.4)]}
    kept = at_operating_point(preds, {"car": 0.5, "pedestrian": 0.3})
    assert [b["category"] for b in kept["f1"]] == ["pedestrian"]
    champ = {"f1": [_box("car", 0, 0, 20, 20)], "f2": [_box("car", 0, 0, 20, 20), _box("cyclist", 30, 0, 40, 30)],
             "f3": [_box("car", 0, 0, 20, 20)]}
    chal = {"f1": [], "f2": [], "f3": [_box("car", 0, 0, 20, 20)]}
    found = compare_models(champ, chal, dict.fromkeys(champ, 100), iou=0.3, min_height=0.05)
    assert [(d.frame_id, d.objects) for d in found] == [("f2", 2), ("f1", 1)]


def _record(auc: float = 0.5, p: float = 0.5, rate: float = 10.0, ref_rate: float = 10.0, rate_p: float = 0.5,
            per_1000: float | None = None) -> dict:
    return {"drift": {"status": "evaluated", "domain": {"auc": auc}, "mmd": {"p_value": p}},
            "predictions": {"confidence_tv": 0.1, "class_tv": 0.5},
            "rates": {"disengagement": {"count": 5, "ref_count": 5, "rate": rate, "ref_rate": ref_rate,
                                        "ratio": rate / ref_rate, "p_value": rate_p}},
            "shadow": {"per_1000": per_1000}}


def test_breaches_follow_the_thresholds_and_a_threshold_left_at_none_is_only_reported() -> None:
    cfg = MonitorConfig()
    assert find_breaches(_record(), cfg) == []
    rules = [(b["metric"], b["failure_mode"]) for b in find_breaches(_record(auc=0.9, p=0.001), cfg)]
    assert rules == [("domain_auc", "distribution_shift"), ("mmd_p", "distribution_shift")]
    assert find_breaches(_record(auc=0.9), cfg.model_copy(update={"domain_auc_max": None})) == []
    # A rate breach needs both: more than twice the training rate, and a significant test.
    assert find_breaches(_record(rate=30.0, rate_p=0.2), cfg) == []
    [b] = find_breaches(_record(rate=30.0, rate_p=0.001), cfg)
    assert b["failure_mode"] == "disengagement_rate" and "3x the training drives' 10" in b["rule"]
    [b] = find_breaches(_record(per_1000=250.0), MonitorConfig(shadow_per_1000_max=100))
    assert b["metric"] == "shadow_per_1000"
    [b] = find_breaches(_record(), MonitorConfig(class_tv_max=0.4))
    assert b["rule"] == "class frequencies moved by total variation 0.5 > 0.4"


def test_too_few_permutations_for_the_p_value_threshold_are_refused() -> None:
    with pytest.raises(ValueError, match=r"permutations=50 cannot give a p-value below mmd_p_min=0\.01"):
        MonitorConfig(permutations=50)


def test_a_breach_opens_updates_and_reopens_a_failure_mode(tmp_path: Path) -> None:
    q = FailureModeQuery(triggers_any=("distribution_shift",))
    ev = {"metric": "mmd_p", "value": 0.002, "threshold": 0.01, "batch_id": "mb-1"}
    first = record_breach(tmp_path, "distribution_shift", q, title="t", description="d", examples=["a", "b"],
                          evidence=ev, by="monitor")
    assert first.status == "open" and first.examples == ("a", "b") and first.first_count == 2
    assert first.evidence[0]["batch_id"] == "mb-1" and first.discovered_by == "monitor"
    again = record_breach(tmp_path, "distribution_shift", q, title="t", description="d", examples=["a", "b"],
                          evidence=ev, by="monitor")
    assert again == first  # the same breach twice changes nothing
    second = record_breach(tmp_path, "distribution_shift", q, title="t", description="d", examples=["c", "a"],
                           evidence={**ev, "batch_id": "mb-2"}, by="monitor")
    assert second.examples == ("c", "a", "b") and [e["batch_id"] for e in second.evidence] == ["mb-1", "mb-2"]
    modes = load_registry(tmp_path)
    modes["distribution_shift"] = modes["distribution_shift"].model_copy(
        update={"status": "fixed", "fixed_by": "models:/longtail-detector/4", "fixed_at": "2026-12-01"})
    save_registry(tmp_path, modes)
    reopened = record_breach(tmp_path, "distribution_shift", q, title="t", description="d", examples=["d"],
                             evidence={**ev, "batch_id": "mb-3"}, by="monitor")
    assert reopened.status == "open" and reopened.fixed_by is None
    assert reopened.evidence[-1]["reopened"] == "fixed by models:/longtail-detector/4 at 2026-12-01"
    assert "hard_brake_events" in load_registry(tmp_path)  # the built-in catalogue is kept beside it
    with pytest.raises(LongtailError, match="evidence lacks"):
        record_breach(tmp_path, "x_y", q, title="t", description="d", examples=[], evidence={"metric": "m"}, by="me")


def test_the_pipeline_task_without_a_champion_monitors_nothing_and_says_why(tmp_path: Path) -> None:
    """The gate may refuse the first model: the monitor task then writes an empty history and a report
    that says why, instead of failing the pipeline (`run_monitor` itself still refuses)."""
    from longtail.errors import InputError
    from longtail.monitor.report import render_report
    from longtail.monitor.run import NO_CHAMPION_NOTE, monitor_task, run_monitor

    root = tmp_path / "data"
    record, note = monitor_task(root)
    assert record is None and note == NO_CHAMPION_NOTE
    assert (root / "monitor" / "batches").is_dir() and not list((root / "monitor" / "batches").iterdir())
    summary = render_report(root, tmp_path / "monitoring.html", note)
    assert summary.open_breaches == 0 and "No model is champion yet" in summary.path.read_text()
    with pytest.raises(InputError, match="no champion to monitor"):
        run_monitor(root)
