"""When each step of the loop happened to a failure mode, and its time to model update.

Each stage that owns a moment of the loop records it on the failure modes it concerns
(`record_step`), learning which modes those are from products only:

- curate's selection: the modes the labeling batch mined (`batch_mined_modes`: the batch's
  frames.parquet names, per frame, the failure mode it resembles, ``fm_name``);
- label: the same modes, once the batch's labels are in a dataset version;
- train, evaluate, gate, deploy: the modes mined by the batches of the model's dataset version
  (`version_mined_modes`: the version's manifest lists its batches).

`time_to_model_update` reads a failure mode's timeline back: the wall time from its discovery
to the first deployment that covers it, and where that time went.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from longtail.catalog.failure_modes import (
    STEPS,
    FailureMode,
    load_registry,
    registry_path,
    save_registry,
    timeline_entry,
)
from longtail.catalog.root import DataRoot
from longtail.errors import InputError

log = logging.getLogger(__name__)


@contextmanager
def _registry_lock(root: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the registry while it is read, changed and written back."""
    path = registry_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_step(root: str | os.PathLike[str], names: Iterable[str], step: str, ref: str, detail: str = "",
                at: str | None = None) -> list[str]:
    """Record that ``step`` happened to the failure modes ``names`` (one atomic registry update).

    Idempotent: a mode that already has this step with this ``ref`` is left as it is, so a stage
    run again adds nothing. Names not in the registry are skipped with a warning (a batch may
    name a mode that was removed since).

    Args:
        root: the data root.
        names: failure mode names.
        step: one of `longtail.catalog.failure_modes.STEPS`.
        ref: the artefact of the step (batch id, run id, evaluation path, deployment id...).
        detail: a short text for people.
        at: ISO-8601 UTC time of the step; default now.

    Returns:
        The names the step was added to (empty when every one had it already).

    Raises:
        LongtailError: for an unknown step or a malformed registry.
    """
    entry = timeline_entry(step, ref, detail, at)
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    with _registry_lock(root):
        modes = load_registry(root)
        added = []
        for name in wanted:
            mode = modes.get(name)
            if mode is None:
                log.warning("failure mode %r is not in %s: its %s step is not recorded", name, registry_path(root), step)
                continue
            if any(e.get("step") == step and e.get("ref") == entry["ref"] for e in mode.timeline):
                continue
            modes[name] = mode.model_copy(update={"timeline": (*mode.timeline, entry)})
            added.append(name)
        if added:
            save_registry(root, modes)
    if added:
        log.info("failure mode(s) %s: %s (%s)", ", ".join(added), step, ref)
    return added


def _parse(at: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(at)
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def time_to_model_update(mode: FailureMode) -> dict[str, Any] | None:
    """The wall time from a failure mode's discovery to the first deployment that covers it.

    1. Discovery: its first ``discovered`` entry (or ``discovered_at`` for an entry recorded
       before timelines existed).
    2. The deployment: the first ``deployed`` entry at or after discovery.
    3. Where the time went: the first entry of each later step, in the loop's order (`STEPS`),
       between the two, each with the seconds since the step before it.

    Returns:
        ``{"discovered_at", "deployed_at", "deployment", "total_s", "steps": [{"step", "at",
        "ref", "since_previous_s"}]}``, or None while no deployment covers it (or it was never
        discovered).
    """
    found = [e for e in mode.timeline if e.get("step") == "discovered"]
    start = min(found, key=lambda e: _parse(e["at"])) if found else (
        {"step": "discovered", "at": mode.discovered_at, "ref": mode.discovered_by or ""} if mode.discovered_at
        else None)
    if start is None:
        return None
    t0 = _parse(start["at"])
    later = sorted((e for e in mode.timeline if e.get("step") != "discovered" and _parse(e["at"]) >= t0),
                   key=lambda e: _parse(e["at"]))
    deployed = next((e for e in later if e["step"] == "deployed"), None)
    if deployed is None:
        return None
    t1 = _parse(deployed["at"])
    chain = [start]
    for step in STEPS[1:-1]:
        hit = next((e for e in later if e["step"] == step and _parse(e["at"]) <= t1
                    and _parse(e["at"]) >= _parse(chain[-1]["at"])), None)
        if hit is not None:
            chain.append(hit)
    chain.append(deployed)
    steps, previous = [], t0
    for e in chain:
        t = _parse(e["at"])
        steps.append({"step": e["step"], "at": e["at"], "ref": e.get("ref", ""),
                      "since_previous_s": (t - previous).total_seconds()})
        previous = t
    return {"discovered_at": start["at"], "deployed_at": deployed["at"], "deployment": deployed.get("ref", ""),
            "total_s": (t1 - t0).total_seconds(), "steps": steps}


def batch_mined_modes(root: str | os.PathLike[str], batch_id: str) -> list[str]:
    """The failure modes a labeling batch mined: those its frames resemble (``fm_name`` of
    DATA/batches/<batch_id>/frames.parquet), sorted; empty for a batch that mined none.

    Raises:
        InputError: when the batch is not in DATA/batches.
    """
    import pyarrow.parquet as pq

    path = DataRoot.of(root).batch(batch_id) / "frames.parquet"
    if not path.is_file():
        raise InputError(f"{path}: missing; labeling batch {batch_id} is not in {DataRoot.of(root).batches}")
    names = pq.read_table(path, columns=["fm_name"]).column("fm_name").to_pylist()
    return sorted({n for n in names if n})


def version_mined_modes(root: str | os.PathLike[str], version_id: str | None) -> list[str]:
    """The failure modes mined by the labeling batches of a dataset version (its manifest's
    ``batches``); empty for no version, an unknown one, or batches no longer present.
    """
    if not version_id:
        return []
    path = DataRoot.of(root).dataset_version(str(version_id)) / "manifest.json"
    if not path.is_file():
        log.warning("%s: missing; no failure modes are credited to dataset version %s", path, version_id)
        return []
    try:
        batches = json.loads(path.read_text()).get("batches", [])
    except ValueError:
        log.warning("%s: not JSON; no failure modes are credited to dataset version %s", path, version_id)
        return []
    out: set[str] = set()
    for batch_id in batches:
        if (DataRoot.of(root).batch(str(batch_id)) / "frames.parquet").is_file():
            out.update(batch_mined_modes(root, str(batch_id)))
    return sorted(out)


def first_step(mode: FailureMode, step: str) -> dict[str, Any] | None:
    """A failure mode's first timeline entry of ``step``, or None."""
    hits = [e for e in mode.timeline if e.get("step") == step]
    return min(hits, key=lambda e: _parse(e["at"])) if hits else None


def last_step(mode: FailureMode) -> dict[str, Any] | None:
    """A failure mode's latest timeline entry, or None."""
    return max(mode.timeline, key=lambda e: _parse(e["at"])) if mode.timeline else None


__all__ = ["STEPS", "batch_mined_modes", "first_step", "last_step", "record_step", "time_to_model_update",
           "version_mined_modes"]
