"""Sweeps: every grid point a tracked run, compared in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from train_helpers import tiny_config

from longtail.errors import ConfigError
from longtail.train.sweep import expand_grid, sweep


def test_two_point_grid_gives_a_two_row_table(tiny_version: tuple[Path, Path, dict[str, Any]]) -> None:
    root, _, manifest = tiny_version
    table = sweep(root, manifest["version_id"], {"lr": [1e-3, 3e-3]}, tiny_config(epochs=1, registered_model=None))
    assert len(table) == 2
    assert sorted(table["lr"]) == ["0.001", "0.003"]
    assert list(table.columns) == ["run_id", "status", "lr", "val_map50", "images_per_s", "epochs_done", "sweep_id"]
    assert table["run_id"].nunique() == 2 and table["sweep_id"].nunique() == 1
    assert (table["status"] == "FINISHED").all() and (table["images_per_s"] > 0).all()
    assert table["val_map50"].between(0, 1).all() and (table["epochs_done"] == 1).all()
    assert table["val_map50"].is_monotonic_decreasing


def test_bad_grid_fails_before_any_training(tiny_version: tuple[Path, Path, dict[str, Any]]) -> None:
    root, _, manifest = tiny_version
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['learning_rate'\]"):
        sweep(root, manifest["version_id"], {"learning_rate": [1e-3]}, tiny_config())
    with pytest.raises(ConfigError, match=r"sweep grid point \{'preset': 'yolo'\}: invalid training config"):
        sweep(root, manifest["version_id"], {"preset": ["fcos-small", "yolo"]}, tiny_config())
    assert not (root / "runs").exists()


def test_grid_expands_in_key_order() -> None:
    configs = expand_grid({"preset": ["fcos-small", "fcos-resnet50"], "lr": [1e-3, 2e-3]}, tiny_config())
    assert [(c.preset, c.lr) for c in configs] == [("fcos-small", 1e-3), ("fcos-small", 2e-3),
                                                   ("fcos-resnet50", 1e-3), ("fcos-resnet50", 2e-3)]
