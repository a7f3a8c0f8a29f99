"""Readers of the frame index: what ingest hands to every later stage.

Per ingested log, DATA/index/frames/<log_id>.parquet holds one row per kept frame
(`longtail.schemas.FRAME_INDEX_SCHEMA`), DATA/index/signals/<log_id>.parquet its vehicle signals
(`SIGNAL_INDEX_SCHEMA`, camera or not) and DATA/index/logs/<log_id>.json its manifest, written
last (so a log without a manifest is not ingested completely). Ingest writes them
(`longtail.ingest.store`); everything else reads them here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from longtail.catalog.root import DataRoot
from longtail.errors import SchemaError
from longtail.schemas import FRAME_INDEX_SCHEMA, FRAME_INDEX_V1_COLUMNS, SIGNAL_INDEX_SCHEMA

SIGNAL_FIELDS = ("speed_mps", "accel_mps2", "decel_mps2", "jerk_mps3", "lateral_accel_mps2", "yaw_rate_rps",
                 "steering_angle_deg", "steering_rate_dps", "brake_pressure_bar", "throttle_pct", "adas_engaged",
                 "driver_override", "adas_alert", "turn_signal", "latitude", "longitude")
"""Vehicle signals aligned to every frame of the index (units in FRAME_INDEX_SCHEMA's names)."""


def index_path(root: str | os.PathLike[str], log_id: str) -> Path:
    """Where the frame index of a log lives."""
    return DataRoot.of(root).frame_index(log_id)


def manifest_path(root: str | os.PathLike[str], log_id: str) -> Path:
    """Where the manifest of a log lives."""
    return DataRoot.of(root).log_manifest(log_id)


def signals_path(root: str | os.PathLike[str], log_id: str) -> Path:
    """Where the signal index of a log lives (camera or not)."""
    return DataRoot.of(root).signal_index(log_id)


def load_manifest(root: str | os.PathLike[str], log_id: str) -> dict[str, Any] | None:
    """A log's manifest, or None when it has not been ingested completely."""
    path = manifest_path(root, log_id)
    if not path.exists():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: manifest is not valid JSON ({exc}); delete it to re-ingest that log") from exc
    return manifest


def list_manifests(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every log manifest under the data root, by path."""
    folder = DataRoot.of(root).log_manifests
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def load_frame_index(root: str | os.PathLike[str], sources: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The frame index of every completely ingested log (one row per kept frame).

    Args:
        root: the data root.
        sources: only frames from these sources (e.g. ("longtail-sim",)); all when None.

    Raises:
        SchemaError: when an index file does not match `FRAME_INDEX_SCHEMA`.
    """
    tables = []
    for manifest in list_manifests(root):
        if manifest.get("status") not in ("ingested", "partial") or not manifest.get("frames_kept"):
            continue
        path = index_path(root, manifest["log_id"])
        table = _with_camera_columns(pq.read_table(path))
        if not table.schema.equals(FRAME_INDEX_SCHEMA, check_metadata=False):
            raise SchemaError(f"{path}: not a Longtail frame index (columns {table.schema.names})")
        tables.append(table)
    if not tables:
        return FRAME_INDEX_SCHEMA.empty_table().to_pandas()
    df = pa.concat_tables(tables).to_pandas()
    if sources is not None:
        df = df[df.source.isin(sources)].reset_index(drop=True)
    return df.sort_values(["log_id", "camera", "timestamp_ns"], kind="stable").reset_index(drop=True)


def _with_camera_columns(table: pa.Table) -> pa.Table:
    """An index written before several cameras (imported datasets are never re-imported) as one
    front camera whose every frame is its own time step."""
    if table.schema.names != list(FRAME_INDEX_V1_COLUMNS):
        return table
    return table.append_column("camera_slice", pa.array(["front"] * table.num_rows, pa.string())) \
        .append_column("time_step_ns", table.column("timestamp_ns"))


def load_signal_index(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The signal index of every completely ingested log with vehicle signals, camera or not."""
    tables = [pq.read_table(signals_path(root, m["log_id"])) for m in list_manifests(root)
              if m.get("status") in ("ingested", "partial") and m.get("signal_samples")]
    if not tables:
        return SIGNAL_INDEX_SCHEMA.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas().sort_values(["log_id", "timestamp_ns"]).reset_index(drop=True)
