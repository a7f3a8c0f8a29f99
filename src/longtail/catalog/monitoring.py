"""Readers of what the monitor stage hands on: its history of batches and the frames it marked.

Per monitored batch of drive logs the monitor writes DATA/monitor/triggers/<batch_id>.parquet
(`longtail.schemas.MONITOR_TRIGGERS_SCHEMA`) and then DATA/monitor/batches/<batch_id>.json, last.
Curation reads the triggers here (a frame a challenger disagreed on carries ``shadow_disagreement``
beside the triggers ingest found), the report and the next monitoring run read the history.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow.parquet as pq

from longtail.catalog.root import DataRoot
from longtail.errors import InputError
from longtail.schemas import MONITOR_RECORD_KEYS, validate_monitor_triggers


def list_monitoring_records(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete monitoring record, oldest first.

    Raises:
        InputError: a record is not JSON or lacks a field, naming the file.
    """
    folder = DataRoot.of(root).monitoring / "batches"
    out = []
    for path in sorted(folder.glob("mb-*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path}: not JSON ({exc}); delete it and run `longtail monitor` again") from None
        lacking = [k for k in MONITOR_RECORD_KEYS if k not in record]
        if lacking:
            raise InputError(f"{path}: not a monitoring record, lacks {lacking}; delete it and run `longtail monitor` again")
        out.append(record)
    out.sort(key=lambda r: (r["created_at"], r["batch_id"]))
    return out


def monitored_logs(root: str | os.PathLike[str]) -> set[str]:
    """Log ids of every batch monitored so far."""
    return {log for r in list_monitoring_records(root) for log in r["logs"]}


def load_monitor_triggers(root: str | os.PathLike[str]) -> dict[str, list[str]]:
    """frame_id -> the monitor's triggers on it (sorted), over every complete batch.

    Raises:
        SchemaError: a triggers file does not match `MONITOR_TRIGGERS_SCHEMA`.
    """
    data = DataRoot.of(root)
    out: dict[str, set[str]] = {}
    for record in list_monitoring_records(root):
        if not record.get("triggers_file"):
            continue
        path = data.monitoring / record["triggers_file"]
        if not path.is_file():
            raise InputError(f"{path}: missing, but {data.monitoring_record(record['batch_id'])} names it; delete "
                             "that record and run `longtail monitor` again")
        table = pq.read_table(path)
        validate_monitor_triggers(table, str(path))
        for fid, trig in zip(table.column("frame_id").to_pylist(), table.column("trigger").to_pylist(), strict=True):
            out.setdefault(fid, set()).add(trig)
    return {fid: sorted(t) for fid, t in out.items()}
