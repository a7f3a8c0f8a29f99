"""Where a new champion works during curation, and its one forward pass per frame.

A champion was trained on a dataset version whose frames come from some logs. Those logs' frames
were curated, and mined, with the earlier model; what selection needs from the new champion is
its view of the frames it has not seen: the logs outside its dataset version (the new week of
drives). Its embeddings are also needed for the labeled frames, which selection's diversity
term measures distance to. So with ``CurateConfig.champion_scope == "new"`` the champion
embeds the frames of logs outside its dataset version plus every labeled frame, predicts the
unlabeled ones among them (the labeled ones too when mistakenness is on), and the similarity
index, uniqueness and map cover that scope. The scope is recorded in the dataset's info
(`SCOPE_INFO`) so that selection (`longtail.curate.run.make_pool`) draws its pool from the same
frames. ``"all"`` re-embeds and predicts every frame (slow: ~25 frames/s on 2 cores).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.catalog.versions import load_version
from longtail.curate.embeddings import FeatureCache, MissingFrameError
from longtail.detector.embed import predict_and_embed
from longtail.detector.predict import load_image

if TYPE_CHECKING:
    import fiftyone as fo
    import torch

log = logging.getLogger(__name__)

SCOPE_INFO = "champion_scope"
"""Key of the dataset's info: {"embedding_key": the champion's key, "excluded_logs": [log ids]}."""


def trained_logs(root: str | os.PathLike[str], meta: dict[str, Any]) -> list[str]:
    """The logs of the champion's dataset version (its model meta's ``dataset_version``), sorted;
    empty when the meta names none."""
    version_id = meta.get("dataset_version")
    if not version_id:
        return []
    frames, _ = load_version(root, str(version_id))
    return sorted(set(frames["log_id"]))


def record_scope(dataset: fo.Dataset, embedding_key: str, excluded_logs: Sequence[str]) -> None:
    """Record in the dataset's info which logs' unlabeled frames the champion left out."""
    dataset.info[SCOPE_INFO] = {"embedding_key": embedding_key, "excluded_logs": sorted(excluded_logs)}
    dataset.save()


def clear_scope(dataset: fo.Dataset) -> None:
    """Forget a recorded scope (before the first champion, or with ``champion_scope: all``)."""
    if SCOPE_INFO in dataset.info:
        del dataset.info[SCOPE_INFO]
        dataset.save()


def scoped(collection: fo.Dataset | fo.DatasetView, embedding_key: str) -> fo.Dataset | fo.DatasetView:
    """The frames of ``collection`` inside the scope recorded for ``embedding_key``: labeled
    frames and frames of logs not excluded. The whole collection when no scope is recorded for it."""
    from fiftyone import ViewField as F

    scope = collection._dataset.info.get(SCOPE_INFO) or {}
    if scope.get("embedding_key") != embedding_key or not scope.get("excluded_logs"):
        return collection
    inside = ~F("log_id").is_in(list(scope["excluded_logs"]))
    if "ground_truth" in collection.get_field_schema():
        inside = inside | F("ground_truth").exists()
    return collection.match(inside)


def predict_and_embed_frames(root: str | os.PathLike[str], model: torch.nn.Module, embedding_key: str, dim: int,
                             frame_ids: Sequence[str], shas: Sequence[str], paths: Sequence[str],
                             score_threshold: float, batch_size: int = 16,
                             progress: Callable[[int], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Predict frames with one forward pass each that also caches the backbone embedding of every
    frame not cached yet for ``embedding_key`` (`FeatureCache`, one part per batch).

    Args:
        dim: the embedding's length (`longtail.detector.embed.BackboneEmbedder.dim`).
        paths: the frames' store paths, absolute or relative to the root.

    Returns:
        frame_id -> box dicts (`longtail.detector.predict.predict`).

    Raises:
        MissingFrameError: a frame file is not in the store.
    """
    root = Path(root)
    cache = FeatureCache(root, embedding_key, dim)
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(frame_ids), batch_size):
        ids, batch_shas = frame_ids[start:start + batch_size], shas[start:start + batch_size]
        files = [root / p for p in paths[start:start + batch_size]]
        for f, s in zip(files, batch_shas, strict=True):
            if not f.is_file():
                raise MissingFrameError(f"{f}: frame {s} is in the frame index but not in the frame store; "
                                        "re-ingest its drive log (`longtail ingest`)")
        boxes, vectors = predict_and_embed(model, [load_image(f) for f in files], score_threshold)
        out.update(zip(ids, boxes, strict=True))
        new = [i for i, s in enumerate(batch_shas) if s not in cache]
        first: dict[str, int] = {}
        for i in new:
            first.setdefault(batch_shas[i], i)
        if first:
            cache.add(list(first), vectors[np.asarray(list(first.values()))])
        if progress:
            progress(len(ids))
    return out

