"""A small data root with a whole chain, made by the real producers wherever they run in seconds:

three 8-second simulated drives (the simulator's MCAP writer) ingested by the ingest stage; a labeling
batch whose digest is curate's own `selection_digest`; a label set checked by label QA (`run_qa`);
a dataset version built and tracked with DVC by the label stage; an untrained detector registered in
MLflow from a run tagged as `longtail train` tags it, evaluated by the evaluate stage (the gate's
decision) and deployed by the deploy stage. Curation's FiftyOne pass, Label Studio and training are the
slow parts left out: their products are written in their declared formats instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from longtail.catalog.failure_modes import load_registry, save_registry
from longtail.catalog.frames import load_frame_index
from longtail.catalog.root import DataRoot
from longtail.catalog.versions import load_version
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.curate.select import SelectConfig, selection_digest
from longtail.detector.model import default_tracking, mlflow_client, save_model
from longtail.detector.presets import build_model
from longtail.detector.registry import REGISTERED_MODEL, promote
from longtail.ingest.ingest import ingest
from longtail.label.qa import run_qa
from longtail.label.version import VersionConfig, build_version, track_version
from longtail.schemas import CATEGORIES, LABEL_SET_SCHEMA, LABELING_BATCH_FRAMES_SCHEMA
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan
from longtail.storage import atomic_write_json, sha256_file
from longtail.train.run import env_lock_hash, git_commit

SIM = SimConfig(minutes=8 / 60, width=320, height=192, fps=5.0, scenario_rates=NO_SCENARIO_RATES)
BATCH_FAILURE_MODES = ["hard_brake_events"]
THRESHOLDS = {"car": 0.3, "truck": 0.35, "pedestrian": 0.25, "cyclist": 0.25}


def simulate_and_ingest(root: Path, logs_dir: Path, drives: int = 3) -> list[Path]:
    """``drives`` short drives, simulated to MCAP and ingested into ``root``."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    logs = []
    for k in range(drives):
        plan = fixed_plan(SIM, 300 + k, road="urban" if k % 2 else "highway", vehicle="car", time_of_day="day",
                          weather="clear", events=())
        plan = dataclasses.replace(plan, vehicle_id=f"car-{k:03d}", drive_id=f"car-{k:03d}_drive000")
        path = logs_dir / f"car-{k:03d}_drive000.mcap"
        simulate_drive(plan, SIM, path, logs_dir / f"car-{k:03d}_drive000.truth.parquet")
        logs.append(path)
    ingest(logs, root, workers=1, progress=False)
    return logs


def write_batch_and_labels(root: Path, per_log: int = 4) -> str:
    """A labeling batch of ``per_log`` frames of each ingested log, and its label set after label QA."""
    frames = load_frame_index(root).sort_values(["log_id", "timestamp_ns"]).groupby("log_id").head(per_log)
    frame_ids = frames["frame_id"].tolist()
    config = SelectConfig(budget=len(frame_ids))
    pool_digest = "0" * 64
    digest = selection_digest(frame_ids, config, pool_digest)
    batch_id = f"batch-{digest[:16]}"
    folder = DataRoot.of(root).batch(batch_id)
    folder.mkdir(parents=True)
    rows = [{"frame_id": r.frame_id, "image_sha256": r.image_sha256, "store_path": r.store_path, "log_id": r.log_id,
             "drive_id": r.drive_id, "timestamp_ns": int(r.timestamp_ns), "rank": k, "score": 1.0, "priority": 0.5,
             "uncertainty": 0.0, "fm_similarity": 0.0, "fm_name": "", "diversity": 0.5, "quota": "", "tags": [],
             "triggers": [], "reason": "test"} for k, r in enumerate(frames.itertuples())]
    pq.write_table(pa.Table.from_pylist(rows, schema=LABELING_BATCH_FRAMES_SCHEMA), folder / "frames.parquet")
    save_registry(root, load_registry(root))  # the built-in catalogue, pending
    atomic_write_json(folder / "manifest.json", {
        "batch_id": batch_id, "digest": digest, "created_at": "2026-12-01T00:00:00+00:00", "budget": config.budget,
        "selector": config.selector, "config": config.model_dump(mode="json"), "config_digest": config.digest(),
        "dataset": "test", "pool": {"frames": len(frame_ids), "digest": pool_digest, "embedding_key": "test"},
        "failure_modes": BATCH_FAILURE_MODES, "frames": frame_ids, "frames_file": "frames.parquet",
        "lineage": {"logs": sorted(frames["log_id"].unique())}})
    labels = []
    for k, r in enumerate(frames.itertuples()):
        box = {"category": CATEGORIES[k % len(CATEGORIES)], "x1": 10.0 + k, "y1": 40.0, "x2": 60.0 + k, "y2": 90.0,
               "score": 1.0}
        labels.append({"frame_id": r.frame_id, "image_sha256": r.image_sha256, "store_path": r.store_path,
                       "log_id": r.log_id, "drive_id": r.drive_id, "timestamp_ns": int(r.timestamp_ns),
                       "width": int(r.width), "height": int(r.height), "boxes": [box], "prelabels": [],
                       "annotator": "oracle"})
    accepted, reasons, report = run_qa(labels)
    for row, ok, why in zip(labels, accepted, reasons, strict=True):
        row.update(accepted=ok, qa_reasons=why)
    out = DataRoot.of(root).label_set(batch_id)
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(labels, schema=LABEL_SET_SCHEMA), out / "labels.parquet")
    atomic_write_json(out / "qa.json", report)
    n = sum(accepted)
    atomic_write_json(out / "manifest.json", {
        "batch_id": batch_id, "digest": sha256_file(out / "labels.parquet"), "created_at": "2026-12-01T01:00:00+00:00",
        "source": "oracle", "frames": len(labels), "accepted": n, "held": len(labels) - n, "cost": {},
        "qa": {k: report[k] for k in ("frames", "accepted", "held", "checks")},
        "lineage": {"batch_digest": digest, "logs": sorted({r["log_id"] for r in labels}), "prelabel_model": None}})
    return batch_id


