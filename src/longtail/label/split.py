"""Which split each drive goes to: by drive, stratified by conditions and vehicle, and stable.

The unit is the drive (``drive_id``), not the drive log: a drive recorded as several files, or
uploaded twice, has several log ids but one drive id, and its frames are near-duplicates of each
other, so all of them go to one split. Splits here are ``train``, ``val`` and ``test``; the version
then sends a test drive's frames to ``test_longtail`` or ``test_common``.

Each drive has a *profile*: its light (day, dusk, night), weather (clear, rain, fog) and vehicle
type (car, truck). The condition (light x weather) is what must appear in every split, so that a
model is trained, tuned and tested on each condition the fleet records; the vehicle type is
balanced second. Where the profile comes from (`load_drive_profiles`):

1. Simulated drives: the fleet manifest (``fleet.json`` beside the drive log, found through the
   ingest manifest's ``path``) knows each drive's ``time_of_day``, ``weather`` and ``vehicle_type``.
2. Other drives: a fallback from the frames' image tags (``night`` on at least half the frames ->
   night, else day: tags cannot tell dusk from day; ``fog`` or ``rain`` likewise, else clear) and
   the vehicle type from the ingest manifest, a ``car-``/``truck-`` drive id prefix, or
   ``unknown``. The profile's ``source`` says which one was used.

Stability: every assignment is kept in a record (DATA/datasets/splits.json, written atomically,
and copied into every version's manifest). A drive in the record keeps its split for good, in
every later version, whatever else arrives; only new drives are assigned, by `assign_drive_splits`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from longtail.catalog.truth import vehicle_from_drive_id
from longtail.errors import ConfigError, InputError, SchemaError
from longtail.storage import atomic_write_json

log = logging.getLogger(__name__)

DRIVE_SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Splits a drive can be in (a test drive's frames then go to test_longtail or test_common)."""
SPLIT_METHOD = "stratified_drive/1"
"""The rule of `assign_drive_splits`; recorded in the record and each version's manifest."""
RECORD_FILE = "splits.json"
RECORD_FORMAT = "longtail.splits/1"
FLEET_MANIFEST = "fleet.json"

DriveSplit = Literal["train", "val", "test"]


@dataclass(frozen=True)
class DriveProfile:
    """What a drive is stratified by."""

    drive_id: str
    light: str  # day | dusk | night (| unknown)
    weather: str  # clear | rain | fog (| unknown)
    vehicle_type: str  # car | truck | unknown
    source: str  # fleet.json | tags

    @property
    def condition(self) -> str:
        """``<light>/<weather>``, e.g. ``night/fog``."""
        return f"{self.light}/{self.weather}"


