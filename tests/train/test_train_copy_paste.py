"""Box-level copy-paste of rare classes: where crops go, what they may cover, and that draws repeat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from train_helpers import tiny_config, write_version

from longtail.catalog.versions import LABELS_FILE
from longtail.detector.predict import load_image
from longtail.train.data import CLASS_INDEX, VersionDataset, frame_vehicle_type, select_frames
from longtail.train.run import train

RARE = ("pedestrian", "cyclist")


def _dataset(folder: Path, per_frame: int = 3, seed: int = 0) -> VersionDataset:
    frames = select_frames(pd.read_parquet(folder / LABELS_FILE), ["train"])
    return VersionDataset(folder, frames, "v-test", seed=seed, paste_per_frame=per_frame, paste_classes=RARE)


def _overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_pasted_objects_keep_their_pixels_and_position_and_cover_no_label(tmp_path: Path) -> None:
    folder, _ = write_version(tmp_path, frames=40, val=0, seed=3)
    ds = _dataset(folder)
    bank = {(tuple(c.box.tolist()), c.label): c.pixels for c in ds.paste_bank.crops}  # type: ignore[union-attr]
    assert bank and {label for _, label in bank} == {CLASS_INDEX[c] for c in RARE}
    pasted = 0
    for index in range(len(ds)):
        image, target = ds[index]
        own = ds.targets[index]
        n = len(own["labels"])
        assert torch.equal(target["boxes"][:n], own["boxes"]) and torch.equal(target["labels"][:n], own["labels"])
        new_boxes, new_labels = target["boxes"][n:].tolist(), target["labels"][n:].tolist()
        original = load_image(folder / ds.frames.iloc[index]["image_path"])
        for k, (box, label) in enumerate(zip(new_boxes, new_labels, strict=True)):
            assert (tuple(box), label) in bank  # an object of the bank, at its own position
            x1, y1, x2, y2 = (int(v) for v in box)  # the tiny version's boxes are whole pixels
            assert torch.equal(image[:, y1:y2, x1:x2], bank[(tuple(box), label)])
            assert not any(_overlaps(box, b) for b in own["boxes"].tolist())  # no label is hidden
            assert not any(_overlaps(box, b) for b in new_boxes[:k])
            pasted += 1
        # Outside the pasted boxes the frame is untouched.
        mask = torch.ones(image.shape[1:], dtype=torch.bool)
        for x1, y1, x2, y2 in new_boxes:
            mask[int(y1):int(y2), int(x1):int(x2)] = False
        assert torch.equal(image[:, mask], original[:, mask])
    assert pasted > len(ds)  # well over one object per frame on average at 3 per frame


def test_pastes_are_seeded_by_seed_epoch_and_frame(tmp_path: Path) -> None:
    folder, _ = write_version(tmp_path, frames=40, val=0, seed=3)

    def draws(ds: VersionDataset, epoch: int) -> list[list[float]]:
        ds.set_epoch(epoch)
        return [ds[i][1]["boxes"].flatten().tolist() for i in range(len(ds))]

    a, b = _dataset(folder), _dataset(folder)
    assert draws(a, 1) == draws(b, 1)  # another process (a worker, a resumed run) draws the same
    assert draws(a, 1) != draws(a, 2)
    assert draws(a, 1) != draws(_dataset(folder, seed=1), 1)


def test_night_frames_only_get_objects_from_night_frames(tmp_path: Path) -> None:
    def night_for_odd(rows: list[dict[str, Any]]) -> None:
        for k, row in enumerate(rows):
            row["tags"] = ["night"] if k % 2 else []

    folder, _ = write_version(tmp_path, frames=40, val=0, seed=3, edit=night_for_odd)
    ds = _dataset(folder, per_frame=4)
    crops = ds.paste_bank.crops  # type: ignore[union-attr]
    night = {tuple(c.box.tolist()) for c in crops if c.group.endswith(":night")}
    day = {tuple(c.box.tolist()) for c in crops if c.group.endswith(":day")}
    checked = 0
    for index in range(len(ds)):
        is_night = "night" in set(ds.frames.iloc[index]["tags"])
        _, target = ds[index]
        for box in target["boxes"][len(ds.targets[index]["labels"]):].tolist():
            assert tuple(box) in (night if is_night else day)
            checked += 1
    assert checked > 0


def test_objects_stay_on_their_own_camera(tmp_path: Path) -> None:
    # Frames k % 4 == 1 or 3 come from trucks (their drive ids say so), the rest from cars: the truck
    # camera sits higher with another field of view, so a crop never crosses between the two.
    def trucks_for_odd(rows: list[dict[str, Any]]) -> None:
        for k, row in enumerate(rows):
            if k % 2:
                row["drive_id"] = row["log_id"] = f"truck-00{k % 4}_drive000"

    folder, _ = write_version(tmp_path, frames=40, val=0, seed=3, edit=trucks_for_odd)
    ds = _dataset(folder, per_frame=4)
    w, h = ds.frames.iloc[0]["width"], ds.frames.iloc[0]["height"]
    assert {(d[:5], g) for d, g in zip(ds.frames["drive_id"], ds.groups, strict=True)} == \
        {("car-0", f"car:{w}x{h}:day"), ("truck", f"truck:{w}x{h}:day")}
    crops = ds.paste_bank.crops  # type: ignore[union-attr]
    by_camera = {v: {tuple(c.box.tolist()) for c in crops if c.group.startswith(f"{v}:")} for v in ("car", "truck")}
    assert by_camera["car"] and by_camera["truck"] and not by_camera["car"] & by_camera["truck"]
    checked = 0
    for index in range(len(ds)):
        camera = "truck" if ds.frames.iloc[index]["drive_id"].startswith("truck-") else "car"
        _, target = ds[index]
        for box in target["boxes"][len(ds.targets[index]["labels"]):].tolist():
            assert tuple(box) in by_camera[camera]
            checked += 1
    assert checked > 0


def test_vehicle_type_sources_in_order() -> None:
    profiles = {"d1": "truck"}
    row = {"drive_id": "d1", "tags": []}
    assert frame_vehicle_type(row, profiles) == "truck"  # the manifest's drive profile
    assert frame_vehicle_type({**row, "vehicle_type": "car"}, profiles) == "car"  # a column wins
    assert frame_vehicle_type({"drive_id": "car-002_drive001", "tags": []}, {}) == "car"  # the drive id
    assert frame_vehicle_type({"drive_id": "x", "tags": ["truck_view"]}, {}) == "truck"  # a tag
    assert frame_vehicle_type({"drive_id": "x", "tags": None}, {}) == "unknown"


def test_copy_paste_off_leaves_frames_as_they_are(tmp_path: Path) -> None:
    folder, _ = write_version(tmp_path, frames=12, val=0, seed=3)
    ds = _dataset(folder, per_frame=0)
    assert ds.paste_bank is None
    for index in range(len(ds)):
        image, target = ds[index]
        assert torch.equal(target["boxes"], ds.targets[index]["boxes"])
        assert torch.equal(image, load_image(folder / ds.frames.iloc[index]["image_path"]))


def test_an_unknown_copy_paste_class_names_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown class\(es\) \['bus'\] in copy_paste_classes; valid classes"):
        tiny_config(copy_paste=2, copy_paste_classes=("pedestrian", "bus"))


def test_training_with_copy_paste_runs_and_saves_the_setting(tiny_version: tuple[Path, Path, dict[str, object]]
                                                             ) -> None:
    root, _, manifest = tiny_version
    result = train(root, str(manifest["version_id"]),
                   tiny_config(epochs=1, val_split=None, registered_model=None, copy_paste=2), progress=False)
    assert result["config"].copy_paste == 2
    saved = torch.load(Path(result["run_dir"]) / "checkpoint-1.pt", weights_only=True)
    assert saved["config"]["copy_paste"] == 2


def test_a_checkpoint_saved_before_copy_paste_existed_resumes_without_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=8, val=0)
    first = train(root, manifest["version_id"], tiny_config(epochs=2, max_minutes=1e-6, val_split=None,
                                                             registered_model=None, copy_paste=0), progress=False)
    assert first["epochs_done"] == 1
    checkpoint = Path(first["run_dir"]) / "checkpoint-1.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["copy_paste"], state["config"]["copy_paste_classes"]  # as saved before copy-paste
    torch.save(state, checkpoint)
    resumed = train(root, manifest["version_id"], None, resume=checkpoint, progress=False)
    assert resumed["epochs_done"] == 2
    assert resumed["config"].copy_paste == 0  # not today's default: the run continues as it began
