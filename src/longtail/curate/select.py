"""Choose which frames to label within a budget.

`select_frames` is pure: it takes a candidate pool (one row per frame) and the frames'
embeddings and returns the picks with why each was chosen. Three selectors:

- ``longtail``: greedy, one frame at a time. Each candidate's score is a weighted sum of
  1. trigger priority: the most important trigger whose window covers the frame, scaled by how
     severe the vehicle's signals are at that frame (deceleration, steering rate, alerts, a
     driver takeover), so the frames at the heart of an event rank above the window's edges;
  2. model uncertainty, when a model has run (0 before the first model);
  3. similarity to open failure modes (cosine similarity to their nearest member frame);
  4. diversity: k-center greedy (Sener & Savarese, "Active learning for convolutional neural
     networks: a core-set approach", ICLR 2018): the cosine distance to the nearest frame
     already picked or already labeled, normalised by its current maximum.
  Per-scenario quotas are met first when the pool allows: while the slots left equal the
  quota still unmet, only frames carrying an unmet tag are eligible. Near-duplicates are never
  picked twice: after each pick, frames of the same drive within ``min_gap_s`` of it, or more
  similar to it than ``duplicate_similarity``, leave the pool.
- ``random``: a uniform sample (the baseline).
- ``uniqueness``: the K frames with the highest FiftyOne Brain uniqueness (the other baseline).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from longtail.config import _Frozen
from longtail.errors import LongtailError

log = logging.getLogger(__name__)

SELECTORS = ("longtail", "random", "uniqueness")

TRIGGER_PRIORITY = {"adas_alert": 1.0, "disengagement": 0.9, "hard_braking": 0.85, "harsh_steering": 0.8,
                    "shadow_disagreement": 0.75, "distribution_shift": 0.5, "prediction_shift": 0.5}
"""Weight of each trigger: an alert or AEB intervention ranks first, then a driver takeover. The
monitor's triggers (`longtail.schemas.MONITOR_TRIGGERS`) follow: a challenger in shadow disagreeing
with the champion on a critical object, then frames behind a drift or prediction breach."""

POOL_COLUMNS = ("frame_id", "drive_id", "timestamp_ns", "triggers", "tags")
"""Columns a candidate pool must have. Optional: decel_mps2, steering_rate_dps,
lateral_accel_mps2, adas_alert, driver_override (signals), uncertainty (0..1), fm_similarity
(0..1), fm_name, uniqueness (0..1)."""


class BudgetError(LongtailError):
    """The labeling budget cannot be met by the pool."""


class SelectConfig(_Frozen):
    """How a labeling batch is chosen."""

    budget: int = Field(..., ge=1, description="frames to label")
    selector: Literal["longtail", "random", "uniqueness"] = Field("longtail", description="selection method")
    w_trigger: float = Field(1.0, ge=0, description="weight of trigger priority")
    w_uncertainty: float = Field(0.6, ge=0, description="weight of model uncertainty")
    w_failure_mode: float = Field(0.5, ge=0, description="weight of similarity to open failure modes")
    w_diversity: float = Field(0.3, ge=0, description="weight of k-center diversity")
    quotas: dict[str, float] = Field(
        default_factory=lambda: {"night": 0.10, "fog": 0.05, "rain": 0.05},
        description="minimum share of the batch for frames with each scenario tag (met when the pool allows)",
    )
    min_gap_s: float = Field(0.25, ge=0, le=600, description="frames of one drive closer than this are near-duplicates, s")
    duplicate_similarity: float = Field(0.995, gt=0, le=1,
                                        description="frames of one drive more similar than this (cosine) are near-duplicates")
    seed: int = Field(0, ge=0, description="seed of the random selector and of ties")

    @field_validator("quotas")
    @classmethod
    def _quotas(cls, v: dict[str, float]) -> dict[str, float]:
        for tag, share in v.items():
            if not 0 <= share <= 1:
                raise ValueError(f"quota of {tag!r} must be a share of the batch within 0..1, got {share}")
        if sum(v.values()) > 1:
            raise ValueError(f"quotas add up to {sum(v.values()):.2f} of the batch; keep the sum at most 1")
        return v

    def digest(self) -> str:
        """sha256 of the config."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def compute_trigger_priority(pool: pd.DataFrame) -> np.ndarray:
    """Trigger priority of each frame, 0..1.

    Triggers are evidence that combine: a frame covered by several kinds of trigger at once (an
    alert, hard braking and a takeover) is far more likely critical than one covered by a lone
    alert, so the weights combine as independent evidence, 1 - prod(1 - 0.7 w). That is scaled
    by the severity of the signals at the frame (half at rest, all of it at the peak).
    """
    n = len(pool)
    weight = np.fromiter((1.0 - math.prod(1.0 - 0.7 * TRIGGER_PRIORITY.get(t, 0.5) for t in set(ts))
                          for ts in pool["triggers"]), np.float64, count=n)

    def col(name: str, default: float = 0.0) -> np.ndarray:
        if name not in pool:
            return np.full(n, default)
        return np.nan_to_num(np.asarray(pool[name], np.float64), nan=default)

    severity = np.maximum.reduce([
        np.clip(col("decel_mps2") / 6.0, 0, 1),
        np.clip(np.abs(col("steering_rate_dps")) / 120.0, 0, 1),
        np.clip(np.abs(col("lateral_accel_mps2")) / 4.0, 0, 1),
        np.asarray(pool["adas_alert"].isin(["aeb"]), np.float64) if "adas_alert" in pool else np.zeros(n),
        0.8 * np.asarray(pool["adas_alert"].isin(["fcw"]), np.float64) if "adas_alert" in pool else np.zeros(n),
        0.7 * np.asarray(pool["driver_override"].fillna(False), np.float64) if "driver_override" in pool else np.zeros(n),
    ])
    return weight * (0.5 + 0.5 * severity)


