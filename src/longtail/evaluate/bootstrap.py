"""95% intervals by a bootstrap over drives, and when a number is too thin to be measured.

Frames of one drive are not independent (the same road, light and traffic, seconds apart), so
the unit resampled is the drive: a resample draws as many drives as there are, with replacement,
and takes every frame of each drawn drive. The statistic is computed on each resample and the
interval is the 2.5th and 97.5th percentile of those values (numpy's linear interpolation), the
percentile bootstrap (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13).

Cost: nothing is matched again. `longtail.evaluate.metrics.compute_frame_stats` keeps, per frame
and class, the scored detections with their true-positive flags and the ground-truth count;
`drive_stats` pools them per drive once; a resample concatenates its drives' arrays and
computes AP (`compute_ap`) from them. 300 resamples of a few thousand detections take well under
a second per metric set.

1. `drive_stats`: per drive and class, the pooled scores, tp flags, gt and operating-point counts.
2. `draw_resamples`: the drive indices of every resample, from a seeded generator (deterministic).
3. `compute_pooled`: the statistics of one multiset of drives: map50, ap50 per class, fp/fn per class.
4. `bootstrap`: (3) on each resample of (2), then `percentile_interval` per statistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from longtail.config import _Frozen
from longtail.detector.metrics import compute_ap

Stats = dict[str, float | None]


class BootstrapConfig(_Frozen):
    """How intervals are computed, and when a suite is too thin to measure. Saved in evaluation.json."""

    resamples: int = Field(300, ge=20, le=10_000, description="bootstrap resamples of the drives")
    seed: int = Field(0, ge=0, description="seed of the resampling generator (same seed, same intervals)")
    confidence: float = Field(0.95, gt=0, lt=1, description="coverage of the intervals (0.95: 2.5th-97.5th pct)")
    min_drives: int = Field(3, ge=1, description="a suite from fewer drives is not measurable")
    min_objects: int = Field(10, ge=1, description="a suite with fewer scored subject objects is not measurable")


def drive_stats(frame_stats: Mapping[str, Sequence[Mapping[str, Any]]], drive_of: Mapping[str, str]
                ) -> dict[str, list[dict[str, Any]]]:
    """Pool `compute_frame_stats` per drive: drive -> one dict per class (scores, tp, gt, tp_op, fp_op, fn_op).

    Frames are pooled in frame_id order, as `evaluate_detections` pools them.

    Raises:
        KeyError: a frame without a drive in ``drive_of``.
    """
    frames: dict[str, list[str]] = {}
    for fid in sorted(frame_stats):
        frames.setdefault(drive_of[fid], []).append(fid)
    out: dict[str, list[dict[str, Any]]] = {}
    for drive in sorted(frames):
        rows = [frame_stats[f] for f in frames[drive]]
        n_cls = len(rows[0])
        out[drive] = [{
            "scores": np.concatenate([np.asarray(r[c]["scores"], float) for r in rows]),
            "tp": np.concatenate([np.asarray(r[c]["tp"], bool) for r in rows]),
            **{k: int(sum(r[c][k] for r in rows)) for k in ("gt", "tp_op", "fp_op", "fn_op")},
        } for c in range(n_cls)]
    return out


def compute_pooled(drives: Sequence[Sequence[Mapping[str, Any]]], classes: Sequence[str]) -> Stats:
    """The statistics of a multiset of drives (each a `drive_stats` value; repeats count twice).

    Returns:
        ``map50`` (mean AP@0.5 over classes with ground truth, None without any), ``ap50:<class>``
        (None without ground truth), ``fp:<class>``, ``fn:<class>`` (at the operating point), ``gt:<class>``,
        ``recall:<class>`` (at the operating point; None without ground truth).
    """
    out: Stats = {}
    aps = []
    for c, name in enumerate(classes):
        parts = [d[c] for d in drives]
        n_gt = sum(p["gt"] for p in parts)
        scores = np.concatenate([p["scores"] for p in parts]) if parts else np.zeros(0)
        tp = np.concatenate([p["tp"] for p in parts]) if parts else np.zeros(0, bool)
        ap = compute_ap(scores, tp, n_gt)
        out[f"ap50:{name}"] = ap
        out[f"fp:{name}"] = float(sum(p["fp_op"] for p in parts))
        out[f"fn:{name}"] = float(sum(p["fn_op"] for p in parts))
        out[f"gt:{name}"] = float(n_gt)
        # Recall at the operating point, per resample: its interval is not 1 - fn_ci / gt, since the
        # objects to find change with the drives drawn.
        out[f"recall:{name}"] = (n_gt - out[f"fn:{name}"]) / n_gt if n_gt else None
        if ap is not None:
            aps.append(ap)
    out["map50"] = float(np.mean(aps)) if aps else None
    return out


def draw_resamples(n_drives: int, resamples: int, seed: int) -> np.ndarray:
    """Drive indices of each resample: (resamples, n_drives) ints in [0, n_drives), from ``seed`` alone."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    return rng.integers(0, n_drives, size=(resamples, n_drives)) if n_drives else np.zeros((resamples, 0), int)


def percentile_interval(values: Sequence[float | None], confidence: float = 0.95) -> list[float] | None:
    """The percentile interval of bootstrap values, [lo, hi]; resamples where the statistic is
    undefined (None: e.g. no ground truth drawn) are left out; None when every one is."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return None
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(vals, [tail, 100 - tail])
    return [float(lo), float(hi)]


def bootstrap(units: Sequence[Any], statistic: Callable[[list[Any]], Stats], resamples: np.ndarray,
              confidence: float = 0.95) -> dict[str, list[float] | None]:
    """Interval of each statistic over the resamples of ``units`` (drives).

    Args:
        units: one entry per drive, whatever ``statistic`` reads.
        statistic: the statistics of a list of units (with repeats), e.g. `compute_pooled`.
        resamples: (n, len(units)) indices, `draw_resamples`.
        confidence: coverage (0.95).

    Returns:
        statistic name -> [lo, hi] or None (never defined).
    """
    values: dict[str, list[float | None]] = {}
    for idx in resamples:
        for key, v in statistic([units[i] for i in idx]).items():
            values.setdefault(key, []).append(v)
    return {k: percentile_interval(v, confidence) for k, v in values.items()}


def drive_intervals(frame_stats: Mapping[str, Sequence[Mapping[str, Any]]], drive_of: Mapping[str, str],
                    classes: Sequence[str], config: BootstrapConfig) -> tuple[int, dict[str, list[float] | None]]:
    """`compute_pooled`'s statistics' intervals for some frames, resampling their drives.

    Returns:
        (number of drives, statistic -> [lo, hi] or None).
    """
    per_drive = drive_stats(frame_stats, drive_of)
    units = [per_drive[d] for d in sorted(per_drive)]
    draws = draw_resamples(len(units), config.resamples, config.seed)
    return len(units), bootstrap(units, lambda ds: compute_pooled(ds, classes), draws, config.confidence)


def count_intervals(per_drive: Mapping[str, Mapping[str, float]], config: BootstrapConfig
                    ) -> dict[str, list[float] | None]:
    """Intervals of sums of per-drive counts (e.g. critical false positives): drive -> {name: count}."""
    units = [dict(per_drive[d]) for d in sorted(per_drive)]
    keys = sorted({k for u in units for k in u})

    def total(ds: list[dict[str, float]]) -> Stats:
        return {k: float(sum(d.get(k, 0.0) for d in ds)) for k in keys}

    return bootstrap(units, total, draw_resamples(len(units), config.resamples, config.seed), config.confidence)
