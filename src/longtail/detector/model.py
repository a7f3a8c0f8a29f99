"""A detector's files and where they are kept: weights on disk, runs and versions in MLflow.

A model is two files, ``model.pt`` (a CPU state dict) and ``model.json`` (its preset, classes,
input size, dataset version and config): everything it takes to rebuild it with
`longtail.detector.presets.build_model`. Weights are saved and logged as state dicts (never a
pickled module) and always loaded with ``torch.load(weights_only=True)``; MLflow's default
``torch.export`` model flavour fails for torchvision detectors (../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from longtail.detector.presets import build_model
from longtail.errors import ConfigError, InputError
from longtail.storage import atomic_write_json, atomic_writer

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_ARTIFACT = "model"
"""Artifact folder of a run holding the model: model.pt (state dict) and model.json."""
MODEL_FILE = "model.pt"
MODEL_META_FILE = "model.json"


def save_model(folder: str | os.PathLike[str], model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``model.pt`` (a CPU state dict) and ``model.json`` (its meta) into ``folder``; returns model.pt."""
    folder = Path(folder)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_writer(folder / MODEL_FILE) as handle:
        torch.save(state, handle)
    atomic_write_json(folder / MODEL_META_FILE, meta)
    return folder / MODEL_FILE


def load_model(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a detector from a folder holding model.pt and model.json, in eval mode.

    Raises:
        InputError: either file is missing or the weights do not fit the preset.
    """
    folder = Path(folder)
    for name in (MODEL_FILE, MODEL_META_FILE):
        if not (folder / name).is_file():
            raise InputError(f"{folder / name}: missing; a model folder holds {MODEL_FILE} and {MODEL_META_FILE}")
    meta = json.loads((folder / MODEL_META_FILE).read_text())
    state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    model = build_model(meta["preset"], meta["num_classes"], meta["min_size"], meta["max_size"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{folder / MODEL_FILE}: weights do not fit preset {meta['preset']!r} ({exc})") from None
    return model.to(device).eval(), meta


def default_tracking(mlflow_dir: Path) -> tuple[str, str]:
    """(tracking URI, artifact root) of the local default: sqlite in ``mlflow_dir``, artifacts beside it."""
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{mlflow_dir.resolve() / 'mlflow.db'}", (mlflow_dir.resolve() / "artifacts").as_uri()


def mlflow_client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def parse_model_uri(model_uri: str) -> tuple[str | None, str]:
    """Split a model reference into (run id or None, artifact URI to download).

    Accepts a bare run id, ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` and
    ``models:/<name>@<alias>`` (the registry resolves the last two).
    """
    if re.fullmatch(r"[0-9a-f]{32}", model_uri):
        return model_uri, f"runs:/{model_uri}/{MODEL_ARTIFACT}"
    if model_uri.startswith("runs:/"):
        return model_uri.split("/")[1], model_uri
    if model_uri.startswith("models:/"):
        return None, model_uri
    raise ConfigError(f"load_model_from_mlflow: invalid model_uri={model_uri!r}. Give a run id, runs:/<run_id>/model, "
                      f"models:/<name>/<version> or models:/<name>@<alias>.")


def load_model_from_mlflow(model_uri: str, tracking_uri: str, device: str | torch.device = "cpu"
                           ) -> tuple[nn.Module, dict[str, Any]]:
    """Download a trained model from MLflow and rebuild it (weights loaded with ``weights_only=True``).

    Args:
        model_uri: a run id, ``runs:/<run_id>/model``, ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
        tracking_uri: the MLflow tracking (and registry) URI, e.g. ``sqlite:///DATA/mlflow/mlflow.db``.
        device: where to put the model.

    Returns:
        (the detector in eval mode, its model.json: preset, classes, dataset version and digest, config;
        plus ``run_id`` and ``model_uri``).

    Raises:
        ConfigError: malformed ``model_uri``.
        InputError: the run, registered model or its files are missing.
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    run_id, artifact_uri = parse_model_uri(model_uri)
    client = mlflow_client(tracking_uri)
    try:
        if run_id is None:  # a registry URI: resolve to the version's run
            name, _, ref = artifact_uri[len("models:/"):].partition("@")
            if ref:
                mv = client.get_model_version_by_alias(name, ref)
            else:
                name, _, number = name.partition("/")
                mv = client.get_model_version(name, number)
            run_id = mv.run_id
            artifact_uri = str(mv.source)
        with tempfile.TemporaryDirectory(prefix="longtail-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=tmp,
                                                        tracking_uri=tracking_uri)
            model, meta = load_model(local, device)
    except MlflowException as exc:
        raise InputError(f"{tracking_uri}: model {model_uri!r} not found ({exc.message})") from None
    meta.update(run_id=run_id, model_uri=model_uri)
    return model, meta
