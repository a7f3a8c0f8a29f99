"""Sweeps: a grid of presets and hyperparameters, each point a tracked run, compared in one table.

Locally a sweep is a Ploomber DAG built here (`make_sweep_dag`): one task per grid point running
notebooks/04_train.py (the pipeline's train task, with the grid point's config) and a ``compare``
task after them that reads every run back from MLflow into one table. The tasks run in parallel
(Ploomber's ``Parallel`` executor), each with its share of the CPU threads, and a re-run skips
the points already trained (Ploomber's incremental build). Products, in DATA/sweeps/<sweep_id>/:

    train-<k>.ipynb, run-<k>.json   each point's executed notebook and training record
    table.csv                       the comparison, best validation mAP@0.5 first (written last)

The sweep id is a digest of the dataset version, the grid and the base config: the same request
is the same sweep. In the cloud the same grid becomes parallel SageMaker training jobs
(`longtail.train.sagemaker_jobs`), tagged with the sweep id in the same MLflow.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from longtail.catalog.root import DataRoot
from longtail.catalog.versions import datasets_dir
from longtail.detector.model import default_tracking, mlflow_client
from longtail.errors import ConfigError
from longtail.storage import atomic_write_bytes
from longtail.train.config import TrainConfig
from longtail.train.run import _experiment_id, make_train_config

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


def sweep_id_for(version_id: str, grid: dict[str, list[Any]], base: TrainConfig) -> str:
    """``sweep-<12 hex>``: a digest of the version, the grid (in its key order) and the base config."""
    text = json.dumps({"version": version_id, "grid": [[k, list(v)] for k, v in grid.items()],
                       "base": base.model_dump(mode="json")}, sort_keys=True, default=str)
    return f"sweep-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def sweep_dir(root: str | os.PathLike[str], sweep_id: str) -> Path:
    """DATA/sweeps/<sweep_id>/."""
    return DataRoot.of(root).sweeps / sweep_id


def make_sweep_dag(root: str | os.PathLike[str], version_id: str, grid: dict[str, list[Any]],
                   base_config: TrainConfig | None = None, parallel: int = 2,
                   register: bool = False) -> tuple[Any, str, list[TrainConfig]]:
    """The sweep as a Ploomber DAG: one train task per grid point, then ``compare``.

    Args:
        root: the data root.
        version_id: the dataset version every point trains on.
        grid: field of `TrainConfig` -> values.
        base_config: the settings of fields not in the grid. Its ``threads`` is the sweep's whole
            thread budget: each of the ``parallel`` jobs gets ``threads // parallel`` (at least 1).
        parallel: grid points trained at once (1: one after another).
        register: register every point's model in the MLflow registry (``base_config.registered_model``).
            Off by default: the registry's newest version is what `longtail evaluate` and pre-labeling
            pick up, and a sweep point should get there only once chosen.

    Returns:
        (the DAG, the sweep id, the grid points' configs).

    Raises:
        ConfigError: a bad grid or ``parallel`` (before anything runs). InputError: an unknown version.
    """
    from ploomber import DAG
    from ploomber.executors import Parallel, Serial
    from ploomber.products import File
    from ploomber.tasks import NotebookRunner, PythonCallable

    from longtail.errors import InputError
    from longtail.pipeline import project_root

    if parallel < 1:
        raise ConfigError(f"sweep: parallel={parallel}; give the number of grid points to train at once (>= 1)")
    base_config = base_config or TrainConfig()
    configs = expand_grid(grid, base_config)
    folder = datasets_dir(root) / version_id
    if not folder.is_dir():
        raise InputError(f"{folder}: no dataset version {version_id}; build one with `longtail label version`")
    if not register:
        base_config = base_config.model_copy(update={"registered_model": None})
        configs = [c.model_copy(update={"registered_model": None}) for c in configs]
    sweep_id = sweep_id_for(version_id, grid, base_config)
    out = sweep_dir(root, sweep_id)
    # The tracking store and experiment are made here, once: parallel jobs creating a fresh sqlite
    # store at the same time would race on its schema migration.
    if base_config.tracking_uri:
        tracking_uri, artifact_root = base_config.tracking_uri, base_config.artifact_location
    else:
        tracking_uri, artifact_root = default_tracking(DataRoot.of(root).mlflow)
        artifact_root = base_config.artifact_location or artifact_root
    _experiment_id(mlflow_client(tracking_uri), base_config.experiment, artifact_root)
    threads = max(1, base_config.threads // min(parallel, len(configs)))
    dag = DAG(name=sweep_id)
    # Parallel runs each task in its own process (the notebook then starts its own kernel).
    dag.executor = Parallel(processes=parallel) if parallel > 1 else Serial(build_in_subprocess=False)
    notebook = project_root() / "notebooks" / "04_train.py"
    compare = PythonCallable(write_sweep_table, File(out / "table.csv"), dag, name="compare",
                             params={"tracking_uri": tracking_uri, "experiment": base_config.experiment, "sweep_id": sweep_id,
                                     "fields": list(grid)})
    for k, config in enumerate(configs):
        point = config.model_copy(update={"threads": threads}) if "threads" not in grid else config
        task = NotebookRunner(notebook, {"nb": File(out / f"train-{k:02d}.ipynb"), "run": File(out / f"run-{k:02d}.json")},
                              dag, name=f"train-{k:02d}", kernelspec_name="python3", static_analysis="disable",
                              params={"root": str(root), "version": version_id, "sweep_id": sweep_id,
                                      "config": point.model_dump(mode="json")})
        task >> compare
    return dag, sweep_id, configs


def write_sweep_table(product: Any, upstream: Any, tracking_uri: str, experiment: str, sweep_id: str,
                      fields: list[str]) -> None:
    """The ``compare`` task: the sweep's runs read back from MLflow (`load_sweep`), as CSV, written atomically.

    ``upstream`` (the grid points' products) is Ploomber's; the runs are found by their sweep tag.
    """
    table = load_sweep(tracking_uri, experiment, sweep_id, fields)
    atomic_write_bytes(str(product), table.to_csv(index=False).encode())
    log.info("sweep %s: %d run(s) compared -> %s", sweep_id, len(table), product)


def sweep(root: str | os.PathLike[str], version_id: str, grid: dict[str, list[Any]],
          base_config: TrainConfig | None = None, progress: bool = False, parallel: int = 2,
          force: bool = False, register: bool = False) -> pd.DataFrame:
    """Train one run per grid point, ``parallel`` at a time, and compare them in one table.

    Args:
        root: the data root.
        version_id: the dataset version, DATA/datasets/<version_id>/.
        grid: field of `TrainConfig` -> values, e.g. ``{"preset": ["fcos-small"], "lr": [1e-3, 2e-3]}``.
        base_config: the settings of fields not in the grid (its ``threads`` is shared by the jobs).
        progress: show Ploomber's progress bar over the tasks.
        parallel: grid points trained at once.
        force: re-train points already trained.
        register: register every point's model (see `make_sweep_dag`).

    Returns:
        The comparison table read back from MLflow (see `load_sweep`); also in DATA/sweeps/<id>/table.csv.

    Raises:
        ConfigError: a bad grid (before any training). ploomber's DAGBuildError: a point failed
            (its notebook in DATA/sweeps/<id>/ shows where; the others still ran).
    """
    base_config = base_config or TrainConfig()
    dag, sweep_id, configs = make_sweep_dag(root, version_id, grid, base_config, parallel, register)
    log.info("sweep %s: %d run(s) over %s, %d at a time -> %s", sweep_id, len(configs), sorted(grid), parallel,
             sweep_dir(root, sweep_id))
    dag.build(force=force, show_progress=progress)
    return pd.read_csv(sweep_dir(root, sweep_id) / "table.csv", dtype={f: str for f in grid})


def load_sweep(tracking_uri: str, experiment: str, sweep_id: str, fields: list[str]) -> pd.DataFrame:
    """One row per run of a sweep, best validation mAP@0.5 first.

    Returns:
        Columns ``run_id``, ``status``, one per swept field (as logged), ``val_map50`` (last
        epoch), ``images_per_s`` (last epoch), ``epochs_done``, ``sweep_id``.
    """
    client = mlflow_client(tracking_uri)
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
