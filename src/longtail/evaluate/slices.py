"""Slices of the test set and the model regression suites that gate a model on them.

A slice is a named set of test frames. They are built from a dataset version's labels table
(`longtail.label.version.VERSION_LABELS_SCHEMA`: tags, triggers, fm_name, split) only:

- ``suite:test_longtail``, ``suite:test_common``: the two test suites of the version, apart.
- ``condition:<tag>`` for the image tags night, fog, rain, glare, and ``condition:day_clear`` for
  frames with none of them.
- ``vehicle:<type>``: the recording vehicle (car, truck). The labels table has no vehicle type:
  it comes from a ``vehicle_type`` column when the table has one, else from the ``vehicle_types``
  mapping (frame_id -> type; FiftyOne's dataset has the field), else ``truck`` for frames tagged
  ``truck_view`` and ``unknown`` for the rest.
- ``scenario:<name>``: each trigger (``triggers`` column or a ``trigger:<name>`` tag) and each
  other scenario tag (crowded, small_pedestrian, ...).
- ``failure_mode:<name>``: frames whose ``fm_name`` is the failure mode, or that match its query
  (`FailureModeQuery`) as far as the table can tell: tags_all, tags_any, triggers_any,
  vehicle_type, and label conditions (label_classes, max_height_px) checked on the *ground
  truth*, so the slice is the same for every model compared on it. A query with ``signals``
  cannot be checked without the signals, so such a failure mode's slice is its fm_name frames
  only (``cut_ins``, ``occluded_pedestrians`` ...: their triggers alone would take in every hard
  brake). ``max_confidence`` has no meaning on ground truth and is ignored.

Regression suites (`Suite`) put a threshold on one metric of one slice; `run_suites` says which
pass. `default_suites` builds one per failure mode plus the long-tail and common suites. A
failure mode's suite scores its subject only (`longtail.evaluate.subjects`); the evaluate stage
hands `run_suites` those metrics, the drives they come from, and their bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from longtail.errors import InputError, fail_config

if TYPE_CHECKING:
    from longtail.catalog.failure_modes import FailureMode

CONDITION_TAGS: tuple[str, ...] = ("night", "fog", "rain", "glare")
"""Image tags that are conditions (`longtail.curate.tags.IMAGE_TAGS`); none of them is ``day_clear``."""
TRIGGER_TAG_PREFIX = "trigger:"
VEHICLE_TAGS = {"truck_view": "truck"}
"""Tags that give away the recording vehicle (`longtail.curate.tags.PREDICTION_TAGS`)."""
TEST_SPLITS: tuple[str, ...] = ("test_longtail", "test_common")
SliceKind = Literal["suite", "condition", "vehicle", "scenario", "failure_mode"]
REQUIRED_COLUMNS = ("frame_id", "split", "tags", "triggers", "fm_name", "boxes", "height")


@dataclass(frozen=True)
class Slice:
    """A named set of frames."""

    name: str  # "<kind>:<value>", e.g. "condition:night"
    kind: SliceKind
    title: str  # in words, for reports
    frame_ids: tuple[str, ...]
    rule: str  # how the frames were chosen, for reports


@dataclass(frozen=True)
class Suite:
    """A regression suite: ``metric`` of ``slice`` must be at least ``threshold``.

    ``metric`` is a key `metric_value` reads: ``map``, ``map50``, ``map75``, ``precision``,
    ``recall``, or ``<key>:<class>`` (``ap50:pedestrian``, ``recall:cyclist``...). A suite whose
    slice has fewer than ``min_frames`` frames is ``no_data``: it neither passes nor fails; one from
    fewer than ``min_drives`` drives or with fewer than ``min_objects`` scored objects is
    ``not_measurable``: a number from so little says nothing, so none is given.
    """

    name: str
    slice: str
    metric: str
    threshold: float
    min_frames: int = 1
    min_drives: int = 1
    min_objects: int = 1


@dataclass(frozen=True)
class SuiteResult:
    """How a model did on a suite.

    ``status``: passed, failed, no_data or not_measurable (``passed`` None for the last two, and
    ``value`` None when not measurable). ``ci``: the value's bootstrap interval over drives
    [lo, hi], or None. ``reason``: why a suite is no_data or not measurable. ``subject``: what the
    suite scores. ``critical``: its critical false positives and negatives at the operating point.
    """

    name: str
    slice: str
    metric: str
    threshold: float
    value: float | None
    frames: int
    status: Literal["passed", "failed", "no_data", "not_measurable"]
    passed: bool | None
    ci: list[float] | None = None
    drives: int | None = None
    objects: int | None = None
    measurable: bool = True
    reason: str | None = None
    subject: str | None = None
    critical: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def check_frames_table(frames: pd.DataFrame, source: str = "frames table") -> None:
    """Raise when the labels table lacks a column slices need.

    Raises:
        InputError: naming the missing columns.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frames.columns]
    if missing:
        raise InputError(f"{source}: lacks column(s) {missing}; pass a dataset version's labels.parquet "
                         f"(longtail.label.version.VERSION_LABELS_SCHEMA)")


