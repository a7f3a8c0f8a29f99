"""Evaluate a trained model from MLflow on a dataset version, against the registry's champion.

`evaluate_model` is what `longtail evaluate` and notebooks/05_evaluate.py run: it loads the
challenger (any MLflow model URI; by default the newest registered version), runs it on the
version's test frames, does the same for the registry's ``champion`` alias when one exists and is
another model, evaluates both on the same frames, runs the gate (`longtail.evaluate.gate`),
promotes the challenger when it passes, and writes

    DATA/evaluations/<version_id>/<run_id>/evaluation.json
    DATA/reports/evaluate-<version_id>-<first 12 characters of run_id>.html
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from longtail.catalog.failure_modes import load_registry
from longtail.catalog.root import DataRoot
from longtail.catalog.timeline import record_step, version_mined_modes
from longtail.catalog.versions import datasets_dir
from longtail.detector.model import mlflow_client
from longtail.detector.registry import (
    REGISTERED_MODEL,
    PromotionRefusedError,
    champion_version,
    latest_model_uri,
    promote,
    tracking_uri_for,
)
from longtail.errors import InputError
from longtail.evaluate.examples import make_examples
from longtail.evaluate.report import render_report
from longtail.evaluate.run import EvalConfig, evaluate, load_frames, save_evaluation

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


def _predict(model_uri: str, tracking_uri: str, version_dir: Path, frames: Any, all_frames: Any, threshold: float,
             config: EvalConfig) -> tuple[dict, dict]:
    """The model's detections on ``frames`` and its meta, with its per-class operating thresholds
    (``meta["thresholds"]``): the ones calibrated on validation when it was trained, else calibrated
    now on the version's validation split, else None (``config.score_threshold`` for every class)."""
    from longtail.detector.calibrate import calibrate_on_frames
    from longtail.detector.model import load_model_from_mlflow
    from longtail.detector.predict import predict_frames

    model, meta = load_model_from_mlflow(model_uri, tracking_uri)
    if not meta.get("thresholds"):
        val = all_frames[all_frames["split"] == "val"]
        if len(val):
            meta["calibration"] = calibrate_on_frames(model, version_dir, val, config.min_object_height)
            meta["thresholds"] = meta["calibration"]["thresholds"]
            log.info("%s has no calibrated thresholds: calibrated on this version's %d validation frame(s)",
                     model_uri, len(val))
    return predict_frames(model, version_dir, frames, score_threshold=threshold), meta


def model_version_of(tracking_uri: str, model_uri: str, run_id: str, name: str) -> str | None:
    """The registered version number of a model: from a ``models:/<name>/<N>`` URI, else the version
    registered from its run; None when the run registered none."""
    from longtail.detector.model import mlflow_client

    prefix = f"models:/{name}/"
    if model_uri.startswith(prefix) and model_uri[len(prefix):].isdigit():
        return model_uri[len(prefix):]
    versions = mlflow_client(tracking_uri).search_model_versions(f"name='{name}' and run_id='{run_id}'")
    return str(max(int(v.version) for v in versions)) if versions else None


def _decision_tags(evaluation: Mapping[str, Any], path: Path) -> dict[str, str]:
    """The gate's decision and its evidence as model-version tags (MLflow tag values stay short)."""
    d = evaluation["decision"]
    ev = d.get("evidence", {})
    compact = {"targets": [{k: r[k] for k in ("target", "value", "ci", "status")} for r in ev.get("targets", [])],
               **{k: ev[k] for k in ("sanity", "critical") if k in ev},
               "suites": [{k: r.get(k) for k in ("suite", "diff", "ci", "verdict")} for r in ev.get("suites", [])]}
    return {"longtail.decision": "promote" if d["promote"] else "refuse", "longtail.decision_headline": d["headline"][:4000],
            "longtail.decision_evidence": json.dumps(compact, default=str)[:4900],
            "longtail.evaluation": str(path), "longtail.evaluated_on": str(evaluation["version_id"]),
            "longtail.critical_errors": str(evaluation["critical"]["total"]["errors"]),
            "longtail.map50": f"{evaluation['overall']['map50']}", "longtail.map50_ci": json.dumps(
                evaluation["overall"].get("map50_ci"))}


