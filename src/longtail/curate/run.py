"""The curate and select stages: what `longtail curate`, `longtail select` and the notebook call."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field
from tqdm import tqdm

from longtail.catalog.db import (
    DEFAULT_DATASET,
    DEFAULT_SLICE,
    frames_view,
    is_grouped,
    open_dataset,
    slices_view,
)
from longtail.catalog.failure_modes import FailureMode, discover_failure_modes, get_failure_modes, load_registry
from longtail.catalog.root import DataRoot
from longtail.catalog.timeline import record_step
from longtail.config import _Frozen
from longtail.curate.brain import MAP_KEY, SIMILARITY_KEY, UNIQUENESS_KEY, attach_predictions, refresh_brain, score_predictions
from longtail.curate.dataset import add_new_frames, load_pool_fields, sync_monitor_triggers
from longtail.curate.embeddings import DescriptorEmbedder, Embedder, compute_embeddings
from longtail.curate.scope import clear_scope, predict_and_embed_frames, record_scope, scoped, trained_logs
from longtail.curate.select import SelectConfig, select_frames, selection_digest
from longtail.detector.embed import BackboneEmbedder
from longtail.detector.registry import load_champion
from longtail.errors import InputError, SchemaError
from longtail.schemas import LABELING_BATCH_FRAMES_SCHEMA, validate_labeling_batch
from longtail.storage import atomic_write_json, atomic_writer, write_json_if_changed

if TYPE_CHECKING:
    import fiftyone as fo

log = logging.getLogger(__name__)


class CurateConfig(_Frozen):
    """How the FiftyOne dataset is built."""

    dataset: str = Field(DEFAULT_DATASET, min_length=1, max_length=100, description="FiftyOne dataset name")
    workers: int = Field(1, ge=1, le=64, description="processes computing image descriptors")
    batch_size: int = Field(1000, ge=1, le=100_000, description="samples added to FiftyOne per batch")
    brain: bool = Field(True, description="run FiftyOne Brain (uniqueness, similarity, map) after adding frames")
    champion_scope: Literal["new", "all"] = Field(
        "new", description="frames a new champion embeds and predicts (`longtail.curate.scope`): 'new' = the logs "
                           "outside its dataset version plus the labeled frames (the pool selection draws from, and "
                           "what diversity measures against); 'all' = every frame (~25 frames/s on 2 cores)")
    mistakenness: bool = Field(
        False, description="FiftyOne Brain mistakenness of the champion on labeled frames: predicts them too and "
                           "compares every box with every label (minutes on thousands of frames; off by default "
                           "to keep turn 2 of `make run` in its time)")


PREDICTION_FLOOR = 0.1
"""Champion detections kept on the dataset: low enough for the uncertainty score and the
low-confidence tags (0.2-0.5), high enough to leave out the NMS noise."""


def current_embedder(root: str | os.PathLike[str], champion: tuple[Any, dict[str, Any]] | None = None) -> Embedder:
    """The embedder curation uses: the champion's backbone once the registry has a champion (its
    cache key names the model version, ``longtail-detector@v<N>``), else the hand-built descriptor.

    Args:
        root: the data root.
        champion: `load_champion`'s answer when the caller has it already (saves loading it twice).
    """
    champion = champion if champion is not None else load_champion(root)
    if champion is None:
        return DescriptorEmbedder()
    model, meta = champion
    return BackboneEmbedder(model, meta["key"])


def predict_with_champion(root: str | os.PathLike[str], dataset: fo.Dataset | fo.DatasetView,
                          champion: tuple[Any, dict[str, Any]], progress: bool = False,
                          mistakenness: bool = False) -> int:
    """Run the champion on the frames of ``dataset`` (a dataset, or the champion's scope) it has
    not predicted yet and write its outputs to the dataset (`attach_predictions`: boxes,
    uncertainty, per-class logits, prediction tags), then FiftyOne Brain hardness on its
    predictions, and mistakenness where labels exist when asked.

    Labeled frames are predicted only for mistakenness: selection draws from unlabeled ones. The
    same forward pass caches each frame's backbone embedding (`predict_and_embed_frames`), so
    the embeddings that follow cost nothing for these frames. Frames whose ``predictions`` came
    from this model version already are skipped, so re-running predicts nothing.

    Returns:
        The number of frames predicted.
    """
    from fiftyone import ViewField as F

    model, meta = champion
    key = meta["key"]
    view = dataset
    if not mistakenness and "ground_truth" in dataset.get_field_schema():
        view = view.match(~F("ground_truth").exists())
    has = "predictions" in dataset.get_field_schema()
    ids, shas, paths = view.values(["frame_id", "image_sha256", "filepath"])
    done = view.values("predictions.model_version") if has else [None] * len(ids)
    todo = [i for i, v in enumerate(done) if v != key]
    if not todo:
        return 0
    bar = tqdm(total=len(todo), unit="frame", desc="champion", disable=not progress)
    found = predict_and_embed_frames(root, model, key, BackboneEmbedder(model, key).dim, [ids[i] for i in todo],
                                     [shas[i] for i in todo], [paths[i] for i in todo], PREDICTION_FLOOR,
                                     progress=bar.update)
    bar.close()
    whole = dataset._dataset
    attach_predictions(whole, {fid: [(b["category"], b["score"], (b["x1"], b["y1"], b["x2"], b["y2"]))
                                     for b in boxes] for fid, boxes in found.items()}, meta["classes"], key)
    keys = score_predictions(whole, key, mistakenness)
    log.info("champion %s predicted %d frame(s); brain: %s", key, len(todo), ", ".join(keys) or "none")
    return len(todo)


def dataset_embeddings(root: str | os.PathLike[str], dataset: fo.Dataset | fo.DatasetView, embedder: Embedder,
                       progress: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """The pool fields of every sample and their embeddings, in the dataset's order."""
    frame = load_pool_fields(dataset)
    paths = dataset.values("filepath")
    rel = [os.path.relpath(p, Path(root).resolve()) for p in paths]
    bar = tqdm(total=len(frame), unit="frame", desc="embedding", disable=not progress)
    vectors = compute_embeddings(root, embedder, frame["image_sha256"].tolist(), rel, progress=bar.update)
    bar.close()
    return frame, vectors


def run_curate(root: str | os.PathLike[str], config: CurateConfig | None = None, progress: bool = False,
               embedder: Embedder | None = None) -> dict[str, Any]:
    """Bring the data root's FiftyOne dataset up to date with the frame index.

    1. Add the frames it does not have yet (fields, image tags and trigger tags at creation), and
       the monitor's triggers (shadow disagreement, drift) to frames it marked since.
    2. With a champion: its predictions on the frames it has not predicted, prediction tags,
       uncertainty, hardness (and mistakenness if configured) (`predict_with_champion`), on
       its scope (``config.champion_scope``, `longtail.curate.scope`: by default the logs
       outside its dataset version plus the labeled frames).
    3. When frames were added (or the embedder or the scope changed): embeddings (the
       champion's backbone once there is one), then uniqueness, the similarity index and the
       2-D map over the scope (the whole dataset before the first champion).
    4. Run the failure-mode queries: record discoveries, save open ones as views.
    5. Write DATA/curate/manifest.json last.

    With several cameras (a grouped dataset), steps 2-4 see the default slice, the front camera,
    as FiftyOne's calls on a grouped dataset do; `run_select` reaches any slice by name.

    Returns:
        The manifest.
    """
    config = config or CurateConfig()
    champion = load_champion(root)
    embedder = embedder or current_embedder(root, champion)
    dataset = open_dataset(root, config.dataset, create=True)
    bar = tqdm(unit="frame", desc="adding frames", disable=not progress)
    added = add_new_frames(root, dataset, batch_size=config.batch_size, workers=config.workers, progress=bar.update)
    bar.close()
    sync_monitor_triggers(root, dataset)
    if champion is not None and config.champion_scope == "new":
        # Only the frames selection works on (`longtail.curate.scope`): the champion's unseen logs, and labels.
        record_scope(dataset, embedder.key, trained_logs(root, champion[1]))
    else:
        clear_scope(dataset)
    work = scoped(dataset, embedder.key)
    predicted = predict_with_champion(root, work, champion, progress, config.mistakenness) \
        if champion is not None else 0
    stale = added > 0 or dataset.info.get("embedding_key") != embedder.key or \
        dataset.info.get("brain_samples", len(dataset)) != len(work) or \
        not {UNIQUENESS_KEY, SIMILARITY_KEY, MAP_KEY} <= set(dataset.list_brain_runs())
    if config.brain and stale:
        _, vectors = dataset_embeddings(root, work, embedder, progress)
        refresh_brain(work, vectors, embedder.key)
    modes = discover_failure_modes(root, dataset)
    path = DataRoot.of(root).curate / "manifest.json"
    previous = json.loads(path.read_text()) if path.exists() else None
    manifest = {
        "dataset": dataset.name, "samples": len(dataset), "added": added, "predicted": predicted,
        "embedding_key": dataset.info.get("embedding_key"), "brain_runs": sorted(dataset.list_brain_runs()),
        "scope": {"champion_scope": config.champion_scope, "frames": len(work),
                  "excluded_logs": len((dataset.info.get("champion_scope") or {}).get("excluded_logs", []))},
        "champion": None if champion is None else {"model": champion[1]["model_uri"], "key": champion[1]["key"],
                                                   "run_id": champion[1]["run_id"]},
        "failure_modes": {n: {"status": m.status, "count": m.count} for n, m in modes.items()},
        "config": config.model_dump(mode="json"),
        "logs": sorted(set(frames_view(dataset).distinct("log_id"))),
    }
    if is_grouped(dataset):  # several cameras: frames per slice, and the slice the App opens on
        manifest["slices"] = {name: dataset.select_group_slices(name).count() for name in sorted(dataset.group_slices)}
        manifest["default_slice"] = dataset.default_group_slice
    if previous is None or {k: v for k, v in previous.items() if k not in ("added", "predicted", "updated_at")} != \
            {k: v for k, v in manifest.items() if k not in ("added", "predicted")}:
        manifest["updated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        atomic_write_json(path, manifest)
    else:
        manifest["updated_at"] = previous.get("updated_at")
    log.info("dataset %s: %d frame(s), %d added; failure modes open: %s", dataset.name, len(dataset), added,
             ", ".join(n for n, m in modes.items() if m.status == "open") or "none")
    return manifest


def batches_dir(root: str | os.PathLike[str]) -> Path:
    """DATA/batches."""
    return DataRoot.of(root).batches


def list_batches(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every labeling batch manifest (complete batches only: the manifest is written last)."""
    folder = batches_dir(root)
    out = []
    for p in sorted(folder.glob("*/manifest.json")) if folder.exists() else []:
        out.append(json.loads(p.read_text()))
    return out


def failure_mode_similarity(pool: pd.DataFrame, vectors: np.ndarray, dataset: fo.Dataset,
                            modes: list[FailureMode]) -> tuple[np.ndarray, list[str]]:
    """Each candidate's similarity to the nearest member frame of any open failure mode, 0..1.

    Raw cosine similarities of this embedding are high for any two road scenes, so they are
    rescaled against the pool: 0 up to the pool's 90th percentile, 1 at identical.

    Returns:
        The similarity and the name of the failure mode it comes from ("" when 0).
    """
    n = len(pool)
    best = np.full(n, -1.0, np.float32)
    name = np.full(n, "", dtype=object)
    row_of = {sha: i for i, sha in enumerate(pool["image_sha256"])}
    for mode in modes:
        if mode.status != "open":
            continue
        members = [row_of[s] for s in mode.query.to_view(dataset).values("image_sha256") if s in row_of]
        if not members:
            continue
        m = vectors[np.asarray(members[:2000])]
        for start in range(0, n, 8192):
            sims = (vectors[start:start + 8192] @ m.T).max(axis=1)
            better = sims > best[start:start + 8192]
            best[start:start + 8192][better] = sims[better]
            name[start:start + 8192][better] = mode.name
    if not (best > -1).any():
        return np.zeros(n), [""] * n
    p90 = float(np.percentile(best[best > -1], 90))
    sim = np.clip((best - p90) / max(1.0 - p90, 1e-6), 0, 1)
    return sim, [nm if s > 0 else "" for nm, s in zip(name, sim, strict=True)]


def make_pool(root: str | os.PathLike[str], dataset: fo.Dataset, failure_modes: list[str] | None = None,
              embedder: Embedder | None = None, slices: tuple[str, ...] = (DEFAULT_SLICE,)
              ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The candidate pool: every frame of the chosen cameras not labeled and not in an earlier labeling batch,
    within the champion's scope when `run_curate` recorded one (the logs outside its dataset version).

    Args:
        slices: the cameras (slices of a grouped dataset) frames come from; a dataset of logs
            with one camera has only the front one.

    Returns:
        (pool, its embeddings, embeddings of frames already labeled or batched).

    Raises:
        InputError: for a slice the dataset does not have.
    """
    embedder = embedder or current_embedder(root)
    # With a champion, only its scope (`longtail.curate.scope`, recorded by `run_curate`).
    frame, vectors = dataset_embeddings(root, scoped(slices_view(dataset, slices), embedder.key), embedder)
    taken = {fid for b in list_batches(root) for fid in b["frames"]}
    done = frame["labeled"].to_numpy(bool) | frame["frame_id"].isin(taken).to_numpy()
    modes = get_failure_modes(root, failure_modes) if failure_modes is not None else \
        [m for m in load_registry(root).values() if m.status == "open"]
    pool = frame[~done].reset_index(drop=True)
    pool_vec = vectors[~done]
    sim, names = failure_mode_similarity(pool, pool_vec, dataset, modes)
    pool["fm_similarity"], pool["fm_name"] = sim, names
    return pool, pool_vec, vectors[done]


def _ids_digest(frame_ids: set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(frame_ids)).encode()).hexdigest()


def run_select(root: str | os.PathLike[str], config: SelectConfig, dataset_name: str = DEFAULT_DATASET,
               failure_modes: list[str] | None = None) -> dict[str, Any]:
    """Choose a labeling batch and write it to DATA/batches/<batch_id>/ (frames.parquet, then
    manifest.json last). The same request against the same data returns the batch already
    written (its pool was today's pool plus its own frames), so re-running changes nothing.

    Raises:
        BudgetError: when the budget exceeds the pool.
        UnknownFailureModeError: for a failure mode name not in the registry.
    """
    if failure_modes is not None:
        get_failure_modes(root, failure_modes)  # fail fast on unknown names, before any work
    dataset = open_dataset(root, dataset_name)
    frames = slices_view(dataset, config.slices)
    pool, vectors, labeled = make_pool(root, dataset, failure_modes, slices=config.slices)
    pool_ids = set(pool["frame_id"])
    for earlier in list_batches(root):
        # The same request against the same state: that batch's pool was today's plus its own frames.
        if earlier["config_digest"] == config.digest() and \
                _ids_digest(pool_ids | set(earlier["frames"])) == earlier["pool"]["digest"]:
            log.info("labeling batch %s exists already (same pool and config)", earlier["batch_id"])
            return earlier
    picks = select_frames(pool, vectors, config, labeled=labeled)
    pool_digest = _ids_digest(pool_ids)
    frame_ids = picks["frame_id"].tolist()
    digest = selection_digest(frame_ids, config, pool_digest)
    batch_id = f"batch-{digest[:16]}"
    folder = batches_dir(root) / batch_id
    if (folder / "manifest.json").exists():
        log.info("labeling batch %s exists already (same pool and config)", batch_id)
        return dict(json.loads((folder / "manifest.json").read_text()))

    info = pool.set_index("frame_id").loc[frame_ids]
    index_cols = frames.select_by("frame_id", frame_ids, ordered=True).values(
        ["frame_id", "filepath", "log_id", "drive_id", "timestamp_ns", "image_sha256"])
    by_id = {fid: (fp, lg, dr, ts, sha) for fid, fp, lg, dr, ts, sha in zip(*index_cols, strict=True)}
    table = pa.table({
        "frame_id": frame_ids,
        "image_sha256": [by_id[f][4] for f in frame_ids],
        "store_path": [os.path.relpath(by_id[f][0], Path(root).resolve()) for f in frame_ids],
        "log_id": [by_id[f][1] for f in frame_ids],
        "drive_id": [by_id[f][2] for f in frame_ids],
        "timestamp_ns": pa.array([by_id[f][3] for f in frame_ids], pa.int64()),
        "rank": pa.array(picks["rank"].to_numpy(), pa.int32()),
        "score": pa.array(picks.get("score", pd.Series(np.nan, index=picks.index)).to_numpy(np.float32)),
        "priority": pa.array(picks.get("priority", pd.Series(0.0, index=picks.index)).to_numpy(np.float32)),
        "uncertainty": pa.array(picks.get("uncertainty", pd.Series(0.0, index=picks.index)).to_numpy(np.float32)),
        "fm_similarity": pa.array(picks.get("fm_similarity", pd.Series(0.0, index=picks.index)).to_numpy(np.float32)),
        "fm_name": [info["fm_name"].iat[i] for i in range(len(frame_ids))],
        "diversity": pa.array(picks.get("diversity", pd.Series(np.nan, index=picks.index)).to_numpy(np.float32)),
        "quota": picks.get("quota", pd.Series("", index=picks.index)).astype(str).tolist(),
        "tags": [list(t) for t in info["tags"]],
        "triggers": [list(t) for t in info["triggers"]],
        "reason": picks["reason"].astype(str).tolist(),
    }, schema=LABELING_BATCH_FRAMES_SCHEMA)
    manifest = {
        "batch_id": batch_id, "digest": digest,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "budget": config.budget, "selector": config.selector, "config": config.model_dump(mode="json"),
        "config_digest": config.digest(), "dataset": dataset.name,
        "pool": {"frames": len(pool), "digest": pool_digest, "embedding_key": dataset.info.get("embedding_key")},
        "failure_modes": failure_modes if failure_modes is not None else sorted(
            m.name for m in load_registry(root).values() if m.status == "open"),
        "frames": frame_ids, "frames_file": "frames.parquet",
        "lineage": {"logs": sorted(set(table.column("log_id").to_pylist()))},
    }
    validate_labeling_batch(manifest, table, str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_writer(folder / "frames.parquet") as fh:
        pq.write_table(table, fh)
    atomic_write_json(folder / "manifest.json", manifest)
    view = frames.select_by("frame_id", frame_ids)
    view.set_values("labeling_batch", [batch_id] * len(view))
    dataset.save_view(batch_id, frames.select_by("frame_id", frame_ids, ordered=True),
                      description=f"Labeling batch of {len(frame_ids)} frames ({config.selector})", overwrite=True)
    log.info("labeling batch %s: %d frame(s) of %d candidates -> %s", batch_id, len(frame_ids), len(pool), folder)
    mined = table.column("fm_name").to_pylist()
    for name in sorted({n for n in mined if n}):  # the failure modes the batch mined, each with its frame count
        record_step(root, [name], "mined", batch_id, f"{mined.count(name)} of {len(frame_ids)} frame(s) "
                    f"({config.selector}, budget {config.budget})", at=manifest["created_at"])
    return manifest


SELECTED_BATCH_FIELDS = ("batch_id", "digest", "budget", "selector")
"""Fields of DATA/curate/selected_batch.json: the labeling batch the curate task chose."""


def selected_batch_path(root: str | os.PathLike[str]) -> Path:
    """DATA/curate/selected_batch.json: the batch the last curate run chose, for the tasks after it."""
    return DataRoot.of(root).curate / "selected_batch.json"


def record_selected_batch(root: str | os.PathLike[str], manifest: dict[str, Any],
                          path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Record which labeling batch the curate task chose, so downstream tasks label that one.

    The record holds `SELECTED_BATCH_FIELDS` of the batch manifest and is written atomically,
    only when it changes (re-running with the same batch leaves the file untouched).

    Args:
        root: the data root.
        manifest: the labeling batch manifest `run_select` returned.
        path: where to write (the pipeline's declared product); default `selected_batch_path`.

    Returns:
        The record.

    Raises:
        SchemaError: when the manifest lacks a field.
        InputError: when the batch is not complete in DATA/batches (its manifest is written last).
    """
    missing = [k for k in SELECTED_BATCH_FIELDS if k not in manifest]
    if missing:
        raise SchemaError(f"labeling batch manifest lacks field(s) {missing}; pass the manifest run_select returned")
    batch_id = str(manifest["batch_id"])
    if not (batches_dir(root) / batch_id / "manifest.json").is_file():
        raise InputError(f"{batches_dir(root) / batch_id / 'manifest.json'}: missing; labeling batch {batch_id} is "
                         "not complete. Run `longtail select` (or the curate task) again")
    record = {k: manifest[k] for k in SELECTED_BATCH_FIELDS}
    target = Path(path) if path is not None else selected_batch_path(root)
    write_json_if_changed(target, record)
    log.info("selected labeling batch %s (%s, budget %d) -> %s", batch_id, record["selector"], record["budget"],
             target)
    return record


def selected_batch(root: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> str:
    """The id of the labeling batch the curate task chose (`record_selected_batch`).

    Args:
        root: the data root.
        path: the record (the curate task's product); default `selected_batch_path`.

    Raises:
        InputError: when there is no record (run the curate task or `longtail select`), it is
            unreadable, or its batch is gone from DATA/batches.
    """
    target = Path(path) if path is not None else selected_batch_path(root)
    if not target.is_file():
        raise InputError(f"{target}: missing; no labeling batch was chosen yet. Run the curate task "
                         f"(`longtail run`) or `longtail select --root {root} --budget N` first")
    try:
        record = json.loads(target.read_text())
        batch_id = str(record["batch_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{target}: not a selected-batch record ({type(exc).__name__}: {exc}); run the curate "
                         "task again to rewrite it") from None
    if not (batches_dir(root) / batch_id / "manifest.json").is_file():
        raise InputError(f"{target}: names labeling batch {batch_id}, which is not in {batches_dir(root)}; run the "
                         "curate task again to choose a batch")
    return batch_id