def _list(value: Any) -> list[str]:
    return [] if value is None else [str(v) for v in value]


def frame_vehicle_types(frames: pd.DataFrame, vehicle_types: Mapping[str, str] | None = None) -> dict[str, str]:
    """The recording vehicle of each frame: the ``vehicle_type`` column, the mapping, a tag, or ``unknown``."""
    out: dict[str, str] = {}
    column = frames["vehicle_type"].tolist() if "vehicle_type" in frames.columns else [None] * len(frames)
    for fid, tags, col in zip(frames["frame_id"], frames["tags"], column, strict=True):
        vt = col or (vehicle_types or {}).get(fid)
        if not vt:
            vt = next((VEHICLE_TAGS[t] for t in _list(tags) if t in VEHICLE_TAGS), "unknown")
        out[fid] = str(vt)
    return out


def _frame_triggers(tags: list[str], triggers: list[str]) -> set[str]:
    return set(triggers) | {t[len(TRIGGER_TAG_PREFIX):] for t in tags if t.startswith(TRIGGER_TAG_PREFIX)}


def match_failure_mode(mode: FailureMode, row: Mapping[str, Any], vehicle_type: str = "unknown") -> bool:
    """Whether a labels-table row belongs to a failure mode's test slice (rule in the module docstring)."""
    if row.get("fm_name") == mode.name:
        return True
    q = mode.query
    if q.signals:
        return False  # not checkable on the table: fm_name only
    if not (q.tags_all or q.tags_any or q.triggers_any or q.vehicle_type or q.label_field):
        return False  # a query over nothing would take in every frame
    tags = set(_list(row.get("tags")))
    if q.tags_all and not set(q.tags_all) <= tags:
        return False
    if q.tags_any and not set(q.tags_any) & tags:
        return False
    if q.triggers_any and not set(q.triggers_any) & _frame_triggers(list(tags), _list(row.get("triggers"))):
        return False
    if q.vehicle_type and vehicle_type != q.vehicle_type:
        return False
    if q.label_field:
        raw = row.get("boxes")
        boxes = [b for b in ([] if raw is None else raw) if not q.label_classes or b["category"] in q.label_classes]
        if q.max_height_px is not None:
            boxes = [b for b in boxes if b["y2"] - b["y1"] <= q.max_height_px]
        if not boxes:
            return False
    return True


