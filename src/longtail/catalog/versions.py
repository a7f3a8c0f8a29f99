"""Readers of dataset versions: what the label stage hands to train and evaluate.

A dataset version is an immutable, content-addressed folder, DATA/datasets/<version_id>/:
labels.parquet (one row per frame with its split, `VERSION_LABELS_SCHEMA`), images/ and
manifest.json written last. `longtail.label.version` builds and tracks them; train, evaluate and
anyone else read them here, so reading never imports the writing side.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from longtail.catalog.root import DataRoot
from longtail.errors import InputError, SchemaError, fail_config
from longtail.schemas import BOX_TYPE
from longtail.storage import sha256_file

SPLITS: tuple[str, ...] = ("train", "val", "test_longtail", "test_common")
"""Splits of a version. The two test suites come from the same drive logs (the test logs):
``test_longtail`` holds their long-tail frames, ``test_common`` the rest. Neither is trained on."""

FORMAT = "longtail.dataset_version/1"
"""Layout and hashing scheme of a version; part of every version id, so a new scheme gets new ids."""

VERSION_ID_RE = re.compile(r"^v-[0-9a-f]{16}$")
DATASETS_DIR = "datasets"
LABELS_FILE = "labels.parquet"
MANIFEST_FILE = "manifest.json"
IMAGES_DIR = "images"

VERSION_LABELS_SCHEMA = pa.schema([
    ("frame_id", pa.string()),
    ("image_sha256", pa.string()),
    ("image_path", pa.string()),        # relative to the version folder: images/<sha256>.<ext>
    ("log_id", pa.string()),            # drive log
    ("drive_id", pa.string()),          # the drive (decides the split: `longtail.label.split`)
    ("timestamp_ns", pa.int64()),       # capture time, ns since the UNIX epoch
    ("width", pa.int32()), ("height", pa.int32()),  # image size, px
    ("boxes", pa.list_(BOX_TYPE)),      # accepted labels, pixel edges (x2/y2 exclusive), longtail.boxes convention
    ("split", pa.string()),             # train | val | test_longtail | test_common
    ("long_tail", pa.bool_()),          # the long-tail rule of the config holds (any split)
    ("tags", pa.list_(pa.string())),    # scenario tags at selection time (labeling batch)
    ("triggers", pa.list_(pa.string())),
    ("fm_name", pa.string()),           # failure mode the frame resembled at selection time, or ""
    ("batch_id", pa.string()),          # labeling batch / label set the labels come from
    ("annotator", pa.string()),
])
"""DATA/datasets/<version_id>/labels.parquet: one row per frame, sorted by frame_id."""

VERSION_KEYS = ("version_id", "format", "digest", "created_at", "frames", "frames_held", "counts", "categories",
                "images", "label_sets", "batches", "logs", "lineage", "duplicates", "config", "long_tail_rule",
                "parent", "labels_file", "images_dir", "split")
"""Fields of DATA/datasets/<version_id>/manifest.json."""


def datasets_dir(root: str | os.PathLike[str]) -> Path:
    """DATA/datasets: one folder per dataset version."""
    return DataRoot.of(root).datasets


def read_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: missing; {what}. {fix}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable JSON ({exc}). {fix}") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: expected a JSON object, got {type(data).__name__}. {fix}")
    return data


def schema_diff(actual: pa.Schema, expected: pa.Schema) -> str:
    parts = []
    for field in expected:
        if field.name not in actual.names:
            parts.append(f"missing field {field.name}")
        elif not actual.field(field.name).type.equals(field.type):
            parts.append(f"field {field.name} is {actual.field(field.name).type}, expected {field.type}")
    extra = [n for n in actual.names if n not in expected.names]
    if extra:
        parts.append(f"unexpected field(s) {extra}")
    return "; ".join(parts) or "field order differs"


def verify_version_folder(folder: Path) -> dict[str, Any]:
    manifest = read_json_object(folder / MANIFEST_FILE, "the version folder is damaged",
                          f"Delete {folder} and build again, or restore_version it from DVC.")
    actual = sha256_file(folder / LABELS_FILE) if (folder / LABELS_FILE).is_file() else "missing"
    if actual != manifest.get("digest"):
        raise InputError(f"{folder / LABELS_FILE}: sha256 {actual} differs from field digest="
                         f"{manifest.get('digest')!r} of its manifest; the version was modified. Restore it with "
                         f"restore_version (DVC) or delete {folder} and build again.")
    return manifest


def check_version_id(version_id: str, source: str) -> None:
    if not isinstance(version_id, str) or not VERSION_ID_RE.match(version_id):
        raise fail_config(source, "version_id", version_id, "A version id is 'v-' and 16 hex digits, "
                          "as build_version and list_versions return.")


def list_versions(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Manifests of every complete dataset version under DATA/datasets, oldest first."""
    folder = datasets_dir(root)
    out = []
    for path in sorted(folder.glob(f"v-*/{MANIFEST_FILE}")) if folder.is_dir() else []:
        if VERSION_ID_RE.match(path.parent.name):
            out.append(read_json_object(path, "the version folder is damaged",
                                  f"Restore it with restore_version (DVC) or delete {path.parent}."))
    out.sort(key=lambda m: (m["created_at"], m["version_id"]))
    return out


