"""Presets: names, sizes, and the error an unknown name raises."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from longtail.errors import ConfigError
from longtail.train.config import TrainConfig
from longtail.train.presets import PRESETS, build_model, count_parameters
from longtail.train.run import make_train_config


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'yolo-x'; valid presets are \['fcos-resnet50', 'fcos-small'\]"):
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
    assert set(PRESETS) == {"fcos-small", "fcos-resnet50"}


def test_config_refuses_training_on_a_test_suite() -> None:
    with pytest.raises(ValidationError, match="test frames are never trained on"):
        TrainConfig(train_splits=("train", "test_longtail"))
