"""The engine: mAP@0.5 worked out by hand, non-finite losses and degenerate boxes fail loudly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import tiny_config, write_version

from longtail.catalog.versions import load_version_folder
from longtail.errors import InputError, SchemaError
from longtail.train.data import boxes_to_target, epoch_indices, repeat_factors
from longtail.train.engine import TrainingError, train_one_epoch
from longtail.train.run import train


def _box(cat: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, object]:
    return {"category": cat, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


def test_degenerate_and_nonfinite_boxes_name_version_frame_and_box() -> None:
    with pytest.raises(SchemaError, match=r"dataset version v-1, frame f/7, box 1 car \[5.0, 5.0, 5.0, 9.0\]: degenerate"):
        boxes_to_target([_box("car", 0, 0, 4, 4), _box("car", 5, 5, 5, 9)], "v-1", "f/7", 96, 64)
    with pytest.raises(SchemaError, match=r"frame f/7, box 0 .*non-finite"):
        boxes_to_target([_box("car", 0, math.nan, 4, 4)], "v-1", "f/7", 96, 64)
    with pytest.raises(SchemaError, match="outside the 96x64 image"):
        boxes_to_target([_box("car", 90, 0, 97, 4)], "v-1", "f/7", 96, 64)
    target = boxes_to_target([_box("truck", 1, 2, 3, 4)], "v-1", "f/7", 96, 64)
    assert target["boxes"].tolist() == [[1.0, 2.0, 3.0, 4.0]] and target["labels"].tolist() == [1]


def test_training_refuses_a_version_with_a_degenerate_box_before_any_work(tmp_path: Path) -> None:
    def squash(rows: list[dict[str, object]]) -> None:
        box = rows[3]["boxes"][0]  # type: ignore[index]
        box["x2"] = box["x1"]

    root = tmp_path / "data"
    _, manifest = write_version(root, edit=squash)
    with pytest.raises(SchemaError, match=rf"dataset version {manifest['version_id']}, frame car-003_drive000/000003, "
                                          r"box 0 \w+ \[\d+\.0, \d+\.0, \d+\.0, \d+\.0\]: degenerate box"):
        train(root, manifest["version_id"], tiny_config(), progress=False)
    assert not (root / "runs").exists()


def test_a_modified_version_is_refused(tiny_version: tuple[Path, Path, dict[str, object]]) -> None:
    _, folder, _ = tiny_version
    data = json.loads((folder / "manifest.json").read_text())
    data["digest"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="differs from field digest"):
        load_version_folder(folder)


class _NaNDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {"classification": self.w * 0.5, "bbox_regression": self.w * float("nan")}


def test_nonfinite_loss_names_epoch_step_and_terms() -> None:
    model = _NaNDetector()
    batch = ([torch.zeros(3, 8, 8)], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 3, step 1: classification=0.5, "
                                            r"bbox_regression=nan"):
        train_one_epoch(model, [batch], optimizer, None, epoch=3, progress=False)
    assert model.w.item() == 1.0  # no step was taken with the bad loss


def test_a_diverging_run_stops_at_the_first_nonfinite_loss(tiny_version: tuple[Path, Path, dict[str, object]]) -> None:
    root, _, manifest = tiny_version
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 1, step \d+: classification=nan"):
        train(root, str(manifest["version_id"]), tiny_config(lr=1e30, clip_grad_norm=0, warmup_fraction=0),
              progress=False)


def test_repeat_factors_raise_frames_of_rare_classes_by_sqrt_of_threshold_over_share() -> None:
    car, ped = torch.tensor([0]), torch.tensor([0, 2])
    labels = [car] * 9 + [ped, torch.tensor([], dtype=torch.int64)]  # pedestrians in 1 of 11 frames
    assert repeat_factors(labels, 0.0).tolist() == [1.0] * 11
    factors = repeat_factors(labels, 0.44)
    # car: share 10/11 > t, factor 1; pedestrian: share 1/11, factor sqrt(0.44 * 11) = 2.2; empty frame 1.
    assert factors[:9].tolist() == [1.0] * 9 and factors[10] == 1.0
    assert factors[9] == pytest.approx(math.sqrt(0.44 * 11))


def test_epoch_indices_repeat_by_stochastic_rounding_and_are_seeded() -> None:
    factors = np.array([1.0, 2.0, 1.5])
    draws = [epoch_indices(factors, torch.Generator().manual_seed(seed)) for seed in range(400)]
    assert all(d.count(0) == 1 and d.count(1) == 2 and d.count(2) in (1, 2) for d in draws)
    assert np.mean([d.count(2) for d in draws]) == pytest.approx(1.5, abs=0.08)
    assert epoch_indices(factors, torch.Generator().manual_seed(7)) == epoch_indices(factors, torch.Generator().manual_seed(7))
    assert len({tuple(d) for d in draws}) > 3  # shuffled, not a fixed order


def test_training_with_repeat_factor_sampling_sees_more_frames_per_epoch(
        tiny_version: tuple[Path, Path, dict[str, object]]) -> None:
    root, _, manifest = tiny_version
    plain = train(root, str(manifest["version_id"]), tiny_config(epochs=1, val_split=None, registered_model=None),
                  progress=False)
    repeated = train(root, str(manifest["version_id"]),
                     tiny_config(epochs=1, val_split=None, registered_model=None, repeat_factor_threshold=1.0),
                     progress=False)
    assert plain["history"][0]["train_images"] == 12  # the tiny version's 12 training frames, once each
    assert repeated["history"][0]["train_images"] > 12  # every frame holds a class in under all frames
    assert repeated["config"].repeat_factor_threshold == 1.0