def _check_pool(pool: pd.DataFrame, embeddings: np.ndarray, budget: int) -> None:
    missing = [c for c in POOL_COLUMNS if c not in pool]
    if missing:
        raise LongtailError(f"candidate pool lacks column(s) {missing}; build it with longtail.curate.make_pool")
    if len(embeddings) != len(pool):
        raise LongtailError(f"{len(embeddings)} embeddings for {len(pool)} candidate frames")
    if budget > len(pool):
        raise BudgetError(f"budget {budget} is larger than the pool of {len(pool)} unlabeled candidate frames; "
                          f"lower --budget to at most {len(pool)} or ingest more drive logs")


def select_frames(pool: pd.DataFrame, embeddings: np.ndarray, config: SelectConfig,
                  labeled: np.ndarray | None = None) -> pd.DataFrame:
    """Choose ``config.budget`` frames of the pool.

    Args:
        pool: candidate frames, with at least `POOL_COLUMNS`.
        embeddings: float32 (len(pool), d), unit-length rows.
        config: the selection config.
        labeled: float32 (m, d) embeddings of frames labeled before (diversity counts them as
            already covered), or None.

    Returns:
        The picks in the order chosen: frame_id, rank, score and its parts (priority,
        uncertainty, fm_similarity, diversity), quota (the tag a quota slot was used for, or ""),
        and reason (a sentence).

    Raises:
        BudgetError: when the budget exceeds the pool.
    """
    _check_pool(pool, embeddings, config.budget)
    if config.selector == "random":
        rng = np.random.default_rng(config.seed)
        idx = np.sort(rng.choice(len(pool), size=config.budget, replace=False))
        return _result(pool, idx, {"reason": "uniform random sample (baseline)"})
    if config.selector == "uniqueness":
        if "uniqueness" not in pool or pool["uniqueness"].isna().all():
            raise LongtailError("the uniqueness selector needs FiftyOne Brain uniqueness; run `longtail curate` first")
        order = np.argsort(-np.nan_to_num(pool["uniqueness"].to_numpy(np.float64), nan=-1), kind="stable")
        idx = order[:config.budget]
        return _result(pool, idx, {"uniqueness": pool["uniqueness"].to_numpy()[idx],
                                   "reason": "highest FiftyOne Brain uniqueness (baseline)"})
    return _select_longtail(pool, np.asarray(embeddings, np.float32), config, labeled)


def _result(pool: pd.DataFrame, idx: np.ndarray, extra: dict[str, Any]) -> pd.DataFrame:
    out = pd.DataFrame({"frame_id": pool["frame_id"].to_numpy()[idx], "rank": np.arange(len(idx))})
    for k, v in extra.items():
        out[k] = v
    return out


