"""Bootstrap over drives: hand-worked intervals, determinism, frames of a drive kept together, and
subject-scored suites that say "not measurable" when too thin."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from longtail.catalog.failure_modes import load_registry
from longtail.detector.metrics import compute_frame_stats, evaluate_detections
from longtail.evaluate.bootstrap import (
    BootstrapConfig,
    bootstrap,
    compute_pooled,
    draw_resamples,
    drive_intervals,
    drive_stats,
    percentile_interval,
)
from longtail.evaluate.run import EvalConfig, evaluate


def _box(cat: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0, **kw: Any) -> dict[str, Any]:
    return {"category": cat, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score, **kw}


PED = _box("pedestrian", 100, 20, 120, 80)
# Drive A: its pedestrian found (score 0.9). Drive B: its pedestrian missed, a false positive (0.8) elsewhere.
GT = {"a1": [PED], "b1": [PED]}
PREDS = {"a1": [dict(PED, score=0.9)], "b1": [_box("pedestrian", 200, 20, 220, 80, 0.8)]}
DRIVE = {"a1": "A", "b1": "B"}


def test_pooled_stats_by_hand() -> None:
    stats = drive_stats(compute_frame_stats(GT, PREDS, ("pedestrian",)), DRIVE)
    a, b = stats["A"], stats["B"]
    # A alone: one TP over one object -> AP 1. B alone: one FP, one object -> AP 0.
    assert compute_pooled([a], ("pedestrian",))["map50"] == pytest.approx(1.0)
    assert compute_pooled([b], ("pedestrian",))["map50"] == 0.0
    # A + B: TP at 0.9 then FP at 0.8, two objects: precision 1 up to recall 0.5 (recall points
    # 0, 0.01, ..., 0.50: 51 of 101), 0 beyond -> AP 51/101; as evaluate_detections pools them.
    both = compute_pooled([a, b], ("pedestrian",))
    assert both["map50"] == pytest.approx(51 / 101)
    assert both["map50"] == pytest.approx(evaluate_detections(GT, PREDS, ("pedestrian",))["map50"])
    assert (both["fp:pedestrian"], both["fn:pedestrian"], both["gt:pedestrian"]) == (1.0, 1.0, 2.0)


def test_interval_by_hand_over_every_resample() -> None:
    stats = drive_stats(compute_frame_stats(GT, PREDS, ("pedestrian",)), DRIVE)
    units = [stats["A"], stats["B"]]
    # The three distinct resamples of two drives: AA -> AP 1, AB -> 51/101, BB -> 0. Sorted [0, 0.50495, 1];
    # numpy's linear percentile: 2.5% at position 0.05 -> 0.05 * 0.50495 = 0.025248;
    # 97.5% at position 1.95 -> 0.50495 + 0.95 * (1 - 0.50495) = 0.975248.
    draws = np.array([[0, 0], [0, 1], [1, 1]])
    ci = bootstrap(units, lambda ds: compute_pooled(ds, ("pedestrian",)), draws)
    assert ci["map50"] == pytest.approx([0.05 * 51 / 101, 51 / 101 + 0.95 * (50 / 101)])
    # False positives: AA 0, AB 1, BB 2 -> [0.05, 1.95].
    assert ci["fp:pedestrian"] == pytest.approx([0.05, 1.95])
    assert percentile_interval([None, None]) is None
    assert percentile_interval([1.0, None, 3.0]) == pytest.approx([1.05, 2.95])


def test_resamples_are_seeded_and_keep_a_drives_frames_together() -> None:
    assert (draw_resamples(5, 10, 3) == draw_resamples(5, 10, 3)).all()
    assert not (draw_resamples(5, 10, 3) == draw_resamples(5, 10, 4)).all()
    # Drive A holds two frames, both found; B one, missed. Each draw adds both of A's pedestrians or B's one,
    # never one of A's alone: two draws hold 2 (BB), 3 (AB) or 4 (AA) pedestrians, never an odd share of A.
    gt = {"a1": [PED], "a2": [PED], "b1": [PED]}
    preds = {"a1": [dict(PED, score=0.9)], "a2": [dict(PED, score=0.7)]}
    stats = compute_frame_stats(gt, preds, ("pedestrian",))
    per_drive = drive_stats(stats, {"a1": "A", "a2": "A", "b1": "B"})
    assert per_drive["A"][0]["gt"] == 2 and list(per_drive["A"][0]["scores"]) == [0.9, 0.7]
    seen = set()
    for idx in draw_resamples(2, 200, 0):
        seen.add(compute_pooled([[per_drive["A"], per_drive["B"]][i] for i in idx], ("pedestrian",))["gt:pedestrian"])
    assert seen == {2.0, 3.0, 4.0}
    n, ci = drive_intervals(stats, {"a1": "A", "a2": "A", "b1": "B"}, ("pedestrian",), BootstrapConfig(resamples=200))
    assert n == 2 and ci == drive_intervals(stats, {"a1": "A", "a2": "A", "b1": "B"}, ("pedestrian",),
                                             BootstrapConfig(resamples=200))[1]


def _frames(n_drives: int) -> pd.DataFrame:
    rows = []
    for d in range(n_drives):
        # A night frame with a car and a pedestrian; the car is found, the pedestrian only in even drives.
        rows.append({"frame_id": f"d{d}-f0", "drive_id": f"drive-{d}", "log_id": f"log-{d}", "split": "test_common",
                     "tags": ["night"], "triggers": [], "fm_name": "", "height": 192,
                     "boxes": [_box("car", 10, 10, 60, 40), PED]})
    return pd.DataFrame(rows)


def _preds(n_drives: int) -> dict[str, list[dict[str, Any]]]:
    return {f"d{d}-f0": [_box("car", 10, 10, 60, 40, 0.9)] + ([dict(PED, score=0.8)] if d % 2 == 0 else [])
            for d in range(n_drives)}


def test_suite_scores_its_subject_and_says_not_measurable(tmp_path: Any) -> None:
    modes = {k: v for k, v in load_registry(tmp_path).items() if k == "night_pedestrians"}
    cfg = EvalConfig(bootstrap=BootstrapConfig(min_drives=3, min_objects=4, resamples=50))
    ev = evaluate(tmp_path / "v-00000000000000aa", _preds(4), _frames(4), modes.values(), config=cfg)
    suite = next(s for s in ev["suites"] if s["name"] == "night_pedestrians")
    # Its subject is the pedestrian: 2 of 4 found, each at the top of its frame's ranking -> AP@0.5 = 51/101
    # (precision 1 up to recall 0.5), not the frames' mAP of car (1.0) and pedestrian together.
    assert suite["value"] == pytest.approx(51 / 101) and suite["subject"] == "pedestrians"
    assert ev["slices"]["failure_mode:night_pedestrians"]["metrics"]["map50"] == pytest.approx((1 + 51 / 101) / 2)
    assert suite["drives"] == 4 and suite["objects"] == 4 and suite["measurable"] is True
    lo, hi = suite["ci"]
    assert 0.0 <= lo <= 51 / 101 <= hi <= 1.0
    assert suite["critical"]["pedestrian"]["fn"] == 2 and suite["critical"]["pedestrian"]["fn_ci"] is not None
    assert ev["overall"]["drives"] == 4 and len(ev["overall"]["map50_ci"]) == 2
    assert ev["overall"]["per_class"]["car"]["ap50_ci"] == [1.0, 1.0]
    # Two drives only: not measurable, with the reason, and no value.
    ev2 = evaluate(tmp_path / "v-00000000000000aa", _preds(2), _frames(2), modes.values(), config=cfg)
    thin = next(s for s in ev2["suites"] if s["name"] == "night_pedestrians")
    assert thin["status"] == "not_measurable" and thin["value"] is None and thin["passed"] is None
    assert thin["reason"] == "2 drive(s), fewer than the 3 needed"


def test_cut_in_suite_scores_the_marked_vehicle_only(tmp_path: Any) -> None:
    modes = {k: v for k, v in load_registry(tmp_path).items() if k == "cut_ins"}
    cut, other = _box("car", 10, 10, 60, 40), _box("car", 150, 10, 200, 40)
    frames = pd.DataFrame([{"frame_id": f"d{d}", "drive_id": f"drive-{d}", "split": "test_longtail", "tags": [],
                            "triggers": [], "fm_name": "cut_ins", "height": 192, "boxes": [cut, other]}
                           for d in range(3)])
    marks = {f"d{d}": [dict(cut, scenario="cut_in", x2=59.0)] for d in range(3)}
    # The other car is never detected: scoring every car would give AP 51/101; the cut-in vehicle is found.
    preds = {f"d{d}": [dict(cut, score=0.9)] for d in range(3)}
    cfg = EvalConfig(bootstrap=BootstrapConfig(min_drives=3, min_objects=3, resamples=50))
    ev = evaluate(tmp_path / "v-00000000000000aa", preds, frames, modes.values(), config=cfg, subject_marks=marks)
    suite = next(s for s in ev["suites"] if s["name"] == "cut_ins")
    assert suite["value"] == 1.0 and suite["objects"] == 3 and suite["status"] == "passed"
    assert suite["subject"] == "the cut-in vehicle"
    # Without marks the suite falls back to every car and says so.
    ev = evaluate(tmp_path / "v-00000000000000aa", preds, frames, modes.values(), config=cfg)
    suite = next(s for s in ev["suites"] if s["name"] == "cut_ins")
    assert suite["value"] == pytest.approx(51 / 101) and "3 of 3 frame(s) without ground-truth marks" in suite["subject"]


def test_pooling_every_drive_gives_evaluate_detections_numbers() -> None:
    # The sufficient statistics lose nothing: with max_dets, the height rule and an ignored box in play,
    # pooling all drives reproduces AP@0.5 and the operating-point counts of every class.
    rng = np.random.default_rng(5)
    gt, preds, drive_of = {}, {}, {}
    for i in range(30):
        boxes = [_box(("car", "pedestrian", "cyclist")[k % 3], x, y, x + rng.uniform(4, 30), y + rng.uniform(4, 30),
                      ignore=bool(k == 4))
                 for k, (x, y) in enumerate(rng.uniform(0, 200, size=(6, 2)))]
        gt[f"f{i:02d}"] = boxes
        preds[f"f{i:02d}"] = [dict(b, x1=b["x1"] + rng.uniform(-2, 2), score=float(rng.uniform(0.01, 1)))
                              for b in boxes if rng.random() < 0.8]
        drive_of[f"f{i:02d}"] = f"d{i % 7}"
    kw: dict[str, Any] = {"score_threshold": 0.4, "match_iou": 0.5, "max_dets": 3, "min_height": 10.0}
    classes = ("car", "pedestrian", "cyclist")
    ref = evaluate_detections(gt, preds, classes, **kw)
    pooled = compute_pooled(list(drive_stats(compute_frame_stats(gt, preds, classes, **kw), drive_of).values()), classes)
    assert pooled["map50"] == pytest.approx(ref["map50"])
    for c in classes:
        assert pooled[f"ap50:{c}"] == pytest.approx(ref["per_class"][c]["ap50"])
        assert (pooled[f"fp:{c}"], pooled[f"fn:{c}"]) == (ref["per_class"][c]["fp"], ref["per_class"][c]["fn"])


def test_recall_is_resampled_with_its_objects() -> None:
    from longtail.evaluate.bootstrap import compute_pooled

    # Two drives: 3 of 4 pedestrians found in the first, 0 of 1 in the second. Pooled: recall 3/5.
    # Drawing the first drive twice: 6/8; the second twice: 0/2. Never 1 - fn_ci / gt.
    first = [{"scores": np.zeros(0), "tp": np.zeros(0, bool), "gt": 4, "tp_op": 3, "fp_op": 0, "fn_op": 1}]
    second = [{"scores": np.zeros(0), "tp": np.zeros(0, bool), "gt": 1, "tp_op": 0, "fp_op": 0, "fn_op": 1}]
    assert compute_pooled([first, second], ["pedestrian"])["recall:pedestrian"] == pytest.approx(3 / 5)
    assert compute_pooled([first, first], ["pedestrian"])["recall:pedestrian"] == pytest.approx(6 / 8)
    assert compute_pooled([second, second], ["pedestrian"])["recall:pedestrian"] == 0.0
    empty = [{"scores": np.zeros(0), "tp": np.zeros(0, bool), "gt": 0, "tp_op": 0, "fp_op": 0, "fn_op": 0}]
    assert compute_pooled([empty], ["pedestrian"])["recall:pedestrian"] is None
