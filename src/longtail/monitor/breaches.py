"""Thresholds, breaches, and what a breach leaves for curation.

`find_breaches` checks a batch's measurements against the target's `MonitorConfig`. Each breach
opens (or updates) a failure mode in the registry (`longtail.catalog.failure_modes.record_breach`)
with example frames and its evidence, and the example frames are marked with a monitor trigger
(DATA/monitor/triggers/<batch_id>.parquet), which curation adds to the frames' own triggers. The
failure mode's query selects those triggers, so the next curation counts its frames and mines
frames like them (similarity to an open failure mode).

| metric          | breach when                               | failure mode         | frames marked                    |
|-----------------|-------------------------------------------|----------------------|----------------------------------|
| domain_auc      | AUC > domain_auc_max                      | distribution_shift   | highest domain-classifier scores |
| mmd_p           | p < mmd_p_min                             | distribution_shift   | the same                         |
| confidence_tv   | TV > confidence_tv_max                    | prediction_shift     | least confident frames           |
| class_tv        | TV > class_tv_max                         | prediction_shift     | most of the class that rose most |
| rate:<trigger>  | ratio > rate_ratio_max and p < rate_alpha | <trigger>_rate       | (they carry the trigger already) |
| shadow_per_1000 | rate > shadow_per_1000_max                | shadow_disagreements | disagreement frames              |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from longtail.catalog.failure_modes import FailureModeQuery, record_breach
from longtail.config import MonitorConfig
from longtail.schemas import MONITOR_TRIGGERS_SCHEMA

MODES: dict[str, tuple[str, str]] = {
    "distribution_shift": ("Frames unlike the training drives",
                           "Monitoring found new drives the champion's embeddings tell apart from its training drives "
                           "(domain classifier or MMD test): conditions or scenes the training data lacks."),
    "prediction_shift": ("Shifted predictions",
                         "The champion's confidence or class mix on new drives moved away from its validation drives."),
    "shadow_disagreements": ("Champion and challenger disagree",
                             "Frames where the challenger in shadow sees a critical object the champion does not, or "
                             "the other way round, or their boxes lie far apart."),
}


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def find_breaches(record: Mapping[str, Any], config: MonitorConfig) -> list[dict[str, Any]]:
    """The thresholds a batch's measurements break.

    Args:
        record: the batch's measurements (``drift``, ``predictions``, ``rates``, ``shadow`` as
            `longtail.monitor.run` builds them).
        config: the thresholds.

    Returns:
        One dict per breach: metric, value, threshold, rule (in words), failure_mode.
    """
    out: list[dict[str, Any]] = []
    drift = record.get("drift") or {}
    if drift.get("status") == "evaluated":
        auc, p = drift["domain"]["auc"], drift["mmd"]["p_value"]
        if config.domain_auc_max is not None and auc > config.domain_auc_max:
            out.append({"metric": "domain_auc", "value": auc, "threshold": config.domain_auc_max,
                        "rule": f"domain classifier ROC AUC {_fmt(auc)} > {config.domain_auc_max:g}",
                        "failure_mode": "distribution_shift"})
        if config.mmd_p_min is not None and p < config.mmd_p_min:
            out.append({"metric": "mmd_p", "value": p, "threshold": config.mmd_p_min,
                        "rule": f"MMD permutation p-value {_fmt(p)} < {config.mmd_p_min:g}",
                        "failure_mode": "distribution_shift"})
    preds = record.get("predictions") or {}
    for key, limit, what in (("confidence_tv", config.confidence_tv_max, "confidence histogram"),
                             ("class_tv", config.class_tv_max, "class frequencies")):
        value = preds.get(key)
        if limit is not None and value is not None and value > limit:
            out.append({"metric": key, "value": value, "threshold": limit,
                        "rule": f"{what} moved by total variation {_fmt(value)} > {limit:g}",
                        "failure_mode": "prediction_shift"})
    if config.rate_ratio_max is not None:
        for trig, test in sorted((record.get("rates") or {}).items()):
            ratio = test["ratio"]
            ratio_v = float("inf") if ratio is None and test["count"] and test["ref_count"] == 0 else ratio
            if ratio_v is not None and ratio_v > config.rate_ratio_max and test["p_value"] < config.rate_alpha:
                out.append({"metric": f"rate:{trig}", "value": test["rate"], "threshold": config.rate_ratio_max,
                            "rule": (f"{trig} {_fmt(test['rate'])} per 100 km, {_fmt(ratio_v)}x the training drives' "
                                     f"{_fmt(test['ref_rate'] or 0)} (p {_fmt(test['p_value'])} < {config.rate_alpha:g})"),
                            "failure_mode": f"{trig}_rate"})
    shadow = record.get("shadow") or {}
    rate = shadow.get("per_1000")
    if config.shadow_per_1000_max is not None and rate is not None and rate > config.shadow_per_1000_max:
        out.append({"metric": "shadow_per_1000", "value": rate, "threshold": config.shadow_per_1000_max,
                    "rule": f"{_fmt(rate)} frames of disagreement per 1,000 > {config.shadow_per_1000_max:g}",
                    "failure_mode": "shadow_disagreements"})
    return out


def breach_examples(breach: Mapping[str, Any], *, domain_scores: pd.DataFrame, predictions: Mapping[str, list[dict]],
                    frames: pd.DataFrame, disagreements: list[Any], n: int) -> list[tuple[str, float, str]]:
    """The frames behind a breach, strongest first: (frame_id, score, detail).

    Args:
        breach: from `find_breaches`.
        domain_scores: frame_id, score (out-of-fold domain-classifier scores of the batch's drift sample).
        predictions: frame_id -> the champion's detections (above the confidence floor).
        frames: the batch's frame-index rows (every kept frame, for trigger rates).
        disagreements: shadow `Disagreement`s, most objects first.
        n: how many.
    """
    metric = breach["metric"]
    if metric in ("domain_auc", "mmd_p"):
        top = domain_scores.sort_values("score", ascending=False, kind="stable").head(n)
        return [(f, float(s), f"domain classifier score {s:.2f}: unlike the training drives")
                for f, s in zip(top["frame_id"], top["score"], strict=True)]
    if metric == "confidence_tv":
        best = sorted(((max((b["score"] for b in boxes), default=0.0), fid) for fid, boxes in predictions.items()
                       if boxes), key=lambda t: (t[0], t[1]))[:n]
        return [(fid, float(s), f"most confident detection only {s:.2f}") for s, fid in best]
    if metric == "class_tv":
        grew = breach.get("class_rose")
        rows = sorted(((sum(b["category"] == grew for b in boxes), fid) for fid, boxes in predictions.items()),
                      key=lambda t: (-t[0], t[1]))
        return [(fid, float(k), f"{k} {grew} detection(s); {grew} rose most") for k, fid in rows[:n] if k]
    if metric.startswith("rate:"):
        trig = metric.split(":", 1)[1]
        hit = frames[frames["triggers"].map(lambda t: trig in list(t))]
        return [(f, 1.0, f"covered by a {trig} trigger") for f in hit["frame_id"].head(n)]
    if metric == "shadow_per_1000":
        return [(d.frame_id, float(d.objects), d.describe()) for d in disagreements[:n]]
    return []


def class_that_rose(batch: Mapping[str, int], reference: Mapping[str, int]) -> str | None:
    """The class whose share of detections grew most from the reference to the batch."""
    sb, sr = sum(batch.values()), sum(reference.values())
    if not sb or not sr:
        return None
    return max(batch, key=lambda c: (batch[c] / sb - reference.get(c, 0) / sr, c))


TRIGGER_OF = {"distribution_shift": "distribution_shift", "prediction_shift": "prediction_shift",
              "shadow_disagreements": "shadow_disagreement"}
"""The monitor trigger each failure mode's frames carry (rate breaches use the log's own trigger)."""


def open_failure_modes(root: str | os.PathLike[str], batch_id: str, breaches: list[dict[str, Any]],
                       by: str) -> list[str]:
    """Record each breach in the failure-mode registry; returns the failure modes opened or updated."""
    names = []
    for b in breaches:
        name = b["failure_mode"]
        if name in TRIGGER_OF:
            title, description = MODES[name]
            query = FailureModeQuery(triggers_any=(TRIGGER_OF[name],))
        else:
            trig = b["metric"].split(":", 1)[1]
            title = f"More {trig.replace('_', ' ')} per 100 km"
            description = f"New drives fire {trig} triggers more often than the training drives did."
            query = FailureModeQuery(triggers_any=(trig,))
        evidence = {k: b[k] for k in ("metric", "value", "threshold", "rule")}
        record_breach(root, name, query, title=title, description=description, examples=[e[0] for e in b["examples"]],
                      evidence={**evidence, "batch_id": batch_id}, by=by)
        names.append(name)
    return sorted(set(names))


def trigger_table(batch_id: str, log_of: Mapping[str, str], marks: list[tuple[str, str, float, str]]) -> pa.Table:
    """The batch's monitor triggers as a `MONITOR_TRIGGERS_SCHEMA` table, one row per (frame, trigger).

    Args:
        batch_id: the monitoring batch.
        log_of: frame_id -> log_id.
        marks: (frame_id, trigger, score, detail).
    """
    seen: dict[tuple[str, str], tuple[float, str]] = {}
    for fid, trig, score, detail in marks:
        if (fid, trig) not in seen or score > seen[(fid, trig)][0]:
            seen[(fid, trig)] = (score, detail)
    keys = sorted(seen)
    return pa.table({
        "frame_id": [k[0] for k in keys], "log_id": [log_of[k[0]] for k in keys], "trigger": [k[1] for k in keys],
        "detail": [seen[k][1] for k in keys],
        "score": pa.array(np.asarray([max(seen[k][0], 0.0) for k in keys], np.float32)),
        "batch_id": [batch_id] * len(keys),
    }, schema=MONITOR_TRIGGERS_SCHEMA)
