"""Which log a path held when it was last ingested, so an unchanged file is not read again.

One small JSON file per path under ``index/paths/``, keyed by the path's sha256 and holding the
file's stat (size, mtime, inode) and the log id (its content's sha256) found then.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from longtail.storage import atomic_write_json


def _path_key(path: str) -> tuple[Path, dict[str, int]]:
    st = os.stat(path)
    return Path(os.path.abspath(path)), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _cache_file(root: str | os.PathLike[str], abspath: Path) -> Path:
    return Path(root) / "index" / "paths" / f"{hashlib.sha256(str(abspath).encode()).hexdigest()[:32]}.json"


def cached_log_id(root: str | os.PathLike[str], path: str) -> str | None:
    """The sha256 of ``path`` from an earlier ingest, if the file has not changed since (stat)."""
    abspath, stat = _path_key(path)
    cache = _cache_file(root, abspath)
    if not cache.exists():
        return None
    try:
        entry = json.loads(cache.read_text())
    except json.JSONDecodeError:
        return None
    return str(entry["log_id"]) if entry.get("stat") == stat and entry.get("path") == str(abspath) else None


def remember_log_id(root: str | os.PathLike[str], path: str, log_id: str) -> None:
    """Note that ``path``, as it is now (stat), holds the log ``log_id``."""
    abspath, stat = _path_key(path)
    # A cache: losing it to a power cut only costs a re-read, so no fsync.
    atomic_write_json(_cache_file(root, abspath), {"path": str(abspath), "stat": stat, "log_id": log_id}, durable=False)
