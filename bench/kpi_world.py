"""One seed's world for the KPI experiment (bench/kpi.py): fleets, labels, the baseline champion, and
how an arm's model is trained, measured on the test suites and driven in the fleet test.

Everything goes through the library's own stages, minus the servers that do not change a number:
the simulator writes MCAP drive logs, `longtail.ingest` ingests them, the simulated labeler
(`longtail.label.oracle`) labels what a selector picked and charges its seconds against the
champion's pre-labels, `longtail.train.run.train_on_folder` trains (tracked in MLflow), and
`longtail.evaluate.run.evaluate` and `longtail.sim.fleet_test.run_fleet_test` measure. Label Studio,
DVC and the FiftyOne App are left out: they store and show labels, they do not change them.

Three fleets per seed, the same vehicles in three consecutive weeks (`SimConfig.first_drive`):

- week 1 (the training mix): the seed set, a random sample of its keyframes, trains the baseline;
- week 2 (more night, rain and fog): the pool every selector mines;
- week 3 (week 2's mix): split by drive into validation (thresholds, failure-mode exemplars) and
  test (every reported number). No test frame chooses anything.

Selection never sees the simulator's truth: the pool's tags come from the images and triggers
(`longtail.curate.tags`), its uncertainty and embeddings from the champion.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from longtail.catalog.frames import load_frame_index
from longtail.catalog.truth import find_truth_files, load_truth
from longtail.catalog.versions import VERSION_LABELS_SCHEMA
from longtail.config import IngestConfig, SimConfig
from longtail.curate.brain import frame_uncertainty
from longtail.curate.descriptor import describe_image
from longtail.curate.tags import compute_image_tags, compute_prediction_tags, trigger_tags
from longtail.detector.calibrate import MIN_THRESHOLD, calibrate_thresholds
from longtail.detector.embed import predict_and_embed
from longtail.detector.predict import load_image, make_frame_predictor
from longtail.ingest.ingest import ingest
from longtail.label.oracle import LabelingCost, plan_edits, total_cost, truth_boxes
from longtail.schemas import MIN_OBJECT_HEIGHT
from longtail.sim.fleet import simulate_fleet
from longtail.storage import atomic_write_json, sha256_file
from longtail.train.config import TrainConfig
from longtail.train.run import train_on_folder

log = logging.getLogger("bench.kpi")

CRITICAL = ("pedestrian", "cyclist")
WEEK2_LIGHT = {"day": 0.3, "dusk": 0.2, "night": 0.5}
WEEK2_WEATHER = {"clear": 0.4, "rain": 0.35, "fog": 0.25}
"""Week 2's and week 3's mix: env/local.yaml's turn2 section (the second week of make run)."""


@dataclass(frozen=True)
class Detectability:
    """What a careful driver could see: the detectable-only twins of the critical errors count only
    objects at least this tall (full extent, px), this visible and this bright (mean luma of the
    visible pixels, 0..1); the others are ignored, neither found nor missed."""

    min_height_px: float = 16.0
    min_visible: float = 0.5
    min_luminance: float = 0.12

    def __call__(self, obj: Mapping[str, Any]) -> bool:
        return (float(obj["pixel_height"]) >= self.min_height_px and float(obj["visible_fraction"]) >= self.min_visible
                and float(obj["luminance"]) >= self.min_luminance)


@dataclass(frozen=True)
class Sizes:
    """How big one seed's world is and how long each model trains."""

    week1_vehicles: int
    week2_vehicles: int
    eval_vehicles: int
    minutes: float
    val_drives: int
    seed_frames: int
    finetune_frames: int
    finetune_epochs: int
    baseline_epochs: int
    fleet_drives: int
    fleet_minutes: float
    mined_share: float = 0.5  # of each fine-tuning epoch drawn from the new batch (oversampled to reach it)
    workers: int = 2
    threads: int = 2


FULL = Sizes(week1_vehicles=6, week2_vehicles=8, eval_vehicles=8, minutes=1.5, val_drives=3, seed_frames=640,
             finetune_frames=480, finetune_epochs=2, baseline_epochs=10, fleet_drives=4,
             fleet_minutes=0.5)
