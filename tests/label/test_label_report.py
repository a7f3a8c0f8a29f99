"""The label notebook's tables and gallery, on a label set and a dataset version written by hand:
real JPEG frames, real QA findings, expected values worked out by hand."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longtail.errors import InputError
from longtail.label.qa import CHECKS, run_qa
from longtail.label.report import (
    CHECK_TEXT,
    Pending,
    QATables,
    cost_table,
    label_summary,
    labeled_gallery,
    qa_table,
    version_summary,
    version_table,
)
from longtail.label.run import LabelRun
from longtail.schemas import LABEL_SET_KEYS, LABEL_SET_SCHEMA
from longtail.storage import sha256_file

BATCH = "batch-00000000000000aa"
W, H = 64, 48
GREY = 40


def _box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


# Four frames: one clean, three with a QA finding each.
FRAMES = {
    "f0": ([_box("car", 8, 8, 40, 32)], []),
    "f1": ([_box("pedestrian", 10, 5, 10, 30)], []),                   # 0 px wide: degenerate
    "f2": ([], [_box("truck", 0, 0, 20, 20, 0.9)]),                     # nothing drawn, the model saw a truck
    "f3": ([_box("car", 2, 2, 12, 12), _box("cyclist", 50, 10, 70, 40)], []),  # 6 px beyond the right edge
}


@pytest.fixture
def label_set(tmp_path: Path) -> Path:
    """A data root with four grey JPEG frames and batch BATCH's label set (labels, QA report, manifest last)."""
    root = tmp_path / "data"
    rows = []
    for k, (fid, (boxes, pre)) in enumerate(FRAMES.items()):
        ok, jpeg = cv2.imencode(".jpg", np.full((H, W, 3), GREY, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        rel = f"frames/{fid}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(jpeg.tobytes())
        rows.append({"frame_id": fid, "image_sha256": fid * 32, "store_path": rel, "log_id": "log-1",
                     "drive_id": "car-001_drive000", "timestamp_ns": 1_700_000_000_000_000_000 + k,
                     "width": W, "height": H, "boxes": boxes, "prelabels": pre, "annotator": "ann@example.com"})
    accepted, reasons, report = run_qa(rows)
    for row, a, why in zip(rows, accepted, reasons, strict=True):
        row["accepted"], row["qa_reasons"] = a, why
    folder = root / "labels" / BATCH
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LABEL_SET_SCHEMA), folder / "labels.parquet")
    (folder / "qa.json").write_text(json.dumps(report))
    manifest = dict.fromkeys(LABEL_SET_KEYS)
    manifest.update(batch_id=BATCH, digest=sha256_file(folder / "labels.parquet"), source="labelstudio",
                    created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC).isoformat(), frames=4,
                    accepted=sum(accepted), held=4 - sum(accepted))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_cost_table_counts_each_kind_of_work_for_the_batch_and_per_frame() -> None:
    manifest = {"cost": {"frames": 4, "accepted": 2, "moved": 1, "relabeled": 1, "deleted": 3, "added": 6,
                         "boxes": 10, "seconds": 120.0}}
    table = cost_table(manifest)
    assert not isinstance(table, Pending)
    assert list(table.columns) == ["batch (4 frames)", "per frame"]
    batch, per_frame = table["batch (4 frames)"].to_dict(), table["per frame"].to_dict()
    assert batch == {"boxes drawn from scratch": 6, "pre-labels moved or resized": 1,
                     "pre-labels given another class": 1, "pre-labels deleted": 3,
                     "pre-labels accepted as they were": 2, "boxes submitted": 10, "estimated minutes": 2.0}
    assert per_frame["boxes drawn from scratch"] == 1.5 and per_frame["pre-labels deleted"] == 0.75
    assert per_frame["boxes submitted"] == 2.5 and per_frame["estimated minutes"] == 0.5
    assert str(table.loc["boxes submitted", "batch (4 frames)"]) == "10", "counts stay integers"


def test_cost_table_of_no_frames_is_all_zero_and_of_no_label_set_is_pending() -> None:
    table = cost_table({"cost": {"frames": 0, "accepted": 0, "moved": 0, "relabeled": 0, "deleted": 0, "added": 0,
                                 "boxes": 0, "seconds": 0.0}})
    assert not isinstance(table, Pending)
    assert table["per frame"].tolist() == [0.0] * 7
    assert "still being labeled" in cost_table(None)._repr_html_()  # type: ignore[union-attr]


