"""The index rows of one read drive log: its frames (with signal features and triggers) and its signals."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from longtail.ingest.decode import STATE_FLAGS, STATE_LABELS
from longtail.ingest.features import FEATURES, frame_features
from longtail.ingest.reader import LogReader
from longtail.ingest.series import on_base, signal_table
from longtail.ingest.triggers import frames_in_windows
from longtail.schemas import FRAME_INDEX_SCHEMA


def frame_id(log_id: str, camera: str, t_ns: int) -> str:
    """Stable id of a frame: sha256 of its log, camera and timestamp (32 hex chars)."""
    return hashlib.sha256(f"{log_id}|{camera}|{t_ns}".encode()).hexdigest()[:32]


def frame_rows(reader: LogReader, log_id: str) -> pa.Table:
    """The frame index rows of the log ``reader`` read: the default camera's, then each other camera's.

    Args:
        reader: the log, read (`LogReader.run`).
        log_id: its sha256.

    Returns:
        A table of `FRAME_INDEX_SCHEMA`: each stored frame with its signal features, position and triggers.
    """
    if not reader.rows:
        return FRAME_INDEX_SCHEMA.empty_table()
    scan = reader.scanner.scan
    frames: list[tuple[str, str, int, dict[str, Any]]] = []  # camera name, topic, time, row
    for name, ch in reader.roles.cameras.items():
        rows_of = reader.rows if ch.id == reader.roles.channel["image"].id else reader.other_rows.get(ch.id, {})
        frames += [(name, ch.topic, x, rows_of[x]) for x in sorted(rows_of)]
    times = [f[2] for f in frames]
    t = np.array(times, dtype=np.int64)
    steps = np.array([f[3]["step"] for f in frames], dtype=np.int64)
    rows = [f[3] for f in frames]
    sig_t, values, flags, labels = on_base(reader.signals)
    # Features and trigger windows want sorted times: compute in time order, then put back.
    order = np.argsort(t, kind="stable")
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    feats = {k: v[back] for k, v in frame_features(t[order], sig_t, values, flags, labels,
                                                    reader.cfg.triggers.smooth_s).items()}
    by_step = np.argsort(steps, kind="stable")
    step_triggers = frames_in_windows(steps[by_step], reader.events, reader.cfg.triggers)
    triggers: list[list[str]] = [[] for _ in range(len(steps))]
    for i, names in zip(by_step.tolist(), step_triggers, strict=True):
        triggers[i] = names
    position = {}
    for name in ("latitude", "longitude"):
        s = reader.signals.series.get(name)
        position[name] = np.interp(t, s.t, s.v) if s is not None and len(s.t) else np.full(len(t), np.nan)
    vehicle, drive = scan.metadata.get("vehicle", {}), scan.metadata.get("drive", {})
    n = len(rows)
    columns: dict[str, Any] = {
        "frame_id": [frame_id(log_id, topic, x) for _, topic, x, _ in frames],
        "log_id": [log_id] * n,
        "source": [drive.get("source", "fleet")] * n,
        "vehicle_id": [vehicle.get("vehicle_id", "")] * n,
        "vehicle_type": [vehicle.get("vehicle_type", "")] * n,
        "drive_id": [drive.get("drive_id", Path(scan.path).stem)] * n,
        "camera": [topic for _, topic, _, _ in frames],
        "timestamp_ns": t,
        "width": [r["width"] for r in rows],
        "height": [r["height"] for r in rows],
        "image_format": [r["fmt"] for r in rows],
        "image_sha256": [r["sha"] for r in rows],
        "store_path": [r["rel"] for r in rows],
        "image_bytes": [r["bytes"] for r in rows],
        "keyframe": [r["keyframe"] for r in rows],
        **{name: feats[name].astype(np.float32) for name in FEATURES},
        **{name: feats[name] for name in STATE_FLAGS},
        **{name: feats[name].tolist() for name in STATE_LABELS},
        "latitude": position["latitude"],
        "longitude": position["longitude"],
        # A time step is in a trigger window or not as a whole, every camera of it alike.
        "triggers": triggers,
        "labels": [[] for _ in range(n)],
        "camera_slice": [name for name, _, _, _ in frames],
        "time_step_ns": steps,
    }
    return pa.Table.from_pydict(columns, schema=FRAME_INDEX_SCHEMA)


def signal_rows(reader: LogReader, log_id: str) -> pa.Table:
    """The signal index rows of the log ``reader`` read (``log_id``: its sha256)."""
    windows = [(*e.window(reader.cfg.triggers), e.name) for e in reader.events]
    return signal_table(log_id, reader.signals, windows, reader.cfg.triggers.smooth_s)
