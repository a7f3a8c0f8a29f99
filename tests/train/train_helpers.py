"""Helpers of the train tests: a tiny dataset version in build_version's layout (real JPEGs drawn with PIL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from longtail.catalog.versions import FORMAT, IMAGES_DIR, LABELS_FILE, MANIFEST_FILE, VERSION_LABELS_SCHEMA
from longtail.label.version import VersionConfig, compute_version_id
from longtail.storage import atomic_write_json, sha256_file
from longtail.train.config import TrainConfig

COLORS = {"car": (220, 30, 30), "truck": (30, 30, 220), "pedestrian": (30, 200, 30), "cyclist": (230, 220, 20)}
WIDTH, HEIGHT = 96, 64


def _frame(rng: random.Random, k: int) -> tuple[bytes, list[dict[str, Any]]]:
    image = Image.new("RGB", (WIDTH, HEIGHT), (90 + rng.randrange(40),) * 3)
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(rng.randint(1, 3)):
        cat = rng.choice(list(COLORS))
        w, h = rng.randint(12, 30), rng.randint(12, 30)
        x1, y1 = rng.randrange(0, WIDTH - w), rng.randrange(0, HEIGHT - h)
        draw.rectangle([x1, y1, x1 + w - 1, y1 + h - 1], fill=COLORS[cat])  # PIL's corners are inclusive
        boxes.append({"category": cat, "x1": float(x1), "y1": float(y1), "x2": float(x1 + w), "y2": float(y1 + h),
                      "score": 1.0})
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue(), boxes


def write_version(root: Path, frames: int = 16, val: int = 4, seed: int = 0,
                  edit: Any = None) -> tuple[Path, dict[str, Any]]:
    """Write DATA/datasets/<version_id>/ with ``frames`` frames, the last ``val`` of them in val.

    ``edit(rows)`` may change the rows (e.g. break a box) before they are hashed and written.
    """
    rng = random.Random(seed)
    rows, images = [], {}
    for k in range(frames):
        data, boxes = _frame(rng, k)
        sha = hashlib.sha256(data).hexdigest()
        images[sha] = data
        log = f"car-00{k % 4}_drive000"
        rows.append({"frame_id": f"{log}/{k:06d}", "image_sha256": sha, "image_path": f"{IMAGES_DIR}/{sha}.jpg",
                     "log_id": log, "drive_id": log, "timestamp_ns": 1_700_000_000_000_000_000 + k * 10**8,
                     "width": WIDTH, "height": HEIGHT, "boxes": boxes,
                     "split": "val" if k >= frames - val else "train", "long_tail": False, "tags": [],
                     "triggers": [], "fm_name": "", "batch_id": "b-test", "annotator": "oracle"})
    if edit is not None:
        edit(rows)
    version_id = compute_version_id(rows, VersionConfig())
    folder = root / "datasets" / version_id
    (folder / IMAGES_DIR).mkdir(parents=True)
    for sha, data in images.items():
        (folder / IMAGES_DIR / f"{sha}.jpg").write_bytes(data)
    pq.write_table(pa.Table.from_pylist(rows, schema=VERSION_LABELS_SCHEMA), folder / LABELS_FILE)
    splits = ("train", "val", "test_common", "test_longtail")
    counts = {s: sum(r["split"] == s for r in rows) for s in splits}
    categories = {s: {c: sum(b["category"] == c for r in rows if r["split"] == s for b in r["boxes"]) for c in COLORS}
                  for s in splits}
    logs = {s: sorted({r["log_id"] for r in rows if r["split"] == s}) for s in splits}
    manifest = {"version_id": version_id, "format": FORMAT, "digest": sha256_file(folder / LABELS_FILE),
                "created_at": dt.datetime.now(dt.UTC).isoformat(), "frames": len(rows), "frames_held": 0,
                "counts": counts, "categories": categories, "images": {}, "label_sets": [], "batches": ["b-test"],
                "logs": logs,
                "lineage": {"drive_logs": sorted({r["log_id"] for r in rows})}, "duplicates": {},
                "config": VersionConfig().model_dump(mode="json"),
                "long_tail_rule": "", "parent": None, "labels_file": LABELS_FILE, "images_dir": IMAGES_DIR}
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return folder, manifest


def tiny_config(**overrides: Any) -> TrainConfig:
    """The default preset (fcos-small-p2) at 64x96 input, batch 4, one thread: a few seconds per epoch."""
    values: dict[str, Any] = {"epochs": 2, "batch_size": 4, "lr": 2e-3, "threads": 1, "device": "cpu",
                              "min_size": 64, "max_size": 96, "registered_model": "test-detector"}
    values.update(overrides)
    return TrainConfig(**values)
