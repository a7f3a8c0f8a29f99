"""Pre-labels for a labeling batch from the current model.

The model is the registry's ``champion`` once one is deployed, else the newest registered
version of the detector, else none (the first batch is pushed without pre-labels). Its boxes,
with their confidences, go to Label Studio as predictions, so people correct rather than draw.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from longtail.catalog.root import DataRoot
from longtail.detector.registry import (
    REGISTERED_MODEL,
    champion_uri,
    champion_version,
    latest_model_uri,
    tracking_uri_for,
)
from longtail.label.studio import load_batch

log = logging.getLogger(__name__)

PRELABEL_THRESHOLD = 0.3
"""Boxes the model scores below this are not shown to labelers (too noisy to correct)."""


def current_model(root: str | os.PathLike[str], tracking_uri: str | None = None,
                  name: str = "longtail-detector") -> str | None:
    """The model that pre-labels: ``models:/<name>@champion``, else the newest version, else None."""
    uri = tracking_uri_for(root, tracking_uri)
    if tracking_uri is None and not (DataRoot.of(root).mlflow / "mlflow.db").exists():
        return None  # no model was ever trained in this data root
    from longtail.errors import InputError

    champ = champion_uri(uri, name)
    if champ is not None:
        return champ
    try:
        return latest_model_uri(uri, name)
    except InputError:
        return None


def champion_model_uri(root: str | os.PathLike[str], tracking_uri: str | None = None,
                       name: str = REGISTERED_MODEL) -> str | None:
    """``models:/<name>/<version>`` of the champion (the number, not the alias, so the label set's
    lineage names the model that pre-labeled it), or None before the first champion."""
    if tracking_uri is None and not (DataRoot.of(root).mlflow / "mlflow.db").exists():
        return None
    version = champion_version(tracking_uri_for(root, tracking_uri), name)
    return None if version is None else f"models:/{name}/{version}"


def prelabel_batch(root: str | os.PathLike[str], batch_id: str, model_uri: str, tracking_uri: str | None = None,
                   threshold: float = PRELABEL_THRESHOLD) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Run ``model_uri`` on the batch's frames; returns (frame_id -> boxes with scores, model name@version)."""
    from longtail.detector.model import load_model_from_mlflow
    from longtail.detector.predict import predict_frames

    _, frames = load_batch(root, batch_id)
    model, meta = load_model_from_mlflow(model_uri, tracking_uri_for(root, tracking_uri))
    df = frames.select(["frame_id", "store_path"]).to_pandas()
    boxes = predict_frames(model, Path(root), df, score_threshold=threshold, path_column="store_path")
    label = f"{model_uri} (run {meta['run_id']})"
    log.info("pre-labels for %s from %s: %d box(es) on %d frame(s)", batch_id, label,
             sum(len(b) for b in boxes.values()), len(boxes))
    return {fid: boxes.get(fid, []) for fid in df["frame_id"]}, label