def evaluate_model(root: str | os.PathLike[str], version_id: str, model_uri: str | None = None,
                   tracking_uri: str | None = None, config: EvalConfig | None = None,
                   registered_model: str = REGISTERED_MODEL, promote_if_passed: bool = True) -> dict[str, Any]:
    """Evaluate a model (default: the newest registered version) on a version's test suites, run the
    gate against the champion, and promote it when the gate passes.

    1. Predict with the challenger and, if there is one, the champion, each at its own per-class
       operating thresholds (`_predict`).
    2. Evaluate both on the same test frames; the gate decides (`longtail.evaluate.gate`).
    3. Write the decision and its evidence as tags on the challenger's model version; when it
       passes, move the ``champion`` alias atomically (`longtail.detector.registry.promote`): a
       promotion that loses a race is recorded as refused, with the reason.
    4. Write evaluation.json and the HTML report.

    Args:
        root: the data root.
        version_id: the dataset version whose test suites are used.
        model_uri: the challenger (default: the newest registered version).
        tracking_uri: MLflow (default: the data root's sqlite store).
        config: evaluation settings, gate included.
        registered_model: the registered model.
        promote_if_passed: move the champion alias when the gate passes (False: decide only).

    Returns:
        ``{"evaluation", "evaluation_path", "report", "model_uri", "run_id", "model_version",
        "champion_uri", "decision", "promotion"}``.

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
    # 1. Predictions at each model's own operating thresholds.
    preds, meta = _predict(model_uri, uri, version_dir, test, frames, floor, config)
    version = model_version_of(uri, model_uri, meta["run_id"], registered_model)
    modes = load_registry(root)
    types = vehicle_types(root, test["frame_id"].tolist())
    marks = load_subject_marks(root, test)
    current = champion_version(uri, registered_model)
    champ_uri = None if current is None else f"models:/{registered_model}/{current}"
    champion_eval = None
    champion_stats: dict[str, Any] = {}
    # 2. Both evaluations on the same frames, then the gate.
    if champ_uri is not None:
        champ_preds, champ_meta = _predict(champ_uri, uri, version_dir, test, frames, floor, config)
        if champ_meta["run_id"] != meta["run_id"]:
            champion_eval = evaluate(version_dir, champ_preds, frames, modes.values(), None, config,
                                     model=f"champion {champ_uri} ({champ_meta['run_id'][:8]})", vehicle_types=types,
                                     subject_marks=marks, thresholds=champ_meta.get("thresholds"),
                                     stats_out=champion_stats)
        else:
            champ_uri = None  # the challenger is the champion: nothing to compare against
    out = DataRoot.of(root).evaluations / version_id / meta["run_id"]
    evaluation = evaluate(version_dir, preds, frames, modes.values(), champion_eval, config,
                          model=f"{model_uri} ({meta['run_id'][:8]})", vehicle_types=types, subject_marks=marks,
                          thresholds=meta.get("thresholds"), champion_stats=champion_stats or None)
    # 3. The decision on the model version, then the alias.
    decision = evaluation["decision"]
    promotion: dict[str, Any] = {"done": False, "reason": "the gate refused it"}
    if version is None:
        promotion = {"done": False, "reason": f"{model_uri} is not a registered version of {registered_model}"}
    else:
        client = mlflow_client(uri)
        for key, value in _decision_tags(evaluation, out / "evaluation.json").items():
            client.set_model_version_tag(registered_model, version, key, value)
        if current == version:
            promotion = {"done": False, "reason": f"version {version} is the champion already"}
        elif decision["promote"] and promote_if_passed:
            try:
                moved = promote(uri, version, lock_dir=DataRoot.of(root).mlflow, expected_champion=current,
                                name=registered_model, reason=decision["headline"], actor="gate")
                promotion = {"done": True, "version": version, "previous": moved["previous"],
                             "at": moved["promoted_at"]}
            except PromotionRefusedError as exc:
                promotion = {"done": False, "reason": str(exc)}
                decision["reasons"].insert(0, f"promotion refused: {exc}")
        elif decision["promote"]:
            promotion = {"done": False, "reason": "promotion left to a person (promote_if_passed=False)"}
    decision["promotion"] = promotion
    # 4. evaluation.json and the report.
    save_evaluation(evaluation, out / "evaluation.json")
    mined = version_mined_modes(root, version_id)  # the failure modes this model was trained on
    record_step(root, mined, "evaluated", str(out / "evaluation.json"), f"{model_uri} against {champ_uri or 'no champion'}")
    record_step(root, mined, "gated", f"{'promoted' if decision['promote'] else 'refused'} "
                f"{f'{registered_model} version {version}' if version else model_uri}", decision["headline"])
    examples = make_examples(evaluation, preds, frames, version_dir, champion=champion_eval)
    report = DataRoot.of(root).reports / f"evaluate-{version_id}-{meta['run_id'][:12]}.html"
    render_report(evaluation, report, champion=champion_eval, examples=examples)
    log.info("evaluated %s on %s: mAP@0.5 %.3f; %s; promotion: %s", model_uri, version_id,
             evaluation["overall"]["map50"] or float("nan"), decision["headline"], promotion)
    return {"evaluation": evaluation, "evaluation_path": str(out / "evaluation.json"), "report": str(report),
            "model_uri": model_uri, "run_id": meta["run_id"], "model_version": version, "champion_uri": champ_uri,
            "decision": decision, "promotion": promotion}