QUICK = Sizes(week1_vehicles=2, week2_vehicles=2, eval_vehicles=3, minutes=0.15, val_drives=1, seed_frames=24,
              finetune_frames=16, finetune_epochs=1, baseline_epochs=1, fleet_drives=1,
              fleet_minutes=0.1)


@dataclass
class World:
    """One seed's data: keyframes with their role, labels, tags and the champion's view of them."""

    seed: int
    root: Path
    frames: pd.DataFrame                    # keyframes: frame index columns + role, tags, long_tail
    labels: dict[str, list[dict[str, Any]]]  # frame_id -> boxes a careful labeler draws, detectable flag on each
    champion: dict[str, Any] = field(default_factory=dict)  # model, thresholds, predictions, embeddings, run

    def role(self, role: str) -> pd.DataFrame:
        return self.frames[self.frames["role"] == role]


def _simulate(out: Path, seed: int, vehicles: int, minutes: float, first_drive: int, mix: bool, workers: int) -> set[str]:
    extra = {"time_of_day": WEEK2_LIGHT, "weather": WEEK2_WEATHER} if mix else {}
    cfg = SimConfig(vehicles=vehicles, drives_per_vehicle=1, minutes=minutes, seed=seed, width=320, height=192,
                    first_drive=first_drive, **extra)
    result = simulate_fleet(cfg, out, workers=workers, progress=False)
    return {d.drive_id for d in result.drives}


def _image_tags(root: Path, frames: pd.DataFrame) -> list[list[str]]:
    stats = np.stack([describe_image((root / p).read_bytes(), str(p)).stats for p in frames["store_path"]])
    return [img + trigger_tags(trig) for img, trig in zip(compute_image_tags(stats), frames["triggers"], strict=True)]


def _labels(root: Path, frames: pd.DataFrame, detectable: Detectability) -> dict[str, list[dict[str, Any]]]:
    truth = load_truth(find_truth_files(root, frames["log_id"].unique()), frames)
    out: dict[str, list[dict[str, Any]]] = {}
    for fid, w, h in zip(frames["frame_id"], frames["width"], frames["height"], strict=True):
        boxes = []
        for obj in truth[fid].objects:
            drawn = truth_boxes([obj], int(w), int(h))
            if drawn:
                boxes.append({**{k: drawn[0][k] for k in ("category", "x1", "y1", "x2", "y2")},  # type: ignore[literal-required]
                              "detectable": detectable(obj)})
        out[fid] = boxes
    return out


def build_world(seed: int, sizes: Sizes, work: Path, detectable: Detectability) -> World:
    """Simulate and ingest the three weeks of one seed, label every keyframe's truth (the labeler
    charges only the frames an arm picks), tag the frames from their images and triggers."""
    root = work / "data"
    drives = {"week1": _simulate(work / "fleets" / "week1", seed, sizes.week1_vehicles, sizes.minutes, 0, False,
                                 sizes.workers),
              "week2": _simulate(work / "fleets" / "week2", seed, sizes.week2_vehicles, sizes.minutes, 1, True,
                                 sizes.workers),
              "week3": _simulate(work / "fleets" / "week3", seed, sizes.eval_vehicles, sizes.minutes, 2, True,
                                 sizes.workers)}
    ingest([work / "fleets" / w for w in drives], root, IngestConfig(keyframe_hz=2.0), workers=sizes.workers,
           progress=False)
    index = load_frame_index(root)
    frames = index[index["keyframe"]].sort_values(["drive_id", "timestamp_ns"]).reset_index(drop=True)
    week = {d: w for w, ds in drives.items() for d in ds}
    frames["week"] = frames["drive_id"].map(week)
    eval_drives = sorted(drives["week3"])
    val = set(np.random.default_rng([seed, 3]).choice(eval_drives, size=sizes.val_drives, replace=False).tolist())
    frames["role"] = np.select([frames["week"] == "week1", frames["week"] == "week2", frames["drive_id"].isin(val)],
                               ["week1", "pool", "val"], "test")
    frames["tags"] = _image_tags(root, frames)
    labels = _labels(root, frames, detectable)
    # The long-tail rule of the test suites: a frame some trigger covers (test_longtail), else test_common.
    frames["long_tail"] = frames["triggers"].map(len) > 0
    log.info("seed %d: %d keyframes (%s)", seed, len(frames), frames["role"].value_counts().to_dict())
    return World(seed=seed, root=root, frames=frames, labels=labels)


