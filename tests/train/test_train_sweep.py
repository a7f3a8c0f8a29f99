"""Sweeps: every grid point a tracked run, compared in one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from train_helpers import tiny_config

from longtail.errors import ConfigError
from longtail.train.sweep import SWEEP_TAG, expand_grid, sweep, sweep_dir


def test_two_point_grid_runs_as_parallel_pipeline_tasks_and_compares_in_one_table(
        tiny_version: tuple[Path, Path, dict[str, Any]]) -> None:
    root, _, manifest = tiny_version
    base = tiny_config(epochs=2, registered_model=None, threads=2)
    table = sweep(root, manifest["version_id"], {"lr": [1e-3, 3e-3]}, base, parallel=2)
    assert len(table) == 2
    assert sorted(table["lr"]) == ["0.001", "0.003"]
    assert list(table.columns) == ["run_id", "status", "lr", "val_map50", "images_per_s", "epochs_done", "sweep_id"]
    assert table["run_id"].nunique() == 2 and table["sweep_id"].nunique() == 1
    assert (table["status"] == "FINISHED").all() and (table["images_per_s"] > 0).all()
    assert table["val_map50"].between(0, 1).all() and (table["epochs_done"] == 2).all()
    assert table["val_map50"].is_monotonic_decreasing
    # Each point was a task of its own: an executed notebook and a training record per point, the table last.
    folder = sweep_dir(root, table["sweep_id"][0])
    assert sorted(p.name for p in folder.glob("train-*.ipynb")) == ["train-00.ipynb", "train-01.ipynb"]
    records = [json.loads((folder / f"run-{k:02d}.json").read_text()) for k in range(2)]
    assert sorted(r["run_id"] for r in records) == sorted(table["run_id"])
    assert {r["config"]["threads"] for r in records} == {1}  # the sweep's 2 threads shared by 2 jobs
    # ... and they ran at the same time: each notebook (kernel start, imports, training: over 10 s)
    # started before the other ended. One after another, the windows could not overlap.
    a, b = (json.loads((folder / f"train-{k:02d}.ipynb").read_text())["metadata"]["papermill"] for k in range(2))
    assert a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"]
    client = MlflowClient(f"sqlite:///{root}/mlflow/mlflow.db")
    assert {client.get_run(r).data.tags.get(SWEEP_TAG) for r in table["run_id"]} == {table["sweep_id"][0]}
    # The same request is the same sweep: nothing trains again.
    again = sweep(root, manifest["version_id"], {"lr": [1e-3, 3e-3]}, base, parallel=2)
    assert sorted(again["run_id"]) == sorted(table["run_id"])


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


def test_cli_grid_parses_values_and_refuses_bad_items(tiny_version: tuple[Path, Path, dict[str, Any]],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from longtail.cli import _parse_grid, main

    assert _parse_grid(["lr=0.001, 2e-3", "preset=fcos-small", "hflip=true,false"]) == {
        "lr": [0.001, 0.002], "preset": ["fcos-small"], "hflip": [True, False]}
    root, _, manifest = tiny_version
    cases = [(["--grid", "lr"], "--grid 'lr': write FIELD=VALUE[,VALUE...]"),
             (["--grid", "lr=0.1", "--grid", "lr=0.2"], "field 'lr' given twice"),
             (["--grid", "learning_rate=0.1"], "unknown field(s) ['learning_rate']"),
             (["--grid", "batch_size=0"], "sweep grid point {'batch_size': 0}: invalid training config")]
    for extra, message in cases:
        assert main(["sweep", "--root", str(root), "--version", manifest["version_id"], *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("longtail: error: ") and message in err, (extra, err)
    assert not (root / "runs").exists() and not (root / "sweeps").exists()  # nothing ran
