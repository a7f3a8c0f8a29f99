"""Ingest drive logs: keyframes and trigger windows into the frame store, one index per log.

The batch: every MCAP file under the sources, each ingested on its own (`ingest_log`), in
parallel on worker processes; one data root takes one ingest at a time (a lock file). A bad log
never stops the batch. The work is split by responsibility:

- `longtail.ingest.reader`: reading one log, its signals and cameras, and which frames are kept
  (keyframes, trigger windows, the other cameras' frames at the same time steps);
- `longtail.ingest.store`: the frame store and the index files;
- `longtail.ingest.rows`: a log's frame and signal index rows;
- `longtail.ingest.manifest`: a log's manifest, its status, and the result of its ingest;
- `longtail.ingest.drive_log`: one log from file to manifest (`ingest_log`);
- this module: the batch.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from longtail.config import IngestConfig
from longtail.errors import InputError
from longtail.ingest.drive_log import ingest_log
from longtail.ingest.faults import FAULT_ENV, FAULTS
from longtail.ingest.manifest import LogResult
from longtail.ingest.rows import frame_id
from longtail.ingest.store import FrameStore

__all__ = ["FAULT_ENV", "LogResult", "expand_sources", "frame_id", "ingest", "ingest_log"]
"""`FAULT_ENV`, `LogResult`, `frame_id` and `ingest_log` live in the modules above; they are
importable from here too, where they were before the split."""

log = logging.getLogger(__name__)


def expand_sources(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """MCAP files named directly or found (recursively, *.mcap) in folders, in a stable order.

    Raises:
        InputError: for a source that does not exist.
    """
    files: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*.mcap") if q.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder; give MCAP files or folders that contain them")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{root}: another ingest is running on this data root; wait for it to finish") from None
        yield


def _worker(path: str, root: str, cfg_json: str) -> LogResult:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return ingest_log(path, root, IngestConfig.model_validate_json(cfg_json))


def ingest(sources: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str], cfg: IngestConfig | None = None,
           workers: int = 1, progress: bool = True) -> list[LogResult]:
    """Ingest every drive log under ``sources`` into ``root``; logs run in parallel on ``workers``.

    A bad log never stops the batch: it is reported partial or quarantined with its reasons.

    Raises:
        InputError: for a missing source, or when another ingest holds the data root.
    """
    cfg = cfg or IngestConfig()
    files = expand_sources(sources)
    root = Path(root)
    with _locked(root):
        removed = FrameStore(root).remove_stale_temporaries()
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted ingest", removed)
        results: list[LogResult] = []
        bar = tqdm(total=len(files), unit="log", desc="ingesting", disable=not progress or not files)
        if workers <= 1 or len(files) <= 1:
            for f in files:
                results.append(ingest_log(f, root, cfg))
                bar.update(1)
                FAULTS.hit("ingest.log")
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_worker, str(f), str(root), cfg.model_dump_json()): f for f in files}
                done: dict[Path, LogResult] = {}
                for fut in as_completed(futures):
                    done[futures[fut]] = fut.result()
                    bar.update(1)
                    FAULTS.hit("ingest.log")
                results = [done[f] for f in files]
        bar.close()
    return results