# ---------------------------------------------------------------------------------------------
# Dataset versions (the folder train_on_folder reads) and training


def write_version(folder: Path, world: World, train: pd.DataFrame, val: pd.DataFrame) -> Path:
    """A dataset version folder (`longtail.catalog.versions` layout) of ``train`` + ``val`` keyframes,
    images hardlinked from the frame store; written once, manifest last."""
    if (folder / "manifest.json").is_file():
        return folder
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, part in (("train", train), ("val", val)):
        for r in part.itertuples(index=False):
            rel = f"images/{r.image_sha256}.jpg"
            if not (folder / rel).exists():
                os.link(world.root / r.store_path, folder / rel)
            rows.append({"frame_id": r.frame_id, "image_sha256": r.image_sha256, "image_path": rel, "log_id": r.log_id,
                         "drive_id": r.drive_id, "timestamp_ns": int(r.timestamp_ns), "width": int(r.width),
                         "height": int(r.height),
                         "boxes": [{k: b[k] for k in ("category", "x1", "y1", "x2", "y2")} | {"score": 1.0}
                                   for b in world.labels[r.frame_id]],
                         "split": split, "long_tail": bool(r.long_tail), "tags": list(r.tags),
                         "triggers": list(r.triggers), "fm_name": str(getattr(r, "fm_name", "") or ""),
                         "batch_id": "kpi", "annotator": "oracle"})
    rows.sort(key=lambda r: r["frame_id"])
    table = pa.Table.from_pylist(rows, schema=VERSION_LABELS_SCHEMA)
    tmp = folder / "labels.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(folder / "labels.parquet")
    digest = sha256_file(folder / "labels.parquet")
    atomic_write_json(folder / "manifest.json", {
        "version_id": folder.name, "format": "longtail.dataset/1", "digest": digest, "frames": len(rows),
        "counts": {s: sum(r["split"] == s for r in rows) for s in ("train", "val")},
        "labels_file": "labels.parquet", "images_dir": "images"})
    return folder


def train_model(version: Path, work: Path, sizes: Sizes, seed: int, name: str, init_from: str | None,
                mined_oversample: int = 1) -> dict[str, Any]:
    """Train on a version folder with the library's trainer, tracked in the experiment's own MLflow store.
    Epochs, never a time budget: a busy machine takes longer but trains the same model. From scratch:
    the baseline. Fine-tuning: a fixed number of epochs over the same number of frames, so every arm
    takes exactly the same steps. ``mined_oversample``: the new batch's frames (``fm_name`` set) are
    drawn that many times per epoch (`longtail.train.sampling`)."""
    if init_from is None:
        config = TrainConfig(preset="fcos-small-p2", epochs=sizes.baseline_epochs,
                             threads=sizes.threads, seed=seed, val_split=None, registered_model=name,
                             experiment="kpi-experiment")
    else:
        config = TrainConfig(preset="fcos-small-p2", epochs=sizes.finetune_epochs, threads=sizes.threads, seed=seed,
                             val_split=None, registered_model=name, experiment="kpi-experiment", init_from=init_from,
                             mined_oversample=mined_oversample)
    return train_on_folder(version, config, runs_dir=work / "runs", mlflow_dir=work / "mlflow", progress=False)


# ---------------------------------------------------------------------------------------------
# Predictions, thresholds, evaluation


def predict_frames(world: World, model: torch.nn.Module, frames: pd.DataFrame, threads: int, batch: int = 16
                   ) -> tuple[dict[str, list[dict[str, Any]]], np.ndarray]:
    """The model's boxes (at the calibration floor) and backbone embeddings for ``frames``, one pass."""
    model.eval()
    preds: dict[str, list[dict[str, Any]]] = {}
    embs = []
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for start in range(0, len(frames), batch):
                part = frames.iloc[start:start + batch]
                images = [load_image(world.root / p) for p in part["store_path"]]
                boxes, emb = predict_and_embed(model, images, MIN_THRESHOLD)
                preds.update(zip(part["frame_id"], boxes, strict=True))
                embs.append(emb)
    finally:
        torch.set_num_threads(saved)
    return preds, (np.concatenate(embs) if embs else np.zeros((0, 1), np.float32))