def split_hash(salt: str, drive_id: str, split: str) -> float:
    """The tie-break position of (drive, split) on [0, 1): first 64 bits of sha256(salt, drive, split) / 2**64."""
    digest = hashlib.sha256(f"{salt}\n{drive_id}\n{split}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _targets(val_share: float, test_share: float) -> dict[str, float]:
    return {"train": 1.0 - val_share - test_share, "val": val_share, "test": test_share}


def assign_drive_splits(profiles: Iterable[DriveProfile], assigned: Mapping[str, str], val_share: float,
                        test_share: float, salt: str) -> dict[str, DriveSplit]:
    """Assign each new drive to train, val or test; drives already assigned keep their split.

    New drives are taken one at a time, the drives of rare conditions first (then by salted hash),
    and each goes to the split that ranks first on, in order:

    1. how many of the drive's condition (light x weather), weather and light the split holds no
       drive of yet: more is better, so a condition with three or more drives, and each light and
       each weather with three or more drives, reaches every split (a split with a zero target
       share never takes a drive);
    2. how far the split's share of the condition's drives is below its target:
       ``target * (n + 1) - count``, n the condition's drives assigned so far;
    3. the same for the drive's weather, then its light;
    4. whether the split holds no drive of the drive's vehicle type yet, then the vehicle type's
       shortfall as in 2;
    5. the lowest salted hash of (drive, split) (`split_hash`), so ties break the same way every time.

    Args:
        profiles: every drive known now (new and already assigned); repeats of a drive id are an error.
        assigned: drive_id -> split of drives assigned before (the record); they never move.
        val_share, test_share: target shares of drives in val and test; train takes the rest.
        salt: salt of the tie-break hash.

    Returns:
        drive_id -> split for every drive of ``profiles`` and ``assigned``.

    Raises:
        InputError: a drive id appears twice in ``profiles``, or the record names an unknown split.
    """
    targets = _targets(val_share, test_share)
    out: dict[str, DriveSplit] = {}
    for drive, split in assigned.items():
        if split not in DRIVE_SPLITS:
            raise InputError(f"split record: drive {drive!r} has split {split!r}; valid are {list(DRIVE_SPLITS)}. "
                             f"Fix or delete the record only if no version was built from it")
        out[drive] = split  # type: ignore[assignment]
    by_id: dict[str, DriveProfile] = {}
    for p in profiles:
        if p.drive_id in by_id:
            raise InputError(f"drive {p.drive_id!r} profiled twice; pass one profile per drive")
        by_id[p.drive_id] = p
    # Counts of every assigned drive per (key, split), keys: condition, weather, light, vehicle type.
    counts: dict[tuple[str, str], int] = {}

    def keys(p: DriveProfile) -> tuple[str, str, str, str]:
        return f"c:{p.condition}", f"w:{p.weather}", f"l:{p.light}", f"v:{p.vehicle_type}"

    def add(p: DriveProfile, split: str) -> None:
        for k in keys(p):
            counts[(k, split)] = counts.get((k, split), 0) + 1

    for drive, split in out.items():
        if drive in by_id:
            add(by_id[drive], split)
    size: dict[str, int] = {}
    for p in by_id.values():
        size[p.condition] = size.get(p.condition, 0) + 1
    new = sorted((p for p in by_id.values() if p.drive_id not in out),
                 key=lambda p: (size[p.condition], p.condition, split_hash(salt, p.drive_id, "")))
    open_splits = [s for s in DRIVE_SPLITS if targets[s] > 0]
    for p in new:
        ks = keys(p)
        totals = [sum(counts.get((k, s), 0) for s in DRIVE_SPLITS) for k in ks]

        def rank(s: str, ks: tuple[str, ...] = ks, totals: list[int] = totals, drive: str = p.drive_id
                 ) -> tuple[Any, ...]:
            have = [counts.get((k, s), 0) for k in ks]
            short = [-(targets[s] * (n + 1) - c) for n, c in zip(totals, have, strict=True)]
            return (-sum(c == 0 for c in have[:3]), *short[:3], have[3] > 0, short[3], split_hash(salt, drive, s))

        split = min(open_splits, key=rank)
        out[p.drive_id] = split  # type: ignore[assignment]
        add(p, split)
    return out


def describe_coverage(profiles: Iterable[DriveProfile], splits: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Drives per condition and split: condition -> {train, val, test} (0 where none)."""
    out: dict[str, dict[str, int]] = {}
    for p in profiles:
        row = out.setdefault(p.condition, dict.fromkeys(DRIVE_SPLITS, 0))
        row[splits[p.drive_id]] += 1
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------------------------
# Profiles from the data root (IO)


def profile_from_tags(drive_id: str, frame_tags: Iterable[Iterable[str]], vehicle_type: str = "") -> DriveProfile:
    """A drive's profile from its frames' image tags (the fallback; module docstring, point 2).

    Args:
        drive_id: the drive.
        frame_tags: each frame's tags.
        vehicle_type: known vehicle type, or "" to use the drive id prefix or a ``truck_view`` tag.
    """
    tags = [set(t) for t in frame_tags]
    half = max(len(tags), 1) / 2

    def most(tag: str) -> bool:
        return sum(tag in t for t in tags) >= half

    weather = "fog" if most("fog") else "rain" if most("rain") else "clear"
    vt = vehicle_type or vehicle_from_drive_id(drive_id) or ("truck" if most("truck_view") else "unknown")
    return DriveProfile(drive_id, "night" if most("night") else "day", weather, vt, "tags")


def _fleet_drives(path: Path, cache: dict[Path, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    if path not in cache:
        try:
            cache[path] = {str(d["drive_id"]): d for d in json.loads(path.read_text()).get("drives", [])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable fleet manifest (%s); profiling its drives from tags", path, exc)
            cache[path] = {}
    return cache[path]


def load_drive_profiles(root: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> list[DriveProfile]:
    """The profile of every drive of some frames (module docstring: fleet.json first, tags as fallback).

    Args:
        root: the data root (ingest manifests under DATA/index/logs).
        rows: frames with drive_id, log_id and tags (a version's rows).

    Returns:
        One profile per drive, sorted by drive_id.
    """
    from longtail.catalog.frames import load_manifest  # the ingest stage's reader of its own manifests

    tags: dict[str, list[list[str]]] = {}
    logs: dict[str, set[str]] = {}
    for r in rows:
        tags.setdefault(str(r["drive_id"]), []).append([str(t) for t in (r.get("tags") or [])])
        logs.setdefault(str(r["drive_id"]), set()).add(str(r["log_id"]))
    cache: dict[Path, dict[str, dict[str, Any]]] = {}
    out = []
    for drive in sorted(tags):
        vehicle = ""
        profile = None
        for log_id in sorted(logs[drive]):
            manifest = load_manifest(root, log_id) or {}
            vehicle = vehicle or str((manifest.get("vehicle") or {}).get("vehicle_type") or "")
            if manifest.get("path"):
                entry = _fleet_drives(Path(str(manifest["path"])).parent / FLEET_MANIFEST, cache).get(drive) \
                    if (Path(str(manifest["path"])).parent / FLEET_MANIFEST).is_file() else None
                if entry:
                    profile = DriveProfile(drive, str(entry["time_of_day"]), str(entry["weather"]),
                                           str(entry.get("vehicle_type") or vehicle or vehicle_from_drive_id(drive)
                                               or "unknown"), FLEET_MANIFEST)
                    break
        out.append(profile or profile_from_tags(drive, tags[drive], vehicle))
    return out


# ---------------------------------------------------------------------------------------------
# The record


def record_path(datasets: str | os.PathLike[str]) -> Path:
    """DATA/datasets/splits.json."""
    return Path(datasets) / RECORD_FILE


def load_split_record(datasets: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The split record (``{format, method, config, drives: {drive_id: split}}``), or None when there is none.

    Raises:
        SchemaError: the record is not JSON or lacks a field (naming the file).
    """
    path = record_path(datasets)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record["format"] != RECORD_FORMAT or not isinstance(record["drives"], dict):
            raise ValueError(f"format {record['format']!r}, expected {RECORD_FORMAT!r}")
        record["config"], record["method"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"{path}: not a split record ({exc}); restore it from the 'split' field of the newest "
                          f"version's manifest.json") from None
    return dict(record)


def check_split_config(record: Mapping[str, Any], config: Mapping[str, Any], source: str) -> None:
    """Refuse split settings that differ from the ones the record was made with.

    Raises:
        ConfigError: naming the differing settings and the record's values.
    """
    differ = sorted(k for k, v in config.items() if record["config"].get(k) != v)
    if differ or record["method"] != SPLIT_METHOD:
        old = ", ".join(f"{k}={record['config'].get(k)!r}" for k in sorted(record["config"]))
        raise ConfigError(f"{source}: split settings {differ or ['method']} differ from the ones the drives already "
                          f"assigned were split with; drives in test are never trained on, so they cannot be "
                          f"re-split. Build with the record's settings ({old}), or in a new data root.")


def save_split_record(datasets: str | os.PathLike[str], config: Mapping[str, Any], splits: Mapping[str, str],
                      profiles: Iterable[DriveProfile]) -> dict[str, Any]:
    """Write DATA/datasets/splits.json atomically and return it."""
    record = {"format": RECORD_FORMAT, "method": SPLIT_METHOD, "config": dict(config),
              "drives": dict(sorted(splits.items())),
              "profiles": {p.drive_id: {"light": p.light, "weather": p.weather, "vehicle_type": p.vehicle_type,
                                        "source": p.source} for p in sorted(profiles, key=lambda p: p.drive_id)}}
    Path(datasets).mkdir(parents=True, exist_ok=True)
    atomic_write_json(record_path(datasets), record)
    return record