def _select_longtail(pool: pd.DataFrame, emb: np.ndarray, config: SelectConfig,
                     labeled: np.ndarray | None) -> pd.DataFrame:
    n, budget = len(pool), config.budget
    priority = compute_trigger_priority(pool)
    uncertainty = np.clip(np.nan_to_num(pool["uncertainty"].to_numpy(np.float64)), 0, 1) \
        if "uncertainty" in pool else np.zeros(n)
    fm_sim = np.clip(np.nan_to_num(pool["fm_similarity"].to_numpy(np.float64)), 0, 1) \
        if "fm_similarity" in pool else np.zeros(n)
    base = config.w_trigger * priority + config.w_uncertainty * uncertainty + config.w_failure_mode * fm_sim
    rng = np.random.default_rng(config.seed)
    base = base + rng.uniform(0, 1e-9, n)  # deterministic tie-breaking

    # Distance to the nearest covered frame (k-center). Before any pick: the labeled set, or 1.
    min_dist = np.ones(n, np.float32)
    if labeled is not None and len(labeled):
        for start in range(0, len(labeled), 256):
            sims = emb @ np.asarray(labeled[start:start + 256], np.float32).T
            np.minimum(min_dist, 1.0 - sims.max(axis=1), out=min_dist)

    # Near-duplicate bookkeeping: frames sorted by drive and time.
    drive_codes, _ = pd.factorize(pool["drive_id"])
    ts = pool["timestamp_ns"].to_numpy(np.int64)
    order = np.lexsort((ts, drive_codes))
    sorted_drive, sorted_ts = drive_codes[order], ts[order]
    gap_ns = int(config.min_gap_s * 1e9)
    eligible = np.ones(n, bool)

    tags = pool["tags"].tolist()
    quota_need = {t: math.ceil(share * budget) for t, share in config.quotas.items() if share > 0}
    has_tag = {t: np.fromiter((t in tg for tg in tags), bool, count=n) for t in quota_need}
    unmet_quotas = {t: f"asked for {k} frame(s) tagged {t}, the pool has {int(has_tag[t].sum())}"
                    for t, k in quota_need.items() if has_tag[t].sum() < k}
    for text in unmet_quotas.values():
        log.warning("quota not met: %s; the batch holds those and fills the rest by score", text)
    quota_need = {t: min(k, int(has_tag[t].sum())) for t, k in quota_need.items()}  # what the pool allows

    picks: list[int] = []
    rows: list[dict[str, Any]] = []
    for rank in range(budget):
        left = budget - rank
        unmet = [t for t, k in quota_need.items() if k > 0]
        mask = eligible
        quota_tag = ""
        if unmet and sum(quota_need[t] for t in unmet) >= left:
            restricted = eligible & np.logical_or.reduce([has_tag[t] for t in unmet])
            if restricted.any():
                mask = restricted
        if not mask.any():
            # Near-duplicate suppression emptied the pool: relax it rather than under-fill the batch.
            mask = np.ones(n, bool)
            mask[picks] = False
        dmax = float(min_dist[mask].max()) or 1.0
        score = base + config.w_diversity * (min_dist / dmax)
        score = np.where(mask, score, -np.inf)
        i = int(np.argmax(score))
        for t in unmet:
            if has_tag[t][i]:
                quota_need[t] -= 1
                quota_tag = quota_tag or t
        diversity = float(min_dist[i] / dmax)
        picks.append(i)
        rows.append({"_i": i, "frame_id": pool["frame_id"].iat[i], "rank": rank, "score": float(score[i]),
                     "priority": float(priority[i]), "uncertainty": float(uncertainty[i]),
                     "fm_similarity": float(fm_sim[i]), "diversity": diversity, "quota": quota_tag,
                     "_distance": float(min_dist[i]), "_tags": list(tags[i])})
        # Update coverage, then remove the pick and its near-duplicates.
        sims = emb @ emb[i]
        np.minimum(min_dist, 1.0 - sims, out=min_dist)
        eligible[i] = False
        lo = np.searchsorted(sorted_drive, drive_codes[i], "left")
        hi = np.searchsorted(sorted_drive, drive_codes[i], "right")
        seg_ts = sorted_ts[lo:hi]
        a = lo + np.searchsorted(seg_ts, ts[i] - gap_ns, "right")
        b = lo + np.searchsorted(seg_ts, ts[i] + gap_ns, "left")
        eligible[order[a:b]] = False
        same = order[lo:hi]
        eligible[same[sims[same] > config.duplicate_similarity]] = False
    out = pd.DataFrame(rows)
    out["reason"] = [_reason(r, pool) for r in rows]
    out.attrs["unmet_quotas"] = unmet_quotas
    return out.drop(columns=["_i", "_distance", "_tags"])


def _reason(row: dict[str, Any], pool: pd.DataFrame) -> str:
    parts = []
    if row["priority"] > 0:
        trig = ", ".join(sorted(pool["triggers"].iat[row["_i"]]))
        parts.append(f"trigger {trig} (priority {row['priority']:.2f})")
    if row["uncertainty"] > 0:
        parts.append(f"model uncertainty {row['uncertainty']:.2f}")
    if row["fm_similarity"] > 0:
        parts.append(f"like an open failure mode (similarity {row['fm_similarity']:.2f})")
    if row["quota"]:
        parts.append(f"quota for {row['quota']}")
    # The normalised diversity of a k-center pick is 1.00 by construction: say how far the frame is
    # from what is covered, and what it shows.
    tags = f" ({', '.join(row['_tags'])})" if row["_tags"] else ""
    if row["_distance"] >= 1.0 - 1e-6:
        parts.append(f"unlike anything covered yet{tags}")
    else:
        parts.append(f"farthest from the frames covered so far: cosine distance {row['_distance']:.2f}{tags}")
    return "; ".join(parts)


def selection_digest(frame_ids: list[str], config: SelectConfig, pool_digest: str) -> str:
    """Content address of a labeling batch: its frames, config and pool."""
    blob = json.dumps({"frames": frame_ids, "config": config.model_dump(mode="json"), "pool": pool_digest},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
