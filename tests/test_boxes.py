"""Box converters, each tested both ways with values worked out by hand."""

from __future__ import annotations

import pytest

from longtail import boxes


def test_kitti_boxes_are_inclusive_pixels() -> None:
    # KITTI's (10, 20, 19, 29) covers pixels 10..19 and 20..29: 10 x 10 pixels.
    assert boxes.from_kitti(10, 20, 19, 29) == (10, 20, 20, 30)
    assert boxes.area(boxes.from_kitti(10, 20, 19, 29)) == 100
    assert boxes.to_kitti((10, 20, 20, 30)) == (10, 20, 19, 29)


def test_coco_is_corner_plus_size() -> None:
    assert boxes.from_coco([5.5, 6.0, 10.0, 4.0]) == (5.5, 6.0, 15.5, 10.0)
    assert boxes.to_coco((5.5, 6.0, 15.5, 10.0)) == [5.5, 6.0, 10.0, 4.0]


def test_fiftyone_is_relative_to_the_image() -> None:
    assert boxes.to_fiftyone((64, 48, 192, 144), 640, 480) == pytest.approx([0.1, 0.1, 0.2, 0.2])
    assert boxes.from_fiftyone([0.1, 0.1, 0.2, 0.2], 640, 480) == pytest.approx((64, 48, 192, 144))


@pytest.mark.parametrize("box", [(0.0, 0.0, 1.0, 1.0), (12.25, 7.5, 300.0, 191.0), (639.0, 383.0, 640.0, 384.0)])
def test_round_trips_are_exact(box: tuple[float, float, float, float]) -> None:
    assert boxes.from_kitti(*boxes.to_kitti(box)) == box
    assert boxes.from_coco(boxes.to_coco(box)) == box
    assert boxes.from_fiftyone(boxes.to_fiftyone(box, 640, 384), 640, 384) == pytest.approx(box)


def test_clip_and_area() -> None:
    assert boxes.clip((-5, -5, 700, 400), 640, 384) == (0, 0, 640, 384)
    assert boxes.area((5, 5, 3, 9)) == 0.0
