"""Presets: names, sizes, and the error an unknown name raises."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from longtail.detector.presets import DEFAULT_PRESET, PRESETS, build_model, count_parameters
from longtail.errors import ConfigError
from longtail.train.config import TrainConfig
from longtail.train.run import make_train_config


def test_unknown_preset_lists_the_valid_ones() -> None:
    valid = r"\['fcos-resnet50', 'fcos-small', 'fcos-small-p2'\]"
    with pytest.raises(ConfigError, match=rf"unknown preset 'yolo-x'; valid presets are {valid}"):
        build_model("yolo-x", 4)


def test_config_with_unknown_preset_is_refused_naming_the_source() -> None:
    with pytest.raises(ValidationError, match="valid presets are"):
        TrainConfig(preset="yolo-x")
    with pytest.raises(ConfigError, match=r"^longtail train --preset: invalid training config: preset: .*fcos-small"):
        make_train_config("longtail train --preset", preset="yolo-x")


def test_fcos_small_is_small_and_takes_its_preset_input_size() -> None:
    model = build_model("fcos-small", 4)
    assert 600_000 < count_parameters(model) < 900_000
    assert model.transform.min_size == (192,) and model.transform.max_size == 320  # type: ignore[union-attr]
    assert model.head.classification_head.num_classes == 4  # type: ignore[union-attr]


def test_fcos_resnet50_builds_from_scratch_with_our_classes() -> None:
    model = build_model("fcos-resnet50", 4, min_size=128, max_size=160)
    assert model.head.classification_head.num_classes == 4  # type: ignore[union-attr]
    assert count_parameters(model) > 25_000_000
    assert set(PRESETS) == {"fcos-small", "fcos-small-p2", "fcos-resnet50"}


def test_config_refuses_training_on_a_test_suite() -> None:
    with pytest.raises(ValidationError, match="test frames are never trained on"):
        TrainConfig(train_splits=("train", "test_longtail"))


def _positives(model: torch.nn.Module, box: list[float]) -> int:
    """Points FCOS trains as positives for one ``box`` (x1, y1, x2, y2) in a 192x320 frame."""
    captured: list[torch.Tensor] = []
    head_loss = model.head.compute_loss  # type: ignore[union-attr]

    def capture(targets, head_outputs, anchors, matched_idxs):  # type: ignore[no-untyped-def]
        captured.extend(matched_idxs)
        return head_loss(targets, head_outputs, anchors, matched_idxs)

    model.head.compute_loss = capture  # type: ignore[union-attr,method-assign]
    model.train()
    model([torch.zeros(3, 192, 320)], [{"boxes": torch.tensor([box]), "labels": torch.tensor([2])}])
    return int((captured[0] >= 0).sum())


def test_default_p2_preset_has_a_stride_4_level_of_32_channels() -> None:
    assert DEFAULT_PRESET == "fcos-small-p2"
    model = build_model("fcos-small-p2", 4).eval()
    assert 400_000 < count_parameters(model) < 900_000
    assert model.transform.min_size == (192,) and model.transform.max_size == 320  # type: ignore[union-attr]
    with torch.no_grad():
        levels = model.backbone(torch.zeros(1, 3, 192, 320))  # type: ignore[operator]
    assert {k: tuple(v.shape) for k, v in levels.items()} == {
        "p2": (1, 32, 48, 80), "p3": (1, 32, 24, 40), "p4": (1, 32, 12, 20), "p5": (1, 32, 6, 10)}
    with torch.no_grad():
        (found,) = model([torch.rand(3, 192, 320)])
    assert set(found) == {"boxes", "scores", "labels"}


def test_p2_preset_trains_objects_narrower_than_the_p3_stride() -> None:
    # 6 x 17 px, between the stride-8 points at x=96 and x=104: fcos-small never trains on it,
    # the P2 level's stride-4 point at x=100 does.
    narrow = [97.0, 60.0, 103.0, 77.0]
    assert _positives(build_model("fcos-small", 4), narrow) == 0
    assert _positives(build_model("fcos-small-p2", 4), narrow) >= 1
    # A car-sized box still gets positives with the P2 level in the pyramid.
    car = [60.0, 40.0, 160.0, 110.0]
    assert _positives(build_model("fcos-small-p2", 4), car) > 0


def test_models_of_one_preset_do_not_load_into_the_other() -> None:
    p2 = build_model("fcos-small-p2", 4)
    p2.load_state_dict(build_model("fcos-small-p2", 4).state_dict())
    with pytest.raises(RuntimeError, match=r"size mismatch|Missing key|Unexpected key"):
        p2.load_state_dict(build_model("fcos-small", 4).state_dict())
