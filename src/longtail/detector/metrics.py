"""COCO-style detection metrics, written here in numpy so every number can be checked by hand.

What is computed, and how it follows pycocotools' ``COCOeval`` (bbox, no crowd):

1. Per frame and class, detections are sorted by score (stable sort, highest first) and cut to
   ``max_dets``; each is matched greedily, in that order, to the unmatched ground-truth box of
   the same class with the highest IoU, if that IoU is at least the threshold (COCO ``evaluateImg``;
   on an IoU tie the later ground-truth box wins, as in COCO).
2. Per class, detections of all frames are pooled (frames in sorted frame_id order, then a stable
   sort by score), true and false positives are accumulated, precision is made monotone from the
   right, and AP is the mean of the precision at 101 recall points 0, 0.01, ..., 1 (COCO
   ``accumulate``). A recall point beyond the highest recall reached counts as precision 0.
3. Objects too small to score (``min_height``: a box less tall than this, in pixels) are neither
   found nor missed, as KITTI and COCO's area ranges treat them: such ground truth is "ignored",
   and a detection that matches only an ignored box, or matches nothing and is itself too small,
   is neither a true nor a false positive. Exactly COCO's rule with height in place of area
   (``evaluateImg``: ignored ground truth sorted last, a match to a scored box preferred).
   ``min_height=0`` (the default) scores every box, as COCO's areaRng "all" does. A ground-truth
   box with ``"ignore": True`` is ignored the same way whatever its height: a failure-mode suite
   marks so every object that is not its subject (`longtail.evaluate.subjects`).
4. A class without ground truth has no AP (``None``) and is left out of the mean, as in COCO.
   ``map`` is the mean over classes and IoU thresholds (COCO's AP@[.5:.95]), ``map50`` the mean
   of the per-class AP at IoU 0.5.

At the deployed operating threshold (``score_threshold``) the same greedy matching at one IoU
(``match_iou``, 0.5 by default) over the detections scored at least the threshold gives true
positives, false positives (detections left unmatched: duplicates, wrong class, background) and
false negatives (ground-truth boxes left unmatched). A detection of the wrong class is therefore
a false positive of the class it predicted and leaves a false negative of the true class.

Boxes are dicts ``{category, x1, y1, x2, y2, score}`` in the internal pixel-edge convention
(`longtail.boxes`: x2/y2 exclusive, so width = x2 - x1, the same arithmetic COCO's [x, y, w, h]
uses). Ground-truth scores are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from longtail.boxes import iou_matrix
from longtail.errors import InputError
from longtail.schemas import CATEGORIES, MIN_OBJECT_HEIGHT  # noqa: F401 (re-exported)

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.5, 0.95, 10))
"""IoU thresholds 0.5, 0.55, ..., 0.95 (COCO's ``iouThrs``)."""
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""Recall points of the interpolated precision (COCO's ``recThrs``)."""
DEFAULT_MAX_DETS = 100
"""Detections per frame and class kept, highest score first (COCO keeps 100 per image)."""


Boxes = Sequence[Mapping[str, Any]]


def _as_array(boxes: Boxes, frame_id: str, what: str, classes: Sequence[str], need_score: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one frame's boxes; return (xyxy float64 (n, 4), class index (n,), score (n,))."""
    xyxy = np.zeros((len(boxes), 4))
    cls = np.zeros(len(boxes), dtype=np.int64)
    score = np.ones(len(boxes))
    index = {c: i for i, c in enumerate(classes)}
    for i, box in enumerate(boxes):
        try:
            coords = [float(box[k]) for k in ("x1", "y1", "x2", "y2")]
            category = box["category"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{what} of frame {frame_id!r}, box {i}: {box!r} lacks a field or holds a non-number "
                             f"({exc}); a box is {{category, x1, y1, x2, y2, score}} in pixels") from None
        if category not in index:
            raise InputError(f"{what} of frame {frame_id!r}, box {i}: category {category!r} is not evaluated; "
                             f"valid classes are {list(classes)}")
        if not all(math.isfinite(c) for c in coords) or coords[2] < coords[0] or coords[3] < coords[1]:
            raise InputError(f"{what} of frame {frame_id!r}, box {i}: coordinates {coords} are not finite or have "
                             f"x2 < x1 or y2 < y1 (pixel edges x1, y1, x2, y2)")
        if need_score:
            s = box.get("score")
            if s is None or not math.isfinite(float(s)):
                raise InputError(f"{what} of frame {frame_id!r}, box {i}: score {s!r} must be a finite number")
            score[i] = float(s)
        xyxy[i], cls[i] = coords, index[category]
    return xyxy, cls, score


def match_greedy(ious: np.ndarray, threshold: float, gt_ignore: np.ndarray | None = None) -> np.ndarray:
    """Greedy matching as COCO's ``evaluateImg`` does it.

    Args:
        ious: (detections, ground truth) IoU, detections already in descending score order.
        threshold: the IoU a match needs (at least; COCO caps it just under 1).
        gt_ignore: which ground-truth boxes are ignored (bool, ground truth already ordered with
            the ignored ones last); a detection takes an ignored box only when no scored one matches.

    Returns:
        For each detection, the index of the ground-truth box it matched, or -1.
    """
    n_det, n_gt = ious.shape
    matched = np.full(n_det, -1, dtype=np.int64)
    taken = np.zeros(n_gt, dtype=bool)
    ignore = np.zeros(n_gt, dtype=bool) if gt_ignore is None else np.asarray(gt_ignore, dtype=bool)
    for d in range(n_det):
        best = min(threshold, 1 - 1e-10)
        m = -1
        for g in range(n_gt):
            if m >= 0 and not ignore[m] and ignore[g]:
                break  # a scored match beats any ignored box (ignored ones come last)
            # ">=" keeps looking: on a tie the later ground-truth box wins, exactly as in COCO.
            if taken[g] or ious[d, g] < best:
                continue
            best, m = ious[d, g], g
        if m >= 0:
            taken[m] = True
            matched[d] = m
    return matched


def compute_ap(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float | None:
    """COCO's 101-point interpolated average precision of one class at one IoU threshold.

    Args:
        scores: scores of the pooled detections, in the order the frames gave them.
        tp: whether each detection matched (bool, same order).
        n_gt: ground-truth boxes of the class.

    Returns:
        AP in [0, 1], or None when the class has no ground truth (COCO's -1).
    """
    if n_gt == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    tps = np.cumsum(tp[order]).astype(float)
    fps = np.cumsum(~tp[order]).astype(float)
    recall = tps / n_gt
    precision = tps / (tps + fps + np.spacing(1))
    # Monotone from the right: the precision at a recall is the best at that recall or beyond.
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.zeros(len(RECALL_POINTS))
    ok = idx < len(precision)
    q[ok] = precision[idx[ok]]
    return float(q.mean())


def _split_ignored(g: np.ndarray, min_height: float, marked: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth (n, 4) reordered scored-first (stable) and its ignore flags (too small, or ``marked``)."""
    ignore = (g[:, 3] - g[:, 1]) < min_height
    if marked is not None:
        ignore = ignore | marked
    order = np.argsort(ignore, kind="mergesort")
    return g[order], ignore[order]


def _match_scored(d: np.ndarray, ious: np.ndarray, g_ignore: np.ndarray, threshold: float, min_height: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Match score-ordered detections ``d`` to ground truth (`_split_ignored` order) at one IoU.

    ``ious`` is `longtail.boxes.iou_matrix` (d, ground truth), computed once and shared by every threshold.

    Returns:
        (true positive, ignored) flags per detection; the rest are false positives.
    """
    m = match_greedy(ious, threshold, g_ignore)
    matched = m >= 0
    on_ignored = np.zeros(len(d), dtype=bool)
    on_ignored[matched] = g_ignore[m[matched]]
    too_small = ~matched & ((d[:, 3] - d[:, 1]) < min_height) if len(d) else np.zeros(0, dtype=bool)
    return matched & ~on_ignored, on_ignored | too_small


def _marked(boxes: Boxes) -> np.ndarray:
    """The ``ignore`` flag of each ground-truth box (False when absent)."""
    return np.array([bool(b.get("ignore", False)) for b in boxes], dtype=bool)


def _min_height(min_height: float | Mapping[str, float], frame_id: str) -> float:
    if isinstance(min_height, Mapping):
        return float(min_height.get(frame_id, 0.0))
    return float(min_height)


class ClassMatch(NamedTuple):
    """One class of one frame, matched (`iter_class_matches`)."""

    frame_id: str
    cls: int
    d: np.ndarray         # detections (n, 4), highest score first
    s: np.ndarray         # their scores
    ious: np.ndarray      # (n, ground truth) IoU
    g_ignore: np.ndarray  # ignore flag of each ground-truth box, scored ones first
    min_h: float          # px: smaller boxes are neither found nor missed
    op_tp: np.ndarray     # at the operating point (score >= threshold, IoU >= match_iou): true positive ...
    op_ignored: np.ndarray  # ... or ignored, per kept detection; the rest are false positives
    scored: int           # ground-truth boxes that count

    @property
    def op_counts(self) -> tuple[int, int, int]:
        """(tp, fp, fn) at the operating point."""
        tp = int(self.op_tp.sum())
        return tp, int((~self.op_tp & ~self.op_ignored).sum()), self.scored - tp


def iter_class_matches(gt: Mapping[str, Boxes], preds: Mapping[str, Boxes], classes: Sequence[str],
                       score_threshold: float | Mapping[str, float], match_iou: float,
                       min_height: float | Mapping[str, float]) -> Iterator[ClassMatch]:
    """Match every class of every frame once, in frame_id order (COCO pools images in id order):
    the one loop under `evaluate_detections`, `compute_frame_errors`, `compute_frame_stats` and the
    threshold calibration."""
    thresholds = class_thresholds(score_threshold, classes)
    for frame_id in sorted(gt):
        g_xy, g_cls, _ = _as_array(gt[frame_id], frame_id, "ground truth", classes, need_score=False)
        g_mark = _marked(gt[frame_id])
        d_xy, d_cls, d_score = _as_array(preds.get(frame_id, ()), frame_id, "predictions", classes, need_score=True)
        min_h = _min_height(min_height, frame_id)
        for c in range(len(classes)):
            g, g_ig = _split_ignored(g_xy[g_cls == c], min_h, g_mark[g_cls == c])
            sel = d_cls == c
            order = np.argsort(-d_score[sel], kind="mergesort")
            d, s = d_xy[sel][order], d_score[sel][order]
            ious = iou_matrix(d, g)  # once per frame and class, for the operating point and every IoU threshold
            keep = s >= thresholds[c]
            op_tp, op_ig = _match_scored(d[keep], ious[keep], g_ig, match_iou, min_h)
            yield ClassMatch(frame_id, c, d, s, ious, g_ig, min_h, op_tp, op_ig, int((~g_ig).sum()))


def class_thresholds(score_threshold: float | Mapping[str, float], classes: Sequence[str]) -> np.ndarray:
    """The operating threshold of each class, in ``classes`` order: one value for all, or class ->
    value (a class left out keeps 0.5)."""
    if isinstance(score_threshold, Mapping):
        return np.array([float(score_threshold.get(c, 0.5)) for c in classes])
    return np.full(len(classes), float(score_threshold))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def evaluate_detections(gt: Mapping[str, Boxes], preds: Mapping[str, Boxes],
                        classes: Sequence[str] = CATEGORIES,
                        iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
                        score_threshold: float | Mapping[str, float] = 0.5, *, match_iou: float = 0.5,
                        max_dets: int | None = DEFAULT_MAX_DETS,
                        min_height: float | Mapping[str, float] = 0.0) -> dict[str, Any]:
    """COCO-style AP per class and operating-point counts of one set of frames.

    Args:
        gt: frame_id -> ground-truth boxes. Its keys are the frames evaluated; a frame without
            objects is an empty list.
        preds: frame_id -> predicted boxes (with ``score`` in [0, 1]); a frame left out predicted nothing.
        classes: the classes evaluated; a box of another class is an error.
        iou_thresholds: IoU thresholds of ``map`` (default COCO's 0.5:0.05:0.95).
        score_threshold: the deployed operating threshold: detections scored at least this count
            at the operating point (precision, recall, tp/fp/fn). APs use every detection. One
            value, or class -> value (`longtail.detector.calibrate`; classes left out: 0.5).
        match_iou: IoU a detection needs to match at the operating point.
        max_dets: detections per frame and class kept for AP, highest score first (None: all).
        min_height: boxes less tall than this (px) are ignored (module docstring, point 3): one
            value for every frame, or frame_id -> value (frames left out: 0).

    Returns:
        JSON-ready dict: ``frames``, ``classes``, ``iou_thresholds``, ``score_threshold``,
        ``match_iou``, ``max_dets``, ``min_height`` (the value, or "per frame"); ``map`` (AP@[.5:.95]
        mean over classes with ground truth),
        ``map50``, ``map75`` (None when no class has ground truth); ``per_class`` class ->
        {gt, detections, ap, ap50, ap75, ap_per_iou, tp, fp, fn, precision, recall} (precision
        None without detections at the threshold, recall and APs None without ground truth);
        ``totals`` {tp, fp, fn, precision, recall} over the classes.

    Raises:
        InputError: a prediction for a frame not in ``gt``, or a malformed box (naming frame and box).
    """
    unknown = sorted(set(preds) - set(gt))
    if unknown:
        raise InputError(f"predictions for {len(unknown)} frame(s) without ground truth (first: {unknown[0]!r}); "
                         "evaluate predictions on the frames of the dataset version only")
    ious_t = sorted({float(t) for t in iou_thresholds} | {0.5, 0.75})
    if not all(0 < t <= 1 for t in ious_t):
        raise InputError(f"IoU thresholds {list(iou_thresholds)} must lie in (0, 1]")
    n_cls = len(classes)
    thresholds = class_thresholds(score_threshold, classes)
    n_gt = np.zeros(n_cls, dtype=np.int64)
    op = np.zeros((n_cls, 3), dtype=np.int64)  # tp, fp, fn at the operating point
    n_det = np.zeros(n_cls, dtype=np.int64)
    # Per class and IoU threshold: scores and true-positive flags of the detections that count
    # (ignored ones left out; which are ignored depends on the threshold).
    pooled_scores: list[list[list[np.ndarray]]] = [[[] for _ in ious_t] for _ in range(n_cls)]
    pooled_tp: list[list[list[np.ndarray]]] = [[[] for _ in ious_t] for _ in range(n_cls)]
    for m in iter_class_matches(gt, preds, classes, score_threshold, match_iou, min_height):
        c, d, s, ious = m.cls, m.d, m.s, m.ious
        n_gt[c] += m.scored
        # Operating point: every detection at or above the threshold, no max_dets cut.
        op[c] += m.op_counts
        if max_dets is not None:
            d, s, ious = d[:max_dets], s[:max_dets], ious[:max_dets]
        n_det[c] += len(d)
        if len(d) == 0:
            continue
        for k, t in enumerate(ious_t):
            tp_flags, ig_flags = _match_scored(d, ious, m.g_ignore, t, m.min_h)
            pooled_scores[c][k].append(s[~ig_flags])
            pooled_tp[c][k].append(tp_flags[~ig_flags])
    per_class: dict[str, Any] = {}
    for c, name in enumerate(classes):
        aps = {t: compute_ap(np.concatenate(pooled_scores[c][k]) if pooled_scores[c][k] else np.zeros(0),
                             np.concatenate(pooled_tp[c][k]) if pooled_tp[c][k] else np.zeros(0, bool),
                             int(n_gt[c])) for k, t in enumerate(ious_t)}
        tp, fp, fn = (int(x) for x in op[c])
        per_class[name] = {
            "gt": int(n_gt[c]), "detections": int(n_det[c]),
            "ap": _mean(aps[float(t)] for t in iou_thresholds) if n_gt[c] else None,
            "ap50": aps[0.5], "ap75": aps[0.75],
            "ap_per_iou": [aps[float(t)] for t in iou_thresholds],
            "tp": tp, "fp": fp, "fn": fn,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
        }
    tp, fp, fn = (int(x) for x in op.sum(axis=0))
    return {
        "frames": len(gt), "classes": list(classes), "iou_thresholds": [float(t) for t in iou_thresholds],
        "score_threshold": dict(zip(classes, map(float, thresholds), strict=True))
        if isinstance(score_threshold, Mapping) else float(score_threshold),
        "match_iou": float(match_iou), "max_dets": max_dets,
        "min_height": "per frame" if isinstance(min_height, Mapping) else float(min_height),
        "map": _mean(v["ap"] for v in per_class.values()),
        "map50": _mean(v["ap50"] for v in per_class.values()),
        "map75": _mean(v["ap75"] for v in per_class.values()),
        "per_class": per_class,
        "totals": {"tp": tp, "fp": fp, "fn": fn, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn)},
    }


def compute_frame_errors(gt: Mapping[str, Boxes], preds: Mapping[str, Boxes], classes: Sequence[str] = CATEGORIES,
                         score_threshold: float | Mapping[str, float] = 0.5, match_iou: float = 0.5,
                         min_height: float | Mapping[str, float] = 0.0) -> dict[str, dict[str, dict[str, int]]]:
    """False positives and negatives per frame and class at the operating point.

    The same matching as `evaluate_detections`' operating point (ignored boxes included), kept
    per frame so a report can show the frames where a model errs (and where it errs more than another).

    Returns:
        frame_id -> {"fp": {class: n}, "fn": {class: n}}, classes with 0 left out.
    """
    out: dict[str, dict[str, dict[str, int]]] = {f: {"fp": {}, "fn": {}} for f in sorted(gt)}
    for m in iter_class_matches(gt, preds, classes, score_threshold, match_iou, min_height):
        _, n_fp, n_fn = m.op_counts
        if n_fp:
            out[m.frame_id]["fp"][classes[m.cls]] = n_fp
        if n_fn:
            out[m.frame_id]["fn"][classes[m.cls]] = n_fn
    return out


def compute_frame_stats(gt: Mapping[str, Boxes], preds: Mapping[str, Boxes], classes: Sequence[str] = CATEGORIES,
                        score_threshold: float | Mapping[str, float] = 0.5, match_iou: float = 0.5,
                        max_dets: int | None = DEFAULT_MAX_DETS,
                        min_height: float | Mapping[str, float] = 0.0) -> dict[str, list[dict[str, Any]]]:
    """What AP@0.5 and the operating-point counts of each frame are made of, for resampling frames.

    The same matching as `evaluate_detections` at IoU 0.5 (AP) and ``match_iou`` (operating point),
    kept per frame so that `longtail.evaluate.bootstrap` can pool any multiset of frames without
    matching again: pooling the stats of all frames gives `evaluate_detections`' ap50 and counts.

    Returns:
        frame_id -> one dict per class, in ``classes`` order: ``scores`` and ``tp`` (the detections
        that count for AP@0.5, highest score first, after the ``max_dets`` cut), ``gt`` (scored
        ground truth), ``tp_op``, ``fp_op``, ``fn_op`` (at ``score_threshold``).
    """
    out: dict[str, list[dict[str, Any]]] = {f: [] for f in sorted(gt)}
    for m in iter_class_matches(gt, preds, classes, score_threshold, match_iou, min_height):
        tp, fp, fn = m.op_counts
        row: dict[str, Any] = {"gt": m.scored, "tp_op": tp, "fp_op": fp, "fn_op": fn}
        d, s, ious = (m.d, m.s, m.ious) if max_dets is None else (m.d[:max_dets], m.s[:max_dets], m.ious[:max_dets])
        tp_flags, ig_flags = _match_scored(d, ious, m.g_ignore, 0.5, m.min_h)
        row["scores"], row["tp"] = s[~ig_flags], tp_flags[~ig_flags]
        out[m.frame_id].append(row)
    return out