def test_qa_table_lists_every_check_then_the_held_frames_with_their_reasons(label_set: Path) -> None:
    qa = qa_table(label_set, BATCH)
    assert isinstance(qa, QATables)
    assert list(qa.checks.index) == list(CHECKS) and set(CHECK_TEXT) == set(CHECKS)
    assert qa.checks["findings"].to_dict() == {"non_finite": 0, "degenerate": 1, "out_of_image": 1, "unknown_class": 0,
                                               "disagrees_with_prelabel": 0, "empty_but_model_saw": 1}
    assert qa.checks["frames held"].sum() == 3
    assert (qa.accepted, qa.frames) == (1, 4)
    assert qa.held["frame_id"].tolist() == ["f1", "f2", "f3"]
    reasons = dict(zip(qa.held.frame_id, qa.held.reasons, strict=True))
    assert "box 0 (pedestrian 10.0,5.0,10.0,30.0) is degenerate: 0.0 px wide" in reasons["f1"]
    assert "labeler drew nothing but the model saw 1 object(s)" in reasons["f2"]
    assert "box 1 (cyclist 50.0,10.0,70.0,40.0) is outside the 64x48 image by 6.0 px on the right" in reasons["f3"]
    page = qa._repr_html_()
    assert "<b>1 of 4</b>" in page and "3 are held for review" in page and "Held frames" in page
    assert "a box is too thin or inverted" in page


def test_qa_table_of_a_batch_not_pulled_yet_is_pending(tmp_path: Path) -> None:
    assert isinstance(qa_table(tmp_path, BATCH), Pending)
    assert isinstance(labeled_gallery(tmp_path, BATCH), Pending)


def _thumbnails(html: str) -> dict[str, np.ndarray]:
    found = re.findall(r'src="data:image/jpeg;base64,([^"]+)" width="240" alt="frame (\w+)"', html)
    return {fid: cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR) for b64, fid in found}


def _near(image: np.ndarray, x: int, y: int, bgr: tuple[int, int, int]) -> bool:
    """Some pixel within 2 px of (x, y) has the colour ``bgr`` (give or take JPEG's blur)."""
    patch = image[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).astype(int)
    return bool((np.abs(patch - np.array(bgr)).max(axis=1) < 60).any())


def test_labeled_gallery_shows_held_frames_first_with_their_boxes_in_class_colours(label_set: Path) -> None:
    g = labeled_gallery(label_set, BATCH)
    assert not isinstance(g, Pending)
    assert g.frame_ids == ("f1", "f2", "f3", "f0")
    assert "4 of 4 frames, held by QA first" in g.html
    assert "1 boxes, by ann@example.com; accepted" in g.html
    assert "held: box 0 (pedestrian 10.0,5.0,10.0,30.0) is degenerate" in g.html
    assert "&#9632; pedestrian" in g.html  # the legend
    thumbs = _thumbnails(g.html)
    assert set(thumbs) == {"f0", "f1", "f2", "f3"} and thumbs["f0"].shape == (180, 240, 3)
    s = 240 / W  # thumbnail pixels per image pixel
    # f0's car (green): its left edge at x=8, its top at y=8; the inside stays grey.
    assert _near(thumbs["f0"], round(8 * s), round(20 * s), (60, 220, 60))
    assert _near(thumbs["f0"], round(24 * s), round(8 * s), (60, 220, 60))
    assert not _near(thumbs["f0"], round(24 * s), round(20 * s), (60, 220, 60))
    assert np.abs(thumbs["f0"][round(20 * s), round(24 * s)].astype(int) - GREY).max() < 20
    # f3's cyclist (yellow) and f1's zero-width pedestrian (red, a line); f2 has no box at all.
    assert _near(thumbs["f3"], round(50 * s), round(25 * s), (40, 220, 240))
    assert _near(thumbs["f1"], round(10 * s), round(20 * s), (40, 40, 240))
    assert np.abs(thumbs["f2"].astype(int) - GREY).max() < 20
    assert labeled_gallery(label_set, BATCH, limit=2).frame_ids == ("f1", "f2")  # type: ignore[union-attr]


