"""The evaluate stage: a model's predictions on a dataset version's test frames -> evaluation.json.

1. Ground truth: the version's labels table (``labels.parquet``), frames of the test splits.
2. Metrics over all test frames (`evaluate_detections`), then per slice (`make_slices`).
3. Critical errors (pedestrian, cyclist, cut-in vehicle FP/FN) at the operating threshold.
4. Regression suites (`default_suites` from the failure modes and the config) -> pass/fail.
5. With a champion's evaluation: every metric side by side and the KPI (`compare_evaluations`).
6. The decision (`decide`), then evaluation.json, written atomically.

The evaluation dict (``FORMAT``) holds: format, model, version_id, created_at, config, frames,
frames_without_predictions, overall, slices (name -> kind, title, rule, frames, objects, metrics),
cut_in_frames, critical, frame_errors (test frame -> fp/fn per class at the operating point),
suites, comparison (or None), decision.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from longtail.config import _Frozen
from longtail.detector.metrics import (
    COCO_IOU_THRESHOLDS,
    DEFAULT_MAX_DETS,
    Boxes,
    compute_frame_errors,
    evaluate_detections,
)
from longtail.errors import InputError, SchemaError
from longtail.evaluate.compare import CUT_IN_CLASSES, DecisionConfig, compare_evaluations, compute_critical_errors, decide
from longtail.evaluate.slices import TEST_SPLITS, check_frames_table, default_suites, make_slices, run_suites
from longtail.schemas import CATEGORIES, MIN_OBJECT_HEIGHT
from longtail.storage import atomic_write_json

if TYPE_CHECKING:
    from longtail.catalog.failure_modes import FailureMode

log = logging.getLogger(__name__)

FORMAT = "longtail.evaluation/1"
EVALUATION_KEYS = ("format", "model", "version_id", "created_at", "config", "frames", "frames_without_predictions",
                   "overall", "slices", "cut_in_frames", "critical", "frame_errors", "suites", "comparison", "decision")


class EvalConfig(_Frozen):
    """How a model is evaluated and judged. Saved in every evaluation.json."""

    score_threshold: float = Field(0.5, ge=0, le=1, description="deployed operating threshold on the detection score")
    match_iou: float = Field(0.5, gt=0, le=1, description="IoU a detection needs to count as found at the threshold")
    iou_thresholds: tuple[float, ...] = Field(COCO_IOU_THRESHOLDS, min_length=1, description="IoU thresholds of mAP")
    max_dets: int = Field(DEFAULT_MAX_DETS, ge=1, description="detections per frame and class kept for AP")
    min_object_height: float = Field(
        MIN_OBJECT_HEIGHT, ge=0, lt=1,
        description="boxes less tall than this share of the frame height are ignored, neither found nor missed "
                    "(KITTI's 25 px rule as an angle; 0 scores every box)")
    splits: tuple[str, ...] = Field(TEST_SPLITS, min_length=1, description="splits evaluated")
    suite_metric: str = Field("map50", description="metric of the default suites (slices.metric_value keys)")
    common_threshold: float = Field(0.6, ge=0, le=1, description="test_common suite: least suite_metric")
    longtail_threshold: float = Field(0.5, ge=0, le=1, description="test_longtail suite: least suite_metric")
    failure_mode_threshold: float = Field(0.5, ge=0, le=1, description="each failure mode's suite: least suite_metric")
    suite_thresholds: dict[str, float] = Field(default_factory=dict, description="suite name -> threshold override")
    min_suite_frames: int = Field(1, ge=1, description="a suite with fewer frames reports no_data")
    cut_in_failure_modes: tuple[str, ...] = Field(("cut_ins",), description="fm_name values marking a cut-in frame")
    cut_in_markers: tuple[str, ...] = Field(("cut_in", "trigger:cut_in", "scenario:cut_in"),
                                            description="tags or triggers marking a cut-in frame")
    decision: DecisionConfig = Field(default_factory=DecisionConfig)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _boxes(value: Any) -> list[dict[str, Any]]:
    return [] if value is None else [dict(b) for b in value]


def is_cut_in_frame(row: Mapping[str, Any], config: EvalConfig) -> bool:
    """Whether a labels-table row is a cut-in frame (rule in `longtail.evaluate.compare`)."""
    if row.get("fm_name") in config.cut_in_failure_modes:
        return True
    tags, triggers = row.get("tags"), row.get("triggers")
    marks = {str(t) for t in ([] if tags is None else tags)} | {str(t) for t in ([] if triggers is None else triggers)}
    return bool(marks & set(config.cut_in_markers))


def load_frames(version_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """A version folder's labels table.

    Raises:
        InputError: labels.parquet is missing.
    """
    path = Path(version_dir) / "labels.parquet"
    if not path.is_file():
        raise InputError(f"{path}: missing; pass a dataset version folder (DATA/datasets/<version_id>)")
    return pd.read_parquet(path)


def _modes(failure_modes: Mapping[str, FailureMode] | Iterable[FailureMode]) -> list[FailureMode]:
    return list(failure_modes.values()) if isinstance(failure_modes, Mapping) else list(failure_modes)


def evaluate(version_dir: str | os.PathLike[str], predictions: Mapping[str, Boxes], frames_df: pd.DataFrame | None = None,
             failure_modes: Mapping[str, FailureMode] | Iterable[FailureMode] = (),
             champion_eval: Mapping[str, Any] | None = None, config: EvalConfig | None = None, *,
             model: str = "challenger", vehicle_types: Mapping[str, str] | None = None,
             product: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Evaluate one model on a dataset version's test frames and decide whether to promote it.

    Args:
        version_dir: the version folder (DATA/datasets/<version_id>); its name is the version id.
        predictions: frame_id -> predicted boxes {category, x1, y1, x2, y2, score}, pixel edges.
            Frames of other splits are ignored; a test frame left out predicted nothing.
        frames_df: the version's labels table (default: read from ``version_dir``).
        failure_modes: registry entries (`load_registry`), one slice and one suite each.
        champion_eval: the champion's evaluation dict, or None for a first model.
        config: evaluation config (default `EvalConfig()`).
        model: the challenger's name, as reports and the registry show it.
        vehicle_types: optional frame_id -> car | truck (FiftyOne's vehicle_type field).
        product: where to write evaluation.json (atomically); None writes nothing.

    Returns:
        The evaluation dict (module docstring), JSON-ready.

    Raises:
        InputError: the labels table lacks a column, a prediction names a frame not in the
            version, or a box is malformed.
    """
    config = config or EvalConfig()
    frames = load_frames(version_dir) if frames_df is None else frames_df
    check_frames_table(frames, str(Path(version_dir) / "labels.parquet"))
    unknown = sorted(set(predictions) - set(frames["frame_id"]))
    if unknown:
        raise InputError(f"predictions for {len(unknown)} frame(s) not in version {Path(version_dir).name} "
                         f"(first: {unknown[0]!r}); run the model on this version's frames")
    test = frames[frames["split"].isin(list(config.splits))]
    gt = {fid: _boxes(b) for fid, b in zip(test["frame_id"], test["boxes"], strict=True)}
    min_height = {fid: config.min_object_height * float(h) for fid, h in zip(test["frame_id"], test["height"],
                                                                             strict=True)}
    preds = {fid: list(predictions[fid]) for fid in gt if fid in predictions}
    missing = len(gt) - len(preds)
    if missing:
        log.warning("%d of %d test frames have no predictions; they count as frames where nothing was detected",
                    missing, len(gt))
    kw: dict[str, Any] = {"classes": CATEGORIES, "iou_thresholds": config.iou_thresholds,
                          "score_threshold": config.score_threshold, "match_iou": config.match_iou,
                          "max_dets": config.max_dets, "min_height": min_height}

    def run_on(ids: Sequence[str]) -> dict[str, Any] | None:
        if not ids:
            return None
        return evaluate_detections({f: gt[f] for f in ids}, {f: preds[f] for f in ids if f in preds}, **kw)

    overall = evaluate_detections(gt, preds, **kw)
    modes = _modes(failure_modes)
    slices = {}
    for s in make_slices(frames, modes, vehicle_types, config.splits):
        metrics = run_on(s.frame_ids)
        slices[s.name] = {"kind": s.kind, "title": s.title, "rule": s.rule, "frames": len(s.frame_ids),
                          "objects": sum(len(gt[f]) for f in s.frame_ids), "metrics": metrics}
    cut_in_ids = [r["frame_id"] for r in test.to_dict("records") if is_cut_in_frame(r, config)]
    critical = compute_critical_errors(overall, run_on(cut_in_ids))
    frame_errors = compute_frame_errors(gt, preds, CATEGORIES, config.score_threshold, config.match_iou, min_height)
    suites = default_suites(modes, config.suite_metric, config.longtail_threshold, config.common_threshold,
                            config.failure_mode_threshold, config.suite_thresholds, config.min_suite_frames)
    results = [r.to_dict() for r in run_suites(slices, suites)]
    evaluation: dict[str, Any] = {
        "format": FORMAT, "model": model, "version_id": Path(version_dir).name, "created_at": _now(),
        "config": config.model_dump(mode="json"), "frames": len(gt), "frames_without_predictions": missing,
        "overall": overall, "slices": slices, "cut_in_frames": cut_in_ids, "critical": critical,
        "frame_errors": frame_errors, "suites": results,
    }
    evaluation["comparison"] = compare_evaluations(evaluation, champion_eval) if champion_eval is not None else None
    evaluation["decision"] = decide(evaluation, champion_eval, results, config.decision).to_dict()
    if product is not None:
        save_evaluation(evaluation, product)
    return evaluation


