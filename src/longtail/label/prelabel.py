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
    champion_model_uri,
    latest_model_uri,
    tracking_uri_for,
)
from longtail.label.studio import load_batch

log = logging.getLogger(__name__)

PRELABEL_THRESHOLD = 0.3
"""Boxes the model scores below this are not shown to labelers (too noisy to correct)."""


def current_model(root: str | os.PathLike[str], tracking_uri: str | None = None,
                  name: str = REGISTERED_MODEL) -> str | None:
    """The model that pre-labels: the champion (``models:/<name>/<version>``), else the newest
    version, else None (no model was ever trained here)."""
    from longtail.errors import InputError

    champion = champion_model_uri(root, tracking_uri, name)
    if champion is not None or (tracking_uri is None and not (DataRoot.of(root).mlflow / "mlflow.db").exists()):
        return champion
    try:
        return latest_model_uri(tracking_uri_for(root, tracking_uri), name)
    except InputError:
        return None


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
