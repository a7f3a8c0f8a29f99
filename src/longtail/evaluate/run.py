"""The evaluate stage: a model's predictions on a dataset version's test frames -> evaluation.json.

1. Ground truth: the version's labels table (``labels.parquet``), frames of the test splits.
2. Metrics over all test frames (`evaluate_detections`), then per slice (`make_slices`).
3. Critical errors (pedestrian, cyclist, cut-in vehicle FP/FN) at the operating threshold.
4. Regression suites (`default_suites` from the failure modes and the config) -> pass/fail; a
   failure mode's suite scores its subject only (`longtail.evaluate.subjects`) and reports its
   own critical errors; a suite from too few drives or objects is not measurable.
5. 95% intervals by a bootstrap over drives (`longtail.evaluate.bootstrap`) for every number a
   decision uses: overall mAP@0.5, per-class AP@0.5 and FP/FN, each suite's value and critical
   errors, the critical error totals.
6. With a champion's evaluation: every metric side by side and the KPI (`compare_evaluations`).
7. The decision (`decide`), then evaluation.json, written atomically.

The evaluation dict (``FORMAT``) holds: format, model, version_id, created_at, config, frames,
frames_without_predictions, overall, slices (name -> kind, title, rule, frames, objects, metrics;
failure-mode slices also subject), cut_in_frames, critical, frame_errors (test frame -> fp/fn per
class at the operating point), suites, comparison (or None), decision, and critical_comparison
(None without a champion's per-frame statistics): suite (``all``, ``test_longtail``, ``test_common``,
each failure mode) -> group (pedestrian, cyclist, cut_in_vehicle, total) -> challenger, champion,
diff, ci (paired bootstrap over drives) and verdict (`longtail.evaluate.gate.compare_critical`).

Intervals sit next to their value: ``overall`` has ``map50_ci`` [lo, hi] and ``drives``; each
``overall.per_class.<class>`` has ``ap50_ci``, ``fp_ci``, ``fn_ci``; each ``critical.<group>`` has
``fp_ci``, ``fn_ci``, ``errors_ci``; each suite has ``ci`` (of its value), ``drives``, ``objects``,
``measurable``, ``reason``, ``subject`` and ``critical`` (group -> fp, fn, errors and their ``_ci``).
An interval is None where the statistic was never defined. Files written before intervals
existed lack these keys and still load (`load_evaluation`); readers use ``.get``.
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
    compute_frame_stats,
    evaluate_detections,
)
from longtail.errors import InputError, SchemaError
from longtail.evaluate.bootstrap import BootstrapConfig, count_intervals, drive_intervals
from longtail.evaluate.compare import CUT_IN_CLASSES, compare_evaluations, compute_critical_errors
from longtail.evaluate.gate import GateConfig, compare_critical, decide
from longtail.evaluate.slices import TEST_SPLITS, check_frames_table, default_suites, make_slices, run_suites
from longtail.evaluate.subjects import mark_subject, subject_for, subject_predictions
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

    score_threshold: float = Field(0.5, ge=0, le=1, description="operating threshold on the detection score where "
                                   "the model has no calibrated per-class thresholds")
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
    gate: GateConfig = Field(default_factory=GateConfig, description="sanity floors, targets, promotion rules")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig,
                                       description="intervals, and when a suite is not measurable")


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


def _drive_of(frames: pd.DataFrame) -> dict[str, str]:
    """frame_id -> drive: the drive_id column, else log_id, else the frame itself (no grouping)."""
    for col in ("drive_id", "log_id"):
        if col in frames.columns:
            return {str(f): str(d) for f, d in zip(frames["frame_id"], frames[col], strict=True)}
    log.warning("labels table has no drive_id or log_id: the bootstrap resamples frames, which understates intervals")
    return {str(f): str(f) for f in frames["frame_id"]}


def _with_intervals(result: dict[str, Any], ci: Mapping[str, list[float] | None], drives: int) -> dict[str, Any]:
    """Put intervals next to their values in an `evaluate_detections` result (in place) and return it."""
    result["map50_ci"] = ci.get("map50")
    result["drives"] = drives
    for cls, pc in result["per_class"].items():
        pc["ap50_ci"], pc["fp_ci"], pc["fn_ci"] = ci.get(f"ap50:{cls}"), ci.get(f"fp:{cls}"), ci.get(f"fn:{cls}")
        pc["recall_ci"] = ci.get(f"recall:{cls}")
    return result


def _critical_per_drive(frame_errors: Mapping[str, Mapping[str, Mapping[str, int]]], frame_ids: Sequence[str],
                        cut_in: set[str], drive_of: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """drive -> ``<group>/fp``, ``<group>/fn``, ``<group>/errors`` (groups and ``total``) over some frames."""
    per_drive: dict[str, dict[str, float]] = {}
    for fid in frame_ids:
        errs = frame_errors[fid]
        row = per_drive.setdefault(drive_of[fid], {})
        groups = {"pedestrian": ("pedestrian",), "cyclist": ("cyclist",),
                  "cut_in_vehicle": CUT_IN_CLASSES if fid in cut_in else ()}
        for g, classes in groups.items():
            for k in ("fp", "fn"):
                n = sum(errs[k].get(c, 0) for c in classes)
                row[f"{g}/{k}"] = row.get(f"{g}/{k}", 0) + n
                row[f"total/{k}"] = row.get(f"total/{k}", 0) + n
    for row in per_drive.values():
        for g in (*CRITICAL_GROUP_NAMES, "total"):
            row[f"{g}/errors"] = row.get(f"{g}/fp", 0) + row.get(f"{g}/fn", 0)
    return per_drive


def _critical_errors_by_drive(frame_errors: Mapping[str, Mapping[str, Mapping[str, int]]], frame_ids: Sequence[str],
                              cut_in: set[str], drive_of: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """drive -> group (and ``total``) -> critical false positives plus negatives, for `compare_critical`."""
    return {d: {g: row.get(f"{g}/errors", 0) for g in (*CRITICAL_GROUP_NAMES, "total")}
            for d, row in _critical_per_drive(frame_errors, frame_ids, cut_in, drive_of).items()}


def _critical_counts(frame_errors: Mapping[str, Mapping[str, Mapping[str, int]]], frame_ids: Sequence[str],
                     cut_in: set[str], drive_of: Mapping[str, str], config: BootstrapConfig) -> dict[str, Any]:
    """Critical FP/FN per group over some frames, each with its interval over their drives."""
    per_drive = _critical_per_drive(frame_errors, frame_ids, cut_in, drive_of)
    ci = count_intervals(per_drive, config) if per_drive else {}
    out: dict[str, Any] = {}
    for g in (*CRITICAL_GROUP_NAMES, "total"):
        out[g] = {k: int(sum(r.get(f"{g}/{k}", 0) for r in per_drive.values())) for k in ("fp", "fn", "errors")}
        out[g].update({f"{k}_ci": ci.get(f"{g}/{k}") for k in ("fp", "fn", "errors")})
    return out


CRITICAL_GROUP_NAMES = ("pedestrian", "cyclist", "cut_in_vehicle")


def _errors_by_drive(frame_errors: Mapping[str, Mapping[str, Mapping[str, int]]], frame_ids: Sequence[str],
                     cut_in: set[str], drive_of: Mapping[str, str]) -> dict[str, float]:
    """drive -> critical false positives plus negatives (pedestrian, cyclist, cut-in vehicle) over some frames."""
    out: dict[str, float] = {}
    for fid in frame_ids:
        errs = frame_errors[fid]
        classes = ("pedestrian", "cyclist", *(CUT_IN_CLASSES if fid in cut_in else ()))
        n = sum(errs[k].get(c, 0) for k in ("fp", "fn") for c in classes)
        out[drive_of[fid]] = out.get(drive_of[fid], 0.0) + n
    return out


def _modes(failure_modes: Mapping[str, FailureMode] | Iterable[FailureMode]) -> list[FailureMode]:
    return list(failure_modes.values()) if isinstance(failure_modes, Mapping) else list(failure_modes)


def evaluate(version_dir: str | os.PathLike[str], predictions: Mapping[str, Boxes], frames_df: pd.DataFrame | None = None,
             failure_modes: Mapping[str, FailureMode] | Iterable[FailureMode] = (),
             champion_eval: Mapping[str, Any] | None = None, config: EvalConfig | None = None, *,
             model: str = "challenger", vehicle_types: Mapping[str, str] | None = None,
             subject_marks: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
             thresholds: Mapping[str, float] | None = None,
             champion_stats: Mapping[str, Any] | None = None, stats_out: dict[str, Any] | None = None,
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
        subject_marks: frame_id -> the actors the simulator's ground truth marks as a critical
            scenario's subject ({category, x1, y1, x2, y2, scenario}, visible extent); frames left
            out have no marks (`longtail.evaluate.subjects`). None: no frame has marks.
        thresholds: the model's per-class operating thresholds, calibrated on validation
            (`longtail.detector.calibrate`); None: ``config.score_threshold`` for every class.
        champion_stats: the champion's per-frame statistics (its ``stats_out``), so the gate pairs
            the two models drive by drive; None: the gate compares unpaired.
        stats_out: filled with this model's per-frame statistics (drive of each frame, each
            suite's frame stats, critical errors per drive), for a later paired comparison.
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
    operating: float | dict[str, float] = dict(thresholds) if thresholds else config.score_threshold
    kw: dict[str, Any] = {"classes": CATEGORIES, "iou_thresholds": config.iou_thresholds,
                          "score_threshold": operating, "match_iou": config.match_iou,
                          "max_dets": config.max_dets, "min_height": min_height}

    boot = config.bootstrap
    drive_of = _drive_of(test)
    stat_kw = {k: kw[k] for k in ("score_threshold", "match_iou", "max_dets", "min_height")}

    def run_on(ids: Sequence[str]) -> dict[str, Any] | None:
        if not ids:
            return None
        return evaluate_detections({f: gt[f] for f in ids}, {f: preds[f] for f in ids if f in preds}, **kw)

    def with_ci(result: dict[str, Any], stats: Mapping[str, Any], classes: Sequence[str]) -> dict[str, Any]:
        drives, ci = drive_intervals(stats, drive_of, classes, boot)
        return _with_intervals(result, ci, drives)

    # Per-frame sufficient statistics, matched once; the test suites take theirs from these.
    all_stats = compute_frame_stats(gt, preds, CATEGORIES, **stat_kw)
    overall = with_ci(evaluate_detections(gt, preds, **kw), all_stats, CATEGORIES)
    modes = _modes(failure_modes)
    slices: dict[str, dict[str, Any]] = {}
    slice_ids: dict[str, tuple[str, ...]] = {}
    for s in make_slices(frames, modes, vehicle_types, config.splits):
        slice_ids[s.name] = s.frame_ids
        metrics = run_on(s.frame_ids)
        slices[s.name] = {"kind": s.kind, "title": s.title, "rule": s.rule, "frames": len(s.frame_ids),
                          "objects": sum(len(gt[f]) for f in s.frame_ids), "metrics": metrics,
                          "drives": len({drive_of[f] for f in s.frame_ids})}
    cut_in_ids = [r["frame_id"] for r in test.to_dict("records") if is_cut_in_frame(r, config)]
    cut_in = set(cut_in_ids)
    frame_errors = compute_frame_errors(gt, preds, CATEGORIES, operating, config.match_iou, min_height)
    critical = compute_critical_errors(overall, run_on(cut_in_ids))
    all_ci = _critical_counts(frame_errors, sorted(gt), cut_in, drive_of, boot)
    for g, v in critical.items():
        v.update({k: all_ci[g][k] for k in ("fp_ci", "fn_ci", "errors_ci")})
    # What each suite is judged on: its slice's metrics (the test suites) or its subject's (failure modes).
    suite_inputs: dict[str, dict[str, Any]] = {}
    paired: dict[str, Any] = {"drive_of": drive_of, "suites": {},
                              "critical_by_drive": _errors_by_drive(frame_errors, sorted(gt), cut_in, drive_of),
                              "critical_by_suite": {"all": _critical_errors_by_drive(frame_errors, sorted(gt), cut_in,
                                                                                     drive_of)}}
    for name in (f"suite:{sp}" for sp in config.splits):
        if name in slices:
            sl = slices[name]
            ids = list(slice_ids[name])
            paired["suites"][name.split(":", 1)[1]] = ({f: all_stats[f] for f in ids}, CATEGORIES)
            m = None if sl["metrics"] is None else with_ci(sl["metrics"], {f: all_stats[f] for f in ids}, CATEGORIES)
            paired["critical_by_suite"][name.split(":", 1)[1]] = _critical_errors_by_drive(frame_errors, ids, cut_in,
                                                                                           drive_of)
            suite_inputs[name] = {"frames": sl["frames"], "metrics": m, "drives": sl["drives"],
                                  "ci": _suite_ci(m), "subject": "every object",
                                  "critical": _critical_counts(frame_errors, ids, cut_in, drive_of, boot)}
    for mode in modes:
        name = f"failure_mode:{mode.name}"
        ids = list(slice_ids[name])
        subject = subject_for(mode)
        g_sub: dict[str, list[dict[str, Any]]] = {}
        unmarked = 0
        for f in ids:
            g_sub[f], decided = mark_subject(gt[f], subject, None if subject_marks is None else subject_marks.get(f))
            unmarked += not decided
        p_sub = {f: subject_predictions(preds[f], subject) for f in ids if f in preds}
        m = None
        if ids:
            sub_stats = compute_frame_stats(g_sub, p_sub, subject.classes, **stat_kw)
            paired["suites"][mode.name] = (sub_stats, subject.classes)
            m = with_ci(evaluate_detections(g_sub, p_sub, **{**kw, "classes": subject.classes}), sub_stats,
                        subject.classes)
        rule = subject.description + (f" ({unmarked} of {len(ids)} frame(s) without ground-truth marks: every "
                                      f"{' or '.join(subject.classes)} box there)" if unmarked else "")
        objects = 0 if m is None else sum(c["gt"] for c in m["per_class"].values())
        slices[name]["subject"] = {**subject.to_dict(), "rule": rule, "unmarked_frames": unmarked,
                                   "objects": objects, "metrics": m}
        paired["critical_by_suite"][mode.name] = _critical_errors_by_drive(frame_errors, ids, cut_in, drive_of)
        suite_inputs[name] = {"frames": len(ids), "metrics": m, "drives": slices[name]["drives"], "ci": _suite_ci(m),
                              "subject": rule, "critical": _critical_counts(frame_errors, ids, cut_in, drive_of, boot)}
    suites = default_suites(modes, config.suite_metric, config.longtail_threshold, config.common_threshold,
                            config.failure_mode_threshold, config.suite_thresholds, config.min_suite_frames,
                            boot.min_drives, boot.min_objects)
    results = [r.to_dict() for r in run_suites({**slices, **suite_inputs}, suites)]
    evaluation: dict[str, Any] = {
        "format": FORMAT, "model": model, "version_id": Path(version_dir).name, "created_at": _now(),
        "config": config.model_dump(mode="json"), "frames": len(gt), "frames_without_predictions": missing,
        "overall": overall, "slices": slices, "cut_in_frames": cut_in_ids, "critical": critical,
        "frame_errors": frame_errors, "suites": results,
        "operating_thresholds": operating if isinstance(operating, dict) else dict.fromkeys(CATEGORIES, operating),
    }
    if stats_out is not None:
        stats_out.update(paired)
    evaluation["comparison"] = compare_evaluations(evaluation, champion_eval) if champion_eval is not None else None
    # Critical errors against the champion per suite and group, paired over drives (the KPI report reads these).
    evaluation["critical_comparison"] = compare_critical(paired["critical_by_suite"],
                                                         champion_stats["critical_by_suite"], boot) \
        if champion_stats and "critical_by_suite" in champion_stats else None
    evaluation["decision"] = decide(evaluation, champion_eval, config.gate, boot,
                                    paired=(paired, champion_stats) if champion_stats else None).to_dict()
    if product is not None:
        save_evaluation(evaluation, product)
    return evaluation


def _suite_ci(metrics: Mapping[str, Any] | None) -> dict[str, list[float] | None]:
    """metric key (`longtail.evaluate.slices.metric_value`) -> interval, for the keys that have one."""
    if not metrics:
        return {}
    out: dict[str, list[float] | None] = {"map50": metrics.get("map50_ci")}
    for cls, pc in metrics["per_class"].items():
        out[f"ap50:{cls}"] = pc.get("ap50_ci")
        out[f"fp:{cls}"] = pc.get("fp_ci")
        out[f"fn:{cls}"] = pc.get("fn_ci")
    return out


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
