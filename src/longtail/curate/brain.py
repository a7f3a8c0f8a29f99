"""FiftyOne Brain on Longtail's embeddings, and a detector's outputs on the dataset.

- `refresh_brain`: uniqueness, a similarity index ("more like this") and a 2-D map (PCA),
  all computed from the given embeddings (the descriptor before the first model, the
  champion's backbone after).
- `attach_predictions`: a detector's boxes as the ``predictions`` field, with the tags they
  imply, a per-frame ``uncertainty`` for selection and per-frame class logits for hardness.
- `score_predictions`: FiftyOne Brain mistakenness (where labels exist) and hardness.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from longtail.boxes import to_fiftyone
from longtail.curate.tags import PREDICTION_TAGS, compute_prediction_tags

if TYPE_CHECKING:
    import fiftyone as fo

log = logging.getLogger(__name__)

UNIQUENESS_KEY = "uniqueness"
SIMILARITY_KEY = "similarity"
MAP_KEY = "embedding_map"


def refresh_brain(dataset: fo.Dataset | fo.DatasetView, embeddings: np.ndarray, embedding_key: str) -> list[str]:
    """Recompute uniqueness, the similarity index and the 2-D map of the dataset, or of a view of
    it (a champion's scope, `longtail.curate.scope`: frames outside it lose their uniqueness).

    Args:
        dataset: the dataset, or the view the embeddings cover.
        embeddings: float32 (len(dataset), d), in the dataset's sample order.
        embedding_key: which embedder made them (recorded in the dataset's info).

    Returns:
        The brain keys written.
    """
    import fiftyone.brain as fob

    if len(embeddings) != len(dataset):
        raise ValueError(f"{len(embeddings)} embeddings for {len(dataset)} samples")
    whole = dataset._dataset
    for key in (UNIQUENESS_KEY, SIMILARITY_KEY, MAP_KEY):
        if key in whole.list_brain_runs():
            whole.delete_brain_run(key)
    if whole is not dataset and UNIQUENESS_KEY in whole.get_field_schema():
        whole.clear_sample_field(UNIQUENESS_KEY)
    emb = np.asarray(embeddings, np.float32)
    fob.compute_uniqueness(dataset, embeddings=emb, progress=False)
    fob.compute_similarity(dataset, embeddings=emb, brain_key=SIMILARITY_KEY, backend="sklearn",
                           metric="cosine", progress=False)
    fob.compute_visualization(dataset, embeddings=emb, brain_key=MAP_KEY, method="pca", num_dims=2,
                              progress=False)
    whole.info["embedding_key"] = embedding_key
    whole.info["brain_samples"] = len(dataset)
    whole.save()
    return [UNIQUENESS_KEY, SIMILARITY_KEY, MAP_KEY]


def frame_uncertainty(scores: Sequence[float]) -> float:
    """How unsure a detector is about a frame, 0..1: the mean closeness to 0.5 of its three
    most ambiguous detection scores (1 at score 0.5; 0 at 0 or 1; 0 without detections).
    """
    s = np.asarray(scores, np.float64)
    if not s.size:
        return 0.0
    closeness = 1.0 - np.abs(2.0 * s - 1.0)
    return float(np.sort(closeness)[-3:].mean())


def attach_predictions(dataset: fo.Dataset, predictions: Mapping[str, Sequence[tuple[str, float, tuple[float, ...]]]],
                       classes: Sequence[str], model_version: str) -> int:
    """Write a detector's outputs on the frames it ran on.

    Args:
        dataset: the dataset.
        predictions: frame_id -> [(class, score 0..1, (x1, y1, x2, y2) internal pixel box)].
        classes: the detector's classes, in logit order.
        model_version: the model's name and version, recorded on each detection set.

    Returns:
        The number of frames written. Sets ``predictions`` (Detections), ``uncertainty``,
        ``prediction_summary`` (Classifications with per-class logits: the log-odds of the
        best score of each class, for hardness) and the prediction tags.
    """
    import fiftyone as fo

    view = dataset.select_by("frame_id", list(predictions))
    ids, frame_ids, widths, heights, vtypes, tags = view.values(
        ["id", "frame_id", "metadata.width", "metadata.height", "vehicle_type", "tags"])
    dets_by_id, unc_by_id, summary_by_id, tags_by_id = {}, {}, {}, {}
    for sid, fid, w, h, vt, old_tags in zip(ids, frame_ids, widths, heights, vtypes, tags, strict=True):
        preds = predictions[fid]
        dets = [fo.Detection(label=c, confidence=float(s), bounding_box=to_fiftyone((b[0], b[1], b[2], b[3]), w, h))
                for c, s, b in preds]
        dets_by_id[sid] = fo.Detections(detections=dets, model_version=model_version)
        unc_by_id[sid] = frame_uncertainty([s for _, s, _ in preds])
        best = np.full(len(classes), 1e-3)
        for c, s, _ in preds:
            if c in classes:
                k = list(classes).index(c)
                best[k] = max(best[k], min(float(s), 1 - 1e-3))
        logits = np.log(best / (1 - best))
        top = int(np.argmax(best))
        summary_by_id[sid] = fo.Classifications(classifications=[
            fo.Classification(label=classes[top], confidence=float(best[top]))], logits=logits.tolist())
        heights_px = [(b[3] - b[1]) for _, _, b in preds]
        kept = [t for t in (old_tags or []) if t not in PREDICTION_TAGS]
        tags_by_id[sid] = kept + compute_prediction_tags([c for c, _, _ in preds], [s for _, s, _ in preds],
                                                         heights_px, vt or "")
    dataset.set_values("predictions", dets_by_id, key_field="id")
    dataset.set_values("uncertainty", unc_by_id, key_field="id")
    dataset.set_values("prediction_summary", summary_by_id, key_field="id")
    dataset.set_values("tags", tags_by_id, key_field="id")
    return len(ids)


def score_predictions(dataset: fo.Dataset, model_version: str | None = None, mistakenness: bool = True) -> list[str]:
    """FiftyOne Brain hardness on every frame with predictions (of ``model_version`` only, when
    given), and mistakenness where labels exist too (when ``mistakenness``: it compares every
    predicted box with every label, minutes on thousands of frames). Returns the brain keys written."""
    import fiftyone.brain as fob
    from fiftyone import ViewField as F

    schema = dataset.get_field_schema()
    done = []
    ours = dataset.match(F("predictions.model_version") == model_version) if model_version else dataset
    if "prediction_summary" in schema:
        view = ours.exists("prediction_summary")
        if len(view):
            if "hardness" in dataset.list_brain_runs():
                dataset.delete_brain_run("hardness")
            fob.compute_hardness(view, "prediction_summary", progress=False)
            done.append("hardness")
    if mistakenness and "predictions" in schema and "ground_truth" in schema:
        view = ours.exists("predictions").match(F("ground_truth").exists())
        if len(view):
            if "mistakenness" in dataset.list_brain_runs():
                dataset.delete_brain_run("mistakenness")
            fob.compute_mistakenness(view, "predictions", label_field="ground_truth", progress=False)
            done.append("mistakenness")
    return done
