"""Haze augmentation: the worked blend, seeded draws, boxes untouched, and older checkpoints resume without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import tiny_config, write_version

from longtail.catalog.versions import LABELS_FILE
from longtail.detector.predict import load_image
from longtail.train.data import HAZE_STRENGTH, VersionDataset, _rng, add_haze, select_frames
from longtail.train.run import train


def _dataset(folder: Path, haze: float, seed: int = 0) -> VersionDataset:
    frames = select_frames(pd.read_parquet(folder / LABELS_FILE), ["train"])
    return VersionDataset(folder, frames, "v-test", seed=seed, haze=haze)


def test_haze_blends_toward_a_grey_near_the_frames_brightness_by_the_drawn_opacity() -> None:
    image = torch.rand(3, 8, 10, generator=torch.Generator().manual_seed(0))
    out = add_haze(image, np.random.default_rng(5))

    draws = np.random.default_rng(5)  # the same draws, in add_haze's order
    a = draws.uniform(*HAZE_STRENGTH)
    level = float(image.mean()) * draws.uniform(0.9, 1.4)
    tint = draws.uniform(0.95, 1.05, 3)
    color = np.clip(level * tint, 0.03, 0.92)
    expected = image.numpy() * (1 - a) + color[:, None, None] * a
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)
    # Contrast falls by exactly the opacity; the input is left as it was.
    np.testing.assert_allclose(float(out[0].std()), (1 - a) * float(image[0].std()), rtol=1e-5)
    assert not torch.equal(out, image) and torch.equal(image, torch.rand(3, 8, 10, generator=torch.Generator().manual_seed(0)))

    night = torch.full((3, 4, 4), 0.01)
    faded = add_haze(night, np.random.default_rng(1))
    assert float(faded.min()) > 0.01  # a dark frame fades to the floor level 0.03, not to black


def test_training_frames_are_hazed_by_seed_epoch_and_frame_and_keep_their_boxes(tmp_path: Path) -> None:
    folder, _ = write_version(tmp_path, frames=12, val=0, seed=3)
    always, never = _dataset(folder, haze=1.0), _dataset(folder, haze=0.0)
    always.set_epoch(1)
    for index in range(len(always)):
        image, target = always[index]
        plain = load_image(folder / always.frames.iloc[index]["image_path"])
        assert torch.equal(target["boxes"], always.targets[index]["boxes"])
        rng = _rng("haze", 0, 1, index)
        rng.random()  # the coin
        assert torch.equal(image, add_haze(plain, rng))
        assert torch.equal(never[index][0], plain)
    again = _dataset(folder, haze=1.0)
    again.set_epoch(1)
    assert torch.equal(again[4][0], always[4][0])
    again.set_epoch(2)
    assert not torch.equal(again[4][0], always[4][0])

    half = _dataset(folder, haze=0.5)
    half.set_epoch(1)
    hazed = sum(not torch.equal(half[i][0], never[i][0]) for i in range(len(half)))
    coins = sum(_rng("haze", 0, 1, i).random() < 0.5 for i in range(len(half)))
    assert hazed == coins and 0 < coins < len(half)


def test_a_checkpoint_saved_before_haze_existed_resumes_without_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=8, val=0)
    first = train(root, manifest["version_id"], tiny_config(epochs=2, max_minutes=1e-6, val_split=None,
                                                             registered_model=None, haze=0.0), progress=False)
    checkpoint = Path(first["run_dir"]) / "checkpoint-1.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["haze"]  # as saved before the field existed
    torch.save(state, checkpoint)
    resumed = train(root, manifest["version_id"], None, resume=checkpoint, progress=False)
    assert resumed["epochs_done"] == 2 and resumed["config"].haze == 0.0  # not today's default


def test_haze_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="haze"):
        tiny_config(haze=1.5)


def test_cli_passes_haze_to_the_config_and_names_the_field_when_it_is_out_of_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import longtail.train.run as run_module
    from longtail.cli import main

    seen: list[float] = []

    def fake_train(root: object, version: str, config: object, **kwargs: object) -> dict[str, object]:
        seen.append(config.haze)  # type: ignore[attr-defined]
        return {"run_id": "r", "epochs_done": 0, "val_map50": None, "images_per_s": 0.0, "model_uri": "runs:/r/model"}

    monkeypatch.setattr(run_module, "train", fake_train)
    assert main(["train", "--root", str(tmp_path), "--version", "v-0123456789abcdef", "--haze", "0.25"]) == 0
    assert seen == [0.25]
    assert main(["train", "--root", str(tmp_path), "--version", "v-0123456789abcdef", "--haze", "1.5"]) == 2
    assert "haze" in capsys.readouterr().err and seen == [0.25]
