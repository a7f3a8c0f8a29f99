"""Helpers of the deploy tests: a data root with a dataset version (real JPEGs drawn with PIL), an
untrained detector registered in MLflow and promoted to champion, and its evaluation by the real
evaluate stage."""

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

from longtail.catalog.root import DataRoot
from longtail.catalog.versions import FORMAT, IMAGES_DIR, LABELS_FILE, MANIFEST_FILE, VERSION_LABELS_SCHEMA
from longtail.detector.model import default_tracking, mlflow_client, save_model
from longtail.detector.presets import build_model
from longtail.detector.registry import REGISTERED_MODEL, promote
from longtail.label.version import VersionConfig, compute_version_id
from longtail.schemas import CATEGORIES
from longtail.storage import atomic_write_json, sha256_file

COLORS = {"car": (220, 30, 30), "truck": (30, 30, 220), "pedestrian": (30, 200, 30), "cyclist": (230, 220, 20)}
SPLITS = ("train", "val", "test_common", "test_longtail")
THRESHOLDS = {"car": 0.3, "truck": 0.35, "pedestrian": 0.25, "cyclist": 0.25}


def _frame(rng: random.Random, width: int, height: int) -> tuple[bytes, list[dict[str, Any]]]:
    image = Image.new("RGB", (width, height), (90 + rng.randrange(40),) * 3)
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(rng.randint(1, 3)):
        cat = rng.choice(list(COLORS))
        w, h = rng.randint(12, 40), rng.randint(12, 40)
        x1, y1 = rng.randrange(0, width - w), rng.randrange(0, height - h)
        draw.rectangle([x1, y1, x1 + w - 1, y1 + h - 1], fill=COLORS[cat])
        boxes.append({"category": cat, "x1": float(x1), "y1": float(y1), "x2": float(x1 + w), "y2": float(y1 + h),
                      "score": 1.0})
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue(), boxes


def write_version(root: Path, frames: int = 16, seed: int = 0) -> tuple[Path, dict[str, Any]]:
    """DATA/datasets/<version_id>/ with ``frames`` frames over four drive logs, one per split.

    Most frames are 160x96 (the model resizes them x2 to 320x192); every fourth is 320x192.
    """
    rng = random.Random(seed)
    rows, images = [], {}
    for k in range(frames):
        width, height = (320, 192) if k % 4 == 3 else (160, 96)
        data, boxes = _frame(rng, width, height)
        sha = hashlib.sha256(data).hexdigest()
        images[sha] = data
        log = f"car-00{k % 4}_drive000"
        rows.append({"frame_id": f"{log}/{k:06d}", "image_sha256": sha, "image_path": f"{IMAGES_DIR}/{sha}.jpg",
                     "log_id": log, "drive_id": log, "timestamp_ns": 1_700_000_000_000_000_000 + k * 10**8,
                     "width": width, "height": height, "boxes": boxes, "split": SPLITS[k % 4], "long_tail": False,
                     "tags": [], "triggers": [], "fm_name": "", "batch_id": "b-test", "annotator": "oracle"})
    version_id = compute_version_id(rows, VersionConfig())
    folder = root / "datasets" / version_id
    (folder / IMAGES_DIR).mkdir(parents=True)
    for sha, data in images.items():
        (folder / IMAGES_DIR / f"{sha}.jpg").write_bytes(data)
    pq.write_table(pa.Table.from_pylist(rows, schema=VERSION_LABELS_SCHEMA), folder / LABELS_FILE)
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    manifest = {"version_id": version_id, "format": FORMAT, "digest": sha256_file(folder / LABELS_FILE),
                "created_at": dt.datetime.now(dt.UTC).isoformat(), "frames": len(rows), "frames_held": 0,
                "counts": counts, "categories": {}, "images": {}, "batches": ["b-test"],
                "label_sets": [{"batch_id": "b-test", "digest": "ab" * 32, "created_at": "2026-12-01T00:00:00+00:00",
                                "rows": len(rows), "frames_used": len(rows)}],
                "logs": {}, "lineage": {"batches": {"b-test": "cd" * 32},
                                        "drive_logs": sorted({r["log_id"] for r in rows})},
                "duplicates": {}, "config": VersionConfig().model_dump(mode="json"), "long_tail_rule": "",
                "parent": None, "labels_file": LABELS_FILE, "images_dir": IMAGES_DIR}
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return folder, manifest


def register_champion(root: Path, manifest: dict[str, Any], seed: int = 0,
                      thresholds: dict[str, float] | None = THRESHOLDS) -> tuple[str, Any, dict[str, Any]]:
    """Register an untrained fcos-small-p2 (classification bias 0: scores near 0.5, many boxes) trained
    "on" ``manifest``'s version, and promote it. Returns (version, the model, its meta)."""
    import torch

    torch.manual_seed(seed)
    model = build_model("fcos-small-p2", len(CATEGORIES)).eval()
    torch.nn.init.zeros_(model.head.classification_head.cls_logits.bias)
    meta = {"format": "longtail.detector/1", "preset": "fcos-small-p2", "classes": list(CATEGORIES),
            "num_classes": len(CATEGORIES), "min_size": 192, "max_size": 320,
            "dataset_version": manifest["version_id"], "dataset_digest": manifest["digest"], "thresholds": thresholds,
            "epochs_done": 0, "val_map50": None}
    folder = root / "model-files" / str(seed)
    save_model(folder, model, meta)
    uri, artifacts = default_tracking(DataRoot.of(root).mlflow)
    client = mlflow_client(uri)
    found = client.get_experiment_by_name("t-deploy")
    experiment = found.experiment_id if found else client.create_experiment("t-deploy", artifact_location=artifacts)
    run = client.create_run(experiment)
    meta["run_id"] = run.info.run_id
    for name in ("model.pt", "model.json"):
        client.log_artifact(run.info.run_id, str(folder / name), "model")
    if not client.search_registered_models(f"name='{REGISTERED_MODEL}'"):
        client.create_registered_model(REGISTERED_MODEL)
    version = str(client.create_model_version(REGISTERED_MODEL, f"{run.info.artifact_uri}/model",
                                              run.info.run_id).version)
    promote(uri, version, lock_dir=DataRoot.of(root).mlflow, expected_champion=None if version == "1" else "1",
            reason="test")
    return version, model, meta


def write_evaluation(root: Path, folder: Path, version: str, run_id: str) -> Path:
    """Evaluate perfect predictions (the ground truth itself) with the real evaluate stage, write
    evaluation.json where `longtail evaluate` would, and tag the model version with it."""
    from longtail.evaluate.bootstrap import BootstrapConfig
    from longtail.evaluate.run import EvalConfig, evaluate, load_frames

    frames = load_frames(folder)
    preds = {f: [dict(b, score=0.9) for b in boxes] for f, boxes in zip(frames["frame_id"], frames["boxes"], strict=True)}
    path = DataRoot.of(root).evaluations / folder.name / run_id / "evaluation.json"
    evaluate(folder, preds, frames, config=EvalConfig(bootstrap=BootstrapConfig(min_drives=1, min_objects=1,
                                                                                 resamples=20)),
             thresholds=THRESHOLDS, product=path)
    mlflow_client(default_tracking(DataRoot.of(root).mlflow)[0]).set_model_version_tag(
        REGISTERED_MODEL, version, "longtail.evaluation", str(path))
    return path