def load_version(root: str | os.PathLike[str], version_id: str, check_images: bool = False
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load a dataset version's labels and manifest, after checking them.

    Args:
        root: the data root (or a DVC checkout of it).
        version_id: ``v-<16 hex>``.
        check_images: also re-hash every image against its sha256 name (reads every byte);
            without it, images are only checked to exist.

    Returns:
        (labels, one row per frame in `VERSION_LABELS_SCHEMA` with ``image_path`` relative to the
        version folder; the manifest).

    Raises:
        InputError: the version is missing, its labels.parquet differs from the manifest's digest,
            or an image is missing or damaged.
        SchemaError: labels.parquet does not match `VERSION_LABELS_SCHEMA`.
    """
    check_version_id(version_id, "load_version")
    folder = datasets_dir(root) / version_id
    if not (folder / MANIFEST_FILE).is_file():
        known = [m["version_id"] for m in list_versions(root)]
        raise InputError(f"{folder / MANIFEST_FILE}: missing; no dataset version {version_id} in {root}. "
                         f"Versions here: {known or 'none'}; restore_version recreates a tracked one from DVC.")
    manifest = verify_version_folder(folder)
    table = pq.read_table(folder / LABELS_FILE)
    if not table.schema.equals(VERSION_LABELS_SCHEMA, check_metadata=False):
        raise SchemaError(f"{folder / LABELS_FILE}: schema differs from VERSION_LABELS_SCHEMA: "
                          f"{schema_diff(table.schema, VERSION_LABELS_SCHEMA)}")
    for path, sha in sorted(set(zip(table.column("image_path").to_pylist(),
                                    table.column("image_sha256").to_pylist(), strict=True))):
        image = folder / path
        if not image.is_file():
            raise InputError(f"{image}: image of version {version_id} missing. Restore the version with "
                             f"restore_version (DVC).")
        if check_images and sha256_file(image) != sha:
            raise InputError(f"{image}: bytes differ from their sha256 name; the image was modified in place. "
                             f"Restore the version with restore_version (DVC) from its remote.")
    return table.to_pandas(), manifest


def load_version_folder(folder: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load a dataset version from its folder alone (the folder may have any name, e.g. a SageMaker channel).

    Args:
        folder: a folder holding manifest.json, labels.parquet and images/ as `build_version` wrote them.

    Returns:
        (labels, one row per frame in `VERSION_LABELS_SCHEMA`; the manifest).

    Raises:
        InputError: the manifest or labels are missing, or labels.parquet differs from the
            manifest's digest.
        SchemaError: labels.parquet does not match `VERSION_LABELS_SCHEMA`.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path}: missing; {folder} is not a dataset version folder. Point at "
                         f"DATA/datasets/<version_id>/ as build_version wrote it.")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise InputError(f"{manifest_path}: unreadable JSON ({exc}). Restore the version with restore_version.") from None
    labels = folder / str(manifest.get("labels_file", LABELS_FILE))
    actual = sha256_file(labels) if labels.is_file() else "missing"
    if actual != manifest.get("digest"):
        raise InputError(f"{labels}: sha256 {actual} differs from field digest={manifest.get('digest')!r} of "
                         f"{manifest_path}; the version was modified. Restore it with restore_version (DVC).")
    table = pq.read_table(labels)
    if not table.schema.equals(VERSION_LABELS_SCHEMA, check_metadata=False):
        raise SchemaError(f"{labels}: schema differs from longtail.catalog.versions.VERSION_LABELS_SCHEMA: {table.schema}")
    return table.to_pandas(), manifest
