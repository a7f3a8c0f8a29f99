"""The SageMaker entry point, run as SageMaker runs it: a process with SM_* variables (local folders here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient

from longtail.detector.model import load_model
from longtail.errors import ConfigError
from longtail.train.sagemaker_entry import job_from_env, main, read_hyperparameters

HPS = {"epochs": 1, "batch_size": 4, "min_size": 64, "max_size": 96, "registered_model": "sm-detector",
       "sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://bucket/source.tar.gz"}


def _sm_env(tmp_path: Path, channel: Path, **extra: str) -> dict[str, str]:
    for name in ("model", "output/data"):
        (tmp_path / "opt/ml" / name).mkdir(parents=True, exist_ok=True)
    return {"SM_CHANNEL_TRAINING": str(channel), "SM_MODEL_DIR": str(tmp_path / "opt/ml/model"),
            "SM_OUTPUT_DATA_DIR": str(tmp_path / "opt/ml/output/data"), "SM_OUTPUT_DIR": str(tmp_path / "opt/ml/output"),
            "SM_HPS": json.dumps(HPS), "SM_NUM_GPUS": "0", "SM_NUM_CPUS": "1", "SM_HOSTS": '["algo-1"]',
            "SM_CURRENT_HOST": "algo-1", "TRAINING_JOB_NAME": "longtail-train-test-001", **extra}


def test_entry_point_trains_from_sm_variables_and_writes_the_model_dir(
        tmp_path: Path, tiny_version: tuple[Path, Path, dict[str, Any]]) -> None:
    _, folder, manifest = tiny_version
    channel = tmp_path / "opt/ml/input/data/training"  # SageMaker's name for the channel, not the version id
    shutil.copytree(folder, channel)
    env = {**os.environ, **_sm_env(tmp_path, channel)}
    proc = subprocess.run([sys.executable, "-m", "longtail.train.sagemaker_entry"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    model_dir = Path(env["SM_MODEL_DIR"])
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.json", "model.pt"]
    state = torch.load(model_dir / "model.pt", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    model, meta = load_model(model_dir)
    assert not model.training
    assert meta["dataset_version"] == manifest["version_id"] and meta["dataset_digest"] == manifest["digest"]
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["epochs"], config["device"], config["threads"], config["min_size"]) == (1, "cpu", 1, 64)

    uri = f"sqlite:///{Path(env['SM_OUTPUT_DATA_DIR']).resolve()}/mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("longtail-train").experiment_id])
    assert run.data.tags["sagemaker.training_job"] == "longtail-train-test-001"
    assert run.inputs.dataset_inputs[0].dataset.name == manifest["version_id"]


def test_missing_channel_fails_naming_the_variable(tmp_path: Path) -> None:
    env = _sm_env(tmp_path, tmp_path / "nowhere")
    del env["SM_CHANNEL_TRAINING"]
    env["SM_CHANNEL_TRAIN"] = str(tmp_path)
    with pytest.raises(ConfigError, match=r"SM_CHANNEL_TRAINING: not set\. .*present: \['SM_CHANNEL_TRAIN'\]"):
        job_from_env(env)
    assert main(env) == 1
    assert (tmp_path / "opt/ml/output/failure").read_text().startswith("ConfigError: SM_CHANNEL_TRAINING: not set")


def test_bad_hyperparameters_fail_naming_sm_hps(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SM_HPS: not valid JSON"):
        job_from_env(_sm_env(tmp_path, tmp_path, SM_HPS="{epochs: 3"))
    with pytest.raises(ConfigError, match=r"SM_HPS: unknown hyperparameter\(s\) \['learning_rate'\]; valid are"):
        job_from_env(_sm_env(tmp_path, tmp_path, SM_HPS='{"learning_rate": 0.1}'))
    with pytest.raises(ConfigError, match=r"SM_HPS: invalid training config: epochs: "):
        job_from_env(_sm_env(tmp_path, tmp_path, SM_HPS='{"epochs": 0}'))


def test_sm_hp_variables_and_gpus_map_to_the_same_config(tmp_path: Path) -> None:
    assert read_hyperparameters({"SM_HP_EPOCHS": "3", "SM_HP_PRESET": "fcos-resnet50", "SM_HP_LR": "0.001"}) == \
        {"epochs": 3, "preset": "fcos-resnet50", "lr": 0.001}
    env = _sm_env(tmp_path, tmp_path, SM_NUM_GPUS="1", SM_NUM_CPUS="8")
    del env["SM_HPS"]
    env.update(SM_HP_EPOCHS="3", SM_HP_PRESET="fcos-resnet50")
    job = job_from_env(env)
    assert (job.config.epochs, job.config.preset, job.config.device, job.config.threads) == (3, "fcos-resnet50", "cuda", 8)
    assert job.version_dir == tmp_path and job.job_name == "longtail-train-test-001"
