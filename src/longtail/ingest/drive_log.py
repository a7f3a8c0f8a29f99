"""Ingest one drive log: read it, write its index rows, then its manifest (last, marking them complete).

Re-ingesting an unchanged file with the same config reads nothing (`longtail.ingest.pathcache`);
a file whose content was ingested before with the same config is read once, to learn its sha256,
and nothing is written.
"""

from __future__ import annotations

import os
import time
from typing import Any

from longtail.catalog.frames import load_manifest
from longtail.config import IngestConfig
from longtail.ingest.faults import FAULTS
from longtail.ingest.manifest import (
    LogResult,
    log_fields,
    log_status,
    manifest_head,
    read_result,
    skipped_result,
)
from longtail.ingest.pathcache import cached_log_id, remember_log_id
from longtail.ingest.reader import LogReader
from longtail.ingest.rows import frame_rows, signal_rows
from longtail.ingest.scan import LogScanner, ScanError
from longtail.ingest.store import write_index, write_manifest, write_signals
from longtail.storage import sha256_file


def ingest_log(path: str | os.PathLike[str], root: str | os.PathLike[str], cfg: IngestConfig) -> LogResult:
    """Ingest one drive log into the frame store and write its index and manifest.

    A log without a camera is ingested as a signals-only drive (its signals, triggers and GNSS
    track; a note says so); one with neither frames nor signals is quarantined.

    Args:
        path: the MCAP file.
        root: the data root.
        cfg: ingest configuration.

    Returns:
        The log's result; its status is ingested, partial, quarantined or skipped.
    """
    start = time.perf_counter()
    path = str(path)
    size = os.path.getsize(path)
    cached = cached_log_id(root, path)
    if cached is not None:
        previous = load_manifest(root, cached)
        if previous is not None and previous.get("config_digest") == cfg.digest():
            return skipped_result(path, cached, previous, start, size)
    manifest: dict[str, Any] = manifest_head(path, size, cfg)
    try:
        scanner = LogScanner(path)
    except ScanError as exc:
        log_id = sha256_file(path)
        manifest.update(log_id=log_id, status="quarantined", reasons=[str(exc)], notes=[], frames_kept=0, keyframes=0)
        write_manifest(root, log_id, manifest)
        remember_log_id(root, path, log_id)
        return LogResult(path, log_id, "quarantined", reasons=[str(exc)], seconds=time.perf_counter() - start,
                         bytes=size)
    with scanner:
        reader = LogReader(scanner, root, cfg).run()
        log_id = scanner.sha256()
    previous = load_manifest(root, log_id)
    if previous is not None and previous.get("config_digest") == cfg.digest():
        remember_log_id(root, path, log_id)
        return skipped_result(path, log_id, previous, start, size, same_content=True)
    table = frame_rows(reader, log_id)
    status, reasons = log_status(reader, table)
    signals = signal_rows(reader, log_id)
    manifest.update(log_fields(reader, log_id, table, signals.num_rows))
    manifest.update(status=status, reasons=reasons, notes=reader.notes, elapsed_s=round(time.perf_counter() - start, 3))
    if table.num_rows:
        write_index(root, log_id, table)
    if signals.num_rows:
        write_signals(root, log_id, signals)
    FAULTS.hit("ingest.index")
    write_manifest(root, log_id, manifest)
    remember_log_id(root, path, log_id)
    return read_result(path, log_id, status, reasons, reader, table, start, size)
