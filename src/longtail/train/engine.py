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

import torch
from torch import nn
from tqdm import tqdm

from longtail.detector.metrics import evaluate_detections
from longtail.detector.predict import predict
from longtail.errors import LongtailError
from longtail.schemas import CATEGORIES

log = logging.getLogger(__name__)

Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]


class TrainingError(LongtailError):
    """Training cannot go on: a non-finite loss, for instance."""


def train_one_epoch(model: nn.Module, loader: Iterable[Batch], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None, epoch: int, progress: bool = True,
                    clip_grad_norm: float = 0.0, device: torch.device | str = "cpu",
                    deadline: float | None = None, bf16: bool = False) -> dict[str, float]:
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
        bf16: run the forward pass under bfloat16 autocast (weights, gradients and optimizer state
            stay float32; the head's outputs are cast back to float32 before the loss).

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
    device_type = torch.device(device).type
    head = getattr(model, "head", None)
    hook = head.register_forward_hook(_outputs_to_float) if bf16 and isinstance(head, nn.Module) else None
    try:
        for step, (images, targets) in enumerate(bar, start=1):
            images = [im.to(device, non_blocking=True) for im in images]
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items() if k != "index"} for t in targets]
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
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
    finally:
        if hook is not None:
            hook.remove()
    bar.close()
    elapsed = time.perf_counter() - start
    out = {k: v / max(steps, 1) for k, v in sums.items()}
    out.update(images_per_s=images_seen / max(elapsed, 1e-9), images=float(images_seen), steps=float(steps),
               lr=float(optimizer.param_groups[0]["lr"]), stopped_early=stopped_early)
    return out


def _outputs_to_float(module: nn.Module, inputs: Any, outputs: Any) -> Any:
    """Forward hook: a detection head's outputs (a dict of tensors) in float32, so that the losses
    and box decoding after it run in full precision under autocast."""
    if isinstance(outputs, dict):
        return {k: v.float() for k, v in outputs.items()}
    return outputs


def evaluate_map50(model: nn.Module, loader: Iterable[Batch], score_threshold: float = 0.05,
                   device: torch.device | str = "cpu", categories: Sequence[str] = CATEGORIES,
                   progress: bool = False, min_height_fraction: float = 0.0) -> dict[str, float]:
    """Predict every batch of ``loader`` and score the detections at IoU 0.5.

    The score is `longtail.detector.metrics.evaluate_detections`' COCO AP@0.5, the number
    `longtail evaluate` reports, with the same rule for objects too small to score: boxes less
    tall than ``min_height_fraction`` of the image height are ignored (0 scores every box).

    Returns:
        ``map50`` (0.0 without ground truth) and ``ap50_<category>`` for categories with ground truth.
    """
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
