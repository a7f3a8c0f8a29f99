"""Helpers of the monitor tests: a tiny simulated fleet per "week", a dataset version of the first
week's drives in build_version's layout, and untrained detectors registered in a real MLflow registry."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from longtail.catalog.frames import load_frame_index
from longtail.catalog.root import DataRoot
from longtail.catalog.versions import FORMAT, IMAGES_DIR, LABELS_FILE, MANIFEST_FILE, VERSION_LABELS_SCHEMA
from longtail.config import SimConfig
from longtail.label.version import VersionConfig, compute_version_id
from longtail.storage import atomic_write_json, sha256_file

TRAINING_MIX: dict[str, Any] = {"time_of_day": {"day": 0.8, "dusk": 0.1, "night": 0.1},
                                "weather": {"clear": 0.8, "rain": 0.1, "fog": 0.1}}
"""The training weeks' mix: mostly day and clear."""
NIGHT_AND_RAIN: dict[str, Any] = {"time_of_day": {"night": 1.0}, "weather": {"rain": 1.0}}
"""A "second week" of another mix: night and rain only.

Drives, not frames, are the unit of the drift tests, so a week of a dozen drives can only show a
strong shift: bench/drift.py measures how often a milder one (80% night, 75% rain) is caught."""


def week_config(seed: int, mix: dict[str, Any], vehicles: int = 12) -> SimConfig:
    """A week of the tiny fleet: ``vehicles`` drives of 12 s at 160x96, 5 fps (60 frames, 24 keyframes each)."""
    return SimConfig(vehicles=vehicles, minutes=0.2, width=160, height=96, fps=5.0, seed=seed, **mix)


def simulate_week(cfg: SimConfig, out: Path, root: Path) -> list[str]:
    """Simulate a week into ``out`` and ingest it into ``root``; returns its log ids."""
    from longtail.ingest.ingest import ingest
    from longtail.sim.fleet import simulate_fleet

    simulate_fleet(cfg, out, workers=2, progress=False)
    results = ingest(sorted(out.glob("*.mcap")), root, workers=2, progress=False)
    return [r.log_id for r in results]


def write_version(root: Path, log_ids: list[str], val_drives: int = 2) -> str:
    """A dataset version of every keyframe of ``log_ids`` (no boxes: monitoring needs none); the
    last ``val_drives`` drives are the validation split. Returns its id."""
    index = load_frame_index(root)
    frames = index[index["log_id"].isin(log_ids) & index["keyframe"]]
    drives = sorted(frames["drive_id"].unique())
    val = set(drives[-val_drives:])
    rows = [{"frame_id": r.frame_id, "image_sha256": r.image_sha256, "image_path": f"{IMAGES_DIR}/{r.image_sha256}.jpg",
             "log_id": r.log_id, "drive_id": r.drive_id, "timestamp_ns": int(r.timestamp_ns), "width": int(r.width),
             "height": int(r.height), "boxes": [], "split": "val" if r.drive_id in val else "train", "long_tail": False,
             "tags": [], "triggers": list(r.triggers), "fm_name": "", "batch_id": "b-test", "annotator": "oracle"}
            for r in frames.itertuples()]
    version_id = compute_version_id(rows, VersionConfig())
    folder = DataRoot.of(root).dataset_version(version_id)
    (folder / IMAGES_DIR).mkdir(parents=True)
    for r in frames.itertuples():
        shutil.copyfile(root / r.store_path, folder / IMAGES_DIR / f"{r.image_sha256}.jpg")
    pq.write_table(pa.Table.from_pylist(rows, schema=VERSION_LABELS_SCHEMA), folder / LABELS_FILE)
    splits = ("train", "val", "test_common", "test_longtail")
    manifest = {"version_id": version_id, "format": FORMAT, "digest": sha256_file(folder / LABELS_FILE),
                "created_at": dt.datetime.now(dt.UTC).isoformat(), "frames": len(rows), "frames_held": 0,
                "counts": {s: sum(r["split"] == s for r in rows) for s in splits}, "categories": {}, "images": {},
                "label_sets": [], "batches": ["b-test"],
                "logs": {s: sorted({r["log_id"] for r in rows if r["split"] == s}) for s in splits},
                "lineage": {"drive_logs": sorted({r["log_id"] for r in rows})}, "duplicates": {},
                "config": VersionConfig().model_dump(mode="json"), "long_tail_rule": "", "parent": None,
                "labels_file": LABELS_FILE, "images_dir": IMAGES_DIR}
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return version_id


def register_detector(root: Path, seed: int, version_id: str, champion: bool) -> str:
    """Register an untrained fcos-small-p2 (weights from ``seed``) trained "on" ``version_id``; its
    classification bias is 0, so it scores boxes near 0.5 and detects something in every frame
    at its operating thresholds (0.5). Promote it when ``champion``. Returns its version."""
    import torch

    from longtail.detector.model import default_tracking, mlflow_client, save_model
    from longtail.detector.presets import build_model
    from longtail.detector.registry import REGISTERED_MODEL, champion_version, promote
    from longtail.schemas import CATEGORIES

    torch.manual_seed(seed)
    model = build_model("fcos-small-p2", len(CATEGORIES))
    torch.nn.init.zeros_(model.head.classification_head.cls_logits.bias)
    folder = root / f"model-{seed}"
    save_model(folder, model, {"format": "longtail.detector/1", "preset": "fcos-small-p2", "classes": list(CATEGORIES),
                               "num_classes": len(CATEGORIES), "min_size": 192, "max_size": 320,
                               "dataset_version": version_id, "thresholds": dict.fromkeys(CATEGORIES, 0.5)})
    uri, artifacts = default_tracking(DataRoot.of(root).mlflow)
    client = mlflow_client(uri)
    exp = client.get_experiment_by_name("t-monitor")
    exp_id = exp.experiment_id if exp else client.create_experiment("t-monitor", artifact_location=artifacts)
    run = client.create_run(exp_id)
    for name in ("model.pt", "model.json"):
        client.log_artifact(run.info.run_id, str(folder / name), "model")
    if not client.search_registered_models(f"name='{REGISTERED_MODEL}'"):
        client.create_registered_model(REGISTERED_MODEL)
    version = str(client.create_model_version(REGISTERED_MODEL, f"{run.info.artifact_uri}/model", run.info.run_id).version)
    if champion:
        promote(uri, version, lock_dir=DataRoot.of(root).mlflow, expected_champion=champion_version(uri),
                reason="test")
    return version
