"""Run a trained detector over frames: for evaluation and pre-labeling."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from longtail.errors import InputError
from longtail.train.data import load_image
from longtail.train.engine import predict


def predict_frames(model: nn.Module, image_root: str | os.PathLike[str], frames: pd.DataFrame,
                   score_threshold: float = 0.05, batch_size: int = 16, progress: bool = False,
                   path_column: str = "image_path") -> dict[str, list[dict[str, Any]]]:
    """Detect objects in every frame of ``frames``.

    Args:
        model: a detector from `longtail.train.run.load_model` or `load_model_from_mlflow`.
        image_root: folder the image paths are relative to (a dataset version folder, or the
            data root for frame-store paths); absolute paths are used as they are.
        frames: one row per frame with ``frame_id`` and ``path_column``.
        score_threshold: drop detections scoring below this (0..1).
        batch_size: images per forward pass.
        progress: show a progress bar.
        path_column: the column holding image paths (``image_path`` in dataset versions,
            ``store_path`` in label sets).

    Returns:
        frame_id -> box dicts ``category, x1, y1, x2, y2, score`` in the frame's pixel edges
        (`longtail.boxes`, x2/y2 exclusive), highest score first.

    Raises:
        InputError: a column is missing, or an image is missing or unreadable.
    """
    missing = [c for c in ("frame_id", path_column) if c not in frames.columns]
    if missing:
        raise InputError(f"predict_frames: frames lack column(s) {missing}; they have {list(frames.columns)}")
    root = Path(image_root)
    device = next(model.parameters()).device
    out: dict[str, list[dict[str, Any]]] = {}
    ids = frames["frame_id"].tolist()
    paths = frames[path_column].tolist()
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), batch_size), desc="predict", unit="batch", disable=not progress):
            images = [load_image(root / p).to(device) for p in paths[start:start + batch_size]]
            for frame_id, boxes in zip(ids[start:start + batch_size], predict(model, images, score_threshold),
                                       strict=True):
                out[frame_id] = boxes
    return out