def make_slices(frames: pd.DataFrame, failure_modes: Iterable[FailureMode] = (),
                vehicle_types: Mapping[str, str] | None = None, splits: Sequence[str] = TEST_SPLITS) -> list[Slice]:
    """The slices of the test frames of a labels table (rules in the module docstring).

    Args:
        frames: a dataset version's labels table (columns frame_id, split, tags, triggers,
            fm_name, boxes; optionally vehicle_type).
        failure_modes: registry entries, one slice each (empty slices are kept: a suite on
            them reports no_data).
        vehicle_types: optional frame_id -> car | truck.
        splits: the splits evaluated (default both test suites).

    Returns:
        Slices in a fixed order: suites, conditions, vehicles, scenarios, failure modes. Condition
        and vehicle slices appear when they hold a frame; failure-mode and suite slices always.

    Raises:
        InputError: a required column is missing.
    """
    check_frames_table(frames)
    test = frames[frames["split"].isin(list(splits))]
    rows = test.to_dict("records")
    vtypes = frame_vehicle_types(test, vehicle_types)
    out: list[Slice] = []
    for split in splits:
        ids = tuple(r["frame_id"] for r in rows if r["split"] == split)
        out.append(Slice(f"suite:{split}", "suite", split.replace("_", " "), ids, f"split == {split}"))
    cond: dict[str, list[str]] = {t: [] for t in (*CONDITION_TAGS, "day_clear")}
    vehicles: dict[str, list[str]] = {}
    scenarios: dict[str, list[str]] = {}
    for r in rows:
        tags = _list(r["tags"])
        conds = [t for t in CONDITION_TAGS if t in tags] or ["day_clear"]
        for t in conds:
            cond[t].append(r["frame_id"])
        vehicles.setdefault(vtypes[r["frame_id"]], []).append(r["frame_id"])
        names = {f"trigger {t}" for t in _frame_triggers(tags, _list(r["triggers"]))}
        names |= {t for t in tags if t not in CONDITION_TAGS and t not in VEHICLE_TAGS
                  and not t.startswith(TRIGGER_TAG_PREFIX)}
        for n in names:
            scenarios.setdefault(n, []).append(r["frame_id"])
    for t, cids in cond.items():
        if cids:
            rule = "no night, fog, rain or glare tag" if t == "day_clear" else f"tag {t}"
            out.append(Slice(f"condition:{t}", "condition", t.replace("_", " "), tuple(cids), rule))
    for vt in sorted(vehicles):
        out.append(Slice(f"vehicle:{vt}", "vehicle", f"{vt} camera", tuple(vehicles[vt]),
                         "vehicle_type column, mapping, or truck_view tag"))
    for n in sorted(scenarios):
        key = n.replace("trigger ", "trigger:")
        out.append(Slice(f"scenario:{key}", "scenario", n.replace("_", " "), tuple(scenarios[n]),
                         f"trigger {n[8:]}" if n.startswith("trigger ") else f"tag {n}"))
    for mode in failure_modes:
        ids = tuple(r["frame_id"] for r in rows if match_failure_mode(mode, r, vtypes[r["frame_id"]]))
        query = mode.query.describe().replace(" in predictions", " in the ground truth")  # label conditions: on GT
        rule = f"fm_name == {mode.name}" + ("" if mode.query.signals else f", or query: {query}")
        out.append(Slice(f"failure_mode:{mode.name}", "failure_mode", mode.title, ids, rule))
    return out


# ---------------------------------------------------------------------------------------------
# Suites


def metric_value(result: Mapping[str, Any] | None, metric: str) -> float | None:
    """One number from an `evaluate_detections` result: ``map``, ``map50``, ``map75``, ``precision``,
    ``recall`` (totals at the operating point), or ``<per-class key>:<class>``.

    Returns:
        The value, or None when it is undefined (no ground truth, no detections, no result).

    Raises:
        ConfigError: for an unknown metric or class, listing the valid ones.
    """
    valid = "map, map50, map75, precision, recall, or <ap|ap50|ap75|precision|recall|fp|fn>:<class>"
    key, _, cls = metric.partition(":")
    if cls:
        if key not in ("ap", "ap50", "ap75", "precision", "recall", "fp", "fn"):
            raise fail_config("Suite", "metric", metric, f"Valid metrics are {valid}.")
        if result is None:
            return None
        if cls not in result["per_class"]:
            raise fail_config("Suite", "metric", metric, f"Valid classes are {list(result['per_class'])}.")
        value = result["per_class"][cls][key]
    elif key in ("map", "map50", "map75"):
        value = None if result is None else result[key]
    elif key in ("precision", "recall"):
        value = None if result is None else result["totals"][key]
    else:
        raise fail_config("Suite", "metric", metric, f"Valid metrics are {valid}.")
    return None if value is None else float(value)


