"""The subject of each failure-mode suite: the objects its score is about.

A failure mode's frames hold many objects besides the one that makes them hard: the night frames
of ``night_pedestrians`` are full of cars, and scoring every box let the cars' AP stand in for the
pedestrians' (0.589 for the suite while pedestrian AP was 0.21). A suite scores its *subject*
only; every other ground-truth box in its frames is ignored (neither found nor missed, and a
detection on it is no false positive), and only detections of the subject's classes count.

The subject of a failure mode (`subject_for`):

1. `FAILURE_MODE_SUBJECTS` for the built-in ones: classes, a height limit, and the critical
   scenario whose marked actor is the subject (``cut_ins``: the cut-in vehicle).
2. Otherwise from its query: ``label_classes`` and ``max_height_px``.
3. Otherwise every object (the suite then scores its frames as a whole, and says so).

Where a subject is a scenario's actor, the simulator's ground truth marks it (``critical`` and
``scenario`` of `longtail.schemas.GT_OBJECT_TYPE`); `mark_subject` takes the labeled box of the
subject's class that overlaps a marked actor's visible box at IoU >= 0.5. A frame without marks
(a real drive, or a simulated one whose sidecar is gone) falls back to the subject's classes,
and the suite's ``subject.rule`` says how many frames did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from longtail.boxes import iou_matrix
from longtail.schemas import CATEGORIES

if TYPE_CHECKING:
    from longtail.catalog.failure_modes import FailureMode

SUBJECT_IOU = 0.5
"""IoU a labeled box needs with a marked actor's visible box to be that actor."""


@dataclass(frozen=True)
class Subject:
    """What a suite scores: boxes of ``classes``, at most ``max_height_px`` tall, and (when the ground
    truth marks it) the actor of the critical ``scenario``."""

    classes: tuple[str, ...]
    description: str
    max_height_px: float | None = None
    scenario: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


VEHICLES = ("car", "truck")
FAILURE_MODE_SUBJECTS: dict[str, Subject] = {
    "night_pedestrians": Subject(("pedestrian",), "pedestrians"),
    "small_pedestrians": Subject(("pedestrian",), "pedestrians at most 20 px tall", max_height_px=20.0),
    "occluded_pedestrians": Subject(("pedestrian",), "the occluded pedestrian stepping out",
                                    scenario="occluded_pedestrian"),
    "cut_ins": Subject(VEHICLES, "the cut-in vehicle", scenario="cut_in"),
    "emergency_lane_changes": Subject(CATEGORIES, "the actor forcing the lane change",
                                      scenario="emergency_lane_change"),
    "hard_brake_events": Subject(CATEGORIES, "the actor the vehicle braked for", scenario="emergency_braking"),
}
"""Subjects of the built-in failure modes (`longtail.curate.failure_modes.BUILTIN_FAILURE_MODES`)."""


def subject_for(mode: FailureMode) -> Subject:
    """A failure mode's subject (module docstring: the table, then its query, then every object)."""
    if mode.name in FAILURE_MODE_SUBJECTS:
        return FAILURE_MODE_SUBJECTS[mode.name]
    q = mode.query
    if q.label_classes or q.max_height_px is not None:
        classes = tuple(q.label_classes) or CATEGORIES
        what = " or ".join(classes) + " boxes"
        if q.max_height_px is not None:
            what += f" at most {q.max_height_px:g} px tall"
        return Subject(classes, what, max_height_px=q.max_height_px)
    return Subject(CATEGORIES, "every object (the failure mode names no subject)")


def mark_subject(boxes: Sequence[Mapping[str, Any]], subject: Subject,
                 marks: Sequence[Mapping[str, Any]] | None) -> tuple[list[dict[str, Any]], bool]:
    """A frame's ground truth of the subject's classes, every box that is not the subject marked ``ignore``.

    Boxes of other classes are left out: only detections of the subject's classes are scored, and
    a pedestrian detection on a car stays a false pedestrian.

    Args:
        boxes: the frame's labeled boxes {category, x1, y1, x2, y2}, pixel edges.
        subject: the suite's subject.
        marks: the frame's marked actors ({category, x1, y1, x2, y2, scenario}: visible extent,
            pixel edges), or None when the ground truth is unknown for this frame.

    Returns:
        (boxes of the subject's classes, in order, each with ``ignore`` True or False; whether marks decided the subject:
        False when the subject is a scenario's actor but the frame had no marks to tell it).
    """
    out = []
    keep = [b["category"] in subject.classes and
            (subject.max_height_px is None or float(b["y2"]) - float(b["y1"]) <= subject.max_height_px)
            for b in boxes]
    marked = subject.scenario is not None and marks is not None
    if marked:
        actors = [m for m in (marks or []) if m.get("scenario") == subject.scenario]
        coords = [[float(b[k]) for k in ("x1", "y1", "x2", "y2")] for b in boxes]
        ious = iou_matrix(coords, [[float(m[k]) for k in ("x1", "y1", "x2", "y2")] for m in actors])
        for i, b in enumerate(boxes):
            keep[i] = keep[i] and any(ious[i][j] >= SUBJECT_IOU and actors[j]["category"] == b["category"]
                                      for j in range(len(actors)))
    for b, k in zip(boxes, keep, strict=True):
        if b["category"] in subject.classes:
            out.append({**dict(b), "ignore": not k})
    return out, marked or subject.scenario is None


def subject_predictions(preds: Sequence[Mapping[str, Any]], subject: Subject) -> list[dict[str, Any]]:
    """Detections of the subject's classes (others are not the suite's business)."""
    return [dict(p) for p in preds if p["category"] in subject.classes]
