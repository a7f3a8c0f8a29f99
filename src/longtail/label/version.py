"""Dataset versions: accepted labels frozen into immutable, content-addressed folders tracked by DVC.

Layout under the data root::

    labels/<batch_id>/{labels.parquet,manifest.json}   label sets (input; manifest written last)
    batches/<batch_id>/{frames.parquet,manifest.json}  labeling batches (input: triggers, failure modes)
    datasets/<version_id>/labels.parquet               one row per frame, with its split (VERSION_LABELS_SCHEMA)
    datasets/<version_id>/images/<sha256>.<ext>        the image bytes, hardlinked from the frame store
    datasets/<version_id>/manifest.json                written last: counts, lineage, config (VERSION_KEYS)
    datasets/<version_id>.dvc                          DVC's record of the folder (`track_version`)
    .dvc/config, .dvcignore                            the data root as a DVC repository without git

A version folder holds everything training needs (labels and image bytes), so it can be handed
as it is to a job elsewhere (a SageMaker channel) or recreated from its DVC record alone.

Splits are decided per drive (``drive_id``), never per frame or per log file: frames of one drive
are near-duplicates of each other, and a drive on both sides of a split (recorded as several files,
or uploaded twice) would leak the test set into training. `longtail.label.split` assigns drives,
stratified by light x weather and vehicle type, and keeps every assignment in DATA/datasets/splits.json.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, model_validator
from tqdm import tqdm

from longtail.boxes import clip
from longtail.catalog.root import DataRoot
from longtail.catalog.versions import (
    FORMAT,
    IMAGES_DIR,
    LABELS_FILE,
    MANIFEST_FILE,
    SPLITS,
    VERSION_LABELS_SCHEMA,
    check_version_id,
    datasets_dir,
    list_versions,
    load_version,
    read_json_object,
    schema_diff,
    verify_version_folder,
)
from longtail.config import _Frozen
from longtail.errors import ConfigError, InputError, SchemaError, fail_config
from longtail.label.qa import QAConfig
from longtail.label.split import (
    SPLIT_METHOD,
    DriveProfile,
    assign_drive_splits,
    check_split_config,
    describe_coverage,
    load_drive_profiles,
    load_split_record,
    record_path,
    save_split_record,
)
from longtail.schemas import (
    CATEGORIES,
    LABEL_SET_KEYS,
    LABEL_SET_SCHEMA,
    validate_labeling_batch,
)
from longtail.storage import atomic_write_json, atomic_writer, sha256_file

if TYPE_CHECKING:
    from dvc.repo import Repo

log = logging.getLogger(__name__)

DVC_REMOTE_NAME = "longtail"
DVC_REMOTE_ENV = "LONGTAIL_DVC_REMOTE"
"""Environment variable naming the DVC remote (a folder or an s3:// URL) when no argument does."""
DVC_CACHE_TYPE = "hardlink,reflink,copy"
"""How DVC links files between its cache and the version folders.

Hardlink first, because DVC only hardlinks *into* its cache on ``dvc add`` when the first type
is ``hardlink`` (otherwise it copies, and every image would exist twice on a file system without
reflinks, like ext4). With hardlinks one inode is shared by the frame store, the version folder
and the cache: no image is stored twice. DVC protects cache files with mode 0444, so frame
store files of tracked versions become read-only too. That is harmless here and even welcome:
the frame store is content-addressed and never written in place (`FrameStore` skips files that
exist and replaces others by rename, which a read-only file allows; deleting works as before).
The one risk is an in-place edit by root, which ignores the mode: it would change every version
sharing the inode, and DVC trusts protected cache files without re-hashing them. Image files are
named by their sha256, so ``load_version(..., check_images=True)`` detects it. Symlinks are left
out on purpose: a version folder of symlinks into .dvc/cache would not be self-contained.
"""
DVCIGNORE = """\
# Longtail: DVC tracks dataset versions only (datasets/<version_id>). Ignoring the rest of the data
# root keeps DVC from walking the frame store (millions of files) on every command. Remove these
# lines to track other folders with DVC.
/*
!/datasets
/datasets/.tmp-*
"""
# ^ "!/datasets" without a trailing slash: DVC 3.67 still ignores files under the folder with "!/datasets/".

LONG_TAIL_RULES: dict[str, str] = {
    "trigger_or_failure_mode": "the frame has at least one trigger, or its labeling-batch row names a failure "
                               "mode (fm_name != '')",
    "trigger": "the frame has at least one trigger",
    "failure_mode": "its labeling-batch row names a failure mode (fm_name != '')",
}
"""Which frames of a test log go to the ``test_longtail`` suite, by rule name."""

DUPLICATE_POLICY = ("a frame labeled in several label sets takes its labels and its QA decision from the latest "
                    "label set (manifest created_at, then batch_id); the others are listed in duplicates.overridden")

class VersionConfig(_Frozen):
    """How accepted labels are split into a dataset version. Saved in every version's manifest.

    A drive goes to test, val or train when it first appears (`longtail.label.split.assign_drive_splits`:
    stratified by light x weather and vehicle type, ties broken by a hash salted with ``split_salt``)
    and keeps that split in every later version (DATA/datasets/splits.json). The shares are targets
    per condition; the split settings of a data root cannot change once drives are assigned.
    """

    val_share: float = Field(0.2, ge=0, lt=1, description="target share of drives in val, 0..1")
    test_share: float = Field(0.2, ge=0, lt=1, description="target share of drives in the test suites, 0..1")
    split_salt: str = Field("longtail-split-v1", min_length=1, max_length=100,
                            description="salt of the split tie-break hash")
    long_tail: Literal["trigger_or_failure_mode", "trigger", "failure_mode"] = Field(
        "trigger_or_failure_mode", description="rule putting a test frame in test_longtail (LONG_TAIL_RULES)")

    @model_validator(mode="after")
    def _leave_train(self) -> VersionConfig:
        if self.val_share + self.test_share >= 1:
            raise ValueError(f"val_share + test_share must stay under 1 so train gets logs, got "
                             f"{self.val_share} + {self.test_share}")
        return self


# ---------------------------------------------------------------------------------------------
# Pure functions: split, long tail, version id


def compute_split_position(log_id: str, salt: str) -> float:
    """Where a drive log falls on [0, 1): the first 64 bits of sha256(salt + "\\n" + log_id) / 2**64."""
    digest = hashlib.sha256(f"{salt}\n{log_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(log_id: str, config: VersionConfig) -> Literal["train", "val", "test"]:
    """The split of a drive log by hash alone: test below ``test_share``, then val up to ``test_share + val_share``.

    The rule of versions before `longtail.label.split` (``split`` absent from their manifest); kept
    to read them. New versions split by drive, stratified.

    Args:
        log_id: the drive log id.
        config: shares and salt.

    Returns:
        ``"test"``, ``"val"`` or ``"train"``; test frames then go to one of the two test suites.
    """
    u = compute_split_position(log_id, config.split_salt)
    if u < config.test_share:
        return "test"
    if u < config.test_share + config.val_share:
        return "val"
    return "train"


def is_long_tail(triggers: Iterable[str], fm_name: str, rule: str) -> bool:
    """Whether a frame is long tail under ``rule`` (a key of `LONG_TAIL_RULES`).

    Raises:
        ConfigError: for an unknown rule, listing the valid ones.
    """
    has_trigger = any(True for _ in triggers)
    has_fm = bool(fm_name)
    if rule == "trigger_or_failure_mode":
        return has_trigger or has_fm
    if rule == "trigger":
        return has_trigger
    if rule == "failure_mode":
        return has_fm
    raise fail_config("VersionConfig", "long_tail", rule, f"Valid rules are {sorted(LONG_TAIL_RULES)}.")


def compute_version_id(rows: Iterable[dict[str, Any]], config: VersionConfig) -> str:
    """The content address of a version: ``v-`` + 16 hex of sha256 over its rows and split config.

    Rows are hashed sorted by frame_id as canonical JSON (every column of `VERSION_LABELS_SCHEMA`:
    frame, image sha256, labels, split and lineage), so equal content always gets the same id and
    any changed label, image or split gets a new one.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT, "config": config.model_dump(mode="json")}, sort_keys=True).encode())
    for row in sorted(rows, key=lambda r: r["frame_id"]):
        digest.update(b"\n")
        digest.update(json.dumps(row, sort_keys=True, separators=(",", ":")).encode())
    return f"v-{digest.hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------
# Inputs: label sets and labeling batches, validated before any work


@dataclass(frozen=True)
class _LabelSet:
    batch_id: str
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]
    batch_rows: dict[str, dict[str, Any]]  # frame_id -> labeling batch row (tags, triggers, fm_name)
    batch_digest: str


def _labels_root(root: str | os.PathLike[str]) -> Path:
    """DATA/labels: one label set per labeling batch."""
    return DataRoot.of(root).labels


def _created_at(value: Any, source: Path) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise SchemaError(f"{source}: field created_at={value!r} is not an ISO 8601 time; rewrite the label set") \
            from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _read_parquet(path: Path, fix: str) -> pa.Table:
    if not path.is_file():
        raise InputError(f"{path}: missing. {fix}")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}). {fix}") from None


def _load_label_set(root: str | os.PathLike[str], batch_id: str) -> tuple[dict[str, Any], pa.Table]:
    """Read and validate one label set, DATA/labels/<batch_id>/, against its manifest.

    Returns:
        (manifest, labels table in `LABEL_SET_SCHEMA`).

    Raises:
        InputError: the manifest or labels.parquet is missing or unreadable, or labels.parquet's
            sha256 differs from the manifest's ``digest``.
        SchemaError: a manifest field is missing or wrong, or the table differs from `LABEL_SET_SCHEMA`.
    """
    folder = _labels_root(root) / batch_id
    fix = f"Pull or relabel batch {batch_id} again to rewrite its label set, or leave {batch_id} out of batch_ids."
    manifest = read_json_object(folder / MANIFEST_FILE, "the label set is incomplete (its manifest is written last)", fix)
    missing = [k for k in LABEL_SET_KEYS if k not in manifest]
    if missing:
        raise SchemaError(f"{folder / MANIFEST_FILE}: lacks field(s) {missing} (longtail.schemas.LABEL_SET_KEYS). {fix}")
    if manifest["batch_id"] != batch_id:
        raise SchemaError(f"{folder / MANIFEST_FILE}: field batch_id={manifest['batch_id']!r} does not match its "
                          f"folder {batch_id!r}. {fix}")
    _created_at(manifest["created_at"], folder / MANIFEST_FILE)
    path = folder / LABELS_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing. {fix}")
    actual = sha256_file(path)
    if actual != manifest["digest"]:
        raise InputError(f"{path}: sha256 {actual} differs from field digest={manifest['digest']!r} of "
                         f"{folder / MANIFEST_FILE}; the file changed after the label set was written. {fix}")
    table = _read_parquet(path, fix)
    if not table.schema.equals(LABEL_SET_SCHEMA, check_metadata=False):
        raise SchemaError(f"{path}: schema differs from longtail.schemas.LABEL_SET_SCHEMA: "
                          f"{schema_diff(table.schema, LABEL_SET_SCHEMA)}. {fix}")
    ids = table.column("frame_id").to_pylist()
    if len(set(ids)) != len(ids):
        raise SchemaError(f"{path}: field frame_id repeats a frame; a label set has one row per frame. {fix}")
    return manifest, table


def _load_batch(root: Path, batch_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    folder = root / "batches" / batch_id
    fix = f"The label set {batch_id} needs its labeling batch: restore DATA/batches/{batch_id}/ or rerun selection."
    manifest = read_json_object(folder / MANIFEST_FILE, "the labeling batch is incomplete or was deleted", fix)
    frames_path = folder / str(manifest.get("frames_file", "frames.parquet"))
    table = _read_parquet(frames_path, fix)
    validate_labeling_batch(manifest, table, str(folder))
    cols = table.select(["frame_id", "tags", "triggers", "fm_name"]).to_pylist()
    return manifest, {r["frame_id"]: r for r in cols}


CLIP_TOLERANCE_PX = QAConfig().out_of_image_tolerance_px
"""Accepted boxes reaching this far past the image edge (QA's tolerance) are clipped; further is an error."""


def _clipped(box: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    coords = (box["x1"], box["y1"], box["x2"], box["y2"])
    if not all(c is not None and math.isfinite(c) for c in coords):
        return box  # _check_boxes names it
    overshoot = max(-coords[0], -coords[1], coords[2] - width, coords[3] - height)
    if overshoot > CLIP_TOLERANCE_PX:
        return box  # beyond what QA lets through: _check_boxes refuses it
    x1, y1, x2, y2 = clip(coords, width, height)
    return dict(box, x1=x1, y1=y1, x2=x2, y2=y2)


def _check_boxes(row: dict[str, Any], source: Path) -> None:
    w, h = row["width"], row["height"]
    for i, box in enumerate(row["boxes"]):
        coords = (box["x1"], box["y1"], box["x2"], box["y2"])
        if box["category"] not in CATEGORIES:
            raise SchemaError(f"{source}: frame {row['frame_id']} box {i} has category {box['category']!r}; "
                              f"valid are {list(CATEGORIES)}. Fix the label and rerun QA.")
        if not all(c is not None and math.isfinite(c) for c in coords) or \
                not (0 <= coords[0] < coords[2] <= w and 0 <= coords[1] < coords[3] <= h):
            raise SchemaError(f"{source}: frame {row['frame_id']} box {i} {coords} is empty or outside the {w}x{h} "
                              f"image (pixel edges, 0 <= x1 < x2 <= width). Fix the label and rerun QA.")


def _load_inputs(root: Path, batch_ids: list[str] | None) -> list[_LabelSet]:
    if batch_ids is None:
        folder = _labels_root(root)
        batch_ids = sorted(p.parent.name for p in folder.glob(f"*/{MANIFEST_FILE}")) if folder.is_dir() else []
        incomplete = sorted(p.name for p in folder.iterdir() if p.is_dir() and not (p / MANIFEST_FILE).exists()) \
            if folder.is_dir() else []
        if incomplete:
            log.warning("skipping label set(s) without a manifest (incomplete): %s", ", ".join(incomplete))
        if not batch_ids:
            raise InputError(f"{folder}: no label set with a manifest.json; label a batch first")
    if len(set(batch_ids)) != len(batch_ids):
        raise fail_config("build_version", "batch_ids", batch_ids, "Name each labeling batch once.")
    sets = []
    for batch_id in batch_ids:
        manifest, table = _load_label_set(root, batch_id)
        batch_manifest, batch_rows = _load_batch(root, batch_id)
        rows = table.to_pylist()
        source = _labels_root(root) / batch_id / LABELS_FILE
        unknown = [r["frame_id"] for r in rows if r["frame_id"] not in batch_rows]
        if unknown:
            raise SchemaError(f"{source}: {len(unknown)} frame(s) not in labeling batch {batch_id} "
                              f"(first: {unknown[0]}); a label set labels the frames of its batch. "
                              f"Pull or relabel batch {batch_id} again.")
        sets.append(_LabelSet(batch_id, manifest, rows, batch_rows, str(batch_manifest["digest"])))
    sets.sort(key=lambda s: (_created_at(s.manifest["created_at"], root), s.batch_id))  # oldest first
    return sets


# ---------------------------------------------------------------------------------------------
# Building a version


def _merge(sets: list[_LabelSet], config: VersionConfig, root: Path
           ) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, Any]], int]:
    """Rows of the version (accepted frames, latest label set wins), source paths, overrides, held count."""
    winner: dict[str, tuple[_LabelSet, dict[str, Any]]] = {}
    seen: dict[str, list[str]] = {}
    for label_set in sets:  # oldest first: a later label set overwrites an earlier one
        for row in label_set.rows:
            winner[row["frame_id"]] = (label_set, row)
            seen.setdefault(row["frame_id"], []).append(label_set.batch_id)
    overridden = {fid: {"kept": bids[-1], "dropped": bids[:-1]} for fid, bids in sorted(seen.items()) if len(bids) > 1}
    rows, sources, held = [], {}, 0
    for frame_id in sorted(winner):
        label_set, row = winner[frame_id]
        if not row["accepted"]:
            held += 1
            continue
        source = _labels_root(root) / label_set.batch_id / LABELS_FILE
        # QA accepts boxes reaching up to its tolerance beyond the edge; a dataset holds them clipped.
        row = dict(row, boxes=[_clipped(b, row["width"], row["height"]) for b in row["boxes"]])
        _check_boxes(row, source)
        batch_row = label_set.batch_rows[frame_id]
        long_tail = is_long_tail(batch_row["triggers"], batch_row["fm_name"], config.long_tail)
        ext = Path(row["store_path"]).suffix.lower() or ".jpg"
        rows.append({
            "frame_id": frame_id, "image_sha256": row["image_sha256"],
            "image_path": f"{IMAGES_DIR}/{row['image_sha256']}{ext}",
            "log_id": row["log_id"], "drive_id": row["drive_id"], "timestamp_ns": row["timestamp_ns"],
            "width": row["width"], "height": row["height"], "boxes": row["boxes"],
            "split": "", "long_tail": long_tail,  # split: _apply_splits, once every drive is known
            "tags": batch_row["tags"], "triggers": batch_row["triggers"], "fm_name": batch_row["fm_name"],
            "batch_id": label_set.batch_id, "annotator": row["annotator"],
        })
        sources[frame_id] = row["store_path"]
    return rows, sources, overridden, held


def _split_config(config: VersionConfig) -> dict[str, Any]:
    return {"val_share": config.val_share, "test_share": config.test_share, "split_salt": config.split_salt}


def _decide_splits(root: Path, rows: list[dict[str, Any]], config: VersionConfig
                   ) -> tuple[dict[str, str], list[DriveProfile], dict[str, Any] | None]:
    """drive_id -> train | val | test for every drive of ``rows``, from the record and earlier versions.

    Returns:
        (drive splits, every profile known, the record as found or None).

    Raises:
        ConfigError: the split settings differ from the record's, or the record and an earlier
            version disagree on a drive.
    """
    record = load_split_record(datasets_dir(root))
    assigned: dict[str, str] = {}
    known: dict[str, DriveProfile] = {}
    if record is not None:
        check_split_config(record, _split_config(config), f"VersionConfig (record {record_path(datasets_dir(root))})")
        assigned.update(record["drives"])
        for drive, p in (record.get("profiles") or {}).items():
            known[drive] = DriveProfile(drive, p["light"], p["weather"], p["vehicle_type"], p["source"])
    for earlier in list_versions(root):  # a lost record is rebuilt from the versions' own copies
        split = earlier.get("split") or {}
        if split:
            check_split_config({"config": split["config"], "method": split["method"]}, _split_config(config),
                               f"VersionConfig (version {earlier['version_id']})")
        for drive, prof in (split.get("profiles") or {}).items():
            known.setdefault(drive, DriveProfile(drive, prof["light"], prof["weather"], prof["vehicle_type"],
                                                 prof["source"]))
        for drive, side in (split.get("drives") or {}).items():
            if assigned.setdefault(drive, side) != side:
                raise ConfigError(f"{record_path(datasets_dir(root))}: drive {drive!r} is in {assigned[drive]} there "
                                  f"but in {side} in version {earlier['version_id']}; restore the record from that "
                                  f"version's manifest (field split.drives)")
    for p in load_drive_profiles(root, rows):
        known.setdefault(p.drive_id, p)
    splits = assign_drive_splits(known.values(), assigned, config.val_share, config.test_share, config.split_salt)
    return dict(splits), list(known.values()), record


def _apply_splits(rows: list[dict[str, Any]], splits: dict[str, str]) -> None:
    for row in rows:
        side = splits[row["drive_id"]]
        row["split"] = ("test_longtail" if row["long_tail"] else "test_common") if side == "test" else side


def _logs_by_split(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    logs: dict[str, set[str]] = {s: set() for s in SPLITS}
    for row in rows:
        logs[row["split"]].add(row["log_id"])
    return {s: sorted(v) for s, v in logs.items()}


def _test_logs(logs: dict[str, list[str]]) -> set[str]:
    return set(logs.get("test_longtail", [])) | set(logs.get("test_common", []))


def _check_test_logs_apart(root: Path, logs: dict[str, list[str]], config: VersionConfig) -> None:
    """A drive log in a test suite of any existing version stays out of train and val, and vice versa."""
    now_test = _test_logs(logs)
    now_fit = set(logs["train"]) | set(logs["val"])
    for earlier in list_versions(root):
        before = earlier.get("logs", {})
        before_test = _test_logs(before)
        before_fit = set(before.get("train", [])) | set(before.get("val", []))
        for moved, there, here in ((sorted(before_test & now_fit), "a test suite", "train/val"),
                                   (sorted(before_fit & now_test), "train/val", "a test suite")):
            if moved:
                old = earlier.get("config", {})
                raise ConfigError(
                    f"VersionConfig(split_salt={config.split_salt!r}, test_share={config.test_share}) would move "
                    f"drive log(s) {moved[:5]}{' ...' if len(moved) > 5 else ''} from {there} in version "
                    f"{earlier['version_id']} to {here}; test logs are never trained on. Build with that version's "
                    f"split settings (split_salt={old.get('split_salt')!r}, test_share={old.get('test_share')}), "
                    f"or in a new data root.")


def _counts(rows: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    frames = dict.fromkeys(SPLITS, 0)
    boxes = {s: dict.fromkeys(CATEGORIES, 0) for s in SPLITS}
    for row in rows:
        frames[row["split"]] += 1
        for box in row["boxes"]:
            boxes[row["split"]][box["category"]] += 1
    return frames, boxes


def _link_or_copy(src: Path, dst: Path) -> bool:
    """Hardlink ``src`` to ``dst``; copy (and fsync) when the file systems differ. True when linked."""
    try:
        os.link(src, dst)
        return True
    except OSError:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_version(root: str | os.PathLike[str], batch_ids: list[str] | None = None,
                  config: VersionConfig | None = None, progress: bool = False) -> dict[str, Any]:
    """Freeze the accepted labels of some label sets into a dataset version, DATA/datasets/<version_id>/.

    1. Validate every label set (manifest, digest, schema, boxes) and its labeling batch.
    2. Merge: a frame labeled in several label sets takes the latest one; keep accepted frames.
    3. Split by drive (`longtail.label.split`): drives in the record (or an earlier version) keep
       their split, new drives are assigned stratified by condition and vehicle type; test drives'
       frames go to test_longtail or test_common by the long-tail rule. A log never changes sides
       of the test split relative to any existing version (checked again on the logs).
    4. Hash the rows and config into the version id. An existing version with that id is returned
       untouched (after checking its digest): versions are immutable.
    5. Write labels.parquet, hardlink (or copy) the images, write manifest.json last, all in a
       temporary folder renamed into place, so a crash never leaves half a version.

    Args:
        root: the data root.
        batch_ids: label sets to use (labeling batch ids); None for every label set with a manifest.
        config: split settings; `VersionConfig` defaults when None.
        progress: show a progress bar while linking images.

    Returns:
        The version's manifest (`VERSION_KEYS`).

    Raises:
        InputError: a label set, labeling batch or frame image is missing or damaged, or no frame
            is accepted. Nothing is written.
        SchemaError: a label set or batch does not match its schema.
        ConfigError: the split settings differ from those the data root's drives were assigned with,
            or would move a drive log across the test split of an existing version.
    """
    root = Path(root)
    config = config or VersionConfig()
    sets = _load_inputs(root, batch_ids)
    rows, sources, overridden, held = _merge(sets, config, root)
    if not rows:
        raise InputError(f"{_labels_root(root)}: no accepted frame in label set(s) {[s.batch_id for s in sets]}; "
                         f"a version needs at least one frame that passed QA")
    missing = [sources[r["frame_id"]] for r in rows if not (root / sources[r["frame_id"]]).is_file()]
    if missing:
        raise InputError(f"{root / missing[0]}: frame image missing from the frame store ({len(missing)} missing in "
                         f"all). Re-ingest its drive log, or relabel without those frames.")
    drive_splits, profiles, record = _decide_splits(root, rows, config)
    _apply_splits(rows, drive_splits)
    drives = sorted({r["drive_id"] for r in rows})
    mine = [p for p in profiles if p.drive_id in set(drives)]
    split_info = {"method": SPLIT_METHOD, "unit": "drive_id", "config": _split_config(config),
                  "drives": {d: drive_splits[d] for d in drives},
                  "profiles": {p.drive_id: {"light": p.light, "weather": p.weather, "vehicle_type": p.vehicle_type,
                                            "source": p.source} for p in sorted(mine, key=lambda p: p.drive_id)},
                  "coverage": describe_coverage(mine, drive_splits)}
    logs = _logs_by_split(rows)
    version_id = compute_version_id(rows, config)
    final = datasets_dir(root) / version_id
    if final.exists():
        manifest = verify_version_folder(final)
        log.info("dataset version %s exists already (same labels and config)", version_id)
        return manifest
    _check_test_logs_apart(root, logs, config)
    earlier = list_versions(root)
    frames, boxes = _counts(rows)

    datasets_dir(root).mkdir(parents=True, exist_ok=True)
    tmp = datasets_dir(root) / f".tmp-{version_id}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        (tmp / IMAGES_DIR).mkdir()
        linked = copied = size = 0
        done: set[str] = set()
        for row in tqdm(rows, unit="image", desc=f"linking {version_id}", disable=not progress):
            if row["image_path"] in done:
                continue
            src, dst = root / sources[row["frame_id"]], tmp / row["image_path"]
            actual = sha256_file(src)
            if actual != row["image_sha256"]:
                raise InputError(f"{src}: sha256 {actual} differs from field image_sha256={row['image_sha256']!r} "
                                 f"of frame {row['frame_id']} (batch {row['batch_id']}); the frame store file is "
                                 f"damaged. Re-ingest its drive log.")
            if _link_or_copy(src, dst):
                linked += 1
            else:
                copied += 1
            size += dst.stat().st_size
            done.add(row["image_path"])
        with atomic_writer(tmp / LABELS_FILE) as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=VERSION_LABELS_SCHEMA), handle)
        used: dict[str, int] = {}
        for row in rows:
            used[row["batch_id"]] = used.get(row["batch_id"], 0) + 1
        manifest = {
            "version_id": version_id, "format": FORMAT, "digest": sha256_file(tmp / LABELS_FILE),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "frames": len(rows), "frames_held": held, "counts": frames, "categories": boxes,
            "images": {"files": len(done), "bytes": size, "hardlinked": linked, "copied": copied},
            "label_sets": [{"batch_id": s.batch_id, "digest": s.manifest["digest"],
                            "created_at": s.manifest["created_at"], "rows": len(s.rows),
                            "frames_used": used.get(s.batch_id, 0)} for s in sets],
            "batches": sorted(s.batch_id for s in sets),
            "logs": logs,
            "lineage": {"batches": {s.batch_id: s.batch_digest for s in sets},
                        "drive_logs": sorted({r["log_id"] for r in rows})},
            "duplicates": {"policy": DUPLICATE_POLICY, "overridden": overridden},
            "config": config.model_dump(mode="json"),
            "long_tail_rule": LONG_TAIL_RULES[config.long_tail],
            "parent": earlier[-1]["version_id"] if earlier else None,
            "labels_file": LABELS_FILE, "images_dir": IMAGES_DIR, "split": split_info,
        }
        atomic_write_json(tmp / MANIFEST_FILE, manifest)  # written last
        _fsync_dir(tmp / IMAGES_DIR)
        if record is None or any(d not in record["drives"] for d in drive_splits):
            save_split_record(datasets_dir(root), _split_config(config), drive_splits, profiles)
        try:
            os.rename(tmp, final)
        except OSError:
            if (final / MANIFEST_FILE).exists():  # another process built the same version meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
                return verify_version_folder(final)
            raise
        _fsync_dir(datasets_dir(root))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("dataset version %s: %d frame(s) from %d label set(s); %s", version_id, len(rows), len(sets),
             ", ".join(f"{s} {n}" for s, n in frames.items()))
    return manifest


# ---------------------------------------------------------------------------------------------
# DVC: the data root as a DVC repository without git


def _import_dvc() -> type[Repo]:
    """Import DVC's Repo, with its console handlers detached.

    ``import dvc`` binds handlers to this process's stdout (for its own CLI); in a library they
    would write into Longtail's stdout (breaking ``--json`` output) and print records twice. DVC's
    records go to Longtail's logging instead, warnings and worse only.
    """
    from dvc.repo import Repo

    for name in ("dvc", "dvc_objects", "dvc_data"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler).__module__.startswith("dvc"):
                logger.removeHandler(handler)
        logger.setLevel(logging.WARNING)
    return Repo


def _remote_url(remote: str | os.PathLike[str]) -> str:
    text = os.fspath(remote)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def default_remote(root: str | os.PathLike[str]) -> str:
    """The default DVC remote: ``$LONGTAIL_DVC_REMOTE``, else the folder ``<root>.dvc-remote`` beside the data root."""
    env = os.environ.get(DVC_REMOTE_ENV)
    if env:
        return _remote_url(env)
    resolved = Path(root).resolve()
    return str(resolved.with_name(resolved.name + ".dvc-remote"))


@contextlib.contextmanager
def _open_repo(root: Path, remote: str | None = None) -> Iterator[Repo]:
    """Open the DVC repository at ``root`` in-process.

    DVC's per-repository databases (hashes, index) go under .dvc/tmp/site-cache instead of the
    machine-wide /var/tmp/dvc, so nothing is shared between data roots or users, and ``remote``
    (a URL) overrides the configured default remote for this call only.
    """
    Repo = _import_dvc()
    overrides: dict[str, Any] = {"core": {"site_cache_dir": str(root / ".dvc" / "tmp" / "site-cache")}}
    if remote is not None:
        overrides["core"]["remote"] = DVC_REMOTE_NAME
        overrides["remote"] = {DVC_REMOTE_NAME: {"url": remote}}
    repo = Repo(str(root), config=overrides)
    try:
        yield repo
    finally:
        repo.close()


def init_dvc(root: str | os.PathLike[str], remote: str | os.PathLike[str] | None = None) -> str:
    """Make the data root a DVC repository without git, or update its settings; returns the remote URL.

    Sets analytics and update checks off, the cache link types (`DVC_CACHE_TYPE`), and the default
    remote. A repository made here also gets a .dvcignore limiting DVC to DATA/datasets; an existing
    one keeps its own .dvcignore and cache type.

    Args:
        root: the data root.
        remote: the remote's URL or folder; None keeps the configured one, else `default_remote`.

    Returns:
        The default remote's URL.
    """
    from dvc.config import Config

    root = Path(root)
    dvc_dir = root / ".dvc"
    created = not dvc_dir.is_dir()
    if created:
        # Not `Repo.init`: it opens the repository before its config exists, which creates a folder
        # in the machine-wide /var/tmp/dvc; `dvc init --no-scm` amounts to these files.
        dvc_dir.mkdir(parents=True)
        (dvc_dir / "config").touch()
        (root / ".dvcignore").write_text(DVCIGNORE)
    config = Config(str(dvc_dir), validate=False)
    current = config.load_one("repo")
    configured = current.get("remote", {}).get(current.get("core", {}).get("remote", ""), {}).get("url")
    url = _remote_url(remote) if remote is not None else \
        (_remote_url(os.environ[DVC_REMOTE_ENV]) if os.environ.get(DVC_REMOTE_ENV) else configured) or \
        default_remote(root)
    with config.edit("repo") as conf:
        conf["core"]["no_scm"] = True
        conf["core"]["analytics"] = False  # DVC's analytics process crashes without internet
        conf["core"]["check_update"] = False
        if created or "type" not in conf.get("cache", {}):
            conf["cache"]["type"] = DVC_CACHE_TYPE
        conf["core"]["remote"] = DVC_REMOTE_NAME
        conf["remote"][DVC_REMOTE_NAME] = {**conf["remote"].get(DVC_REMOTE_NAME, {}), "url": url}
    if url != configured:
        log.info("DVC remote of %s: %s", root, url)
    return url


def track_version(root: str | os.PathLike[str], version_id: str,
                  remote: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Track a dataset version with DVC (``dvc add datasets/<version_id>``) and push it to the remote.

    Args:
        root: the data root; made a DVC repository (`init_dvc`) on first use.
        version_id: a version built by `build_version`.
        remote: a folder or URL (s3://bucket/prefix with dvc-s3); None: the configured remote,
            ``$LONGTAIL_DVC_REMOTE``, or ``<root>.dvc-remote``.

    Returns:
        ``{"version_id", "dvc_file" (relative to root), "md5" (DVC's hash of the folder),
        "remote", "pushed" (objects uploaded; 0 when the remote had them all)}``.

    Raises:
        InputError: the version is missing or damaged, or DVC fails (the message says which step).
    """
    from dvc.exceptions import DvcException

    check_version_id(version_id, "track_version")
    root = Path(root).resolve()
    load_version(root, version_id, check_images=True)  # DVC would record a damaged file for good
    url = init_dvc(root, remote)
    target = datasets_dir(root) / version_id
    dvc_file = target.with_name(f"{version_id}.dvc")
    with _open_repo(root) as repo:
        try:
            repo.add([str(target)])
        except DvcException as exc:
            raise InputError(f"{target}: 'dvc add' failed: {_dvc_message(exc)}. Check that no other DVC command runs in {root} "
                             f"and that the folder is intact (load_version).") from exc
        try:
            pushed = repo.push([str(dvc_file)], remote=DVC_REMOTE_NAME)
        except DvcException as exc:
            raise InputError(f"{dvc_file}: 'dvc push' to {url} failed: {_dvc_message(exc)}. Check that the remote exists and is "
                             f"writable (set it with the remote argument or ${DVC_REMOTE_ENV}).") from exc
    md5 = _dvc_record_md5(dvc_file)
    log.info("dataset version %s tracked by DVC (%s), %d object(s) pushed to %s", version_id, md5, pushed, url)
    return {"version_id": version_id, "dvc_file": str(dvc_file.relative_to(root)), "md5": md5, "remote": url,
            "pushed": pushed}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _dvc_message(exc: Exception) -> str:
    """DVC's error text on one line, without the terminal colours it adds to links."""
    return " ".join(_ANSI.sub("", str(exc)).split())


def _configured_remote(root: Path) -> str:
    """The URL of the default remote in ``root``'s .dvc/config, for messages."""
    from dvc.config import Config

    try:
        conf = Config(str(root / ".dvc"), validate=False)
        return f"the configured remote {conf['remote'][conf['core']['remote']]['url']}"
    except Exception:  # only a message depends on it
        return "the configured remote (none set)"


def _dvc_record_md5(dvc_file: Path) -> str:
    import yaml

    record = yaml.safe_load(dvc_file.read_text())
    try:
        return str(record["outs"][0]["md5"])
    except (KeyError, IndexError, TypeError):
        raise SchemaError(f"{dvc_file}: not a DVC record of one folder (outs[0].md5 missing); "
                          f"track the version again with track_version") from None


def restore_version(checkout_dir: str | os.PathLike[str], version_id: str,
                    remote: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Recreate a dataset version from its DVC record: ``dvc pull datasets/<version_id>.dvc``.

    Works on a fresh checkout of the data root's DVC metadata, which needs only .dvc/config and
    datasets/<version_id>.dvc; the folder comes back byte for byte from the remote (or from the
    local DVC cache when it has the files).

    Args:
        checkout_dir: the checkout (or the data root itself, to recreate a deleted version).
        version_id: the version to recreate.
        remote: a folder or URL overriding the checkout's configured remote for this call;
            None: ``$LONGTAIL_DVC_REMOTE``, else the remote in .dvc/config.

    Returns:
        The version's manifest, after `load_version` checked the labels digest and every image's sha256.

    Raises:
        InputError: the checkout lacks .dvc/config or the version's .dvc record, or the pull fails.
    """
    from dvc.exceptions import DvcException

    check_version_id(version_id, "restore_version")
    checkout = Path(checkout_dir).resolve()
    if not (checkout / ".dvc" / "config").is_file():
        raise InputError(f"{checkout / '.dvc' / 'config'}: missing; {checkout} is not a DVC checkout of a data root. "
                         f"Copy the data root's .dvc/config (and datasets/<version_id>.dvc) there first.")
    dvc_file = datasets_dir(checkout) / f"{version_id}.dvc"
    if not dvc_file.is_file():
        known = sorted(p.stem for p in datasets_dir(checkout).glob("v-*.dvc"))
        raise InputError(f"{dvc_file}: missing; version {version_id} has no DVC record in this checkout "
                         f"(records here: {known or 'none'}). Copy it from the data root, where track_version wrote it.")
    if remote is None and os.environ.get(DVC_REMOTE_ENV):
        remote = os.environ[DVC_REMOTE_ENV]
    url = _remote_url(remote) if remote is not None else None
    with _open_repo(checkout, url) as repo:
        try:
            repo.pull([str(dvc_file)], remote=DVC_REMOTE_NAME if url else None)
        except DvcException as exc:
            raise InputError(f"{dvc_file}: 'dvc pull' from {url or _configured_remote(checkout)} failed: {_dvc_message(exc)}. "
                             f"Pass the remote that track_version pushed to (argument or ${DVC_REMOTE_ENV}).") from exc
    _, manifest = load_version(checkout, version_id, check_images=True)
    log.info("dataset version %s restored in %s", version_id, checkout)
    return manifest
