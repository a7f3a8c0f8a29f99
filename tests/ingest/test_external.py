"""Real KITTI and nuScenes samples (test fixtures only) imported into the frame index."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from longtail.catalog.frames import load_frame_index
from longtail.errors import InputError
from longtail.ingest.external import import_dataset


def test_kitti_import_keeps_every_box_per_class_and_coordinate(real_data: Path, tmp_path: Path) -> None:
    result = import_dataset("kitti", real_data / "kitti", tmp_path)
    assert result.status == "ingested" and result.frames_kept == 7
    df = load_frame_index(tmp_path)
    labels = [lab for row in df.labels for lab in row]
    # The boxes-per-class table of shared/data/real/README.md.
    assert Counter(lab["source_class"] for lab in labels) == {
        "Car": 11, "Pedestrian": 2, "Cyclist": 1, "Truck": 1, "Misc": 1, "DontCare": 19}
    assert sum(lab["ignore"] for lab in labels) == 19
    assert Counter(lab["category"] for lab in labels if lab["category"]) == {
        "car": 11, "pedestrian": 2, "cyclist": 1, "truck": 1}
    # Sizes come from each image: 000000 is 1224x370, the others 1242x375.
    assert df.set_index("timestamp_ns").loc[0, ["width", "height"]].tolist() == [1224, 370]
    assert set(df[df.timestamp_ns != 0].width) == {1242}
    # Every box against its file: KITTI's inclusive x2, y2 become exclusive (+1), clipped to the image.
    for row in df.itertuples():
        lines = (real_data / "kitti" / "training" / "label_2" / f"{row.timestamp_ns:06d}.txt").read_text().split("\n")
        expected = [line.split() for line in lines if line.strip()]
        assert len(row.labels) == len(expected)
        for lab, parts in zip(row.labels, expected, strict=True):
            x1, y1, x2, y2 = (float(v) for v in parts[4:8])
            assert lab["source_class"] == parts[0]
            assert (lab["x1"], lab["y1"]) == pytest.approx((x1, y1), abs=1e-3)
            assert lab["x2"] == pytest.approx(min(x2 + 1, row.width), abs=1e-3)
            assert lab["y2"] == pytest.approx(min(y2 + 1, row.height), abs=1e-3)
    # The first pedestrian of 000000, worked out by hand: 712.40 143.00 810.73 307.92.
    ped = df.set_index("timestamp_ns").loc[0, "labels"][0]
    assert (ped["x1"], ped["y1"], ped["x2"], ped["y2"]) == pytest.approx((712.40, 143.0, 811.73, 308.92), abs=1e-3)
    assert import_dataset("kitti", real_data / "kitti", tmp_path).status == "skipped"


def test_nuscenes_import_matches_the_coco_annotations(real_data: Path, tmp_path: Path) -> None:
    result = import_dataset("nuscenes", real_data / "nuscenes_sample", tmp_path)
    assert result.status == "ingested" and result.frames_kept == 6
    df = load_frame_index(tmp_path)
    assert set(df.camera) == {"CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT",
                              "CAM_BACK_RIGHT"}
    assert set(zip(df.width, df.height, strict=True)) == {(1600, 900)}
    labels = [lab for row in df.labels for lab in row]
    assert Counter(lab["source_class"] for lab in labels) == {
        "car": 11, "truck": 3, "bus": 1, "construction_vehicle": 1, "bicycle": 1, "pedestrian": 36,
        "traffic_cone": 3, "barrier": 28}
    coco = json.loads((real_data / "nuscenes_sample" / "annotations_2d.json").read_text())
    by_camera = {img["camera"]: img["id"] for img in coco["images"]}
    for row in df.itertuples():
        anns = [a for a in coco["annotations"] if a["image_id"] == by_camera[row.camera]]
        assert len(row.labels) == len(anns)
        for lab, a in zip(row.labels, anns, strict=True):
            x, y, w, h = a["bbox"]
            assert (lab["x1"], lab["y1"], lab["x2"], lab["y2"]) == pytest.approx((x, y, x + w, y + h), abs=1e-3)
    assert df.timestamp_ns.min() == 1532402927604844 * 1000


def test_import_errors_name_the_file_and_the_fix(real_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected training/image_2 and training/label_2"):
        import_dataset("kitti", real_data / "nuscenes_sample", tmp_path)
    bad = tmp_path / "kitti" / "training"
    (bad / "image_2").mkdir(parents=True)
    (bad / "label_2").mkdir()
    (bad / "image_2" / "000000.png").write_bytes((real_data / "kitti/training/image_2/000000.png").read_bytes())
    (bad / "label_2" / "000000.txt").write_text("Car 0.00 0 1.0 10 20\n")
    with pytest.raises(InputError, match=r"000000.txt:1: a KITTI label has 15 fields"):
        import_dataset("kitti", tmp_path / "kitti", tmp_path / "data")
    assert not (tmp_path / "data" / "index").exists(), "nothing is half-imported"
