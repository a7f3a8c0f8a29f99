"""Sweeps: a grid of presets and hyperparameters, each point a tracked run, compared in one table."""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from longtail.errors import ConfigError
from longtail.label.version import datasets_dir
from longtail.train.config import TrainConfig
from longtail.train.run import _client, default_tracking, make_train_config, train_on_folder

log = logging.getLogger(__name__)

SWEEP_TAG = "longtail.sweep_id"


def expand_grid(grid: dict[str, list[Any]], base: TrainConfig) -> list[TrainConfig]:
    """Every combination of ``grid`` applied to ``base``, in the grid's key order (last key fastest).

    Raises:
        ConfigError: an unknown field, an empty value list, or a combination that fails validation
            (all checked before any training starts).
    """
    unknown = sorted(set(grid) - set(TrainConfig.model_fields))
    if unknown:
        raise ConfigError(f"sweep grid: unknown field(s) {unknown}; valid fields are {sorted(TrainConfig.model_fields)}")
    empty = [k for k, v in grid.items() if not isinstance(v, list | tuple) or not v]
    if empty:
        raise ConfigError(f"sweep grid: field(s) {empty} need a non-empty list of values")
    keys = list(grid)
    base_values = base.model_dump()
    return [make_train_config(f"sweep grid point {dict(zip(keys, point, strict=True))}",
                              **{**base_values, **dict(zip(keys, point, strict=True))})
            for point in itertools.product(*(grid[k] for k in keys))]


def sweep(root: str | os.PathLike[str], version_id: str, grid: dict[str, list[Any]],
          base_config: TrainConfig | None = None, progress: bool = False) -> pd.DataFrame:
    """Train one run per grid point (sequentially) on a dataset version and compare them.

    Args:
        root: the data root.
        version_id: the dataset version, DATA/datasets/<version_id>/.
        grid: field of `TrainConfig` -> values, e.g. ``{"preset": ["fcos-small"], "lr": [1e-3, 2e-3]}``.
        base_config: the settings of fields not in the grid.
        progress: show progress bars.

    Returns:
        The comparison table read back from MLflow (see `load_sweep`).

    Raises:
        ConfigError: a bad grid (before any training).
    """
    base_config = base_config or TrainConfig()
    configs = expand_grid(grid, base_config)
    sweep_id = f"sweep-{uuid.uuid4().hex[:12]}"
    root = Path(root)
    log.info("sweep %s: %d run(s) over %s", sweep_id, len(configs), sorted(grid))
    for k, config in enumerate(configs, start=1):
        log.info("sweep %s: run %d of %d: %s", sweep_id, k, len(configs), {f: getattr(config, f) for f in grid})
        train_on_folder(datasets_dir(root) / version_id, config, runs_dir=root / "runs", mlflow_dir=root / "mlflow",
                        progress=progress, tags={SWEEP_TAG: sweep_id})
    tracking_uri = base_config.tracking_uri or default_tracking(root / "mlflow")[0]
    return load_sweep(tracking_uri, base_config.experiment, sweep_id, list(grid))


def load_sweep(tracking_uri: str, experiment: str, sweep_id: str, fields: list[str]) -> pd.DataFrame:
    """One row per run of a sweep, best validation mAP@0.5 first.

    Returns:
        Columns ``run_id``, ``status``, one per swept field (as logged), ``val_map50`` (last
        epoch), ``images_per_s`` (last epoch), ``epochs_done``, ``sweep_id``.
    """
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame(columns=["run_id", "status", *fields, "val_map50", "images_per_s", "epochs_done",
                                     "sweep_id"])
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`{SWEEP_TAG}` = '{sweep_id}'")
    rows = []
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "loss")
        rows.append({"run_id": run.info.run_id, "status": run.info.status,
                     **{f: run.data.params.get(f) for f in fields},
                     "val_map50": run.data.metrics.get("val_map50"), "images_per_s": run.data.metrics.get("images_per_s"),
                     "epochs_done": len(history), "sweep_id": sweep_id})
    table = pd.DataFrame(rows, columns=["run_id", "status", *fields, "val_map50", "images_per_s", "epochs_done",
                                        "sweep_id"])
    return table.sort_values("val_map50", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
