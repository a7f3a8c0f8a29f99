"""The training engine: one epoch of training, prediction and a validation mAP@0.5. No wiring, no IO.

`longtail.train.run` wires these to data, checkpoints and MLflow (torchvision references:
``engine.py`` beside ``train.py``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence, Sized
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from longtail.errors import LongtailError
from longtail.schemas import CATEGORIES

log = logging.getLogger(__name__)

Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]


class TrainingError(LongtailError):
    """Training cannot go on: a non-finite loss, for instance."""


def train_one_epoch(model: nn.Module, loader: Iterable[Batch], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, epoch: int, progress: bool = True,
                    clip_grad_norm: float = 0.0, device: torch.device | str = "cpu",
                    deadline: float | None = None) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``, stepping the scheduler after every batch.

    Args:
        model: a torchvision detector (returns a dict of loss terms in train mode).
        loader: batches of (images, targets) from `longtail.train.data.collate`.
        optimizer: the optimizer.
        scheduler: a per-step learning-rate scheduler, or None.
        epoch: 1-based epoch number (for messages and the progress bar).
        progress: show a tqdm bar with the loss and images/s.
        clip_grad_norm: clip the gradient norm to this; 0 turns clipping off.
        device: where the model lives.
        deadline: a `time.monotonic` time; the epoch ends early after the step that passes it.

    Returns:
        Means over the epoch: ``loss`` and each loss term, plus ``images_per_s``, ``images``,
        ``steps``, ``lr`` (at the end) and ``stopped_early`` (1.0 when the deadline cut it short).

    Raises:
        TrainingError: a loss term is NaN or infinite; names the epoch, step and every term.
    """
    model.train()
    sums: dict[str, float] = {}
    images_seen = steps = 0
    stopped_early = 0.0
    start = time.perf_counter()
    total = len(loader) if isinstance(loader, Sized) else None
    bar = tqdm(loader, total=total, desc=f"epoch {epoch}", unit="batch", disable=not progress, leave=False)
    for step, (images, targets) in enumerate(bar, start=1):
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items() if k != "index"} for t in targets]
        terms = model(images, targets)
        loss = sum(terms.values())
        values = {k: float(v.detach()) for k, v in terms.items()}
        if not all(math.isfinite(v) for v in values.values()):
            detail = ", ".join(f"{k}={v}" for k, v in values.items())
            raise TrainingError(f"non-finite loss at epoch {epoch}, step {step}: {detail}. Lower lr (now "
                                f"{optimizer.param_groups[0]['lr']:.3g}) or check the boxes of this batch.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        steps += 1
        images_seen += len(images)
        values["loss"] = sum(values.values())
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        rate = images_seen / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(loss=f"{values['loss']:.3f}", img_s=f"{rate:.1f}")
        if deadline is not None and time.monotonic() > deadline:
            stopped_early = 1.0
            log.info("epoch %d: time budget spent after step %d of %s", epoch, step, total)
            break
    bar.close()
    elapsed = time.perf_counter() - start
    out = {k: v / max(steps, 1) for k, v in sums.items()}
    out.update(images_per_s=images_seen / max(elapsed, 1e-9), images=float(images_seen), steps=float(steps),
               lr=float(optimizer.param_groups[0]["lr"]), stopped_early=stopped_early)
    return out


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


def _iou(box: Sequence[float], others: np.ndarray) -> np.ndarray:
    if len(others) == 0:
        return np.zeros(0)
    ix1 = np.maximum(box[0], others[:, 0])
    iy1 = np.maximum(box[1], others[:, 1])
    ix2 = np.minimum(box[2], others[:, 2])
    iy2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def compute_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve, all-point interpolated (PASCAL VOC 2010+).

    Precision is first made monotonically non-increasing from the right, then summed over the
    recall steps.
    """
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def compute_map50(ground_truth: Sequence[Sequence[dict[str, Any]]], predictions: Sequence[Sequence[dict[str, Any]]],
                  categories: Sequence[str] = CATEGORIES) -> dict[str, float]:
    """mAP at IoU 0.5 over images, for validation during training.

    1. Per category, sort all detections by score (highest first).
    2. Match each to the unmatched ground-truth box of its image with the highest IoU >= 0.5;
       matched is a true positive, otherwise a false positive.
    3. AP = area under the all-point interpolated precision-recall curve.
    4. mAP = mean AP over the categories with at least one ground-truth box.

    Args:
        ground_truth: per image, box dicts ``category, x1, y1, x2, y2``.
        predictions: per image (same order), box dicts with ``score`` too.
        categories: categories to score.

    Returns:
        ``{"map50": mAP, "ap50_<category>": AP, ...}`` (categories without ground truth left out);
        ``map50`` is 0.0 when there is no ground truth at all.
    """
    out: dict[str, float] = {}
    for cat in categories:
        gts = [np.array([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in boxes if b["category"] == cat],
                        dtype=np.float64).reshape(-1, 4) for boxes in ground_truth]
        n_gt = sum(len(g) for g in gts)
        if n_gt == 0:
            continue
        dets = [(b["score"], i, (b["x1"], b["y1"], b["x2"], b["y2"]))
                for i, boxes in enumerate(predictions) for b in boxes if b["category"] == cat]
        dets.sort(key=lambda d: -d[0])
        used = [np.zeros(len(g), dtype=bool) for g in gts]
        tp = np.zeros(len(dets))
        for k, (_, i, box) in enumerate(dets):
            ious = _iou(box, gts[i])
            if len(ious):
                ious = np.where(used[i], -1.0, ious)
                j = int(np.argmax(ious))
                if ious[j] >= 0.5:
                    used[i][j] = True
                    tp[k] = 1.0
        ctp = np.cumsum(tp)
        recall = ctp / n_gt
        precision = ctp / np.arange(1, len(dets) + 1)
        out[f"ap50_{cat}"] = compute_average_precision(recall, precision) if len(dets) else 0.0
    aps = list(out.values())
    out["map50"] = float(np.mean(aps)) if aps else 0.0
    return out


def evaluate_map50(model: nn.Module, loader: Iterable[Batch], score_threshold: float = 0.05,
                   device: torch.device | str = "cpu", categories: Sequence[str] = CATEGORIES,
                   progress: bool = False, min_height_fraction: float = 0.0) -> dict[str, float]:
    """Predict every batch of ``loader`` and score the detections at IoU 0.5.

    The score is `longtail.evaluate.metrics.evaluate_detections`' COCO AP@0.5, the number
    `longtail evaluate` reports, with the same rule for objects too small to score: boxes less
    tall than ``min_height_fraction`` of the image height are ignored (0 scores every box).

    Returns:
        ``map50`` (0.0 without ground truth) and ``ap50_<category>`` for categories with ground truth.
    """
    from longtail.evaluate.metrics import evaluate_detections

    ground_truth: dict[str, list[dict[str, Any]]] = {}
    predictions: dict[str, list[dict[str, Any]]] = {}
    min_height: dict[str, float] = {}
    for images, targets in tqdm(loader, desc="validate", unit="batch", disable=not progress, leave=False):
        found = predict(model, [im.to(device) for im in images], score_threshold, categories)
        for image, t, boxes in zip(images, targets, found, strict=True):
            key = f"{len(ground_truth):08d}"
            predictions[key] = boxes
            min_height[key] = min_height_fraction * image.shape[-2]
            ground_truth[key] = [{"category": categories[int(lab)], "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3]}
                                 for b, lab in zip(t["boxes"].tolist(), t["labels"].tolist(), strict=True)]
    result = evaluate_detections(ground_truth, predictions, categories, iou_thresholds=(0.5,), max_dets=None,
                                 min_height=min_height)
    out = {f"ap50_{c}": v["ap50"] for c, v in result["per_class"].items() if v["ap50"] is not None}
    return {"map50": result["map50"] or 0.0, **out}
