"""A cache of the fleet test's truth arm: the same seeded drives with the simulator's own
perception give the same logs and counts every time, so a second fleet test (turn 2 of the loop,
a new champion on the same seeds) drives only the model arm.

An entry is content-addressed by everything that determines the truth arm's results
(`truth_cache_key`): the fleet-test configuration, the planned drives (ids and seeds), Longtail's
version, the sha256 of the simulator's source (`sim_source_digest`) and the versions of the
libraries that write the logs. Layout::

    CACHE/<key>/<drive_id>.mcap                  the truth drive logs
    CACHE/<key>/ground_truth/<drive_id>.parquet  their ground truth
    CACHE/<key>/drives.json                      the per-drive rows `run_arm` returned, written last

An entry is built in a temporary folder and renamed into place, so a crash leaves no half entry;
a restored log whose sha256 differs from its row is reported and the arm is driven again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longtail import __version__
from longtail.catalog.truth import GT_DIR
from longtail.storage import atomic_write_json, sha256_file

if TYPE_CHECKING:
    from longtail.sim.fleet_test import FleetTestConfig
    from longtail.sim.plan import DrivePlan

log = logging.getLogger(__name__)

DRIVES_FILE = "drives.json"
_PACKAGE = Path(__file__).resolve().parent.parent
_SOURCES = ("sim", "catalog")
"""Packages of src/longtail whose source determines a truth drive, besides the top-level modules
(config, schemas, boxes, storage...): over-inclusive on purpose, a needless miss only costs time."""
_LIBRARIES = ("numpy", "mcap", "opencv-python-headless", "pyarrow")


def sim_source_digest() -> str:
    """sha256 over the simulator's source: every .py of longtail's top level, sim/ and catalog/."""
    digest = hashlib.sha256()
    files = sorted(_PACKAGE.glob("*.py")) + sorted(f for pkg in _SOURCES for f in (_PACKAGE / pkg).rglob("*.py"))
    for f in files:
        digest.update(f.relative_to(_PACKAGE).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def _library_versions() -> dict[str, str]:
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def truth_cache_key(cfg: FleetTestConfig, plans: list[DrivePlan]) -> str:
    """The content address of the truth arm's results for this configuration and these drives."""
    ident = {"config": cfg.model_dump(mode="json"), "drives": [(p.drive_id, p.seed) for p in plans],
             "version": __version__, "source": sim_source_digest(), "libraries": _library_versions()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _files(plans: list[DrivePlan]) -> list[str]:
    return [name for p in plans for name in (f"{p.drive_id}.mcap", f"{GT_DIR}/{p.drive_id}.parquet")]


def _place(src: Path, dst: Path) -> None:
    """Hard-link (or copy) ``src`` to ``dst``, replacing it. The drive writer replaces files by
    rename, never in place, so a link never lets a later drive change a cached file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def restore_truth(cache: Path, key: str, plans: list[DrivePlan], arm_dir: Path) -> list[dict[str, Any]] | None:
    """The cached truth rows, with their logs and ground truth placed in ``arm_dir``; None on a miss
    or a damaged entry (a log whose sha256 is not its row's)."""
    entry = cache / key
    if not (entry / DRIVES_FILE).is_file():
        return None
    drives: list[dict[str, Any]] = json.loads((entry / DRIVES_FILE).read_text())
    if [d["drive_id"] for d in drives] != [p.drive_id for p in plans]:
        log.warning("fleet-test cache %s: its drives are not this plan's; driving the truth arm again", entry)
        return None
    for d in drives:
        if sha256_file(entry / f"{d['drive_id']}.mcap") != d["sha256"]:
            log.warning("fleet-test cache %s: %s.mcap does not match its recorded sha256; driving the truth arm "
                        "again", entry, d["drive_id"])
            return None
    for name in _files(plans):
        _place(entry / name, arm_dir / name)
    log.info("fleet test: truth arm restored from the cache (%d drives, %s)", len(drives), entry)
    return drives


def store_truth(cache: Path, key: str, plans: list[DrivePlan], arm_dir: Path, drives: list[dict[str, Any]]) -> Path:
    """Store the truth arm's rows and files under ``cache/key`` (atomically: built aside, renamed in),
    replacing a damaged entry of that key."""
    entry = cache / key
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=cache))
    try:
        for name in _files(plans):
            _place(arm_dir / name, tmp / name)
        atomic_write_json(tmp / DRIVES_FILE, drives)
        if entry.exists():  # a damaged entry (`restore_truth` refused it)
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("fleet test: truth arm cached in %s", entry)
    return entry
