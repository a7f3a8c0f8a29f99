"""SageMaker training entry point: ``python -m longtail.train.sagemaker_entry``.

It only turns SageMaker's container contract into the same `TrainConfig` and calls the same
`train_on_folder` a local run calls (torchvision references: ``run_with_submitit.py`` reuses
``train.main``):

- ``SM_CHANNEL_TRAINING``: a dataset version folder (manifest.json, labels.parquet, images/).
- ``SM_HPS``: the hyperparameters as JSON (fields of `TrainConfig`); without it, ``SM_HP_<FIELD>``
  variables. Keys starting with ``sagemaker_`` (the SDK's own) are ignored. ``sweep_id`` is not a
  config field: it becomes the MLflow run tag ``longtail.sweep_id`` (`longtail.train.sweep.SWEEP_TAG`),
  so `load_sweep` finds the run. ``tracking_uri`` points the run at an MLflow tracking server.
- ``SM_NUM_GPUS``: > 0 trains on cuda, else cpu (a ``device`` hyperparameter wins).
- ``SM_NUM_CPUS``: torch threads (a ``threads`` hyperparameter wins).
- ``SM_MODEL_DIR``: receives model.pt (a state dict), model.json and config.json; SageMaker uploads it.
- ``SM_OUTPUT_DATA_DIR``: run folders (checkpoints) and, unless ``tracking_uri`` is given, the
  MLflow sqlite store.
- ``SM_OUTPUT_DIR``: a failure message goes to its ``failure`` file (SageMaker's FailureReason).
- ``TRAINING_JOB_NAME``: tagged on the MLflow run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longtail.errors import ConfigError, LongtailError
from longtail.train.config import TrainConfig

log = logging.getLogger(__name__)

TRAINING_CHANNEL = "training"
"""The input channel holding the dataset version folder; SageMaker mounts it as ``SM_CHANNEL_TRAINING``."""

SWEEP_ID_HP = "sweep_id"
"""The hyperparameter carrying a sweep's id; the run is tagged with it, it is not a `TrainConfig` field."""


@dataclass(frozen=True)
class SageMakerJob:
    """What a SageMaker container hands a training job, read from its SM_* variables."""

    config: TrainConfig
    version_dir: Path
    model_dir: Path
    output_dir: Path
    job_name: str | None
    sweep_id: str | None = None


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # SageMaker passes plain strings unquoted


def read_hyperparameters(environ: Mapping[str, str]) -> dict[str, Any]:
    """Hyperparameters from ``SM_HPS`` (JSON), else from ``SM_HP_<NAME>`` variables; SDK keys dropped.

    Raises:
        ConfigError: ``SM_HPS`` is not a JSON object, naming the variable.
    """
    if "SM_HPS" in environ:
        try:
            hps = json.loads(environ["SM_HPS"])
        except ValueError as exc:
            raise ConfigError(f"SM_HPS: not valid JSON ({exc}); SageMaker writes the hyperparameters as a JSON "
                              f"object, e.g. '{{\"epochs\": 10}}'") from None
        if not isinstance(hps, dict):
            raise ConfigError(f"SM_HPS: expected a JSON object of hyperparameters, got {type(hps).__name__}")
    else:
        hps = {k[len("SM_HP_"):].lower(): _parse_value(v) for k, v in environ.items() if k.startswith("SM_HP_")}
    return {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}


def _require_dir(environ: Mapping[str, str], name: str, fix: str) -> Path:
    value = environ.get(name)
    if not value:
        channels = sorted(k for k in environ if k.startswith("SM_CHANNEL_"))
        raise ConfigError(f"{name}: not set. {fix} (SM_CHANNEL_* variables present: {channels or 'none'})")
    path = Path(value)
    if not path.is_dir():
        raise ConfigError(f"{name}={value!r}: not a folder. {fix}")
    return path


