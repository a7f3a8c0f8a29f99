"""Atomic, content-addressed writes on the local file system.

Every product is written to a temporary file in the destination folder and renamed into
place, so a crash never leaves half a file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

_CHUNK = 1 << 20
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes | memoryview) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the final path.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; products are as readable as any other
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, durable: bool = True) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically.

    ``durable=False`` skips the fsync: still atomic for a crashed process, but a power cut may
    lose the write (fine for caches).
    """
    text = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    if durable:
        atomic_write_bytes(path, text)
        return
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    tmp.write_bytes(text)
    os.replace(tmp, final)


def write_json_if_changed(path: str | os.PathLike[str], obj: Any) -> bool:
    """Write ``obj`` atomically unless ``path`` already holds the same JSON (so a rerun leaves the
    file, and the tasks that depend on its timestamp, untouched). Returns whether it wrote."""
    try:
        if json.loads(Path(path).read_text()) == obj:
            return False
    except (OSError, ValueError):
        pass
    atomic_write_json(path, obj)
    return True


def read_json_record(path: str | os.PathLike[str], fields: Sequence[str], *, kind: str, task: str,
                     missing: str) -> dict[str, Any]:
    """Read a pipeline task's JSON record and check it holds ``fields``.

    Args:
        path: the record.
        fields: keys it must have.
        kind: what it is, for the error ("a training record").
        task: the pipeline task that writes it ("train").
        missing: what to say when the file is not there (what to run).

    Raises:
        InputError: the file is missing, is not JSON, or lacks a field; each says how to fix it.
    """
    from longtail.errors import InputError

    target = Path(path)
    if not target.is_file():
        raise InputError(f"{target}: missing; {missing}")
    try:
        record = json.loads(target.read_text())
    except ValueError as exc:
        raise InputError(f"{target}: not JSON ({exc}); run the {task} task again to rewrite it") from None
    lacking = [k for k in fields if not isinstance(record, dict) or k not in record]
    if lacking:
        raise InputError(f"{target}: not {kind}, lacks {lacking}; run the {task} task again to rewrite it")
    return dict(record)
