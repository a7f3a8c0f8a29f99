"""Evaluate a trained model from MLflow on a dataset version, against the registry's champion.

`evaluate_model` is what `longtail evaluate` and notebooks/05_evaluate.py run: it loads the
challenger (any MLflow model URI; by default the newest registered version), runs it on the
version's test frames, does the same for the registry's ``champion`` alias when one exists and is
another model, evaluates both on the same frames and writes

    DATA/evaluations/<version_id>/<run_id>/evaluation.json
    DATA/reports/evaluate-<version_id>-<first 12 characters of run_id>.html
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from longtail.catalog.failure_modes import load_registry
from longtail.catalog.root import DataRoot
from longtail.catalog.versions import datasets_dir
from longtail.detector.registry import champion_uri, latest_model_uri, tracking_uri_for
from longtail.errors import InputError
from longtail.evaluate.report import make_examples, render_report
from longtail.evaluate.run import EvalConfig, evaluate, load_frames

log = logging.getLogger(__name__)

def vehicle_types(root: str | os.PathLike[str], frame_ids: list[str]) -> dict[str, str] | None:
    """frame_id -> car | truck from the curated FiftyOne dataset (the version's table has no vehicle
    type); None when the data root has no curated dataset."""
    from longtail.catalog.db import open_dataset
    from longtail.errors import LongtailError

    try:
        view = open_dataset(root).select_by("frame_id", frame_ids)
    except (LongtailError, ValueError) as exc:
        log.warning("no vehicle types for the slices (%s)", exc)
        return None
    ids, types = view.values(["frame_id", "vehicle_type"])
    return {f: t for f, t in zip(ids, types, strict=True) if t}


def load_subject_marks(root: str | os.PathLike[str], frames: Any) -> dict[str, list[dict[str, Any]]]:
    """frame_id -> the actors the simulator marks as a critical scenario's subject, for the frames of
    simulated drives (`longtail.evaluate.subjects`); frames of other drives are left out (no marks).

    Each mark is {category, x1, y1, x2, y2 (the actor's visible extent, pixel edges), scenario}.
    """
    from longtail.catalog.truth import find_truth_files, load_truth
    from longtail.errors import LongtailError

    out: dict[str, list[dict[str, Any]]] = {}
    for log_id, group in frames.groupby("log_id", sort=True):
        try:
            truth = load_truth(find_truth_files(root, [str(log_id)]), group)
        except LongtailError as exc:  # a real drive, or a simulated one whose sidecar is gone
            log.info("no subject marks for log %s (%s)", log_id, str(exc)[:200])
            continue
        for fid, t in truth.items():
            out[fid] = [{"category": o["category"], "x1": float(o["vx1"]), "y1": float(o["vy1"]),
                         "x2": float(o["vx2"]), "y2": float(o["vy2"]), "scenario": str(o["scenario"])}
                        for o in t.objects if o.get("critical") and o.get("scenario")]
    return out


def _predict(model_uri: str, tracking_uri: str, version_dir: Path, frames: Any, threshold: float) -> tuple[dict, dict]:
    from longtail.detector.model import load_model_from_mlflow
    from longtail.detector.predict import predict_frames

    model, meta = load_model_from_mlflow(model_uri, tracking_uri)
    return predict_frames(model, version_dir, frames, score_threshold=threshold), meta


def evaluate_model(root: str | os.PathLike[str], version_id: str, model_uri: str | None = None,
                   tracking_uri: str | None = None, config: EvalConfig | None = None,
                   registered_model: str = "longtail-detector") -> dict[str, Any]:
    """Evaluate a model (default: the newest registered version) on a version's test suites.

    Returns:
        ``{"evaluation", "evaluation_path", "report", "model_uri", "champion_uri", "decision"}``.

    Raises:
        InputError: for an unknown version or model.
    """
    config = config or EvalConfig()
    root = Path(root)
    version_dir = datasets_dir(root) / version_id
    if not version_dir.is_dir():
        known = sorted(p.name for p in datasets_dir(root).glob("v-*") if p.is_dir()) if datasets_dir(root).exists() else []
        raise InputError(f"{version_dir}: no dataset version {version_id}; known versions: {known or 'none'}")
    uri = tracking_uri_for(root, tracking_uri)
    model_uri = model_uri or latest_model_uri(uri, registered_model)
    frames = load_frames(version_dir)
    test = frames[frames["split"].isin(list(config.splits))]
    if test.empty:
        raise InputError(f"dataset version {version_id} has no test frames (splits {list(config.splits)}); "
                         "label more drives so some drive logs fall in the test split")
    floor = min(0.05, config.score_threshold)
    preds, meta = _predict(model_uri, uri, version_dir, test, floor)
    modes = load_registry(root)
    types = vehicle_types(root, test["frame_id"].tolist())
    marks = load_subject_marks(root, test)
    champ_uri = champion_uri(uri, registered_model)
    champion_eval = None
    if champ_uri is not None:
        champ_preds, champ_meta = _predict(champ_uri, uri, version_dir, test, floor)
        if champ_meta["run_id"] != meta["run_id"]:
            champion_eval = evaluate(version_dir, champ_preds, frames, modes.values(), None, config,
                                     model=f"champion ({champ_meta['run_id'][:8]})", vehicle_types=types,
                                     subject_marks=marks)
        else:
            champ_uri = None  # the challenger is the champion: nothing to compare against
    out = DataRoot.of(root).evaluations / version_id / meta["run_id"]
    evaluation = evaluate(version_dir, preds, frames, modes.values(), champion_eval, config,
                          model=f"{model_uri} ({meta['run_id'][:8]})", product=out / "evaluation.json",
                          vehicle_types=types, subject_marks=marks)
    examples = make_examples(evaluation, preds, frames, version_dir, champion=champion_eval)
    report = DataRoot.of(root).reports / f"evaluate-{version_id}-{meta['run_id'][:12]}.html"
    render_report(evaluation, report, champion=champion_eval, examples=examples)
    log.info("evaluated %s on %s: mAP@0.5 %.3f; report %s", model_uri, version_id, evaluation["overall"]["map50"]
             if "overall" in evaluation else float("nan"), report)
    return {"evaluation": evaluation, "evaluation_path": str(out / "evaluation.json"), "report": str(report),
            "model_uri": model_uri, "run_id": meta["run_id"], "champion_uri": champ_uri,
            "decision": evaluation.get("decision")}