def default_suites(failure_modes: Iterable[FailureMode] = (), metric: str = "map50", longtail_threshold: float = 0.5,
                   common_threshold: float = 0.6, failure_mode_threshold: float = 0.5,
                   overrides: Mapping[str, float] | None = None, min_frames: int = 1, min_drives: int = 1,
                   min_objects: int = 1) -> list[Suite]:
    """The regression suites every model must pass.

    Defaults: mAP@0.5 (``map50``) of at least 0.6 on the common-case suite and 0.5 on the
    long-tail suite and on each failure mode's slice. A detector that cannot reach half the AP on
    a failure mode it was collected for has not fixed it. ``overrides`` sets a suite's threshold
    by its name (``test_common``, ``test_longtail`` or the failure mode's name).

    Raises:
        ConfigError: an override names no suite.
    """
    limits = (min_frames, min_drives, min_objects)
    suites = [Suite("test_common", "suite:test_common", metric, common_threshold, *limits),
              Suite("test_longtail", "suite:test_longtail", metric, longtail_threshold, *limits)]
    suites += [Suite(m.name, f"failure_mode:{m.name}", metric, failure_mode_threshold, *limits)
               for m in failure_modes]
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {s.name for s in suites})
    if unknown:
        raise fail_config("EvalConfig", "suite_thresholds", unknown,
                          f"Name suites among {[s.name for s in suites]}.")
    return [Suite(s.name, s.slice, s.metric, float(overrides.get(s.name, s.threshold)), *limits) for s in suites]


def run_suites(slice_results: Mapping[str, Mapping[str, Any]], suites: Iterable[Suite]) -> list[SuiteResult]:
    """Check each suite on the slice results.

    Args:
        slice_results: slice name -> {"frames": n, "metrics": `evaluate_detections` result or None,
            and optionally "drives": n, "ci": {metric: [lo, hi]}, "subject": words, "critical": counts}.
        suites: the suites.

    Returns:
        One result per suite, in order. A suite fails when its value is below the threshold or
        undefined although the slice has objects (e.g. precision without a detection); it is
        ``no_data`` when its slice has fewer than ``min_frames`` frames, or the value is undefined
        because the slice holds no ground-truth object (of the metric's class, for a per-class metric);
        it is ``not_measurable`` (value None, reason given) with fewer than ``min_drives`` drives
        (when the slice result counts them) or ``min_objects`` scored objects.

    Raises:
        InputError: a suite names a slice that was not evaluated.
    """
    out = []
    for s in suites:
        if s.slice not in slice_results:
            raise InputError(f"suite {s.name!r}: slice {s.slice!r} was not evaluated; slices are "
                             f"{sorted(slice_results)}")
        res = slice_results[s.slice]
        frames = int(res["frames"])
        value = metric_value(res.get("metrics"), s.metric)
        metrics = res.get("metrics")
        cls = s.metric.partition(":")[2]
        objects = 0 if not metrics else metrics["per_class"][cls]["gt"] if cls else \
            sum(c["gt"] for c in metrics["per_class"].values())
        drives = res.get("drives")
        reason = None
        if frames < s.min_frames or (value is None and objects == 0):
            status: Literal["passed", "failed", "no_data", "not_measurable"] = "no_data"
            reason = f"{frames} frame(s), {objects} scored object(s)"
        elif drives is not None and drives < s.min_drives:
            status, reason = "not_measurable", f"{drives} drive(s), fewer than the {s.min_drives} needed"
        elif objects < s.min_objects:
            status, reason = "not_measurable", f"{objects} scored object(s), fewer than the {s.min_objects} needed"
        else:
            status = "passed" if value is not None and value >= s.threshold else "failed"
        measurable = status != "not_measurable"
        ci = (res.get("ci") or {}).get(s.metric) if measurable else None
        out.append(SuiteResult(s.name, s.slice, s.metric, s.threshold, value if measurable else None, frames, status,
                               status == "passed" if status in ("passed", "failed") else None,
                               ci=ci, drives=drives, objects=objects, measurable=measurable, reason=reason,
                               subject=res.get("subject"), critical=res.get("critical")))
    return out
