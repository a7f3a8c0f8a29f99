"""COCO-style metrics: hand-worked cases, then agreement with pycocotools' COCOeval on a random set."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest

from longtail.boxes import iou_matrix, to_coco
from longtail.detector.metrics import (
    COCO_IOU_THRESHOLDS,
    compute_ap,
    compute_frame_errors,
    evaluate_detections,
    match_greedy,
)
from longtail.errors import InputError

CLASSES = ("car", "truck", "pedestrian", "cyclist")


def _box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


A = (10, 10, 50, 90)  # a pedestrian-sized box, 40 x 80 px
B = (100, 20, 140, 100)


def test_perfect_detection_gives_ap_1_and_no_errors() -> None:
    r = evaluate_detections({"f": [_box("pedestrian", *A)]}, {"f": [_box("pedestrian", *A, score=0.9)]})
    ped = r["per_class"]["pedestrian"]
    assert ped["ap"] == pytest.approx(1.0) and ped["ap50"] == pytest.approx(1.0)
    assert (ped["tp"], ped["fp"], ped["fn"], ped["precision"], ped["recall"]) == (1, 0, 0, 1.0, 1.0)
    assert r["map"] == pytest.approx(1.0) and r["map50"] == pytest.approx(1.0)
    assert r["per_class"]["car"]["ap"] is None  # no car ground truth: left out of the mean, as COCO does


def test_missed_object_halves_recall_and_ap_is_51_of_101_points() -> None:
    # Recall 0.5 with precision 1: the recall points 0, 0.01, ..., 0.50 (51 of 101) score 1.
    r = evaluate_detections({"f": [_box("pedestrian", *A), _box("pedestrian", *B)]},
                            {"f": [_box("pedestrian", *A, score=0.9)]})
    ped = r["per_class"]["pedestrian"]
    assert ped["recall"] == 0.5 and ped["precision"] == 1.0 and (ped["tp"], ped["fp"], ped["fn"]) == (1, 0, 1)
    assert ped["ap50"] == pytest.approx(51 / 101) and ped["ap"] == pytest.approx(51 / 101)


def test_duplicate_is_one_false_positive_and_costs_ap_only_when_it_outranks_a_true_positive() -> None:
    gt = {"f": [_box("car", *A)]}
    # A lower-scored duplicate: recall 1 is reached before it, so COCO's interpolated AP stays 1.
    r = evaluate_detections(gt, {"f": [_box("car", *A, score=0.9), _box("car", 11, 11, 51, 91, score=0.8)]})
    car = r["per_class"]["car"]
    assert (car["tp"], car["fp"], car["fn"]) == (1, 1, 0) and car["precision"] == 0.5
    assert car["ap50"] == pytest.approx(1.0)
    # Two objects; the duplicate of the first scores above the second's detection:
    # ranked TP, FP, TP -> recall .5, .5, 1; precision 1, .5, 2/3 -> monotone 1, 2/3, 2/3.
    # Recall points 0..0.50 (51) get 1, 0.51..1 (50) get 2/3: AP = (51 + 50 * 2/3) / 101.
    r = evaluate_detections({"f": [_box("car", *A), _box("car", *B)]},
                            {"f": [_box("car", *A, score=0.9), _box("car", 11, 11, 51, 91, score=0.8),
                                   _box("car", *B, score=0.7)]})
    car = r["per_class"]["car"]
    assert car["ap50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert (car["tp"], car["fp"], car["fn"]) == (2, 1, 0)


def test_wrong_class_is_a_false_positive_of_the_predicted_class_and_a_false_negative_of_the_true_one() -> None:
    r = evaluate_detections({"f": [_box("pedestrian", *A)]}, {"f": [_box("cyclist", *A, score=0.9)]})
    ped, cyc = r["per_class"]["pedestrian"], r["per_class"]["cyclist"]
    assert (ped["tp"], ped["fp"], ped["fn"], ped["ap"]) == (0, 0, 1, 0.0)
    assert (cyc["tp"], cyc["fp"], cyc["fn"], cyc["ap"], cyc["recall"]) == (0, 1, 0, None, None)
    assert r["map"] == 0.0  # only pedestrian has ground truth
    assert compute_frame_errors({"f": [_box("pedestrian", *A)]}, {"f": [_box("cyclist", *A, score=0.9)]}) == \
        {"f": {"fp": {"cyclist": 1}, "fn": {"pedestrian": 1}}}


def test_operating_threshold_drops_low_scores_but_ap_keeps_them() -> None:
    r = evaluate_detections({"f": [_box("car", *A)]}, {"f": [_box("car", *A, score=0.3)]}, score_threshold=0.5)
    car = r["per_class"]["car"]
    assert (car["tp"], car["fp"], car["fn"], car["precision"]) == (0, 0, 1, None)
    assert car["ap"] == pytest.approx(1.0)


def test_iou_threshold_decides_the_match() -> None:
    # 40x80 box shifted 10 px right: intersection 30x80, union 50x80 -> IoU 0.6.
    shifted = _box("car", 20, 10, 60, 90, score=0.9)
    assert iou_matrix(np.array([A], float), np.array([[20, 10, 60, 90]], float))[0, 0] == pytest.approx(0.6)
    r = evaluate_detections({"f": [_box("car", *A)]}, {"f": [shifted]})
    ap_per_iou = r["per_class"]["car"]["ap_per_iou"]
    assert ap_per_iou[:3] == [pytest.approx(1.0)] * 3 and ap_per_iou[3:] == [0.0] * 7  # 0.5, 0.55, 0.6 match
    assert r["per_class"]["car"]["ap"] == pytest.approx(0.3)


def test_greedy_match_takes_the_highest_iou_and_each_ground_truth_once() -> None:
    ious = np.array([[0.6, 0.9], [0.7, 0.8]])
    assert match_greedy(ious, 0.5).tolist() == [1, 0]
    assert match_greedy(np.array([[0.4]]), 0.5).tolist() == [-1]
    assert compute_ap(np.zeros(0), np.zeros(0, bool), 0) is None
    assert compute_ap(np.zeros(0), np.zeros(0, bool), 3) == 0.0


def test_empty_frame_and_frame_without_predictions() -> None:
    r = evaluate_detections({"a": [], "b": [_box("truck", *B)]}, {"a": [_box("truck", *A, score=0.8)]})
    truck = r["per_class"]["truck"]
    assert (truck["tp"], truck["fp"], truck["fn"], truck["ap"]) == (0, 1, 1, 0.0)
    assert r["frames"] == 2


def test_bad_input_names_the_frame_and_box() -> None:
    with pytest.raises(InputError, match="frame 'f', box 0: category 'bus'"):
        evaluate_detections({"f": []}, {"f": [_box("bus", *A)]})
    with pytest.raises(InputError, match="frame 'f', box 0: score None"):
        evaluate_detections({"f": []}, {"f": [dict(_box("car", *A), score=None)]})
    with pytest.raises(InputError, match="x2 < x1"):
        evaluate_detections({"f": [_box("car", 50, 10, 10, 90)]}, {})
    with pytest.raises(InputError, match="without ground truth \\(first: 'zz'\\)"):
        evaluate_detections({"f": []}, {"zz": []})


# ---------------------------------------------------------------------------------------------
def test_objects_too_small_to_score_are_neither_found_nor_missed() -> None:
    tiny = _box("car", 200, 10, 205, 15)  # 5 px tall: ignored at min_height 10
    gt = {"f": [_box("car", *A), tiny]}
    preds = {"f": [_box("car", *A, score=0.9), _box("car", 300, 300, 304, 304, score=0.7),  # a tiny stray box
                   _box("car", *B, score=0.6)]}  # a stray box big enough to score: a false positive
    every = evaluate_detections(gt, preds)["per_class"]["car"]
    assert (every["gt"], every["tp"], every["fp"], every["fn"]) == (2, 1, 2, 1)
    assert every["ap50"] == pytest.approx(51 / 101)  # recall stops at 0.5
    scored = evaluate_detections(gt, preds, min_height=10)["per_class"]["car"]
    # The tiny ground truth drops out, and so does the tiny unmatched detection; B stays a false positive.
    assert (scored["gt"], scored["tp"], scored["fp"], scored["fn"]) == (1, 1, 1, 0)
    assert scored["ap50"] == pytest.approx(1.0)
    # A detection of the tiny object itself is not a false positive either.
    on_tiny = evaluate_detections(gt, {"f": [_box("car", *A, score=0.9), {**tiny, "score": 0.8}]}, min_height=10)
    assert (on_tiny["per_class"]["car"]["tp"], on_tiny["per_class"]["car"]["fp"]) == (1, 0)
    # Per-frame values, and the per-frame error listing agrees.
    assert evaluate_detections(gt, preds, min_height={"f": 10.0})["per_class"]["car"]["fn"] == 0
    assert compute_frame_errors(gt, preds, min_height=10) == {"f": {"fp": {"car": 1}, "fn": {}}}


def test_a_detection_takes_a_scored_box_before_an_ignored_one_with_higher_iou() -> None:
    scored, ignored = _box("car", 0, 0, 20, 20), _box("car", 0, 0, 20, 8)
    det = _box("car", 0, 0, 20, 12, score=0.9)  # IoU 0.6 with the scored box, 0.67 with the ignored one
    car = evaluate_detections({"f": [ignored, scored]}, {"f": [det]}, min_height=10)["per_class"]["car"]
    assert (car["gt"], car["tp"], car["fp"], car["fn"]) == (1, 1, 0, 0)


# Against pycocotools


def _random_set(seed: int, frames: int = 40) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Ground truth and noisy predictions: jittered true boxes (some of the wrong class), misses, background."""
    rng = np.random.default_rng(seed)
    gt: dict[str, list[dict[str, Any]]] = {}
    preds: dict[str, list[dict[str, Any]]] = {}
    for i in range(frames):
        g, p = [], []
        for _ in range(rng.integers(0, 7)):
            x1, y1 = rng.uniform(0, 300, 2)
            w, h = rng.uniform(4, 90, 2)
            c = CLASSES[rng.integers(0, 4)]
            g.append(_box(c, x1, y1, x1 + w, y1 + h))
            for _ in range(rng.choice([0, 1, 1, 1, 2])):  # missed, found, or found twice
                j = rng.normal(0, 1, 4) * [0.12 * w, 0.12 * h, 0.12 * w, 0.12 * h]
                cls = c if rng.random() < 0.85 else CLASSES[rng.integers(0, 4)]
                p.append(_box(cls, x1 + j[0], y1 + j[1], x1 + w + max(j[2], j[0] - w + 1),
                              y1 + h + max(j[3], j[1] - h + 1), float(rng.random())))
        for _ in range(rng.integers(0, 3)):
            x1, y1 = rng.uniform(0, 300, 2)
            w, h = rng.uniform(4, 90, 2)
            p.append(_box(CLASSES[rng.integers(0, 4)], x1, y1, x1 + w, y1 + h, float(rng.random())))
        gt[f"frame-{i:03d}"], preds[f"frame-{i:03d}"] = g, p
    return gt, preds


