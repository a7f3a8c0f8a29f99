"""What a monitoring batch is, and what it is compared against.

A *batch* is every drive log ingested completely into the data root (its manifest in
DATA/index/logs says ``ingested`` or ``partial``, with frames or vehicle signals) that

1. no earlier monitoring record holds (DATA/monitor/batches/*.json), and
2. is not a log of the champion's dataset version: those drives are the reference.

So the first run after training monitors whatever was ingested beside the training drives, and
each later run the logs ingested since. A batch's id is the hash of its sorted log ids
(``mb-<16 hex>``): the same logs are the same batch.

The *reference* is the champion's training data: the keyframes of the drive logs of its dataset
version's train split, from the frame index. Not the version's labeled frames themselves:
curation picks those for the long tail on purpose (triggers, quotas for night and fog,
diversity), so they are not what a fleet sees, while their drives are. Predictions are compared
with the champion's on the validation drives (frames it did not train on). When those logs are not
in this data root's index, the version's own frames stand in.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from longtail.catalog.frames import list_manifests, load_frame_index
from longtail.catalog.root import DataRoot
from longtail.catalog.truth import CONDITION_COLUMNS, load_conditions
from longtail.catalog.versions import list_versions, load_version
from longtail.errors import InputError


def make_batch_id(log_ids: list[str]) -> str:
    """``mb-`` and 16 hex digits of the sha256 of the sorted log ids."""
    return "mb-" + hashlib.sha256("\n".join(sorted(log_ids)).encode()).hexdigest()[:16]


def usable_manifests(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Manifests of logs ingested completely (``ingested`` or ``partial``) with frames or signals."""
    return [m for m in list_manifests(root) if m.get("status") in ("ingested", "partial")
            and (m.get("frames_kept") or m.get("signal_samples"))]


def find_new_logs(root: str | os.PathLike[str], exclude: set[str]) -> list[dict[str, Any]]:
    """Manifests of the usable logs not in ``exclude`` (monitored before, or reference), by log id."""
    return sorted((m for m in usable_manifests(root) if m["log_id"] not in exclude), key=lambda m: m["log_id"])


def spread_sample(frames: pd.DataFrame, n: int) -> pd.DataFrame:
    """At most ``n`` rows spread evenly over drives and time: rows at even steps through the frames
    sorted by drive and timestamp, so each drive gives its share and no second is taken twice."""
    ordered = frames.sort_values(["drive_id", "timestamp_ns"], kind="stable").reset_index(drop=True)
    if len(ordered) <= n:
        return ordered
    picks = np.unique(np.linspace(0, len(ordered) - 1, n).round().astype(int))
    return ordered.iloc[picks].reset_index(drop=True)


@dataclass(frozen=True)
class Reference:
    """The champion's training data as monitoring sees it.

    Attributes:
        version_id: the dataset version.
        logs: log ids of the whole version (excluded from batches).
        train_frames: keyframes to embed (``store_path`` relative to ``image_root``), one row per frame.
        val_frames: keyframes to predict on (the validation drives).
        image_root: folder the image paths are relative to (the data root, or the version folder).
        manifests: log manifests of the train drives (km and triggers), empty when not ingested here.
        source: "drive logs" (keyframes of the version's drives) or "version frames" (its labeled frames).
    """

    version_id: str
    logs: frozenset[str]
    train_frames: pd.DataFrame
    val_frames: pd.DataFrame
    image_root: Path
    manifests: list[dict[str, Any]] = field(default_factory=list)
    source: str = "drive logs"


def load_reference(root: str | os.PathLike[str], version_id: str | None, index: pd.DataFrame | None = None
                   ) -> Reference:
    """The reference of a dataset version (default: the newest).

    Args:
        root: the data root.
        version_id: the dataset version (the champion's ``dataset_version``); None for the newest.
        index: the frame index (`load_frame_index`), when the caller has it already.

    Raises:
        InputError: there is no dataset version, or its train split is empty.
    """
    if version_id is None:
        versions = list_versions(root)
        if not versions:
            raise InputError(f"{DataRoot.of(root).datasets}: no dataset version, so no training data to compare with; "
                             f"label a batch and build one (`longtail label --root {root}`) before monitoring")
        version_id = str(versions[-1]["version_id"])
    labels, _ = load_version(root, version_id)
    logs = frozenset(str(x) for x in labels["log_id"].unique())
    train_logs = set(labels.loc[labels["split"] == "train", "log_id"].astype(str))
    val_logs = set(labels.loc[labels["split"] == "val", "log_id"].astype(str)) or train_logs
    if not train_logs:
        raise InputError(f"dataset version {version_id}: its train split is empty; nothing to compare batches with")
    index = load_frame_index(root) if index is None else index
    index = index[index["keyframe"]]
    train = index[index["log_id"].isin(train_logs)]
    val = index[index["log_id"].isin(val_logs)]
    if len(train):
        by_id = {m["log_id"]: m for m in usable_manifests(root)}
        return Reference(version_id, logs, train.reset_index(drop=True), val.reset_index(drop=True), DataRoot.of(root).path,
                         [by_id[x] for x in sorted(train_logs) if x in by_id])
    # The drives are not in this data root's index (a version restored elsewhere): its frames stand in.
    frames = labels.rename(columns={"image_path": "store_path"})
    return Reference(version_id, logs, frames[frames["split"] == "train"].reset_index(drop=True),
                     frames[frames["split"] == ("val" if (frames["split"] == "val").any() else "train")]
                     .reset_index(drop=True), DataRoot.of(root).dataset_version(version_id), [], "version frames")


def batch_frames(index: pd.DataFrame, log_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every kept frame, the keyframes) of the batch's logs. The tests and histograms use
    keyframes: trigger windows keep every frame around an event and would over-weight events."""
    rows = index[index["log_id"].isin(log_ids)].reset_index(drop=True)
    return rows, rows[rows["keyframe"]].reset_index(drop=True)


def count_triggers(manifests: list[dict[str, Any]]) -> tuple[float, float, dict[str, int]]:
    """(km driven, hours recorded, trigger name -> events) over log manifests."""
    km = sum(float(m.get("distance_km") or 0.0) for m in manifests)
    hours = sum(float(m.get("duration_s") or 0.0) for m in manifests) / 3600.0
    counts: dict[str, int] = {}
    for m in manifests:
        for trig in m.get("triggers") or []:
            counts[trig["name"]] = counts.get(trig["name"], 0) + 1
    return km, hours, counts


def condition_mix(root: str | os.PathLike[str], frames: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Frames per value of each condition (time of day, weather, road type, scenario); "unknown"
    for frames without recorded conditions (logs that were not simulated)."""
    if frames.empty:
        return {c: {} for c in CONDITION_COLUMNS}
    known = load_conditions(root, frames["log_id"].astype(str).unique().tolist())
    merged = frames[["drive_id", "timestamp_ns"]].merge(known, on=["drive_id", "timestamp_ns"], how="left")
    out = {}
    for col in CONDITION_COLUMNS:
        values = merged[col].fillna("unknown").astype(str)
        if col == "scenario":
            values = values.replace("", "none")
        out[col] = {str(k): int(v) for k, v in values.value_counts().sort_index().items()}
    return out
