"""MLflow tracking of a training run, and its provenance: params, metrics, dataset input, registration,
git commit and environment lock, and the model's meta."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longtail.detector.presets import get_preset
from longtail.errors import InputError
from longtail.schemas import CATEGORIES
from longtail.train.config import TrainConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

MLFLOW_DIGEST_CHARS = 36
"""MLflow's SQL schema stores a dataset digest in 36 characters (``datasets.digest`` is String(36));
longer digests pass on sqlite but fail on Postgres and MySQL, so the version's sha256 is cut to
this length there and kept whole in the ``longtail.dataset_digest`` tag."""


def _repo_dir() -> Path:
    return Path(__file__).resolve().parents[3]


def git_commit() -> str | None:
    """The git commit of the checked-out source (``+dirty`` when it has changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_repo_dir(), capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_repo_dir(),
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def env_lock_hash() -> str | None:
    """sha256 of env/requirements.lock (the locked dependency set), or None when absent (an installed package)."""
    path = _repo_dir() / "env" / "requirements.lock"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def model_meta(config: TrainConfig, version: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What it takes to rebuild a model from its state dict, and where it came from."""
    spec = get_preset(config.preset)
    return {"format": "longtail.detector/1", "preset": config.preset, "classes": list(CATEGORIES),
            "num_classes": len(CATEGORIES), "min_size": config.min_size or spec.min_size,
            "max_size": config.max_size or spec.max_size, "box_convention": "pixel edges x1,y1,x2,y2; x2/y2 exclusive",
            "dataset_version": version.get("version_id"), "dataset_digest": version.get("digest"),
            "config": config.model_dump(mode="json"), **(extra or {})}


def _experiment_id(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    from mlflow.exceptions import MlflowException

    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    with contextlib.suppress(MlflowException):  # another process created it meanwhile
        return str(client.create_experiment(name, artifact_location=location))
    found = client.get_experiment_by_name(name)
    if found is None:
        raise InputError(f"MLflow experiment {name!r} could not be created at {client.tracking_uri}")
    return str(found.experiment_id)


def _log_dataset(client: MlflowClient, run_id: str, version_dir: Path, manifest: dict[str, Any]) -> None:
    """Record the dataset version as the run's MLflow dataset input (context ``training``)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = json.dumps({"uri": version_dir.resolve().as_uri(), "version_id": manifest["version_id"],
                         "digest": manifest["digest"]})
    profile = json.dumps({"frames": manifest.get("frames"), "counts": manifest.get("counts")})
    from mlflow.exceptions import MlflowException

    dataset = Dataset(name=manifest["version_id"], digest=str(manifest["digest"])[:MLFLOW_DIGEST_CHARS],
                      source_type="local", source=source, profile=profile)
    inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException as exc:
        # MLflow's SQL store looks the dataset up, then inserts it: runs of a parallel sweep can
        # both miss it and the second insert breaks the unique (experiment, name, digest) key.
        # The row now exists, so logging again links the run to it.
        if "unique" not in str(exc).lower():
            raise
        client.log_inputs(run_id, datasets=inputs)


def _log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, json.dumps(v) if isinstance(v, list | tuple | dict) else str(v))
                                     for k, v in sorted(params.items())])


def _log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in sorted(metrics.items())
                                      if math.isfinite(v)])


def _reopen_run(client: MlflowClient, run_id: str, checkpoint: object) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.update_run(run_id, status="RUNNING")
    except MlflowException as exc:
        raise InputError(f"resume={checkpoint}: its MLflow run {run_id} is not in {client.tracking_uri} ({exc.message}); "
                         f"resume against the tracking URI the run started with (config.tracking_uri).") from None


def _register(client: MlflowClient, name: str, run_id: str, source: str, tags: dict[str, str],
              description: str | None = None) -> str:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):  # exists already
        client.create_registered_model(name)
    version = client.create_model_version(name, source=source, run_id=run_id, tags=tags, description=description)
    return str(version.version)