def job_from_env(environ: Mapping[str, str]) -> SageMakerJob:
    """Build the job (config and folders) from SageMaker's environment variables.

    Raises:
        ConfigError: a missing channel or model folder, bad SM_HPS, or a hyperparameter that is not
            a valid `TrainConfig` field or value; each names the variable.
    """
    from longtail.train.run import make_train_config

    version_dir = _require_dir(environ, f"SM_CHANNEL_{TRAINING_CHANNEL.upper()}",
                               "Give the job a 'training' input channel holding a dataset version folder")
    model_dir = Path(environ.get("SM_MODEL_DIR") or "")
    if not environ.get("SM_MODEL_DIR"):
        raise ConfigError("SM_MODEL_DIR: not set; SageMaker sets it to /opt/ml/model, where the model is written")
    hps = read_hyperparameters(environ)
    sweep_id = hps.pop(SWEEP_ID_HP, None)
    if isinstance(sweep_id, int) and not isinstance(sweep_id, bool):
        sweep_id = str(sweep_id)  # SM_HP_SWEEP_ID=123 parses as a number
    if sweep_id is not None and (not isinstance(sweep_id, str) or not sweep_id):
        raise ConfigError(f"SM_HPS: {SWEEP_ID_HP}={sweep_id!r} is not a sweep id; give a non-empty string or leave it out")
    unknown = sorted(set(hps) - set(TrainConfig.model_fields))
    if unknown:
        raise ConfigError(f"SM_HPS: unknown hyperparameter(s) {unknown}; valid are {sorted(TrainConfig.model_fields)} "
                          f"and {SWEEP_ID_HP!r}")
    if "device" not in hps and "SM_NUM_GPUS" in environ:
        try:
            gpus = int(environ["SM_NUM_GPUS"])
        except ValueError:
            raise ConfigError(f"SM_NUM_GPUS={environ['SM_NUM_GPUS']!r}: not an integer") from None
        hps["device"] = "cuda" if gpus > 0 else "cpu"
    if "threads" not in hps and environ.get("SM_NUM_CPUS", "").isdigit():
        hps["threads"] = max(1, int(environ["SM_NUM_CPUS"]))
    config = make_train_config("SM_HPS", **hps)
    output_dir = Path(environ.get("SM_OUTPUT_DATA_DIR") or "/opt/ml/output/data")
    return SageMakerJob(config, version_dir, model_dir, output_dir, environ.get("TRAINING_JOB_NAME"), sweep_id)


def run_job(job: SageMakerJob, progress: bool = False) -> dict[str, Any]:
    """Train with `train_on_folder` and put model.pt, model.json and config.json into the model folder.

    The MLflow run is tagged with the training job's name and, for a sweep, its id (``SWEEP_TAG``).
    """
    from longtail.detector.model import MODEL_FILE, MODEL_META_FILE
    from longtail.train.run import train_on_folder
    from longtail.train.sweep import SWEEP_TAG

    tags = {"sagemaker.training_job": job.job_name} if job.job_name else {}
    if job.sweep_id:
        tags[SWEEP_TAG] = job.sweep_id
    result = train_on_folder(job.version_dir, job.config, runs_dir=job.output_dir / "runs",
                             mlflow_dir=job.output_dir / "mlflow", progress=progress, tags=tags)
    job.model_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(result["run_dir"])
    for name in (MODEL_FILE, MODEL_META_FILE):
        shutil.copyfile(run_dir / name, job.model_dir / name)
    (job.model_dir / "config.json").write_text(job.config.model_dump_json(indent=2) + "\n")
    return result


def main(environ: Mapping[str, str] | None = None) -> int:
    """Entry point: read SM_*, train, write the model folder. Returns the exit status."""
    from longtail._runtime import configure_logging

    configure_logging()
    environ = os.environ if environ is None else environ
    try:
        job = job_from_env(environ)
        result = run_job(job)
    except LongtailError as exc:
        log.error("%s", exc)
        failure_dir = environ.get("SM_OUTPUT_DIR")
        if failure_dir and Path(failure_dir).is_dir():
            (Path(failure_dir) / "failure").write_text(f"{type(exc).__name__}: {exc}\n")
        return 1
    log.info("model of run %s written to %s (val mAP@0.5 %s)", result["run_id"], job.model_dir, result["val_map50"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
