"""Load the simulator's ground-truth sidecars, and find them for ingested simulated logs.

Only the simulated labeler and evaluation may read the objects; ingest and mining never do.
Monitoring reads a frame's conditions only (`load_conditions`: time of day, weather, road type,
scenario), as a real fleet's metadata (clock, weather service, map) would give them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from longtail.catalog.frames import load_manifest, manifest_path
from longtail.errors import InputError, SchemaError
from longtail.schemas import GT_SCHEMA

GT_DIR = "ground_truth"
VEHICLE_PREFIXES = {"car-": "car", "truck-": "truck"}
"""drive_id prefixes of the simulated fleet (``truck-003_drive000``) that give away the vehicle."""


def vehicle_from_drive_id(drive_id: str) -> str:
    """``car`` or ``truck`` from a simulated drive id's prefix, else ``""``."""
    return next((v for prefix, v in VEHICLE_PREFIXES.items() if drive_id.startswith(prefix)), "")

"""Folder beside a fleet's drive logs holding one ground-truth sidecar per log (<drive>.parquet)."""


def load_ground_truth(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a ground-truth sidecar as two tables.

    Returns:
        ``frames``: one row per camera frame (drive_id, frame_index, timestamp_ns, conditions,
        scenario); ``objects``: one row per object with its frame_index and every field of
        `longtail.schemas.GT_OBJECT_TYPE`.

    Raises:
        SchemaError: when the file's schema is not `GT_SCHEMA`.
    """
    table = pq.read_table(path)
    if not table.schema.equals(GT_SCHEMA, check_metadata=False):
        raise SchemaError(f"{path}: not a Longtail ground-truth file (schema {table.schema.names}); "
                          "expected the columns of longtail.schemas.GT_SCHEMA")
    frames = table.drop(["objects"]).to_pandas()
    objects_col = table.column("objects").combine_chunks()
    flat = pc.list_flatten(objects_col)
    parents = pc.list_parent_indices(objects_col).to_numpy()
    objects = pd.DataFrame({name: flat.field(name).to_numpy(zero_copy_only=False) for name in flat.type.names}) \
        if len(flat) else pd.DataFrame(columns=[f.name for f in flat.type])
    objects.insert(0, "frame_index", frames["frame_index"].to_numpy()[parents] if len(flat) else [])
    return frames, objects


SIM_SOURCE = "longtail-sim"
"""The ``drive.source`` the simulator writes into its logs' metadata (`longtail.sim.drive.drive_metadata`)."""


class GroundTruthError(InputError):
    """Ground truth the simulated labeler needs is missing: the log is not simulated, or its sidecar is gone."""


class FrameTruth(NamedTuple):
    """The simulator's ground truth of one frame.

    ``objects`` holds one dict per object with the fields of `longtail.schemas.GT_OBJECT_TYPE`.
    The image size is not in the sidecar: take width and height from the frame index.
    """

    frame_id: str
    drive_id: str
    timestamp_ns: int
    frame_index: int
    time_of_day: str
    weather: str
    road_type: str
    scenario: str
    objects: list[dict[str, Any]]
    truth_file: str


def find_truth_files(root: str | os.PathLike[str], log_ids: Iterable[str]) -> list[Path]:
    """The ground-truth sidecars of simulated drive logs ingested into ``root``.

    Args:
        root: the data root the logs were ingested into.
        log_ids: the logs (e.g. the ``log_id`` column of a labeling batch); repeats are fine.

    Returns:
        One sidecar per distinct log, in the order the logs first appear.

    Raises:
        GroundTruthError: listing every log that was not ingested into ``root``, is not a
            simulated drive, or whose sidecar is missing.
    """
    files: list[Path] = []
    problems: list[str] = []
    for log_id in dict.fromkeys(log_ids):
        manifest = load_manifest(root, log_id)
        if manifest is None:
            problems.append(f"log {log_id} has no manifest ({manifest_path(root, log_id)}): it was not ingested into "
                            f"{root}; ingest it there first")
            continue
        log_path = Path(str(manifest.get("path", "")))
        # Drive logs carry their source in the drive metadata; imported datasets at the top level.
        source = str((manifest.get("drive") or {}).get("source") or manifest.get("source") or "")
        if source != SIM_SOURCE:
            problems.append(f"log {log_id} ({log_path}) is not a simulated drive (source {source or 'unknown'!r}); only "
                            f"{SIM_SOURCE} logs have ground truth: label it in Label Studio instead")
            continue
        sidecar = log_path.parent / GT_DIR / f"{log_path.stem}.parquet"
        if not sidecar.is_file():
            problems.append(f"log {log_id} ({log_path}) has no ground-truth sidecar at {sidecar}; keep the fleet's "
                            f"{GT_DIR}/ folder beside its logs (or re-simulate the fleet and re-ingest it)")
            continue
        files.append(sidecar)
    if problems:
        raise GroundTruthError(f"no ground truth for {len(problems)} log(s): " + "; ".join(problems))
    return list(dict.fromkeys(files))


def load_truth(truth_files: Iterable[str | os.PathLike[str]], frames: pd.DataFrame) -> dict[str, FrameTruth]:
    """The ground truth of each frame, matched on (drive_id, timestamp_ns).

    Args:
        truth_files: ground-truth sidecars (`find_truth_files`); read in order and only until every
            frame is found. When two files hold the same drive (one plan recorded twice), the first wins.
        frames: one row per frame with columns frame_id, drive_id, timestamp_ns (a labeling batch
            or the frame index).

    Returns:
        ``frame_id`` -> `FrameTruth`, for every frame.

    Raises:
        SchemaError: when ``frames`` lacks a column, or a sidecar is not a ground-truth file.
        GroundTruthError: naming the frames with no ground truth in ``truth_files``.
    """
    missing_cols = [c for c in ("frame_id", "drive_id", "timestamp_ns") if c not in frames.columns]
    if missing_cols:
        raise SchemaError(f"frames lack column(s) {missing_cols}; pass a labeling batch or the frame index")
    files = [Path(p) for p in truth_files]
    # 1. Which frame(s) each (drive, time) key stands for; two logs of one drive share a key.
    wanted: dict[tuple[str, int], list[str]] = {}
    for fid, drive, ts in zip(frames["frame_id"], frames["drive_id"], frames["timestamp_ns"], strict=True):
        wanted.setdefault((str(drive), int(ts)), []).append(str(fid))
    n_frames = len({fid for fids in wanted.values() for fid in fids})
    out: dict[str, FrameTruth] = {}
    # 2. Read sidecars until every key is found, taking only the wanted frames' objects.
    for path in files:
        if len(out) == n_frames:
            break
        gt_frames, gt_objects = load_ground_truth(path)
        keys = list(zip(gt_frames["drive_id"].astype(str), gt_frames["timestamp_ns"].astype("int64"), strict=True))
        hit = np.array([k in wanted and wanted[k][0] not in out for k in keys], dtype=bool)
        if not hit.any():
            continue
        rows = gt_frames[hit]
        objects = gt_objects[gt_objects["frame_index"].isin(rows["frame_index"])]
        by_frame = {int(i): g.drop(columns="frame_index").to_dict("records")
                    for i, g in objects.groupby("frame_index", sort=False)}
        for row in rows.itertuples(index=False):
            key = (str(row.drive_id), int(row.timestamp_ns))
            for fid in wanted[key]:
                out[fid] = FrameTruth(
                    frame_id=fid, drive_id=key[0], timestamp_ns=key[1], frame_index=int(row.frame_index),
                    time_of_day=str(row.time_of_day), weather=str(row.weather), road_type=str(row.road_type),
                    scenario=str(row.scenario), objects=[dict(o) for o in by_frame.get(int(row.frame_index), [])],
                    truth_file=str(path),
                )
    # 3. Every frame must have its truth: a labeler that silently saw nothing would label it empty.
    missing = [(fid, drive, int(ts)) for fid, drive, ts in
               zip(frames["frame_id"], frames["drive_id"], frames["timestamp_ns"], strict=True) if str(fid) not in out]
    if missing:
        shown = "; ".join(f"frame {fid} (drive {drive}, timestamp_ns {ts})" for fid, drive, ts in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        searched = ", ".join(str(p) for p in files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        raise GroundTruthError(
            f"no ground truth for {len(missing)} of {len(frames)} frame(s): {shown}{more}; searched "
            f"{len(files)} file(s): {searched or 'none'}. Pass the sidecars of the logs these frames came from "
            "(find_truth_files(root, log_ids)); only simulated drives have ground truth, label the others in Label Studio"
        )
    return out


CONDITION_COLUMNS = ("time_of_day", "weather", "road_type", "scenario")


def load_conditions(root: str | os.PathLike[str], log_ids: Iterable[str]) -> pd.DataFrame:
    """The recorded conditions of each camera frame of simulated logs (no objects are read).

    Args:
        root: the data root the logs were ingested into.
        log_ids: logs to read; those without a sidecar (not simulated, or the sidecar is gone) are
            skipped: their frames have no known conditions.

    Returns:
        One row per frame: drive_id, timestamp_ns and `CONDITION_COLUMNS` (scenario "" outside one).

    Raises:
        SchemaError: a sidecar lacks a column of `GT_SCHEMA`.
    """
    parts = []
    for log_id in dict.fromkeys(log_ids):
        try:
            files = find_truth_files(root, [log_id])
        except GroundTruthError:
            continue
        for path in files:
            names = pq.read_schema(path).names
            missing = [c for c in ("drive_id", "timestamp_ns", *CONDITION_COLUMNS) if c not in names]
            if missing:
                raise SchemaError(f"{path}: not a Longtail ground-truth file, lacks {missing}")
            parts.append(pq.read_table(path, columns=["drive_id", "timestamp_ns", *CONDITION_COLUMNS]).to_pandas())
    if not parts:
        return pd.DataFrame(columns=["drive_id", "timestamp_ns", *CONDITION_COLUMNS])
    return pd.concat(parts, ignore_index=True).drop_duplicates(["drive_id", "timestamp_ns"])
