"""Label QA: each check on hand-worked frames, IoU by hand, tolerances at their boundary, and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from longtail.boxes import iou_matrix
from longtail.errors import SchemaError
from longtail.label.qa import CHECKS, QAConfig, as_label_box, check_frame, iou, run_qa

W, H = 100, 50


def box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, object]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


# ------------------------------------------------------------------------------------------- IoU

def test_iou_of_two_10px_squares_overlapping_by_half_is_50_over_150() -> None:
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_iou_of_boxes_sharing_only_an_edge_is_zero_in_pixel_edge_convention() -> None:
    # (0,0,10,10) covers pixel columns 0..9 and (10,0,20,10) columns 10..19: no pixel in common.
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0


def test_iou_matrix_by_hand() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 20]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [30, 30, 40, 40]], dtype=float)
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    # [0,0,10,10] vs [5,5,15,15]: 5x5 = 25 over 100 + 100 - 25 = 175.
    # [0,0,20,20] vs [0,0,10,10]: the small box inside, 100 / 400; vs [5,5,15,15]: also inside, 100 / 400.
    np.testing.assert_allclose(m, [[1.0, 25 / 175, 0.0], [0.25, 0.25, 0.0]])


def test_iou_of_degenerate_inverted_or_non_finite_boxes_is_zero() -> None:
    m = iou_matrix(np.array([[5, 5, 5, 20], [20, 0, 0, 10], [math.nan, 0, 10, 10], [0, 0, math.inf, 10]]),
                   np.array([[0, 0, 30, 30]]))
    np.testing.assert_array_equal(m, [[0.0], [0.0], [0.0], [0.0]])


def test_iou_matrix_with_no_boxes_has_an_empty_side() -> None:
    assert iou_matrix(np.zeros((0, 4)), np.array([[0, 0, 1, 1]])).shape == (0, 1)


def test_iou_accepts_label_boxes_and_tuples_alike() -> None:
    assert iou(box("car", 0, 0, 10, 10), ("truck", 5, 0, 15, 10, 0.3)) == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------ per check

def test_clean_frame_passes() -> None:
    # The labeler nudged a confident pre-label: IoU 38*30 / 40*30 = 0.95.
    assert check_frame([box("car", 10, 10, 50, 40), box("pedestrian", 60, 5, 70, 45)],
                       [box("car", 12, 10, 50, 40, 0.9)], W, H) == []


def test_zero_width_box_is_degenerate() -> None:
    reasons = check_frame([box("car", 0, 0, 20, 20), box("car", 1, 1, 5, 5), box("car", 10, 5, 10, 40)], [], W, H)
    assert reasons == ["box 2 (car 10.0,5.0,10.0,40.0) is degenerate: 0.0 px wide (min 2.0)"]


def test_min_box_size_boundary() -> None:
    assert check_frame([box("car", 10, 5, 12, 7)], [], W, H) == []  # exactly 2.0 x 2.0
    assert check_frame([box("car", 10, 5, 11.9, 7)], [], W, H) == [
        "box 0 (car 10.0,5.0,11.9,7.0) is degenerate: 1.9 px wide (min 2.0)"]


def test_inverted_box_is_degenerate_and_says_so() -> None:
    assert check_frame([box("truck", 30, 40, 10, 10)], [], W, H) == [
        "box 0 (truck 30.0,40.0,10.0,10.0) is degenerate: -20.0 px wide (x2 is left of x1) and "
        "-30.0 px tall (y2 is above y1) (min 2.0)"]


def test_out_of_image_beyond_tolerance_names_the_sides() -> None:
    assert check_frame([box("car", -1.5, 0, 20, 20), box("car", 80, 10, 102, 52)], [], W, H) == [
        "box 0 (car -1.5,0.0,20.0,20.0) is outside the 100x50 image by 1.5 px on the left (tolerance 1.0)",
        "box 1 (car 80.0,10.0,102.0,52.0) is outside the 100x50 image by 2.0 px on the right, "
        "2.0 px on the bottom (tolerance 1.0)",
    ]


def test_out_of_image_within_tolerance_passes() -> None:
    # 1.0 px beyond every edge is exactly the tolerance.
    assert check_frame([box("car", -1, -1, 101, 51)], [], W, H) == []
    assert check_frame([box("car", -1, -1, 101, 51)], [], W, H, QAConfig(out_of_image_tolerance_px=0.5)) == [
        "box 0 (car -1.0,-1.0,101.0,51.0) is outside the 100x50 image by 1.0 px on the left, 1.0 px on the top, "
        "1.0 px on the right, 1.0 px on the bottom (tolerance 0.5)"]


def test_unknown_class_lists_the_valid_ones() -> None:
    assert check_frame([box("bus", 10, 10, 30, 30)], [], W, H) == [
        "box 0 (bus 10.0,10.0,30.0,30.0) has unknown class 'bus'; valid classes are car, truck, pedestrian, cyclist"]
    assert check_frame([box("truck", 10, 10, 30, 30)], [], W, H, QAConfig(classes=("car",))) == [
        "box 0 (truck 10.0,10.0,30.0,30.0) has unknown class 'truck'; valid classes are car"]


def test_non_finite_coordinates_are_named_without_geometry_findings() -> None:
    assert check_frame([box("car", math.nan, 0, 10, 10), box("car", 0, 0, 10, math.inf)], [], W, H) == [
        "box 0 (car nan,0.0,10.0,10.0) has non-finite coordinate(s) x1",
        "box 1 (car 0.0,0.0,10.0,inf) has non-finite coordinate(s) y2",
    ]


def test_confident_prelabel_moved_a_third_of_its_width_still_agrees() -> None:
    # IoU of (0,0,10,10) and (5,0,15,10) is 1/3 >= 0.3.
    assert check_frame([box("car", 5, 0, 15, 10)], [box("car", 0, 0, 10, 10, 0.9)], W, H) == []


def test_confident_prelabel_without_an_overlapping_box_disagrees_strongly() -> None:
    # (0,0,10,10) vs (7,0,17,10): 30 / 170 = 0.18 < 0.3.
    assert check_frame([box("car", 7, 0, 17, 10)], [box("car", 0, 0, 10, 10, 0.9)], W, H) == [
        "pre-label 0 (car 0.0,0.0,10.0,10.0, score 0.90) disagrees strongly with the labels: no car box overlaps it "
        "with IoU >= 0.30 (best is box 0 with IoU 0.18)"]


def test_confident_prelabel_needs_a_box_of_its_own_class() -> None:
    assert check_frame([box("pedestrian", 0, 0, 10, 10)], [box("cyclist", 0, 0, 10, 10, 0.75)], W, H) == [
        "pre-label 0 (cyclist 0.0,0.0,10.0,10.0, score 0.75) disagrees strongly with the labels: no cyclist box "
        "overlaps it with IoU >= 0.30 (no cyclist box was drawn)"]


def test_unconfident_prelabel_may_be_dropped() -> None:
    assert check_frame([box("car", 50, 0, 60, 10)], [box("car", 0, 0, 10, 10, 0.69)], W, H) == []


def test_empty_frame_the_model_saw_objects_in_is_held_once() -> None:
    prelabels = [box("car", 0, 0, 10, 10, 0.9), box("truck", 20, 0, 40, 20, 0.55), box("car", 50, 0, 60, 10, 0.3)]
    assert check_frame([], prelabels, W, H) == [
        "labeler drew nothing but the model saw 2 object(s) with confidence >= 0.50 (car 0.90, truck 0.55)"]


def test_empty_frame_with_only_unconfident_prelabels_passes() -> None:
    assert check_frame([], [box("car", 0, 0, 10, 10, 0.49)], W, H) == []
    assert check_frame([], [], W, H) == []


def test_tuples_are_boxes_too() -> None:
    assert check_frame([("car", 10, 5, 10, 40)], [], W, H) == [
        "box 0 (car 10.0,5.0,10.0,40.0) is degenerate: 0.0 px wide (min 2.0)"]
    assert as_label_box(("car", 1, 2, 3, 4)) == box("car", 1, 2, 3, 4, 1.0)


def test_a_box_without_coordinates_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"lacks field\(s\) \['x2', 'y2'\]"):
        check_frame([{"category": "car", "x1": 0, "y1": 0}], [], W, H)


def test_config_is_frozen_and_validated() -> None:
    cfg = QAConfig()
    with pytest.raises(ValidationError):
        cfg.min_box_px = 3.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="disagreement_iou"):
        QAConfig(disagreement_iou=0.0)
    with pytest.raises(ValidationError, match="classes must be distinct"):
        QAConfig(classes=("car", "car"))
    with pytest.raises(ValidationError, match="extra"):
        QAConfig(min_box=3)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------- report

def test_run_qa_counts_findings_and_frames_per_check() -> None:
    rows = [
        {"frame_id": "clean", "boxes": [box("car", 10, 10, 50, 40)], "prelabels": [box("car", 10, 10, 50, 40, 0.9)],
         "width": W, "height": H},
        {"frame_id": "messy", "boxes": [box("car", 10, 5, 10, 40), box("car", 0, 0, 1, 1), box("bus", 5, 5, 20, 20)],
         "prelabels": [], "width": W, "height": H},
        {"frame_id": "skipped", "boxes": [], "prelabels": [box("car", 0, 0, 10, 10, 0.8)], "width": W, "height": H},
        {"frame_id": "empty", "boxes": [], "prelabels": [], "width": W, "height": H},
    ]
    accepted, reasons, report = run_qa(rows, QAConfig())
    assert accepted == [True, False, False, True]
    assert [len(r) for r in reasons] == [0, 3, 1, 0]
    assert (report["frames"], report["accepted"], report["held"]) == (4, 2, 2)
    assert set(report["checks"]) == set(CHECKS)
    assert report["checks"]["degenerate"] == {"findings": 2, "frames": 1}
    assert report["checks"]["unknown_class"] == {"findings": 1, "frames": 1}
    assert report["checks"]["empty_but_model_saw"] == {"findings": 1, "frames": 1}
    assert report["checks"]["disagrees_with_prelabel"] == {"findings": 0, "frames": 0}
    assert [h["frame_id"] for h in report["held_frames"]] == ["messy", "skipped"]
    assert report["held_frames"][1]["reasons"] == reasons[2]
    assert report["config"]["min_box_px"] == 2.0
    json.dumps(report)  # goes to qa.json as it is


def test_run_qa_rejects_a_row_without_its_image_size() -> None:
    with pytest.raises(SchemaError, match=r"label row 0 lacks key\(s\) \['width', 'height'\]"):
        run_qa([{"frame_id": "f", "boxes": [], "prelabels": []}])
    with pytest.raises(SchemaError, match=r"frame f\): image size 0x50 must be > 0"):
        run_qa([{"frame_id": "f", "boxes": [], "prelabels": [], "width": 0, "height": 50}])