def _gt(world: World, frames: pd.DataFrame, detectable_only: bool) -> dict[str, list[dict[str, Any]]]:
    return {fid: [{k: b[k] for k in ("category", "x1", "y1", "x2", "y2")} | ({"ignore": True} if detectable_only and
                                                                          not b["detectable"] else {})
                  for b in world.labels[fid]] for fid in frames["frame_id"]}


def calibrate(world: World, preds: Mapping[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Per-class operating thresholds on the validation drives (`longtail.detector.calibrate`)."""
    val = world.role("val")
    gt = _gt(world, val, False)
    min_h = {f: MIN_OBJECT_HEIGHT * float(h) for f, h in zip(val["frame_id"], val["height"], strict=True)}
    return dict(calibrate_thresholds(gt, {f: preds.get(f, []) for f in gt}, min_height=min_h)["thresholds"])


def test_table(world: World, detectable_only: bool) -> pd.DataFrame:
    """The test drives as an evaluation table (`longtail.evaluate.slices.REQUIRED_COLUMNS`)."""
    test = world.role("test")
    gt = _gt(world, test, detectable_only)
    return pd.DataFrame({"frame_id": test["frame_id"].to_numpy(), "drive_id": test["drive_id"].to_numpy(),
                         "split": np.where(test["long_tail"], "test_longtail", "test_common"),
                         "tags": test["tags"].to_numpy(), "triggers": test["triggers"].to_numpy(),
                         "fm_name": "", "boxes": [gt[f] for f in test["frame_id"]], "height": test["height"].to_numpy(),
                         "width": test["width"].to_numpy(), "log_id": test["log_id"].to_numpy(),
                         "timestamp_ns": test["timestamp_ns"].to_numpy()})


def critical_by_drive(evaluation: Mapping[str, Any], table: pd.DataFrame) -> dict[str, int]:
    """Critical false positives plus negatives (pedestrian, cyclist, cut-in vehicle) per test drive."""
    drive_of = dict(zip(table["frame_id"], table["drive_id"], strict=True))
    cut_in = set(evaluation.get("cut_in_frames") or [])
    out = dict.fromkeys(sorted(set(table["drive_id"])), 0)
    for fid, err in evaluation["frame_errors"].items():
        n = sum(err["fp"].get(c, 0) + err["fn"].get(c, 0) for c in CRITICAL)
        if fid in cut_in:
            n += sum(err["fp"].get(c, 0) + err["fn"].get(c, 0) for c in ("car", "truck"))
        out[drive_of[fid]] += n
    return out


# ---------------------------------------------------------------------------------------------
# Labeling


def labeling_cost(world: World, frame_ids: Sequence[str], prelabels: Mapping[str, list[dict[str, Any]]],
                  thresholds: Mapping[str, float]) -> LabelingCost:
    """What the simulated labeler charges for ``frame_ids``, starting from the champion's pre-labels
    at its operating thresholds (as `longtail label` pushes them)."""
    costs = []
    for fid in frame_ids:
        pre = [b for b in prelabels.get(fid, []) if b["score"] >= thresholds.get(b["category"], 0.5)]
        truth = [{k: b[k] for k in ("category", "x1", "y1", "x2", "y2")} | {"score": 1.0} for b in world.labels[fid]]
        costs.append(plan_edits(pre, truth)[1])
    return total_cost(costs)


def prediction_tags(preds: Mapping[str, list[dict[str, Any]]], frames: pd.DataFrame) -> list[list[str]]:
    return [compute_prediction_tags([b["category"] for b in preds[f]], [b["score"] for b in preds[f]],
                                    [b["y2"] - b["y1"] for b in preds[f]], vt)
            for f, vt in zip(frames["frame_id"], frames["vehicle_type"], strict=True)]


def uncertainty(preds: Mapping[str, list[dict[str, Any]]], frames: pd.DataFrame) -> np.ndarray:
    return np.array([frame_uncertainty([b["score"] for b in preds[f]]) for f in frames["frame_id"]])


def fleet_perception(model: torch.nn.Module, thresholds: Mapping[str, float]) -> Any:
    return make_frame_predictor(model, dict(thresholds))
