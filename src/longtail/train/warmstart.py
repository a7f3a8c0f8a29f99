"""Warm start: a fine-tuning run begins from a registered model version (the champion, by default).

The loop's second turn fine-tunes from the champion rather than training from scratch: the
model is built with the parent's preset and its weights loaded before the first step. The parent
is named in every record of the run (MLflow params and tags, the checkpoint, model.json, the
registered version's tags and description, DATA/runs/latest.json) by its URI, version and the
sha256 of its weights file, so lineage can check which weights a model started from.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from longtail.detector.model import MODEL_FILE, MODEL_META_FILE, mlflow_client
from longtail.detector.registry import REGISTERED_MODEL, champion_version
from longtail.errors import ConfigError, InputError
from longtail.schemas import CATEGORIES
from longtail.storage import sha256_file
from longtail.train.config import INIT_CHAMPION, MODEL_VERSION_URI_RE, TrainConfig

log = logging.getLogger(__name__)

PARENT_TAG_PREFIX = "longtail.parent_"
"""MLflow run and model-version tags naming the parent: ``longtail.parent_model_uri``, ``..._version``,
``..._weights_sha256``."""


@dataclass(frozen=True)
class ParentModel:
    """The registered model version a run was fine-tuned from, and its weights."""

    model_uri: str  # models:/<name>/<version>: the number, not the alias, so lineage names the weights used
    name: str
    version: str
    run_id: str | None  # the MLflow run that trained it
    weights_sha256: str  # of its model.pt as stored in MLflow
    preset: str
    init_from: str  # what the config asked for: "champion" or the URI
    state_dict: dict[str, torch.Tensor] = field(repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The parent as plain data (checkpoint, model.json, run record): everything but the weights."""
        return {"model_uri": self.model_uri, "name": self.name, "version": self.version, "run_id": self.run_id,
                "weights_sha256": self.weights_sha256, "preset": self.preset, "init_from": self.init_from}


def resolve_init_from(init_from: str, tracking_uri: str, registered_model: str | None) -> tuple[str, str]:
    """``config.init_from`` -> (registered model name, version number).

    Raises:
        ConfigError: ``champion`` while the registry has no champion.
    """
    if init_from == INIT_CHAMPION:
        name = registered_model or REGISTERED_MODEL
        version = champion_version(tracking_uri, name)
        if version is None:
            raise ConfigError(f"TrainConfig: init_from='champion', but registered model {name!r} has no champion in "
                              f"{tracking_uri}. Train the first model from scratch (init_from=None), promote a "
                              f"version (`longtail promote`), or name one (init_from='models:/{name}/<version>').")
        return name, version
    match = MODEL_VERSION_URI_RE.match(init_from)
    if match is None:  # TrainConfig validates this; a config built without validation lands here
        raise ConfigError(f"TrainConfig: invalid init_from={init_from!r}; give None, 'champion' or models:/<name>/<version>")
    return match["name"], match["version"]


def load_parent(config: TrainConfig, tracking_uri: str) -> ParentModel | None:
    """Download the model version ``config.init_from`` names and check it fits ``config``.

    Returns:
        The parent with its weights (a CPU state dict), or None when ``init_from`` is None.

    Raises:
        ConfigError: no champion, no such version, or a parent of another preset or other classes
            (its weights would not fit the model this config builds).
        InputError: the version's files are missing or unreadable.
    """
    if config.init_from is None:
        return None
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    name, version = resolve_init_from(config.init_from, tracking_uri, config.registered_model)
    uri = f"models:/{name}/{version}"
    client = mlflow_client(tracking_uri)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException:
        raise ConfigError(f"TrainConfig: init_from={config.init_from!r}: no version {version} of registered model "
                          f"{name!r} in {tracking_uri}; `longtail evaluate` lists the registry's versions") from None
    with tempfile.TemporaryDirectory(prefix="longtail-parent-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=str(mv.source), dst_path=tmp,
                                                             tracking_uri=tracking_uri))
        except (MlflowException, OSError) as exc:
            raise InputError(f"{uri}: the parent's files at {mv.source} could not be downloaded ({exc})") from None
        for file in (MODEL_FILE, MODEL_META_FILE):
            if not (local / file).is_file():
                raise InputError(f"{uri}: {file} missing at {mv.source}; a model version holds {MODEL_FILE} and "
                                 f"{MODEL_META_FILE}")
        meta = json.loads((local / MODEL_META_FILE).read_text())
        if meta.get("preset") != config.preset:
            raise ConfigError(f"TrainConfig: init_from={config.init_from!r} is {uri}, preset {meta.get('preset')!r}, "
                              f"but preset={config.preset!r}; fine-tuning keeps the parent's preset. Set "
                              f"preset={meta.get('preset')!r} or train from scratch (init_from=None).")
        if list(meta.get("classes", [])) != list(CATEGORIES):
            raise ConfigError(f"TrainConfig: init_from={config.init_from!r} is {uri}, trained on classes "
                              f"{meta.get('classes')}, not {list(CATEGORIES)}; train from scratch (init_from=None).")
        digest = sha256_file(local / MODEL_FILE)
        state = torch.load(local / MODEL_FILE, map_location="cpu", weights_only=True)
    log.info("fine-tuning from %s (%s, run %s, weights sha256 %s...)", uri, config.init_from, mv.run_id, digest[:12])
    return ParentModel(model_uri=uri, name=name, version=str(version), run_id=mv.run_id, weights_sha256=digest,
                       preset=str(meta["preset"]), init_from=config.init_from, state_dict=state)


def parent_params(parent: dict[str, Any] | None) -> dict[str, Any]:
    """MLflow params of the run naming its parent (empty strings from scratch, so runs compare in one table)."""
    parent = parent or {}
    return {"parent_model_uri": parent.get("model_uri", ""), "parent_model_version": parent.get("version", ""),
            "parent_weights_sha256": parent.get("weights_sha256", "")}


def parent_tags(parent: dict[str, Any] | None) -> dict[str, str]:
    """MLflow tags (run and model version) naming the parent; none from scratch."""
    if not parent:
        return {}
    return {f"{PARENT_TAG_PREFIX}model_uri": str(parent["model_uri"]),
            f"{PARENT_TAG_PREFIX}model_version": str(parent["version"]),
            f"{PARENT_TAG_PREFIX}weights_sha256": str(parent["weights_sha256"]),
            f"{PARENT_TAG_PREFIX}run_id": str(parent.get("run_id") or "")}


def parent_description(parent: dict[str, Any] | None) -> str | None:
    """The registered version's description naming its parent, or None from scratch."""
    if not parent:
        return None
    return (f"Fine-tuned from {parent['model_uri']} ({parent.get('init_from')}; weights sha256 "
            f"{parent['weights_sha256']}).")
