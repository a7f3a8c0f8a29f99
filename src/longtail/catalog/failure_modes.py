"""Failure modes: named, saved queries over the dataset, kept in a registry.

A failure mode is a query (`FailureModeQuery`) with a name. It is *discovered* the first time
its query matches frames: the registry (DATA/curate/failure_modes.json) records when, by which
query, how many frames and example frames, and the query is saved as a view on the FiftyOne
dataset so a researcher lands on it in the App. Later stages mark a failure mode fixed by a
model version, which times it from discovery to deployed fix.

The built-in catalogue (`BUILTIN_FAILURE_MODES`) reads the signals and tags Longtail has before
any label exists; queries that need a model's predictions stay *pending* until they exist.
Researchers add their own with `register_failure_mode` (``longtail curate --add-failure-mode``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator

from longtail.catalog.frames import SIGNAL_FIELDS
from longtail.catalog.root import DataRoot
from longtail.config import _Frozen
from longtail.errors import LongtailError
from longtail.storage import atomic_write_json

if TYPE_CHECKING:
    import fiftyone as fo

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
EXAMPLES = 12


class UnknownFailureModeError(LongtailError):
    """A failure mode name that is not in the registry."""


class FailureModeQuery(_Frozen):
    """A query over the dataset's fields. All given conditions must hold."""

    tags_all: tuple[str, ...] = Field((), description="scenario tags a frame must all carry")
    tags_any: tuple[str, ...] = Field((), description="scenario tags a frame must carry at least one of")
    triggers_any: tuple[str, ...] = Field((), description="triggers of which at least one covers the frame")
    vehicle_type: Literal["car", "truck"] | None = Field(None, description="recording vehicle type")
    signals: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="signal field -> [min, max] (inclusive; null for open)")
    label_field: Literal["predictions", "ground_truth"] | None = Field(
        None, description="label field whose objects the next conditions apply to")
    label_classes: tuple[str, ...] = Field((), description="classes of which the frame must contain one")
    max_height_px: float | None = Field(None, gt=0, description="object at most this tall, px")
    max_confidence: float | None = Field(None, gt=0, le=1, description="object scored at most this")

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: dict[str, tuple[float | None, float | None]]) -> dict[str, tuple[float | None, float | None]]:
        unknown = sorted(set(v) - set(SIGNAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; valid signals are {list(SIGNAL_FIELDS)}")
        return v

    def needs(self) -> tuple[str, ...]:
        """Dataset fields the query reads that may not exist yet."""
        return (self.label_field,) if self.label_field else ()

    def describe(self) -> str:
        """The query in words."""
        parts = []
        if self.tags_all:
            parts.append("tags " + " and ".join(self.tags_all))
        if self.tags_any:
            parts.append("any tag of " + ", ".join(self.tags_any))
        if self.triggers_any:
            parts.append("trigger " + " or ".join(self.triggers_any))
        if self.vehicle_type:
            parts.append(f"recorded by a {self.vehicle_type}")
        for name, (lo, hi) in self.signals.items():
            parts.append(f"{lo if lo is not None else '-inf'} <= {name} <= {hi if hi is not None else 'inf'}")
        if self.label_field:
            what = " or ".join(self.label_classes) or "object"
            extra = []
            if self.max_height_px is not None:
                extra.append(f"at most {self.max_height_px:g} px tall")
            if self.max_confidence is not None:
                extra.append(f"scored at most {self.max_confidence:g}")
            parts.append(f"a {what} in {self.label_field}" + (" " + ", ".join(extra) if extra else ""))
        return "; ".join(parts) or "every frame"

    def to_view(self, dataset: fo.Dataset) -> fo.DatasetView:
        """The FiftyOne view of matching frames."""
        from fiftyone import ViewField as F

        view = dataset.view()
        if self.tags_all:
            view = view.match_tags(list(self.tags_all), all=True)
        if self.tags_any:
            view = view.match_tags(list(self.tags_any))
        if self.triggers_any:
            view = view.match(F("triggers").contains(list(self.triggers_any)))
        if self.vehicle_type:
            view = view.match(F("vehicle_type") == self.vehicle_type)
        for name, (lo, hi) in self.signals.items():
            if lo is not None:
                view = view.match(F(f"signals.{name}") >= lo)
            if hi is not None:
                view = view.match(F(f"signals.{name}") <= hi)
        if self.label_field:
            cond = None
            if self.label_classes:
                cond = F("label").is_in(list(self.label_classes))
            if self.max_height_px is not None:
                h = F("bounding_box")[3] * F("$metadata.height") <= self.max_height_px
                cond = h if cond is None else cond & h
            if self.max_confidence is not None:
                c = F("confidence") <= self.max_confidence
                cond = c if cond is None else cond & c
            view = view.filter_labels(self.label_field, cond if cond is not None else F("label").exists(),
                                      only_matches=True)
        return view


class FailureMode(_Frozen):
    """A registry entry."""

    name: str
    title: str
    description: str
    query: FailureModeQuery
    status: Literal["pending", "open", "fixed"] = "pending"
    registered_at: str
    registered_by: str
    discovered_at: str | None = None
    discovered_by: str | None = None
    first_count: int | None = None
    count: int = 0
    examples: tuple[str, ...] = ()
    fixed_by: str | None = None
    fixed_at: str | None = None
    evidence: tuple[dict[str, Any], ...] = Field(
        (), description="measurements that opened or updated it (monitoring breaches: metric, value, threshold, batch)")
    timeline: tuple[dict[str, Any], ...] = Field(
        (), description="when each step of the loop happened to it: step (one of STEPS), at (ISO-8601 UTC), ref "
                        "(the artefact: query/trigger/breach, batch, label set, run, evaluation, model version, "
                        "deployment), detail; registries written before timelines load with none")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"failure mode name {v!r}: use 2-64 lower-case letters, digits and _ (e.g. night_pedestrians)")
        return v


STEPS = ("discovered", "mined", "labeled", "trained", "evaluated", "gated", "deployed")
"""The steps of the loop a failure mode's timeline records, in the order the loop takes them."""


def timeline_entry(step: str, ref: str, detail: str = "", at: str | None = None) -> dict[str, Any]:
    """One timeline entry: ``{"step", "at", "ref", "detail"}`` (``at`` defaults to now, UTC).

    Raises:
        LongtailError: for a step not in `STEPS`.
    """
    if step not in STEPS:
        raise LongtailError(f"timeline step {step!r} is not one of {list(STEPS)}")
    return {"step": step, "at": at or _now(), "ref": str(ref), "detail": detail}


BUILTIN_FAILURE_MODES: dict[str, tuple[str, str, FailureModeQuery]] = {
    "hard_brake_events": ("Hard-brake events", "The vehicle braked hard: something ahead demanded it.",
                          FailureModeQuery(triggers_any=("hard_braking",))),
    "cut_ins": ("Cut-ins", "Braking or a collision warning at speed while the ego holds its lane: a vehicle "
                "cut in ahead.",
                FailureModeQuery(triggers_any=("hard_braking", "adas_alert"),
                                 signals={"speed_mps": (8.0, None), "steering_rate_dps": (-15.0, 15.0)})),
    "occluded_pedestrians": ("Occluded pedestrians", "A hard stop at town speed: typically a person stepping out "
                             "from behind a parked vehicle.",
                             FailureModeQuery(triggers_any=("hard_braking",), signals={"speed_mps": (None, 12.0)})),
    "emergency_lane_changes": ("Emergency lane changes", "A harsh steering manoeuvre at speed.",
                               FailureModeQuery(triggers_any=("harsh_steering",), signals={"speed_mps": (10.0, None)})),
    "disengagements": ("Disengagements", "The driver took over from the assistance system.",
                       FailureModeQuery(triggers_any=("disengagement",))),
    "night_glare": ("Glare at night", "Headlights and street lamps saturate the camera at night.",
                    FailureModeQuery(tags_all=("night", "glare"))),
    "night_pedestrians": ("Night pedestrians", "Pedestrians the detector sees at night.",
                          FailureModeQuery(tags_all=("night",), label_field="predictions",
                                           label_classes=("pedestrian",))),
    "small_pedestrians": ("Small pedestrians", "Pedestrians under 20 px tall, which detectors trained here miss "
                          "most.",
                          FailureModeQuery(label_field="predictions", label_classes=("pedestrian",),
                                           max_height_px=20.0)),
}


def registry_path(root: str | os.PathLike[str]) -> Path:
    """DATA/curate/failure_modes.json."""
    return DataRoot.of(root).failure_modes


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def load_registry(root: str | os.PathLike[str]) -> dict[str, FailureMode]:
    """The registry by name; the built-in catalogue, pending, when there is none yet.

    Raises:
        LongtailError: naming the file and entry when the registry is malformed.
    """
    path = registry_path(root)
    if not path.exists():
        return {name: FailureMode(name=name, title=t, description=d, query=q, registered_at=_now(),
                                  registered_by="longtail (built-in catalogue)")
                for name, (t, d, q) in BUILTIN_FAILURE_MODES.items()}
    try:
        entries = json.loads(path.read_text())["failure_modes"]
        return {e["name"]: FailureMode.model_validate(e) for e in entries}
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise LongtailError(f"{path}: malformed failure-mode registry ({exc}); fix the entry or restore the file "
                            "from version control") from exc


def save_registry(root: str | os.PathLike[str], modes: dict[str, FailureMode]) -> None:
    """Write the registry atomically."""
    atomic_write_json(registry_path(root), {"failure_modes": [m.model_dump(mode="json") for m in modes.values()]})


def get_failure_modes(root: str | os.PathLike[str], names: list[str]) -> list[FailureMode]:
    """Registry entries by name.

    Raises:
        UnknownFailureModeError: listing the known names.
    """
    modes = load_registry(root)
    unknown = [n for n in names if n not in modes]
    if unknown:
        raise UnknownFailureModeError(f"unknown failure mode(s) {unknown} in {registry_path(root)}; known: "
                                      f"{sorted(modes)}. Add one with `longtail curate --add-failure-mode`")
    return [modes[n] for n in names]


def register_failure_mode(root: str | os.PathLike[str], name: str, query: dict[str, Any] | FailureModeQuery,
                          title: str = "", description: str = "", by: str = "user") -> FailureMode:
    """Add a failure mode (pending until `discover_failure_modes` runs).

    Raises:
        LongtailError: for a bad name, a bad query, or a name already registered.
    """
    modes = load_registry(root)
    if name in modes:
        raise LongtailError(f"failure mode {name!r} is already in {registry_path(root)}; pick another name")
    try:
        q = query if isinstance(query, FailureModeQuery) else FailureModeQuery.model_validate(query)
        mode = FailureMode(name=name, title=title or name.replace("_", " ").capitalize(), description=description,
                           query=q, registered_at=_now(), registered_by=by)
    except ValidationError as exc:
        raise LongtailError(f"failure mode {name!r}: {exc.errors()[0]['msg']} (field "
                            f"{'.'.join(str(x) for x in exc.errors()[0]['loc'])}); query fields are "
                            f"{', '.join(FailureModeQuery.model_fields)}") from exc
    modes[name] = mode
    save_registry(root, modes)
    return mode


EVIDENCE_KEPT = 50
"""Evidence entries a failure mode keeps (the newest)."""


def record_breach(root: str | os.PathLike[str], name: str, query: FailureModeQuery, *, title: str, description: str,
                  examples: list[str], evidence: dict[str, Any], by: str) -> FailureMode:
    """Open a failure mode, or update it, with a measured breach (monitoring's way in).

    1. A new name is registered *open* at once (discovered now, by ``by``), with its examples.
    2. An existing one is opened again (a fixed one is reopened: the fix did not hold), its
       examples are the new ones first, then the earlier ones (`EXAMPLES` kept), and the evidence
       is appended; evidence of the same batch and metric replaces the earlier entry, so
       recording one breach twice changes nothing.
    The next curation counts its frames and mines frames like them.

    Args:
        root: the data root.
        name: the failure mode (2-64 lower-case letters, digits and _).
        query: its query over the dataset (what curation counts and mines).
        title, description: for people (App views, reports).
        examples: frame ids behind the breach.
        evidence: what was measured: at least ``metric``, ``value``, ``threshold``, ``batch_id``.

    Returns:
        The saved entry.

    Raises:
        LongtailError: for a malformed name or registry.
    """
    missing = [k for k in ("metric", "value", "threshold", "batch_id") if k not in evidence]
    if missing:
        raise LongtailError(f"failure mode {name!r}: evidence lacks {missing}; give metric, value, threshold and batch_id")
    modes = load_registry(root)
    now = _now()
    entry = {**evidence, "at": now, "by": by}
    old = modes.get(name)
    try:
        if old is None:
            mode = FailureMode(name=name, title=title, description=description, query=query, status="open",
                               registered_at=now, registered_by=by, discovered_at=now, discovered_by=by,
                               first_count=len(examples), count=len(examples),
                               examples=tuple(dict.fromkeys(examples))[:EXAMPLES], evidence=(entry,),
                               timeline=(timeline_entry("discovered", _breach_ref(evidence), by, now),))
        else:
            same = (evidence["batch_id"], evidence["metric"])
            kept = tuple(e for e in old.evidence if (e.get("batch_id"), e.get("metric")) != same)
            if len(kept) != len(old.evidence) and old.status == "open":
                # The same breach recorded again: keep its first timestamp, change nothing else.
                entry = {**entry, **{k: v for e in old.evidence if (e.get("batch_id"), e.get("metric")) == same
                                     for k, v in e.items() if k in ("at", "by")}}
            update: dict[str, Any] = {
                "status": "open", "examples": tuple(dict.fromkeys([*examples, *old.examples]))[:EXAMPLES],
                "evidence": (*kept, entry)[-EVIDENCE_KEPT:],
            }
            if old.discovered_at is None:
                update.update(discovered_at=now, discovered_by=by, first_count=len(examples),
                              timeline=(*old.timeline, timeline_entry("discovered", _breach_ref(evidence), by, now)))
            if old.status == "fixed":
                update["evidence"] = (*kept, {**entry, "reopened": f"fixed by {old.fixed_by} at {old.fixed_at}"}
                                      )[-EVIDENCE_KEPT:]
                update.update(fixed_by=None, fixed_at=None)
            mode = old.model_copy(update=update)
    except ValidationError as exc:
        raise LongtailError(f"failure mode {name!r}: {exc.errors()[0]['msg']}") from exc
    if old is None or mode.model_dump(mode="json") != old.model_dump(mode="json"):
        modes[name] = mode
        save_registry(root, modes)
    return mode


def _breach_ref(evidence: dict[str, Any]) -> str:
    """A breach as a timeline reference: the metric, its value against the threshold, the batch."""
    return (f"breach {evidence['metric']}={evidence['value']} (threshold {evidence['threshold']}) "
            f"in {evidence['batch_id']}")


def discover_failure_modes(root: str | os.PathLike[str], dataset: fo.Dataset) -> dict[str, FailureMode]:
    """Run every registered query; record discoveries and counts; save each open one as a view.

    Returns:
        The updated registry.
    """
    modes = load_registry(root)
    before = {n: m.model_dump(mode="json") for n, m in modes.items()}
    schema = dataset.get_field_schema()
    now = _now()
    for name, mode in list(modes.items()):
        if any(f not in schema for f in mode.query.needs()):
            continue  # e.g. needs predictions: stays pending until a model has run
        view = mode.query.to_view(dataset)
        count = len(view)
        update: dict[str, Any] = {"count": count}
        if count and mode.discovered_at is None:
            by = f"query: {mode.query.describe()}"
            update.update(status="open", discovered_at=now, first_count=count, discovered_by=by,
                          timeline=(*mode.timeline, timeline_entry("discovered", by, f"{count} frame(s) matched",
                                                                   now)),
                          examples=tuple(view.limit(EXAMPLES).values("frame_id")))
        modes[name] = mode.model_copy(update=update)
        view_name = saved_view_name(name)
        if modes[name].status != "pending" and not dataset.has_saved_view(view_name):
            dataset.save_view(view_name, view, description=f"{mode.title}: {mode.description}")
    if {n: m.model_dump(mode="json") for n, m in modes.items()} != before or not registry_path(root).exists():
        save_registry(root, modes)
    return modes


def saved_view_name(name: str) -> str:
    """The FiftyOne saved view of a failure mode."""
    return "fm-" + name.replace("_", "-")
