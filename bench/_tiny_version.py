"""What the benchmarks that read a data root (quality, defaults, sm_entry, prelabel_cost, speed_turn2) run on
under ``--quick``: a tiny dataset version in `longtail.label.version.build_version`'s layout, of road-less
synthetic frames (coloured rectangles drawn with PIL, their boxes the labels), a model trained on it for one
epoch, and a short simulated drive ingested. They check that the benchmark runs, not what it measures."""

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
from longtail.schemas import CATEGORIES
from longtail.storage import atomic_write_json, sha256_file

SPLITS = ("train", "val", "test_common", "test_longtail")
COLORS = dict(zip(CATEGORIES, [(220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 220, 20)], strict=True))
WIDTH, HEIGHT = 160, 96
DRIVES = 4


def _frame(rng: random.Random) -> tuple[bytes, list[dict[str, Any]]]:
    """One JPEG frame (quality 90) and its boxes (pixel edges, x2/y2 exclusive)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (90 + rng.randrange(40),) * 3)
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(rng.randint(1, 3)):
        category = rng.choice(CATEGORIES)
        w, h = rng.randint(12, 40), rng.randint(12, 40)
        x1, y1 = rng.randrange(0, WIDTH - w), rng.randrange(0, HEIGHT - h)
        draw.rectangle([x1, y1, x1 + w - 1, y1 + h - 1], fill=COLORS[category])  # PIL's corners are inclusive
        boxes.append({"category": category, "x1": float(x1), "y1": float(y1), "x2": float(x1 + w),
                      "y2": float(y1 + h), "score": 1.0})
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue(), boxes


def write_tiny_version(root: Path, frames_per_split: int = 8, seed: int = 0) -> tuple[Path, str]:
    """Write DATA/datasets/<version_id>/ with ``frames_per_split`` frames in each split, from 4 drives.

    Args:
        root: the data root (created when missing).
        frames_per_split: frames of each of train, val, test_common and test_longtail; each split takes
            its frames from every drive in turn, so that intervals over drives have drives to draw.
        seed: seed of the frames.

    Returns:
        (the version's folder, its version id).
    """
    rng = random.Random(seed)
    rows, images = [], {}
    for k in range(frames_per_split * len(SPLITS)):
        data, boxes = _frame(rng)
        sha = hashlib.sha256(data).hexdigest()
        images[sha] = data
        log = f"car-00{k % DRIVES}_drive000"
        split = SPLITS[k // frames_per_split]
        rows.append({"frame_id": f"{log}/{k:06d}", "image_sha256": sha, "image_path": f"{IMAGES_DIR}/{sha}.jpg",
                     "log_id": log, "drive_id": log, "timestamp_ns": 1_700_000_000_000_000_000 + k * 10**8,
                     "width": WIDTH, "height": HEIGHT, "boxes": boxes, "split": split,
                     "long_tail": split == "test_longtail", "tags": [], "triggers": [], "fm_name": "",
                     "batch_id": "b-quick", "annotator": "oracle"})
    version_id = compute_version_id(rows, VersionConfig())
    folder = root / "datasets" / version_id
    (folder / IMAGES_DIR).mkdir(parents=True)
    for sha, data in images.items():
        (folder / IMAGES_DIR / f"{sha}.jpg").write_bytes(data)
    pq.write_table(pa.Table.from_pylist(rows, schema=VERSION_LABELS_SCHEMA), folder / LABELS_FILE)
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    categories = {s: {c: sum(b["category"] == c for r in rows if r["split"] == s for b in r["boxes"])
                      for c in CATEGORIES} for s in SPLITS}
    logs = {s: sorted({r["log_id"] for r in rows if r["split"] == s}) for s in SPLITS}
    manifest = {"version_id": version_id, "format": FORMAT, "digest": sha256_file(folder / LABELS_FILE),
                "created_at": dt.datetime.now(dt.UTC).isoformat(), "frames": len(rows), "frames_held": 0,
                "counts": counts, "categories": categories, "images": {}, "label_sets": [], "batches": ["b-quick"],
                "logs": logs, "lineage": {"drive_logs": sorted({r["log_id"] for r in rows})}, "duplicates": {},
                "config": VersionConfig().model_dump(mode="json"), "long_tail_rule": "", "parent": None,
                "labels_file": LABELS_FILE, "images_dir": IMAGES_DIR}
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return folder, version_id


def train_tiny_model(root: Path, version_id: str, registered_model: str | None = None) -> tuple[str, str | None]:
    """One epoch of the default preset at the frames' own size on one thread, tracked in the root's MLflow.

    Args:
        root: the data root holding the version.
        version_id: the version trained on (its val split calibrates the thresholds).
        registered_model: register the model as a new version of this name; None registers nothing.

    Returns:
        (the model's MLflow URI, ``runs:/<run id>/model``; its registered version, or None).
    """
    from longtail.train.config import TrainConfig
    from longtail.train.run import train

    config = TrainConfig(epochs=1, batch_size=4, threads=1, device="cpu", min_size=HEIGHT, max_size=WIDTH,
                         registered_model=registered_model, experiment="bench-quick")
    result = train(root, version_id, config, progress=False)
    return str(result["model_uri"]), result["model_version"]


def ingest_tiny_drive(folder: Path, root: Path) -> None:
    """Simulate one drive of 12 s at 160x96 and 5 Hz into ``folder`` and ingest it into the data root ``root``.

    The drive log and its ground-truth sidecar stay in ``folder``: keep it while the root is read.
    """
    from longtail.config import SimConfig
    from longtail.ingest.ingest import ingest
    from longtail.sim.fleet import simulate_fleet

    simulate_fleet(SimConfig(vehicles=1, minutes=0.2, width=WIDTH, height=HEIGHT, fps=5.0, seed=3), folder,
                   workers=1, progress=False)
    ingest(sorted(folder.glob("*.mcap")), root, workers=1, progress=False)
