"""What each arm of the KPI experiment (bench/kpi.py) picks, and the weights of Longtail's selection,
chosen on the validation drives.

Selection never sees the truth of the pool it mines: its tags come from the images and the triggers,
its uncertainty and embeddings from the champion. The weights of `longtail.curate.select` are chosen
on the validation drives, whose truth the experiment already uses to calibrate thresholds and which
no test figure is measured on: each candidate selects from the validation frames at the experiment's
budgets (scaled to the validation set's size), and the candidate whose batches hold the most of the
champion's critical errors (pedestrian and cyclist false positives plus negatives at its thresholds:
the validation table carries no tags, so no frame is marked a cut-in and cut-in vehicles do not count)
wins. The failure-mode similarity of a validation frame is measured against the
failure-mode exemplars of the *other* validation drives, so that no frame is scored against itself.
This objective is a proxy (errors put in front of the labelers, not the fine-tuned model's errors):
a search through fine-tuning would cost about five minutes of training per candidate and seed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpi_world import World, critical_by_drive, prediction_tags, test_table, uncertainty
from longtail.curate.select import SelectConfig, select_frames
from longtail.evaluate.run import evaluate

ARMS = ("longtail", "random", "uniqueness", "uncertainty", "no_new_data")
WEIGHTS = ("w_trigger", "w_uncertainty", "w_failure_mode", "w_diversity")
# The grid the validation search walks; the library's defaults (1.0, 0.6, 0.5, 0.3) are one of its points.
GRID = {"w_trigger": (0.0, 1.0), "w_uncertainty": (0.0, 0.6, 1.5), "w_failure_mode": (0.0, 0.5, 1.5),
        "w_diversity": (0.1, 0.3, 0.6)}
MIN_VAL_BUDGET = 10


def uniqueness_scores(world: World, pool: pd.DataFrame, emb: np.ndarray) -> np.ndarray:
    """FiftyOne Brain's uniqueness of the pool from the champion's embeddings (a throwaway dataset)."""
    import fiftyone as fo
    import fiftyone.brain as fob

    ds = fo.Dataset(f"kpi-pool-{world.seed}-{os.getpid()}", overwrite=True)
    ds.add_samples([fo.Sample(filepath=str(world.root / p), frame_id=f)
                    for f, p in zip(pool["frame_id"], pool["store_path"], strict=True)], progress=False)
    fob.compute_uniqueness(ds, embeddings=emb, progress=False)
    scores = dict(zip(ds.values("frame_id"), ds.values("uniqueness"), strict=True))
    ds.delete()
    return np.array([scores[f] for f in pool["frame_id"]], float)


def val_critical_errors(world: World, preds: Mapping[str, list[dict[str, Any]]], thresholds: Mapping[str, float]
                        ) -> dict[str, int]:
    """The champion's critical false positives plus negatives on each validation frame, at its thresholds
    (pedestrians and cyclists: the table carries no tags or triggers, so no frame is a cut-in)."""
    val = world.role("val")
    table = test_table(world, False).iloc[:0]  # columns only
    rows = [{"frame_id": f, "drive_id": d, "split": "test_common", "tags": [], "triggers": [], "fm_name": "",
             "boxes": [{k: b[k] for k in ("category", "x1", "y1", "x2", "y2")} for b in world.labels[f]],
             "height": h, "width": w, "log_id": "", "timestamp_ns": 0}
            for f, d, h, w in zip(val["frame_id"], val["drive_id"], val["height"], val["width"], strict=True)]
    frame_table = pd.DataFrame(rows, columns=table.columns)
    ev = evaluate(Path("kpi-val"), {f: preds[f] for f in val["frame_id"]}, frame_table, thresholds=dict(thresholds))
    # critical_by_drive counts per drive; with each frame as its own "drive" it counts per frame.
    return critical_by_drive(ev, frame_table.assign(drive_id=frame_table["frame_id"]))


def similarity_to(emb_of: Mapping[str, np.ndarray], frame_ids: Sequence[str], exemplars: Sequence[str]) -> np.ndarray:
    """Cosine similarity of each frame to its nearest exemplar, clipped to 0..1 (0 without exemplars)."""
    if not exemplars:
        return np.zeros(len(frame_ids))
    ex = np.stack([emb_of[f] for f in exemplars])
    return np.clip((np.stack([emb_of[f] for f in frame_ids]) @ ex.T).max(axis=1), 0, 1)


def exemplars(world: World, errors: Mapping[str, int]) -> list[str]:
    """Failure-mode exemplars: the validation frames where the champion makes a critical error."""
    return [f for f in world.role("val")["frame_id"] if errors.get(f, 0) > 0]


def scored_frames(world: World, role: str, preds: Mapping[str, list[dict[str, Any]]], emb_of: Mapping[str, np.ndarray],
                  errors: Mapping[str, int]) -> pd.DataFrame:
    """The frames of ``role`` as a selection pool: prediction tags added, the champion's uncertainty, and
    the failure-mode similarity (for validation frames, to the exemplars of the other validation drives)."""
    frames = world.role(role).copy()
    frames["tags"] = [list(t) + p for t, p in zip(frames["tags"], prediction_tags(preds, frames), strict=True)]
    frames["uncertainty"] = uncertainty(preds, frames)
    found = exemplars(world, errors)
    if role != "val":
        frames["fm_similarity"] = similarity_to(emb_of, frames["frame_id"].tolist(), found)
        return frames
    drive_of = dict(zip(frames["frame_id"], frames["drive_id"], strict=True))
    sims = np.zeros(len(frames))
    for drive in frames["drive_id"].unique():
        mask = (frames["drive_id"] == drive).to_numpy()
        others = [f for f in found if drive_of[f] != drive]
        sims[mask] = similarity_to(emb_of, frames.loc[mask, "frame_id"].tolist(), others)
    frames["fm_similarity"] = sims
    return frames


def choose_weights(val: pd.DataFrame, emb: np.ndarray, labeled: np.ndarray, errors: Mapping[str, int],
                   budgets: Sequence[int], pool_size: int, seed: int) -> dict[str, Any]:
    """The grid point whose validation batches hold the most critical errors (see the module's docstring).

    Args:
        val: validation frames as a pool (`scored_frames`); emb: their embeddings; labeled: the seed set's.
        errors: the champion's critical errors per validation frame (`val_critical_errors`).
        budgets: the experiment's budgets; each becomes ``budget * len(val) / pool_size`` validation frames
            (at least `MIN_VAL_BUDGET`).

    Returns:
        ``weights`` (the winner), ``captured`` (its errors in the validation batches, summed over budgets),
        ``default_captured`` (the library's defaults), ``random_expected`` (a uniform batch's expectation),
        ``val_budgets`` and ``candidates`` (how many grid points were tried; a tie keeps the defaults).
    """
    val_budgets = [min(len(val), max(MIN_VAL_BUDGET, round(b * len(val) / pool_size))) for b in budgets]
    per_frame = np.array([errors.get(f, 0) for f in val["frame_id"]], float)
    default = {k: float(getattr(SelectConfig(budget=1), k)) for k in WEIGHTS}
    grid = [dict(zip(WEIGHTS, values, strict=True)) for values in itertools.product(*(GRID[k] for k in WEIGHTS))]
    # The library's defaults first, so that they stay unless another point captures strictly more;
    # diversity alone is the uniqueness arm's job.
    grid = [default] + [w for w in grid if w != default and (w["w_trigger"] or w["w_uncertainty"] or w["w_failure_mode"])]
    scores = []
    for weights in grid:
        picks = [select_frames(val, emb, SelectConfig(budget=b, seed=seed, **weights), labeled) for b in val_budgets]
        scores.append(float(sum(errors.get(f, 0) for p in picks for f in p["frame_id"])))
    best = int(np.argmax(scores))  # the first of the best
    return {"weights": grid[best], "captured": scores[best], "default_captured": scores[0],
            "random_expected": round(float(per_frame.mean()) * sum(val_budgets), 1), "val_budgets": val_budgets,
            "candidates": len(grid)}


def pick(arm: str, pool: pd.DataFrame, emb: np.ndarray, labeled: np.ndarray, budget: int, seed: int,
         weights: Mapping[str, float] | None = None) -> list[str]:
    """The ``budget`` pool frames ``arm`` labels (``weights``: Longtail's, chosen on validation)."""
    if arm == "longtail":
        picked = select_frames(pool, emb, SelectConfig(budget=budget, seed=seed, **dict(weights or {})), labeled)
    elif arm == "random":
        picked = select_frames(pool, emb, SelectConfig(budget=budget, selector="random", seed=seed))
    elif arm == "uniqueness":
        picked = select_frames(pool, emb, SelectConfig(budget=budget, selector="uniqueness", seed=seed))
    elif arm == "uncertainty":
        order = np.argsort(-pool["uncertainty"].to_numpy(), kind="stable")[:budget]
        return pool["frame_id"].iloc[order].tolist()
    else:
        raise ValueError(f"unknown arm {arm!r}; one of {ARMS}")
    return picked["frame_id"].tolist()