def save_evaluation(evaluation: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write evaluation.json atomically, after checking its keys.

    Raises:
        SchemaError: a key of `EVALUATION_KEYS` is missing.
    """
    _check(evaluation, str(path))
    atomic_write_json(path, evaluation)


def load_evaluation(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an evaluation.json (e.g. the champion's) and check it.

    Raises:
        InputError: the file is missing or not JSON. SchemaError: wrong format or missing keys.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: missing; evaluate the model first (longtail evaluate)") from None
    except ValueError as exc:
        raise InputError(f"{p}: not JSON ({exc}); re-run the evaluation") from None
    _check(data, str(p))
    return dict(data)


def _check(evaluation: Mapping[str, Any], source: str) -> None:
    missing = [k for k in EVALUATION_KEYS if k not in evaluation]
    if missing:
        raise SchemaError(f"{source}: evaluation lacks key(s) {missing} (longtail.evaluate.run.EVALUATION_KEYS); "
                          "re-run the evaluation")
    if evaluation["format"] != FORMAT:
        raise SchemaError(f"{source}: format {evaluation['format']!r}, expected {FORMAT!r}; re-run the evaluation")


def critical_frame_errors(evaluation: Mapping[str, Any]) -> dict[str, int]:
    """Critical FP + FN of each test frame: pedestrian and cyclist, and car/truck in a cut-in frame."""
    cut_in = set(evaluation["cut_in_frames"])
    out = {}
    for fid, errs in evaluation["frame_errors"].items():
        classes = ["pedestrian", "cyclist", *(CUT_IN_CLASSES if fid in cut_in else ())]
        out[fid] = sum(errs[k].get(c, 0) for k in ("fp", "fn") for c in classes)
    return out


def select_example_frames(evaluation: Mapping[str, Any], champion: Mapping[str, Any] | None = None,
                          n: int = 6) -> list[tuple[str, str]]:
    """The frames to show as the worst regressions.

    With a champion: the frames whose critical errors rose most (challenger - champion, at least
    +1), ties by frame_id. Without one, or when none rose: the frames with the most critical
    errors. Frames without critical errors are never shown.

    Returns:
        Up to ``n`` (frame_id, why) pairs.
    """
    mine = critical_frame_errors(evaluation)
    ids = sorted(mine)
    if champion is not None:
        theirs = critical_frame_errors(champion)
        rises = sorted(((mine[f] - theirs.get(f, 0), f) for f in ids), key=lambda x: (-x[0], x[1]))
        picked = [(f, f"critical errors {theirs.get(f, 0)} -> {mine[f]} against the champion")
                  for d, f in rises if d > 0][:n]
        if picked:
            return picked
    worst = sorted(((mine[f], f) for f in ids), key=lambda x: (-x[0], x[1]))
    return [(f, f"{c} critical error(s) at the operating threshold") for c, f in worst if c > 0][:n]
