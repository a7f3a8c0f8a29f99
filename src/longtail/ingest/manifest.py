"""A drive log's manifest and status, and the result of its ingest.

Statuses mean one thing each: ``ingested`` (all read; notes say what the log lacks, e.g. a
camera: then it is a signals-only drive), ``partial`` (damage: something was lost, the reasons
say what; everything readable is kept), ``quarantined`` (nothing usable); ``skipped`` is a
result only (the log was ingested before with the same config, and nothing was read).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from longtail import __version__
from longtail.config import IngestConfig
from longtail.ingest.reader import LogReader
from longtail.ingest.series import distance_km
from longtail.storage import atomic_write_json

MANIFEST_FORMAT = "longtail.ingest/2"


@dataclass
class LogResult:
    """What happened to one log (a row of ``longtail ingest --json``)."""

    path: str
    log_id: str
    status: str
    frames_kept: int = 0
    keyframes: int = 0
    messages_read: int = 0
    triggers_found: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0
    store_seconds: float = 0.0
    write_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    triggers_not_evaluated: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def manifest_head(path: str, size: int, cfg: IngestConfig) -> dict[str, Any]:
    """The manifest fields every log has, read or not: the file, Longtail's version and the config.

    Args:
        path: the file.
        size: its size, bytes.
        cfg: ingest configuration.
    """
    return {
        "format": MANIFEST_FORMAT, "path": os.path.abspath(path), "bytes": size,
        "longtail_version": __version__, "config": cfg.model_dump(mode="json"), "config_digest": cfg.digest(),
    }


def log_status(reader: LogReader, table: pa.Table) -> tuple[str, list[str]]:
    """The status of a read log and the reasons for it (the damage found, what could not be read).

    Args:
        reader: the log, read (`LogReader.run`).
        table: its frame index rows.

    Returns:
        ``(status, reasons)``: ingested (no reasons), partial or quarantined.
    """
    reasons = reader.scanner.scan.problems + reader.problems
    if "image" in reader.roles.channel and table.num_rows == 0:
        reasons.append(f"no readable camera frame on {reader.roles.channel['image'].topic}")
    samples = reader.signals.samples()
    if table.num_rows == 0 and samples == 0:
        status = "quarantined"
        reasons.append("nothing usable: no camera frame and no vehicle signal could be read")
    else:
        status = "partial" if reasons else "ingested"
    return status, reasons


def log_fields(reader: LogReader, log_id: str, table: pa.Table, signal_rows: int) -> dict[str, Any]:
    """The manifest fields of a read log (everything but status, reasons and notes).

    Args:
        reader: the log, read (`LogReader.run`).
        log_id: its sha256.
        table: its frame index rows (`longtail.ingest.rows.frame_rows`).
        signal_rows: how many signal index rows it has.
    """
    scan = reader.scanner.scan
    calibration_of = reader.roles.calibration_of()
    used = {"image": reader.roles.channel["image"].topic} if "image" in reader.roles.channel else {}
    default = next(iter(reader.roles.cameras), None)
    if default in calibration_of:
        used["calibration"] = calibration_of[default].topic
    used_ids = reader.roles.claimed() | {b.channel_id for b in reader.collector.bound.values()}
    calibrations = {name: reader.calibrations.get(ch.id) for name, ch in calibration_of.items()}
    frames_of = {name: (len(reader.rows) if ch.id == reader.roles.channel["image"].id
                        else len(reader.other_rows.get(ch.id, {}))) for name, ch in reader.roles.cameras.items()}
    sig_t = [s.t for s in reader.signals.series.values() if len(s.t)]
    span = (min(int(t[0]) for t in sig_t), max(int(t[-1]) for t in sig_t)) if sig_t else None
    frames_t = table.column("timestamp_ns") if table.num_rows else None
    distance = distance_km(reader.signals)
    return {
        "log_id": log_id, "profile": scan.profile, "indexed": scan.has_summary,
        "vehicle": scan.metadata.get("vehicle", {}), "drive": scan.metadata.get("drive", {}),
        "camera": used.get("image"), "topics_used": used,
        "topics_ignored": sorted(f"{ch.topic} ({ch.schema_name or ch.message_encoding})"
                                 for ch in scan.channels.values() if ch.id not in used_ids),
        "inventory": reader.inventory, "signals": reader.signals.sources, "signal_samples": signal_rows,
        "messages_read": reader.counts, "frames_kept": table.num_rows, "keyframes": reader.keyframes,
        "trigger_frames": len(reader.rows) - reader.keyframes, "triggers": [e.to_json() for e in reader.events],
        "triggers_not_evaluated": reader.not_evaluated,
        "calibration": calibrations.get(default) if default is not None else None,
        "cameras": {name: {"topic": ch.topic, "frames_kept": frames_of[name],
                           "calibration": calibrations.get(name)} for name, ch in reader.roles.cameras.items()},
        "default_camera": default,
        "time_range_ns": [int(pc.min(frames_t).as_py()), int(pc.max(frames_t).as_py())] if frames_t is not None
        else (list(span) if span else None),
        "duration_s": round((reader.image_t[-1] - reader.image_t[0]) / 1e9, 3) if len(reader.image_t) > 1
        else (round((span[1] - span[0]) / 1e9, 3) if span else 0.0),
        "distance_km": None if distance is None else round(distance, 3),
        "store_s": round(reader.store.seconds, 3), "frame_write_s": round(reader.store.write_seconds, 3),
    }

def read_result(path: str, log_id: str, status: str, reasons: list[str], reader: LogReader, table: pa.Table,
                start: float, size: int) -> LogResult:
    """The result of a log that was read.

    Args:
        path: the file.
        log_id: its sha256.
        status: its status (`log_status`).
        reasons: the reasons for it.
        reader: the log, read.
        table: its frame index rows.
        start: `time.perf_counter` when its ingest began.
        size: the file's size, bytes.
    """
    trig_counts: dict[str, int] = {}
    for e in reader.events:
        trig_counts[e.name] = trig_counts.get(e.name, 0) + 1
    return LogResult(path, log_id, status, table.num_rows, reader.keyframes, sum(reader.counts.values()),
                     trig_counts, reasons, time.perf_counter() - start, size, reader.store.seconds,
                     reader.store.write_seconds, reader.notes, reader.not_evaluated)


def skipped_result(path: str, log_id: str, previous: dict[str, Any], start: float, size: int,
                   same_content: bool = False) -> LogResult:
    """The result of a log not read again: it was ingested before with the same config.

    Args:
        path: the file.
        log_id: its sha256.
        previous: its manifest.
        start: `time.perf_counter` when its ingest began.
        size: the file's size, bytes.
        same_content: the file is new or changed since (by its stat), but its content was ingested before.
    """
    why = "the same content was" if same_content else "this file was"
    return LogResult(path, log_id, "skipped", int(previous.get("frames_kept", 0)), int(previous.get("keyframes", 0)),
                     0, {}, [f"{why} already ingested as {previous.get('status')} with the same config"],
                     time.perf_counter() - start, size)


def record_ingest_batch(results: list[LogResult], path: str | os.PathLike[str], sources: list[str]) -> dict[str, Any]:
    """Write the record of one ingest run (the pipeline's product for a later week of drives): which
    logs it brought in from which sources, with their status, atomically.

    The frame index and the frame store are shared by every week; this record is what says which
    logs arrived together, and it changes only when they do, so a rerun with the same logs
    rewrites the same content.
    """
    logs = [{"log_id": r.log_id, "path": r.path, "status": r.status, "frames_kept": r.frames_kept}
            for r in sorted(results, key=lambda r: r.log_id)]
    record = {"sources": [str(s) for s in sources], "logs": logs}
    atomic_write_json(path, record)
    return record
