"""Shadow mode's one definition of a disagreement, on hand-built frames with IoUs worked out by hand."""

from __future__ import annotations

import pytest

from longtail.detector.shadow import ObjectDisagreement, compare_detections


def _box(cat: str, x1: float, y1: float, x2: float, y2: float, score: float = 0.9) -> dict:
    return {"category": cat, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


def test_an_object_seen_by_one_side_only_is_unseen_by_the_other() -> None:
    ped = _box("pedestrian", 60, 10, 70, 40)
    assert compare_detections([ped], []) == [
        ObjectDisagreement("acting", "unseen", "pedestrian", "pedestrian", 0.0, (60.0, 10.0, 70.0, 40.0))]
    (d,) = compare_detections([], [ped])
    assert (d.seen_by, d.reason, d.group) == ("challenger", "unseen", "pedestrian")


def test_matched_boxes_overlapping_less_than_the_threshold_are_far_apart() -> None:
    a, b = [_box("car", 0, 0, 40, 40)], [_box("car", 25, 0, 65, 40)]
    # IoU = 15*40 / (40*40 + 40*40 - 15*40) = 600 / 2600 = 0.2308: matched (>= 0.1), far apart (< 0.3).
    (d,) = compare_detections(a, b, iou=0.3)
    assert (d.seen_by, d.reason, d.group, d.category, d.box) == ("both", "far_apart", "vehicle", "car", (0, 0, 40, 40))
    assert d.iou == pytest.approx(600 / 2600)
    assert compare_detections(a, b, iou=0.2) == []
    assert d.to_json() == {"seen_by": "both", "reason": "far_apart", "category": "car", "group": "vehicle",
                           "iou": 0.2308, "x1": 0.0, "y1": 0.0, "x2": 40.0, "y2": 40.0}


def test_boxes_overlapping_under_the_match_iou_are_two_unseen_objects() -> None:
    # IoU = 4*40 / (3200 - 160) = 0.0526 < 0.1: not the same object.
    found = compare_detections([_box("car", 0, 0, 40, 40)], [_box("car", 36, 0, 76, 40)])
    assert [(d.seen_by, d.reason) for d in found] == [("acting", "unseen"), ("challenger", "unseen")]
    assert [d.iou for d in found] == pytest.approx([160 / 3040] * 2)


def test_objects_below_the_minimum_height_are_ignored() -> None:
    tiny = [_box("cyclist", 10, 10, 14, 14)]  # 4 px tall
    assert compare_detections(tiny, [], min_height_px=5) == []
    assert [d.seen_by for d in compare_detections([], tiny, min_height_px=4)] == ["challenger"]


def test_a_car_and_a_truck_are_one_vehicle_but_not_a_pedestrian() -> None:
    # IoU 39*30 / (41*30) = 0.95: a truck called a car is no disagreement.
    assert compare_detections([_box("car", 10, 10, 50, 40)], [_box("truck", 11, 10, 51, 40)]) == []
    found = compare_detections([_box("car", 10, 10, 50, 40)], [_box("pedestrian", 10, 10, 50, 40)])
    assert [(d.seen_by, d.group) for d in found] == [("challenger", "pedestrian"), ("acting", "vehicle")]


def test_each_object_matches_once_the_highest_score_first() -> None:
    chal = [_box("pedestrian", 0, 0, 10, 30)]
    # The 0.9 box (IoU 8*30 / 360 = 0.667) takes the challenger's pedestrian before the 0.6 box that
    # fits it exactly; the 0.6 box is then an object the challenger does not see (IoU 1 with a taken box).
    acting = [_box("pedestrian", 0, 0, 10, 30, 0.6), _box("pedestrian", 2, 0, 12, 30, 0.9)]
    (d,) = compare_detections(acting, chal)
    assert (d.seen_by, d.reason, d.box, d.iou) == ("acting", "unseen", (0, 0, 10, 30), 1.0)


def test_an_in_path_filter_limits_what_counts_but_not_what_matches() -> None:
    def in_path(box: dict) -> bool:  # vehicles count right of x = 100 only; others everywhere
        return box["category"] not in ("car", "truck") or box["x1"] >= 100

    assert compare_detections([_box("car", 0, 0, 40, 40)], [], critical=in_path) == []
    assert len(compare_detections([_box("car", 120, 0, 160, 40)], [], critical=in_path)) == 1
    assert len(compare_detections([_box("pedestrian", 0, 0, 10, 30)], [], critical=in_path)) == 1
    # One side places the car just outside the path, the other just inside (IoU 35/45): the same object.
    assert compare_detections([_box("car", 95, 0, 135, 40)], [_box("car", 100, 0, 140, 40)], critical=in_path) == []
    # A far-apart pair counts when either box is critical (IoU 600/2600 as above).
    (d,) = compare_detections([_box("car", 90, 0, 130, 40)], [_box("car", 115, 0, 155, 40)], critical=in_path)
    assert (d.reason, d.box) == ("far_apart", (90, 0, 130, 40))
