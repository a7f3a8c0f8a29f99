"""Per-class operating thresholds, calibrated on validation frames.

A detector's scores are not comparable across classes: a pedestrian a few pixels tall never
scores what a close car scores. One fixed threshold (0.5) therefore throws away most small
pedestrians while keeping every car. Each class gets its own threshold instead, chosen on the
validation split (never on a test suite) and stored with the model version, and every count of
false positives and negatives (evaluation, the gate, pre-labels, the fleet) uses it.

The rule, per class:

1. Match the class's detections to its ground truth at ``match_iou`` over all validation frames
   (the same greedy matching as `longtail.detector.metrics.evaluate_detections`; objects below
   the frame's minimum height are neither found nor missed).
2. Walk the candidate thresholds (every distinct detection score, highest first) and compute
   precision and recall at each: precision = TP / (TP + FP), recall = TP / n_gt.
3. Keep the threshold with the largest F-beta = (1 + b^2) P R / (b^2 P + R). Critical classes
   (pedestrian, cyclist) use ``beta_critical`` (2 by default: a missed pedestrian costs more
   than a phantom one), the others ``beta``. Ties go to the higher threshold.
4. A class without validation ground truth or detections keeps ``default`` (0.5).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from longtail.detector.metrics import Boxes, iter_class_matches
from longtail.detector.predict import predict_frames
from longtail.schemas import CATEGORIES

log = logging.getLogger(__name__)

CRITICAL_CLASSES: tuple[str, ...] = ("pedestrian", "cyclist")
"""Classes whose misses matter most: their thresholds favour recall (``beta_critical``)."""
DEFAULT_THRESHOLD = 0.5
MIN_THRESHOLD = 0.05
"""Lowest threshold considered: below it the detector's NMS output is mostly noise."""


def _class_flags(gt: Mapping[str, Boxes], preds: Mapping[str, Boxes], classes: Sequence[str], match_iou: float,
                 min_height: float | Mapping[str, float]) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per class: scores and true-positive flags of every counted detection, and the object count
    (step 1): `evaluate_detections`' operating-point matching with every detection kept."""
    scores: dict[int, list[np.ndarray]] = {c: [] for c in range(len(classes))}
    flags: dict[int, list[np.ndarray]] = {c: [] for c in range(len(classes))}
    n_gt = np.zeros(len(classes), np.int64)
    for m in iter_class_matches(gt, preds, classes, 0.0, match_iou, min_height):
        n_gt[m.cls] += m.scored
        scores[m.cls].append(m.s[~m.op_ignored])
        flags[m.cls].append(m.op_tp[~m.op_ignored])
    return {name: (np.concatenate(scores[c]) if scores[c] else np.zeros(0),
                   np.concatenate(flags[c]) if flags[c] else np.zeros(0, bool), int(n_gt[c]))
            for c, name in enumerate(classes)}


def choose_threshold(scores: np.ndarray, tp: np.ndarray, n_gt: int, beta: float = 1.0,
                     default: float = DEFAULT_THRESHOLD, floor: float = MIN_THRESHOLD) -> dict[str, Any]:
    """The score threshold with the best F-beta (module docstring, steps 2-4).

    Args:
        scores: each counted detection's score.
        tp: whether each detection is a true positive.
        n_gt: objects to find.
        beta: recall's weight against precision.
        default: the threshold when nothing can be calibrated.
        floor: no threshold below this.

    Returns:
        ``threshold``, ``precision``, ``recall``, ``f_beta`` (None when not calibrated), ``calibrated``.
    """
    keep = scores >= floor
    scores, tp = scores[keep], tp[keep]
    if n_gt == 0 or len(scores) == 0:
        return {"threshold": default, "precision": None, "recall": None, "f_beta": None, "calibrated": False}
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], tp[order]
    ctp = np.cumsum(t)
    cfp = np.cumsum(~t)
    # Only the last detection of a run of equal scores is a real cut: a threshold keeps all of them.
    last = np.r_[s[1:] != s[:-1], True]
    precision = ctp / (ctp + cfp)
    recall = ctp / n_gt
    b2 = beta * beta
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(precision + recall > 0, (1 + b2) * precision * recall / (b2 * precision + recall), 0.0)
    f = np.where(last, f, -1.0)
    best = int(np.argmax(f))  # first maximum = highest threshold among ties
    return {"threshold": float(s[best]), "precision": float(precision[best]), "recall": float(recall[best]),
            "f_beta": float(f[best]), "calibrated": True}


def calibrate_thresholds(gt: Mapping[str, Boxes], preds: Mapping[str, Boxes], classes: Sequence[str] = CATEGORIES,
                         *, match_iou: float = 0.5, min_height: float | Mapping[str, float] = 0.0,
                         beta: float = 1.0, beta_critical: float = 2.0,
                         critical: Sequence[str] = CRITICAL_CLASSES) -> dict[str, Any]:
    """Per-class operating thresholds from validation frames (module docstring).

    Args:
        gt: validation frame_id -> ground-truth boxes (every frame, empty lists included).
        preds: frame_id -> detections with scores, predicted at a low floor (e.g. 0.05).
        classes: the classes to calibrate.
        match_iou: IoU a detection needs to be found.
        min_height: px, or frame_id -> px: smaller objects are neither found nor missed.
        beta: F-beta of ordinary classes.
        beta_critical: F-beta of ``critical`` classes.
        critical: classes whose misses matter most.

    Returns:
        ``{"thresholds": class -> threshold, "per_class": class -> choose_threshold's dict + beta,
        "frames": n, "match_iou", "rule"}``, JSON-ready.
    """
    per_class: dict[str, Any] = {}
    for category, (scores, tp, n_gt) in _class_flags(gt, preds, classes, match_iou, min_height).items():
        b = beta_critical if category in critical else beta
        per_class[category] = {**choose_threshold(scores, tp, n_gt, beta=b), "beta": b, "objects": n_gt}
    return {"thresholds": {c: v["threshold"] for c, v in per_class.items()}, "per_class": per_class,
            "frames": len(gt), "match_iou": match_iou,
            "rule": f"per class, the score with the best F-beta on validation (beta {beta:g}; {beta_critical:g} for "
                    f"{', '.join(critical)}); {DEFAULT_THRESHOLD} where nothing could be calibrated"}


def calibrate_on_frames(model: nn.Module, version_dir: str | os.PathLike[str], frames: pd.DataFrame,
                        min_height_fraction: float) -> dict[str, Any]:
    """Per-class operating thresholds of ``model`` on ``frames`` of a dataset version (its validation
    split): `calibrate_thresholds` on its predictions at the ``MIN_THRESHOLD`` floor.

    Args:
        model: the detector.
        version_dir: the version folder (image paths are relative to it).
        frames: rows of the version's labels table (frame_id, image_path, boxes, height).
        min_height_fraction: objects less tall than this share of the frame are neither found nor missed.
    """
    preds = predict_frames(model, version_dir, frames, score_threshold=MIN_THRESHOLD)
    gt = {fid: [dict(b) for b in boxes] for fid, boxes in zip(frames["frame_id"], frames["boxes"], strict=True)}
    min_height = {fid: min_height_fraction * float(h) for fid, h in zip(frames["frame_id"], frames["height"],
                                                                          strict=True)}
    calibration = calibrate_thresholds(gt, preds, CATEGORIES, min_height=min_height)
    log.info("operating thresholds on %d validation frame(s): %s", len(gt),
             ", ".join(f"{c} {v:.2f}" for c, v in calibration["thresholds"].items()))
    return calibration
