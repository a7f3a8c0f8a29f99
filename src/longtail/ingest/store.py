"""The content-addressed frame store and the frame index on disk.

Layout under the data root::

    frames/<sha[:2]>/<sha>.<ext>        image bytes, exactly as recorded, named by their sha256
    index/frames/<log_id>.parquet       the frame index of one drive log
    index/signals/<log_id>.parquet      its vehicle signals (camera or not)
    index/logs/<log_id>.json            that log's manifest, written last

A manifest marks its index file as complete: index files without one are leftovers of an
interrupted run and are ignored (and replaced by the next run).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from longtail.catalog.frames import index_path, manifest_path, signals_path
from longtail.errors import SchemaError
from longtail.schemas import SIGNAL_INDEX_SCHEMA, validate_frame_index
from longtail.storage import atomic_write_json, atomic_writer, sha256_bytes

EXTENSIONS = {"jpeg": "jpg", "jpg": "jpg", "png": "png"}
_PENDING_LIMIT = 64
"""Frames queued for writing at most (about 3 MB at the default camera)."""
_MADE: dict[str, set[str]] = {}
"""Store folders known to exist, per data root, for this process (saves a mkdir per frame)."""


class FrameStore:
    """Image bytes stored once, under their sha256.

    Args:
        root: the data root.
        writers: threads that write files behind the caller (0: write before `put` returns).
            Creating files is system-call time that overlaps with the caller's work; call
            `flush` before anything that relies on the files being there.
    """

    def __init__(self, root: str | os.PathLike[str], writers: int = 0) -> None:
        self.root = Path(root)
        self.dir = self.root / "frames"
        self._made = _MADE.setdefault(str(self.root.resolve()), set())
        self.seconds = 0.0  # caller's time in put (hashing, queueing)
        self.write_seconds = 0.0  # time spent creating files, summed over writer threads
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(writers, thread_name_prefix="frame-writer") if writers else None
        self._slots = threading.BoundedSemaphore(_PENDING_LIMIT)
        self._pending: list[Future[None]] = []

    def relpath(self, sha: str, fmt: str) -> str:
        """Store path of an image, relative to the data root."""
        return f"frames/{sha[:2]}/{sha}.{EXTENSIONS[fmt]}"

    def put(self, data: bytes | memoryview, fmt: str) -> tuple[str, str]:
        """Store ``data`` unless it is there already; returns (sha256, path relative to the root).

        Written to a temporary name and renamed, so a kill -9 leaves either the whole file or
        nothing under its name. (No fsync per frame: the rename protects against a crashed
        process; the index and manifest written after are fsynced.)
        """
        start = time.perf_counter()
        sha = sha256_bytes(data)
        rel = self.relpath(sha, fmt)
        if self._pool is None:
            self._write(rel, data)
        else:
            self._slots.acquire()  # bounds the memory held by pending writes
            future = self._pool.submit(self._write, rel, bytes(data))
            future.add_done_callback(lambda _: self._slots.release())
            self._pending.append(future)
        self.seconds += time.perf_counter() - start
        return sha, rel

    def _write(self, rel: str, data: bytes | memoryview) -> None:
        start = time.perf_counter()
        path = os.path.join(self.root, rel)
        try:
            if os.stat(path).st_size == len(data):
                return
        except FileNotFoundError:
            pass
        folder = os.path.dirname(path)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        with self._lock:
            self.write_seconds += time.perf_counter() - start

    def flush(self) -> None:
        """Wait until every frame put so far is on disk; raises the first write error."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Flush, then stop the writer threads."""
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files an interrupted run left behind (frames, index files, manifests,
        the path cache: every write goes through a hidden ``.*.tmp`` name); returns how many.

        Only call this while holding the data root's ingest lock.
        """
        removed = 0
        patterns = [(self.dir, "*/.*.tmp")] + [(self.root / "index" / sub, ".*.tmp")
                                               for sub in ("frames", "signals", "logs", "paths")]
        for folder, pattern in patterns:
            if folder.exists():
                for tmp in folder.glob(pattern):
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed


def write_index(root: str | os.PathLike[str], log_id: str, table: pa.Table) -> None:
    """Write a log's frame index (validated first). Write its manifest after, with `write_manifest`."""
    path = index_path(root, log_id)
    validate_frame_index(table, str(path))
    with atomic_writer(path) as handle:
        pq.write_table(table, handle, compression="zstd")


def write_signals(root: str | os.PathLike[str], log_id: str, table: pa.Table) -> None:
    """Write a log's signal index (`SIGNAL_INDEX_SCHEMA`). Write its manifest after."""
    path = signals_path(root, log_id)
    if not table.schema.equals(SIGNAL_INDEX_SCHEMA, check_metadata=False):
        raise SchemaError(f"{path}: signal index schema differs from SIGNAL_INDEX_SCHEMA: {table.schema.names}")
    with atomic_writer(path) as handle:
        pq.write_table(table, handle, compression="zstd")


def write_manifest(root: str | os.PathLike[str], log_id: str, manifest: dict[str, Any]) -> None:
    """Write a log's manifest: the last write of an ingest, marking its index complete."""
    atomic_write_json(manifest_path(root, log_id), manifest)
