"""Per-class operating thresholds chosen on validation, checked against hand-worked F-beta tables."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.detector.calibrate import calibrate_thresholds, choose_threshold
from longtail.detector.metrics import evaluate_detections


def _box(category: str, x: float, score: float | None = None, h: float = 40.0) -> dict:
    box = {"category": category, "x1": x, "y1": 10.0, "x2": x + 20.0, "y2": 10.0 + h}
    if score is not None:
        box["score"] = score
    return box


def _frame(category: str) -> tuple[dict, dict]:
    """Four objects; detections TP .9, TP .8, FP .6, FP .5, TP .4 (the fourth object is missed).

    Worked by hand, in score order: precision 1, 1, .667, .5, .6; recall .25, .5, .5, .5, .75.
    F1 = .400, .667, .571, .500, .667: a tie, so the higher threshold (0.8) wins.
    F2 = 5PR / (4P + R) = .294, .556, .526, .500, .714: 0.4 wins.
    """
    gt = {"f1": [_box(category, x) for x in (0, 100, 200, 300)]}
    preds = {"f1": [_box(category, 0, 0.9), _box(category, 100, 0.8), _box(category, 500, 0.6),
                    _box(category, 560, 0.5), _box(category, 200, 0.4)]}
    return gt, preds


def test_f1_and_f2_pick_the_hand_worked_thresholds() -> None:
    gt, preds = _frame("car")
    car = calibrate_thresholds(gt, preds, ["car"])["per_class"]["car"]
    assert car["threshold"] == 0.8 and car["beta"] == 1.0
    assert car["precision"] == 1.0 and car["recall"] == 0.5 and car["f_beta"] == pytest.approx(2 / 3)
    gt, preds = _frame("pedestrian")
    ped = calibrate_thresholds(gt, preds, ["pedestrian"])["per_class"]["pedestrian"]
    assert ped["threshold"] == 0.4 and ped["beta"] == 2.0
    assert ped["precision"] == pytest.approx(0.6) and ped["recall"] == 0.75
    assert ped["f_beta"] == pytest.approx(5 * 0.6 * 0.75 / (4 * 0.6 + 0.75))


def test_equal_scores_are_one_cut_and_empty_classes_keep_the_default() -> None:
    # Scores .7 (TP), .7 (FP): a threshold of .7 keeps both, so P = .5 there, never 1.
    chosen = choose_threshold(np.array([0.7, 0.7]), np.array([True, False]), n_gt=1)
    assert chosen["threshold"] == 0.7 and chosen["precision"] == 0.5
    out = calibrate_thresholds({"f1": []}, {}, ["car", "cyclist"])
    assert out["thresholds"] == {"car": 0.5, "cyclist": 0.5}
    assert not out["per_class"]["car"]["calibrated"]


def test_objects_too_small_to_score_are_neither_found_nor_missed() -> None:
    gt, preds = _frame("car")
    gt["f1"].append(_box("car", 400, h=5.0))           # 5 px tall: ignored at min_height 10
    preds["f1"].append(_box("car", 400, 0.95, h=5.0))  # its detection is ignored too, not a TP
    out = calibrate_thresholds(gt, preds, ["car"], min_height=10.0)["per_class"]["car"]
    assert out["objects"] == 4 and out["threshold"] == 0.8


def test_per_class_thresholds_count_errors_at_each_class_own_threshold() -> None:
    gt_car, preds_car = _frame("car")
    gt_ped, preds_ped = _frame("pedestrian")
    gt = {"f1": gt_car["f1"] + [dict(b, y1=b["y1"] + 100, y2=b["y2"] + 100) for b in gt_ped["f1"]]}
    preds = {"f1": preds_car["f1"] + [dict(b, y1=b["y1"] + 100, y2=b["y2"] + 100) for b in preds_ped["f1"]]}
    result = evaluate_detections(gt, preds, ["car", "pedestrian"], score_threshold={"car": 0.8, "pedestrian": 0.4})
    assert result["score_threshold"] == {"car": 0.8, "pedestrian": 0.4}
    assert (result["per_class"]["car"]["tp"], result["per_class"]["car"]["fp"]) == (2, 0)
    assert (result["per_class"]["pedestrian"]["tp"], result["per_class"]["pedestrian"]["fp"]) == (3, 2)