def register_trained_champion(root: Path, manifest: dict[str, Any]) -> tuple[str, str]:
    """An untrained fcos-small-p2 registered from a run tagged as `longtail train` tags its runs, promoted.

    Returns:
        (model version, run id).
    """
    import torch

    torch.manual_seed(0)
    model = build_model("fcos-small-p2", len(CATEGORIES)).eval()
    torch.nn.init.zeros_(model.head.classification_head.cls_logits.bias)
    uri, artifacts = default_tracking(DataRoot.of(root).mlflow)
    client = mlflow_client(uri)
    experiment = client.create_experiment("t-audit", artifact_location=artifacts)
    run = client.create_run(experiment, run_name=f"fcos-small-p2-{manifest['version_id']}")
    run_id = run.info.run_id
    for key, value in {"longtail.stage": "train", "longtail.version_id": manifest["version_id"],
                       "longtail.dataset_digest": manifest["digest"], "longtail.preset": "fcos-small-p2",
                       "mlflow.source.git.commit": git_commit() or "", "longtail.env_lock_sha256": env_lock_hash() or ""
                       }.items():
        if value:
            client.set_tag(run_id, key, value)
    client.log_param(run_id, "preset", "fcos-small-p2")
    client.log_param(run_id, "epochs", "0")
    meta = {"format": "longtail.detector/1", "preset": "fcos-small-p2", "classes": list(CATEGORIES),
            "num_classes": len(CATEGORIES), "min_size": 192, "max_size": 320, "run_id": run_id,
            "dataset_version": manifest["version_id"], "dataset_digest": manifest["digest"], "thresholds": THRESHOLDS,
            "epochs_done": 0, "val_map50": None}
    folder = DataRoot.of(root).runs / run_id  # where `longtail train` keeps a run's weights
    save_model(folder, model, meta)
    for name in ("model.pt", "model.json"):
        client.log_artifact(run_id, str(folder / name), "model")
    client.set_terminated(run_id, "FINISHED")
    client.create_registered_model(REGISTERED_MODEL)
    version = str(client.create_model_version(REGISTERED_MODEL, f"{run.info.artifact_uri}/model", run_id).version)
    promote(uri, version, lock_dir=DataRoot.of(root).mlflow, expected_champion=None, reason="test")
    return version, run_id


def write_gate_evaluation(root: Path, version_id: str, version: str, run_id: str) -> Path:
    """The evaluate stage on perfect predictions: evaluation.json with the gate's decision, where
    `longtail evaluate` writes it, and the model version tagged with it."""
    from longtail.evaluate.bootstrap import BootstrapConfig
    from longtail.evaluate.run import EvalConfig, evaluate, load_frames

    folder = DataRoot.of(root).dataset_version(version_id)
    frames = load_frames(folder)
    preds = {f: [dict(b, score=0.9) for b in boxes] for f, boxes in zip(frames["frame_id"], frames["boxes"], strict=True)}
    path = DataRoot.of(root).evaluations / version_id / run_id / "evaluation.json"
    evaluate(folder, preds, frames, config=EvalConfig(bootstrap=BootstrapConfig(min_drives=1, min_objects=1,
                                                                                 resamples=20)),
             thresholds=THRESHOLDS, product=path)
    mlflow_client(default_tracking(DataRoot.of(root).mlflow)[0]).set_model_version_tag(
        REGISTERED_MODEL, version, "longtail.evaluation", str(path))
    return path


def make_deployed_root(base: Path) -> dict[str, Any]:
    """The whole chain under ``base/data``, deployed. Returns what the tests check against."""
    from longtail.deploy.run import DeployConfig, run_deploy

    root = base / "data"
    logs = simulate_and_ingest(root, base / "logs")
    batch_id = write_batch_and_labels(root)
    config = VersionConfig(val_share=0.34, test_share=0.33)
    manifest = build_version(root, config=config)
    track_version(root, manifest["version_id"], remote=base / "dvc-remote")
    load_version(root, manifest["version_id"], check_images=True)
    version, run_id = register_trained_champion(root, manifest)
    evaluation = write_gate_evaluation(root, manifest["version_id"], version, run_id)
    out = run_deploy(root, DeployConfig(parity_frames=2))
    return {"root": root, "logs": logs, "batch_id": batch_id, "manifest": manifest, "version": version,
            "run_id": run_id, "evaluation": evaluation, "deployment_id": out["record"]["deployment_id"],
            "created": dt.datetime.now(dt.UTC).isoformat()}


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
