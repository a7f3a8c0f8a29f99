"""Run a detector: on image tensors (`predict`) or over frames on disk (`predict_frames`), for
validation, evaluation, pre-labeling and curation alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from tqdm import tqdm

from longtail.errors import InputError
from longtail.schemas import CATEGORIES


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Decode a JPEG (or PNG) to a float32 RGB tensor [3, H, W] in 0..1.

    PIL decodes: torchvision's decoders are deprecated since torchvision 0.29 (in favour of
    TorchCodec, not installed here).

    Raises:
        InputError: the file is missing or not a decodable image.
    """
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: not a readable image ({exc}). Restore the dataset version with "
                         f"restore_version.") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)


@torch.inference_mode()
def predict(model: nn.Module, images: Sequence[torch.Tensor], score_threshold: float = 0.0,
            categories: Sequence[str] = CATEGORIES) -> list[list[dict[str, Any]]]:
    """Detect objects in images.

    Args:
        model: a torchvision detector; it is put in eval mode.
        images: float RGB tensors [3, H, W] in 0..1, on the model's device.
        score_threshold: drop detections scoring below this.
        categories: label index -> category name.

    Returns:
        Per image, box dicts ``category, x1, y1, x2, y2, score`` in the image's pixel edges
        (`longtail.boxes`), highest score first.
    """
    model.eval()
    outputs = model(list(images))
    result = []
    for out in outputs:
        keep = out["scores"] >= score_threshold
        boxes = out["boxes"][keep].cpu().tolist()
        scores = out["scores"][keep].cpu().tolist()
        labels = out["labels"][keep].cpu().tolist()
        result.append([{"category": categories[int(lab)], "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3],
                        "score": s} for b, s, lab in zip(boxes, scores, labels, strict=True)])
    return result


def predict_frames(model: nn.Module, image_root: str | os.PathLike[str], frames: pd.DataFrame,
                   score_threshold: float = 0.05, batch_size: int = 16, progress: bool = False,
                   path_column: str = "image_path") -> dict[str, list[dict[str, Any]]]:
    """Detect objects in every frame of ``frames``.

    Args:
        model: a detector from `longtail.detector.model.load_model` or `load_model_from_mlflow`.
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


def make_frame_predictor(model: nn.Module, score_threshold: float | Mapping[str, float] = 0.5,
                         categories: Sequence[str] = CATEGORIES) -> Callable[[list[np.ndarray]], list[list[dict[str, Any]]]]:
    """Wrap a torchvision detector as a frame predictor: HxWx3 uint8 RGB frames in, box dicts out.

    It has the signature of a deployment's ``predict`` (`longtail.detector.export`), so a model
    that is not deployed (yet) can drive the simulator's perception mode (`longtail.sim.perception`).

    Args:
        model: a torchvision detector (put in eval mode).
        score_threshold: one threshold for every class, or class -> threshold (a class left out keeps 0.5).
        categories: label index -> category name.

    Returns:
        ``predict(frames)``: per frame, box dicts ``category, x1, y1, x2, y2, score`` in the frame's
        pixel edges, highest score first, at or above their class's threshold.
    """
    cuts = {c: float(score_threshold.get(c, 0.5)) if isinstance(score_threshold, Mapping) else float(score_threshold)
            for c in categories}
    floor = min(cuts.values())

    def predict_frames_rgb(frames: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        for frame in frames:
            if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise InputError(f"a frame must be an HxWx3 uint8 RGB array, got {type(frame).__name__} "
                                 f"{getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}")
        device = next(model.parameters()).device
        images = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div_(255.0).to(device)
                  for f in frames]
        if not images:
            return []
        return [[b for b in boxes if b["score"] >= cuts[b["category"]]]
                for boxes in predict(model, images, floor, categories)]

    return predict_frames_rgb
