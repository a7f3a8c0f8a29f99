"""The frames people see: blurred copies of a batch's frames, the originals kept, and the record of
what was blurred by which detector (`longtail.label.blur`). Real images: a KITTI frame (test
fixture licence: CC BY-NC-SA 3.0) and scikit-image's bundled astronaut portrait."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from longtail.label.blur import PRIVACY_FILE, prepare_shown, privacy_summary, shown_store_paths, shown_to_people
from longtail.privacy import PrivacyConfig, make_detector
from longtail.storage import sha256_file


@pytest.fixture
def store(tmp_path: Path, real_data: Path) -> dict[str, tuple[str, str]]:
    """Three frames in a data root's frame store: a portrait (a face), a KITTI street, a blank wall."""
    from skimage import data

    frames_dir = tmp_path / "data" / "frames"
    frames_dir.mkdir(parents=True)
    portrait = frames_dir / "portrait.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    street = frames_dir / "street.png"
    shutil.copyfile(real_data / "kitti/training/image_2/000008.png", street)
    wall = frames_dir / "wall.jpg"
    cv2.imwrite(str(wall), np.full((120, 160, 3), 128, np.uint8))
    return {fid: (str(path), sha256_file(path)) for fid, path in
            (("f-portrait", portrait), ("f-street", street), ("f-wall", wall))}


def test_people_see_blurred_copies_and_the_store_keeps_the_originals(tmp_path: Path, store: dict) -> None:
    root = tmp_path / "data"
    before = {fid: sha256_file(path) for fid, (path, _) in store.items()}
    shown, record = prepare_shown(root, "batch-1", store)
    # The frame store is untouched.
    assert {fid: sha256_file(path) for fid, (path, _) in store.items()} == before
    assert set(shown) == set(store)
    assert all(Path(p).parent == (root / "labels/batch-1/shown").resolve() for p in shown.values())
    on_disk = json.loads((root / "labels/batch-1" / PRIVACY_FILE).read_text())
    assert on_disk == record and record["blurred"] is True and record["frames"] == 3
    for fid, (path, sha) in store.items():
        entry = record["per_frame"][fid]
        assert entry["image_sha256"] == sha and entry["shown_sha256"] == sha256_file(shown[fid])
        original, seen = cv2.imread(path), cv2.imread(shown[fid])
        if not entry["regions"]:  # nothing found: the very same bytes
            assert entry["shown_sha256"] == sha
            continue
        # PNG copies: every pixel outside the recorded regions is the original's, every region changed.
        mask = np.ones(original.shape[:2], bool)
        for r in entry["regions"]:
            mask[r["y1"]:r["y2"], r["x1"]:r["x2"]] = False
            assert not np.array_equal(seen[r["y1"]:r["y2"], r["x1"]:r["x2"]], original[r["y1"]:r["y2"], r["x1"]:r["x2"]])
        assert np.array_equal(seen[mask], original[mask])
    assert any(r["kind"] == "face" for r in record["per_frame"]["f-portrait"]["regions"])
    assert record["per_frame"]["f-wall"]["regions"] == []
    counts = {k: sum(r["kind"] == k for f in record["per_frame"].values() for r in f["regions"]) for k in ("face", "plate")}
    assert record["regions"] == counts
    assert record["frames_with_regions"] == sum(bool(f["regions"]) for f in record["per_frame"].values())
    # Reports show what people saw: the copies, by their path in the data root.
    assert {f: (root / p).resolve() for f, p in shown_store_paths(root, "batch-1").items()} == \
           {f: Path(p) for f, p in shown.items()}


def test_the_batch_records_the_detector_and_what_labelers_saw(tmp_path: Path, store: dict) -> None:
    config = PrivacyConfig(min_neighbors=4, margin=0.1)
    _, record = prepare_shown(tmp_path / "data", "batch-2", store, config)
    detector = record["detector"]
    assert detector == make_detector(config).describe()
    assert {c["file"] for c in detector["cascades"]} >= {"haarcascade_frontalface_default.xml",
                                                        "haarcascade_russian_plate_number.xml"}
    assert all(len(c["sha256"]) == 64 for c in detector["cascades"])
    assert record["config"]["min_neighbors"] == 4 and record["config"]["margin"] == 0.1
    summary = privacy_summary(record)
    assert summary["blurred"] is True and summary["detector"] == detector["id"]
    line = shown_to_people(summary)
    assert line.startswith(f"blurred by {detector['id']}: {record['regions']['face']} face(s)")
    # The same frames and settings give the same copies: a push again shows the same files.
    again, record_again = prepare_shown(tmp_path / "data", "batch-2", store, config)
    assert {f: e["shown_sha256"] for f, e in record_again["per_frame"].items()} == \
           {f: e["shown_sha256"] for f, e in record["per_frame"].items()}
    assert all(Path(p).is_file() for p in again.values())


def test_switching_blurring_off_shows_the_originals_and_says_so_loudly(tmp_path: Path, store: dict,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="longtail.label.blur"):
        shown, record = prepare_shown(tmp_path / "data", "batch-3", store, PrivacyConfig(blur=False))
    assert shown == {fid: str(Path(path).resolve()) for fid, (path, _) in store.items()}
    assert not (tmp_path / "data/labels/batch-3/shown").exists()
    assert record["blurred"] is False and record["detector"] is None
    assert json.loads((tmp_path / "data/labels/batch-3" / PRIVACY_FILE).read_text())["blurred"] is False
    assert shown_store_paths(tmp_path / "data", "batch-3") == {}  # reports show the originals, as people saw them
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "PRIVACY OFF" in warning.getMessage() and "NOT blurred" in warning.getMessage()
    assert shown_to_people(privacy_summary(record)) == "ORIGINALS: blurring was switched off"
