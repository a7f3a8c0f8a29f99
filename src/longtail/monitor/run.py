"""Monitor a newly ingested batch of drive logs: `run_monitor`.

1. The batch: logs ingested since the last run, minus the champion's own drives (`batch`).
2. The champion's embeddings of up to ``drift_frames`` keyframes per side (the batch, the
   training drives; the reference is cached per model and version) and the drift tests on them:
   a domain classifier's ROC AUC and an MMD test with a permutation p-value (`drift`).
3. The champion's predictions on up to ``predict_frames`` batch keyframes and on the validation
   drives: confidence and class-frequency histograms (`predictions`).
4. A challenger, when the registry has one, predicts beside it (shadow mode): every frame of
   disagreement is recorded, counted per 1,000 frames and marked ``shadow_disagreement``.
5. Condition and scenario mix; trigger rates per 100 km against the training drives.
6. Breaches of the target's thresholds open or update failure modes (`breaches`).
7. DATA/monitor/triggers/<batch_id>.parquet, then DATA/monitor/batches/<batch_id>.json last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from longtail.catalog.frames import load_frame_index
from longtail.catalog.monitoring import list_monitoring_records
from longtail.catalog.root import DataRoot
from longtail.config import MonitorConfig
from longtail.detector.embed import BackboneEmbedder
from longtail.detector.predict import predict_frames
from longtail.detector.registry import challenger_model_uri, champion_model_uri, load_champion, load_registered
from longtail.errors import InputError
from longtail.monitor.batch import (
    Reference,
    batch_frames,
    condition_mix,
    count_triggers,
    find_new_logs,
    load_reference,
    make_batch_id,
    spread_sample,
    usable_manifests,
)
from longtail.monitor.breaches import (
    TRIGGER_OF,
    breach_examples,
    class_that_rose,
    find_breaches,
    open_failure_modes,
    trigger_table,
)
from longtail.monitor.drift import compute_domain_auc, compute_mmd, compute_rate_test, total_variation
from longtail.monitor.predictions import (
    CONFIDENCE_BINS,
    at_operating_point,
    class_frequency,
    compare_models,
    confidence_histogram,
)
from longtail.storage import atomic_write_json, atomic_writer

log = logging.getLogger(__name__)

FORMAT = "longtail.monitor/1"
RATE_TRIGGERS = ("disengagement", "hard_braking", "harsh_steering", "adas_alert")
"""Triggers whose rate per 100 km is monitored (ingest's names)."""


def embed_frames(embedder: BackboneEmbedder, image_root: Path, frames: pd.DataFrame, progress: bool) -> np.ndarray:
    """Backbone embeddings of frames (``store_path`` relative to ``image_root``), [n, dim] float32."""
    paths = frames["store_path"].tolist()
    out = []
    step = 64
    for start in tqdm(range(0, len(paths), step), desc="embed", unit="chunk", disable=not progress):
        chunk = paths[start:start + step]
        images = []
        for p in chunk:
            try:
                images.append((image_root / p).read_bytes())
            except OSError as exc:
                raise InputError(f"{image_root / p}: frame image unreadable ({exc}); re-ingest its drive log") from None
        out.append(embedder.embed(images, [str(image_root / p) for p in chunk]))
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)


def _floor(meta: dict[str, Any], config: MonitorConfig) -> float:
    thresholds = meta.get("thresholds") or {}
    return min([config.score_floor, *[float(v) for v in thresholds.values()]]) if thresholds else config.score_floor


def load_reference_outputs(root: str | os.PathLike[str], model: Any, meta: dict[str, Any], reference: Reference,
                           config: MonitorConfig, embedder: BackboneEmbedder, progress: bool
                           ) -> tuple[pd.DataFrame, np.ndarray, dict[str, list[dict[str, Any]]]]:
    """The reference's drift sample with its embeddings, and the champion's predictions on its
    validation sample; cached in DATA/monitor/reference/<model key>/ by the frames they cover."""
    train = spread_sample(reference.train_frames, config.drift_frames)
    val = spread_sample(reference.val_frames, config.predict_frames)
    digest = hashlib.sha256("\n".join([*train["frame_id"], "|", *val["frame_id"], "|",
                                       f"{_floor(meta, config):.6f}"]).encode()).hexdigest()[:16]
    folder = DataRoot.of(root).monitoring / "reference" / meta["key"]
    npz, preds_path = folder / f"{reference.version_id}-{digest}.npz", folder / f"{reference.version_id}-{digest}.json"
    if npz.is_file() and preds_path.is_file():
        with np.load(npz) as cached:
            vectors = cached["embeddings"]
        if len(vectors) == len(train):
            return train, vectors, json.loads(preds_path.read_text())
    vectors = embed_frames(embedder, reference.image_root, train, progress)
    preds = predict_frames(model, reference.image_root, val, score_threshold=_floor(meta, config), batch_size=8,
                           progress=progress, path_column="store_path")
    with atomic_writer(npz) as handle:
        np.savez(handle, embeddings=vectors)
    atomic_write_json(preds_path, preds, durable=False)
    return train, vectors, preds