def _cocoeval(gt: dict[str, list[dict[str, Any]]], preds: dict[str, list[dict[str, Any]]], max_dets: int,
              min_height: float = 0.0) -> np.ndarray:
    """pycocotools' precision array [iou, recall, class] with one maxDets.

    ``min_height`` > 0 runs COCO's own area-range ignore rule on height: every box's "area" is set
    to 1 when it is at least that tall, else 0, and the area range is [0.5, inf).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # Image and annotation ids start at 1: COCOeval reads a matched gt id of 0 as "no match".
    image_ids = {fid: k + 1 for k, fid in enumerate(sorted(gt))}
    dataset: dict[str, Any] = {"images": [{"id": i, "width": 400, "height": 400} for i in image_ids.values()],
                               "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)],
                               "annotations": []}
    for fid, boxes in gt.items():
        for b in boxes:
            xywh = to_coco((b["x1"], b["y1"], b["x2"], b["y2"]))  # COCO is [x, y, w, h]
            dataset["annotations"].append({"id": len(dataset["annotations"]) + 1, "image_id": image_ids[fid],
                                           "category_id": CLASSES.index(b["category"]) + 1, "bbox": xywh,
                                           "area": float(xywh[3] >= min_height) if min_height else xywh[2] * xywh[3],
                                           "iscrowd": 0})
    dets = [{"image_id": image_ids[fid], "category_id": CLASSES.index(b["category"]) + 1,
             "bbox": to_coco((b["x1"], b["y1"], b["x2"], b["y2"])), "score": b["score"]}
            for fid, boxes in preds.items() for b in boxes]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        if min_height:
            for ann in coco_dt.anns.values():  # loadRes set area = w * h; COCOeval reads these dicts
                ann["area"] = float(ann["bbox"][3] >= min_height)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.maxDets = [max_dets]
        ev.params.areaRng = [[0.5, 1e10]] if min_height else [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
        ev.accumulate()
    return np.asarray(ev.eval["precision"][:, :, :, 0, 0])


@pytest.mark.parametrize(("seed", "max_dets", "min_height"),
                         [(0, 10_000, 0.0), (1, 10_000, 0.0), (2, 2, 0.0), (3, 10_000, 30.0), (4, 3, 25.0)])
def test_agrees_with_pycocotools(seed: int, max_dets: int, min_height: float) -> None:
    gt, preds = _random_set(seed)
    ours = evaluate_detections(gt, preds, CLASSES, COCO_IOU_THRESHOLDS, max_dets=max_dets, min_height=min_height)
    precision = _cocoeval(gt, preds, max_dets, min_height)
    if min_height:  # the set must hold ignored boxes on both sides for the comparison to mean something
        heights = [b["y2"] - b["y1"] for boxes in gt.values() for b in boxes]
        assert 0.2 < np.mean(np.array(heights) < min_height) < 0.6
    assert sum(len(v) for v in preds.values()) > 100 and ours["per_class"]["car"]["gt"] > 10
    for k, c in enumerate(CLASSES):
        coco_per_iou = [float(precision[t, :, k].mean()) for t in range(len(COCO_IOU_THRESHOLDS))]
        assert ours["per_class"][c]["ap_per_iou"] == pytest.approx(coco_per_iou, abs=1e-6), c
        assert ours["per_class"][c]["ap50"] == pytest.approx(coco_per_iou[0], abs=1e-6)
        assert ours["per_class"][c]["ap"] == pytest.approx(float(np.mean(coco_per_iou)), abs=1e-6)
    # COCO's summary numbers: AP@[.5:.95] and AP@.5 are means over classes (and IoUs) of the same array.
    assert ours["map"] == pytest.approx(float(precision.mean()), abs=1e-6)
    assert ours["map50"] == pytest.approx(float(precision[0].mean()), abs=1e-6)
    assert 0.05 < ours["map"] < 0.95  # a set where the comparison means something