def test_labeled_gallery_refuses_a_label_set_changed_after_it_was_written(label_set: Path) -> None:
    path = label_set / "labels" / BATCH / "labels.parquet"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(InputError, match=r"labels.parquet: sha256 differs .*longtail label pull"):
        labeled_gallery(label_set, BATCH)


VERSION = {
    "version_id": "v-0123456789abcdef", "created_at": "2026-11-01T00:00:00+00:00", "frames": 7, "frames_held": 2,
    "counts": {"train": 3, "val": 1, "test_longtail": 1, "test_common": 2},
    "logs": {"train": ["a", "b"], "val": ["c"], "test_longtail": ["d"], "test_common": ["d", "e"]},
    "categories": {"train": {"car": 5, "truck": 1, "pedestrian": 0, "cyclist": 0},
                   "val": {"car": 2, "truck": 0, "pedestrian": 1, "cyclist": 0},
                   "test_longtail": {"car": 0, "truck": 0, "pedestrian": 2, "cyclist": 1},
                   "test_common": {"car": 4, "truck": 2, "pedestrian": 0, "cyclist": 0}},
    "images": {"files": 7, "bytes": 7000, "hardlinked": 6, "copied": 1},
    "batches": ["batch-1", "batch-2"], "lineage": {"batches": {}, "drive_logs": ["a", "b", "c", "d", "e"]},
    "long_tail_rule": "the frame has at least one trigger", "parent": None,
}


def test_version_table_counts_frames_logs_and_boxes_per_split() -> None:
    table = version_table(VERSION)
    assert not isinstance(table, Pending)
    assert list(table.index) == ["train", "val", "test_longtail", "test_common", "all"]
    assert list(table.columns) == ["frames", "drive logs", "car boxes", "truck boxes", "pedestrian boxes",
                                   "cyclist boxes"]
    assert table.loc["test_common"].tolist() == [2, 2, 4, 2, 0, 0]
    # Log d holds frames of both test suites: five drive logs in all, not six.
    assert table.loc["all"].tolist() == [7, 5, 11, 3, 3, 1]
    assert isinstance(version_table(None), Pending)


def test_version_summary_names_the_batches_the_parent_and_the_dvc_record() -> None:
    dvc = {"dvc_file": "datasets/v-0123456789abcdef.dvc", "md5": "abc.dir", "remote": "/tmp/remote", "pushed": 9}
    col = version_summary(VERSION, dvc)
    assert not isinstance(col, Pending)
    rows = col["dataset version"].to_dict()
    assert rows["version"] == "v-0123456789abcdef" and rows["labeling batches"] == "batch-1, batch-2"
    assert rows["frames held by QA (left out)"] == 2 and rows["drive logs"] == 5
    assert rows["images"] == "7 (6 hardlinked from the frame store)"
    assert rows["previous version"] == "none (first version)"
    assert (rows["DVC record"], rows["DVC hash"], rows["DVC remote"]) == (dvc["dvc_file"], "abc.dir", "/tmp/remote")
    assert "DVC record" not in version_summary({**VERSION, "parent": "v-1"})["dataset version"]  # type: ignore[index]


def test_label_summary_while_people_label_and_once_the_version_is_built() -> None:
    push = {"prelabel_model": None, "project_id": 3}
    waiting = LabelRun(BATCH, "http://127.0.0.1:8080/projects/3", False, 10, 4, push, None, None, None)
    assert waiting.waiting
    rows = label_summary(waiting)["label stage"].to_dict()
    assert rows["labeled by"] == "people in Label Studio" and rows["frames submitted"] == "4 of 10"
    assert rows["dataset version"] == "- (waiting for labels)" and rows["accepted by QA"] == "-"
    assert rows["pre-labels"] == "none (no model trained yet)"
    done = LabelRun(BATCH, "http://127.0.0.1:8080/projects/3", True, 10, 10, push, {"accepted": 9, "held": 1},
                    VERSION, {"dvc_file": "datasets/v-0123456789abcdef.dvc", "remote": "/r"})
    assert not done.waiting
    rows = label_summary(done)["label stage"].to_dict()
    assert rows["labeled by"] == "simulated labeler" and (rows["accepted by QA"], rows["held by QA"]) == (9, 1)
    assert rows["dataset version"] == "v-0123456789abcdef" and rows["frames in the version"] == 7
    assert rows["DVC record"] == "datasets/v-0123456789abcdef.dvc"