def compute_drift(ref: pd.DataFrame, ref_vec: np.ndarray, cur: pd.DataFrame, cur_vec: np.ndarray,
                  config: MonitorConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """The drift tests, or why they were not run; and the batch frames' domain-classifier scores."""
    empty = pd.DataFrame({"frame_id": pd.Series(dtype=str), "score": pd.Series(dtype=float)})
    by_drive = config.group_by == "drive"
    n_ref, n_cur = ref["drive_id"].nunique(), cur["drive_id"].nunique()
    base = {"frames_ref": len(ref), "frames_batch": len(cur), "drives_ref": int(n_ref), "drives_batch": int(n_cur),
            "unit": config.group_by}
    if len(ref) < 2 or len(cur) < 2 or (by_drive and min(n_ref, n_cur) < 2):
        why = (f"needs at least 2 drives on each side (drives are the unit of the tests), got {n_ref} training and "
               f"{n_cur} batch drive(s)") if by_drive else f"needs 2 frames per side, got {len(ref)} and {len(cur)}"
        return {**base, "status": "not evaluated", "reason": why}, empty
    groups = (ref["drive_id"].to_numpy(), cur["drive_id"].to_numpy()) if by_drive else (None, None)
    mmd = compute_mmd(ref_vec, cur_vec, config.permutations, config.seed, *groups)
    domain = compute_domain_auc(ref_vec, cur_vec, config.folds, config.seed, *groups)
    scores = pd.DataFrame({"frame_id": cur["frame_id"].to_numpy(), "score": domain.scores})
    return {**base, "status": "evaluated", "mmd": mmd.to_json(), "domain": domain.to_json()}, scores


def summarise_predictions(batch: dict[str, list[dict[str, Any]]], reference: dict[str, list[dict[str, Any]]],
                          meta: dict[str, Any], config: MonitorConfig) -> dict[str, Any]:
    """Confidence histograms (above the floor) and class frequencies (at the operating thresholds)."""
    thresholds = meta.get("thresholds")
    kept_b, kept_r = at_operating_point(batch, thresholds), at_operating_point(reference, thresholds)
    conf_b = confidence_histogram(batch, config.score_floor)
    conf_r = confidence_histogram(reference, config.score_floor)
    bins = [f"{lo:.2f}" for lo in CONFIDENCE_BINS[:-1]]
    cls_b, cls_r = class_frequency(kept_b), class_frequency(kept_r)
    return {
        "frames": len(batch), "frames_ref": len(reference), "thresholds": thresholds, "score_floor": config.score_floor,
        "confidence": {"bins": bins, "batch": conf_b, "reference": conf_r},
        "confidence_tv": total_variation(dict(zip(bins, conf_b, strict=True)), dict(zip(bins, conf_r, strict=True))),
        "classes": {"batch": cls_b, "reference": cls_r},
        "class_tv": total_variation({k: float(v) for k, v in cls_b.items()}, {k: float(v) for k, v in cls_r.items()}),
        "class_rose": class_that_rose(cls_b, cls_r),
        "detections_per_frame": sum(cls_b.values()) / len(batch) if batch else None,
        "detections_per_frame_ref": sum(cls_r.values()) / len(reference) if reference else None,
    }


def run_shadow(root: str | os.PathLike[str], challenger_uri: str | None, tracking_uri: str | None,
               frames: pd.DataFrame, champion_kept: dict[str, list[dict[str, Any]]], config: MonitorConfig,
               progress: bool) -> tuple[dict[str, Any] | None, dict[str, Any], list[Any]]:
    """Run the challenger beside the champion on the batch's predicted frames."""
    if challenger_uri is None or not config.shadow:
        why = "shadow mode is off (monitor.shadow)" if not config.shadow else "no challenger in the registry"
        return None, {"status": "not run", "reason": why}, []
    model, meta = load_registered(root, challenger_uri, tracking_uri)
    preds = predict_frames(model, root, frames, score_threshold=_floor(meta, config), batch_size=8,
                           progress=progress, path_column="store_path")
    kept = at_operating_point(preds, meta.get("thresholds"))
    heights = dict(zip(frames["frame_id"], frames["height"].astype(int), strict=True))
    found = compare_models(champion_kept, kept, heights, config.shadow_iou, config.shadow_min_height)
    per_kind = {"champion_only": sum(len(d.champion_only) for d in found),
                "challenger_only": sum(len(d.challenger_only) for d in found),
                "far_apart": sum(len(d.far_apart) for d in found)}
    info = {"version": meta["version"], "model_uri": challenger_uri, "key": meta["key"], "run_id": meta.get("run_id"),
            "thresholds": meta.get("thresholds")}
    shadow = {"status": "run", "frames": len(frames), "disagreements": len(found),
              "per_1000": 1000.0 * len(found) / len(frames) if len(frames) else None, "objects": per_kind,
              "examples": [{"frame_id": d.frame_id, "detail": d.describe()} for d in found[:config.examples]]}
    return info, shadow, found


NO_CHAMPION_NOTE = ("No model is champion yet (the evaluate gate promoted none), so there is nothing to monitor "
                    "against: the next model that passes the gate starts the history.")


def monitor_task(root: str | os.PathLike[str], config: MonitorConfig | None = None,
                 progress: bool = False) -> tuple[dict[str, Any] | None, str]:
    """The pipeline's monitor task: `run_monitor`, except that a data root without a champion (the
    gate refused the first model) is not an error for the pipeline, whose later runs go on.

    Returns:
        (the batch's record or None, a note saying why nothing was monitored, or "").
    """
    if champion_model_uri(root) is None:
        (DataRoot.of(root).monitoring / "batches").mkdir(parents=True, exist_ok=True)
        log.warning("monitor: %s", NO_CHAMPION_NOTE)
        return None, NO_CHAMPION_NOTE
    return run_monitor(root, config, progress=progress), ""


def run_monitor(root: str | os.PathLike[str], config: MonitorConfig | None = None, tracking_uri: str | None = None,
                log_ids: list[str] | None = None, progress: bool = False) -> dict[str, Any] | None:
    """Monitor the drive logs ingested since the last run (or ``log_ids``) against the champion's training drives.

    Args:
        root: the data root.
        config: thresholds and sizes (`MonitorConfig` defaults when None).
        tracking_uri: the MLflow registry (default: sqlite in DATA/mlflow).
        log_ids: monitor these logs as one batch instead of the new ones.
        progress: show progress bars.

    Returns:
        The batch's monitoring record (`longtail.schemas.MONITOR_RECORD_KEYS`), or None when no
        log is new. A batch monitored before returns its record unchanged.

    Raises:
        InputError: no champion, no dataset version, or a named log that is not ingested here
            or belongs to the champion's training data.
    """
    config = config or MonitorConfig()
    data = DataRoot.of(root)
    champion = load_champion(root, tracking_uri)
    if champion is None:
        raise InputError(f"{data.mlflow}: no champion to monitor; train a model and let the evaluate gate promote it "
                         f"(`longtail evaluate --root {root}`) first")
    model, meta = champion
    index = load_frame_index(root)
    reference = load_reference(root, meta.get("dataset_version"), index)
    # 1. The batch.
    if log_ids is None:
        done = {lg for r in list_monitoring_records(root) for lg in r["logs"]}
        manifests = find_new_logs(root, done | set(reference.logs))
    else:
        by_id = {m["log_id"]: m for m in usable_manifests(root)}
        bad = [x for x in log_ids if x not in by_id or x in reference.logs]
        if bad:
            raise InputError(f"longtail monitor --logs: {bad} are not ingested into {root} (with frames or signals) or "
                             f"belong to dataset version {reference.version_id}, the champion's training data")
        manifests = [by_id[x] for x in sorted(set(log_ids))]
    if not manifests:
        (data.monitoring / "batches").mkdir(parents=True, exist_ok=True)  # the history exists, empty or not
        log.info("no drive log ingested since the last monitoring run: nothing to monitor")
        return None
    ids = [m["log_id"] for m in manifests]
    batch_id = make_batch_id(ids)
    path = data.monitoring_record(batch_id)
    if path.is_file():
        log.info("batch %s (%d logs) was monitored already: %s", batch_id, len(ids), path)
        return dict(json.loads(path.read_text()))
    index_rows, frames = batch_frames(index, ids)
    # 2. Drift on the champion's embeddings.
    embedder = BackboneEmbedder(model, meta["key"], batch_size=16)
    ref_sample, ref_vec, ref_preds = load_reference_outputs(root, model, meta, reference, config, embedder, progress)
    cur_sample = spread_sample(frames, config.drift_frames) if len(frames) else frames
    cur_vec = embed_frames(embedder, data.path, cur_sample, progress) if len(cur_sample) else np.zeros((0, embedder.dim))
    drift, scores = compute_drift(ref_sample, ref_vec, cur_sample, cur_vec, config)
    # 3. Predictions, and 4. the challenger in shadow.
    predicted = spread_sample(frames, config.predict_frames) if len(frames) else frames
    preds = predict_frames(model, data.path, predicted, score_threshold=_floor(meta, config), batch_size=8,
                           progress=progress, path_column="store_path") if len(predicted) else {}
    summary = summarise_predictions(preds, ref_preds, meta, config)
    challenger = challenger_model_uri(root, tracking_uri) if config.shadow else None
    champion_kept = at_operating_point(preds, meta.get("thresholds"))
    chal_info, shadow, disagreements = run_shadow(root, challenger, tracking_uri, predicted, champion_kept, config,
                                                  progress)
    # 5. Mix and rates.
    km, hours, counts = count_triggers(manifests)
    ref_km, _, ref_counts = count_triggers(reference.manifests)
    names = sorted(set(RATE_TRIGGERS) | set(counts))
    rates = {t: compute_rate_test(counts.get(t, 0), km, ref_counts.get(t, 0), ref_km).to_json() for t in names} \
        if km > 0 and ref_km > 0 else {}
    mix_b, mix_r = condition_mix(root, frames), condition_mix(root, reference.train_frames)
    mix = {c: {"batch": mix_b[c], "reference": mix_r[c],
               "tv": total_variation({k: float(v) for k, v in mix_b[c].items()},
                                     {k: float(v) for k, v in mix_r[c].items()})} for c in mix_b}
    record: dict[str, Any] = {
        "batch_id": batch_id, "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "logs": ids, "drives": sorted({str((m.get("drive") or {}).get("drive_id") or m["log_id"]) for m in manifests}),
        "frames": {"kept": len(index_rows), "keyframes": len(frames), "drift_sample": len(cur_sample),
                   "predicted": len(predicted)},
        "km": km, "hours": hours,
        "champion": {"version": meta["version"], "model_uri": meta["model_uri"], "key": meta["key"],
                     "run_id": meta.get("run_id"), "dataset_version": reference.version_id},
        "challenger": chal_info,
        "reference": {"version_id": reference.version_id, "source": reference.source, "logs": len(reference.manifests),
                      "keyframes": len(reference.train_frames), "drift_sample": len(ref_sample), "km": ref_km,
                      "predicted": len(ref_preds)},
        "config": config.model_dump(mode="json"), "config_digest": config.digest(),
        "drift": drift, "predictions": summary, "mix": mix, "rates": rates, "shadow": shadow,
    }
    # 6. Breaches, their examples, the failure modes and the frames marked for curation.
    breaches = find_breaches(record, config)
    marks: list[tuple[str, str, float, str]] = [(d.frame_id, "shadow_disagreement", float(d.objects), d.describe())
                                                for d in disagreements]
    for b in breaches:
        b["class_rose"] = summary.get("class_rose")
        b["examples"] = breach_examples(b, domain_scores=scores, predictions=preds, frames=index_rows,
                                        disagreements=disagreements, n=config.examples)
        trig = TRIGGER_OF.get(b["failure_mode"])
        if trig and trig != "shadow_disagreement":
            marks += [(fid, trig, score, detail) for fid, score, detail in b["examples"]]
    log_of = dict(zip(index_rows["frame_id"], index_rows["log_id"], strict=True))
    table = trigger_table(batch_id, log_of, marks)
    record["breaches"] = [{**{k: v for k, v in b.items() if k not in ("examples", "class_rose")},
                           "examples": [e[0] for e in b["examples"]], "batch_id": batch_id} for b in breaches]
    record["triggers_file"] = None
    if table.num_rows:
        target = data.monitor_triggers(batch_id)
        with atomic_writer(target) as handle:
            pq.write_table(table, handle)
        record["triggers_file"] = os.path.relpath(target, data.monitoring)
    record["failure_modes"] = open_failure_modes(root, batch_id, breaches, by=f"monitor: batch {batch_id}")
    # 7. The record, last.
    atomic_write_json(path, record)
    log.info("batch %s: %d log(s), %d keyframes, %.1f km; %s", batch_id, len(ids), len(frames), km,
             "; ".join(b["rule"] for b in record["breaches"]) or "no breach")
    return record

