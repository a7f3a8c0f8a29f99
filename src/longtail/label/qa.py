"""Label QA: which labeled frames may enter a dataset version, and why the others are held.

Every frame that comes back from labeling (Label Studio or the simulated labeler) passes these
checks before it may enter a dataset version. A frame with any finding is held for review;
each finding is one sentence naming the box, its class and coordinates, and what is wrong.

Checks (their short ids are the keys of the QA report):

- ``non_finite``: a coordinate is NaN or infinite.
- ``degenerate``: a box narrower or shorter than ``min_box_px`` (inverted boxes included).
- ``out_of_image``: a box reaches beyond the image by more than ``out_of_image_tolerance_px``.
- ``unknown_class``: a class outside ``classes``.
- ``disagrees_with_prelabel``: a confident pre-label (score >= ``prelabel_confidence``) has no
  submitted box of its class overlapping it with IoU >= ``disagreement_iou``. The labeler may be
  right (the model was confidently wrong) but a reviewer should look.
- ``empty_but_model_saw``: nothing was drawn although the model saw objects with score >=
  ``empty_prelabel_confidence``. The pre-labels this finding names are not repeated one by one
  as ``disagrees_with_prelabel``.

Boxes are in the internal convention (`longtail.boxes`: continuous pixel edges, x2/y2 exclusive)
as mappings with the fields of `longtail.schemas.BOX_TYPE`, or tuples
``(category, x1, y1, x2, y2[, score])``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
from pydantic import Field, field_validator

from longtail.boxes import iou_matrix
from longtail.config import _Frozen
from longtail.errors import SchemaError
from longtail.schemas import CATEGORIES

CHECKS: tuple[str, ...] = (
    "non_finite",
    "degenerate",
    "out_of_image",
    "unknown_class",
    "disagrees_with_prelabel",
    "empty_but_model_saw",
)
"""Ids of the QA checks, in the order a frame's findings are listed."""

ROW_KEYS = ("frame_id", "boxes", "prelabels", "width", "height")
"""Keys every row given to `run_qa` must have."""


class LabelBox(TypedDict):
    """One box with the fields of `longtail.schemas.BOX_TYPE` (internal pixel-edge convention)."""

    category: str
    x1: float
    y1: float
    x2: float
    y2: float
    score: float


BoxLike = Mapping[str, Any] | Sequence[Any]
"""A `LabelBox`-like mapping, or a tuple ``(category, x1, y1, x2, y2[, score])``."""


class QAConfig(_Frozen):
    """Thresholds of label QA. Pixel values refer to the labeled image."""

    min_box_px: float = Field(2.0, ge=0, le=100, description="a box narrower or shorter than this is degenerate, px")
    out_of_image_tolerance_px: float = Field(
        1.0, ge=0, le=100, description="how far a box may reach beyond the image edge before it is held, px")
    prelabel_confidence: float = Field(
        0.7, ge=0, le=1, description="pre-labels at least this confident must be matched by a submitted box")
    disagreement_iou: float = Field(
        0.3, gt=0, le=1, description="a confident pre-label whose best same-class box has a lower IoU disagrees strongly")
    empty_prelabel_confidence: float = Field(
        0.5, ge=0, le=1, description="an empty frame is held when the model saw objects at least this confident")
    classes: tuple[str, ...] = Field(CATEGORIES, min_length=1, description="valid classes")

    @field_validator("classes")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v) or any(not c for c in v):
            raise ValueError(f"classes must be distinct, non-empty names, got {list(v)}")
        return v



def as_label_box(box: BoxLike) -> LabelBox:
    """Normalise a box to a `LabelBox` (score 1.0 when a tuple has none).

    Raises:
        SchemaError: when a mapping lacks a field or a tuple has the wrong length.
    """
    if isinstance(box, Mapping):
        missing = [k for k in ("category", "x1", "y1", "x2", "y2") if k not in box]
        if missing:
            raise SchemaError(f"box {dict(box)!r} lacks field(s) {missing}; boxes have the fields of "
                              "longtail.schemas.BOX_TYPE: category, x1, y1, x2, y2, score")
        score = box.get("score")
        return LabelBox(category=str(box["category"]), x1=float(box["x1"]), y1=float(box["y1"]), x2=float(box["x2"]),
                        y2=float(box["y2"]), score=1.0 if score is None else float(score))
    if len(box) not in (5, 6):
        raise SchemaError(f"box {tuple(box)!r} has {len(box)} values; expected (category, x1, y1, x2, y2[, score])")
    category, x1, y1, x2, y2 = box[:5]
    return LabelBox(category=str(category), x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2),
                    score=float(box[5]) if len(box) == 6 else 1.0)


def box_array(boxes: Iterable[BoxLike]) -> np.ndarray:
    """The coordinates of ``boxes`` as an (N, 4) float64 array of x1, y1, x2, y2."""
    rows = [(b["x1"], b["y1"], b["x2"], b["y2"]) for b in map(as_label_box, boxes)]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


def iou(a: BoxLike | Sequence[float], b: BoxLike | Sequence[float]) -> float:
    """Intersection over union of two boxes (`LabelBox`-like, or plain ``(x1, y1, x2, y2)``)."""
    return float(iou_matrix(_coords(a)[None, :], _coords(b)[None, :])[0, 0])


def _coords(box: BoxLike | Sequence[float]) -> np.ndarray:
    if not isinstance(box, Mapping) and len(box) == 4:
        return np.asarray(box, dtype=np.float64)
    lb = as_label_box(box)
    return np.array([lb["x1"], lb["y1"], lb["x2"], lb["y2"]], dtype=np.float64)


def describe_box(box: LabelBox) -> str:
    """``car 10.0,5.0,30.0,40.0``: a box's class and coordinates, as QA findings name them."""
    return f"{box['category']} {box['x1']:.1f},{box['y1']:.1f},{box['x2']:.1f},{box['y2']:.1f}"


def compute_findings(boxes: Iterable[BoxLike], prelabels: Iterable[BoxLike], width: int, height: int,
                     config: QAConfig) -> list[tuple[str, str]]:
    """Every QA finding of one frame as ``(check id, sentence)`` pairs; see `check_frame`."""
    cfg = config
    subs = [as_label_box(b) for b in boxes]
    pres = [as_label_box(b) for b in prelabels]
    found: list[tuple[str, str]] = []
    # 1. Per submitted box: geometry, then class. A non-finite box gets no geometry checks.
    for i, b in enumerate(subs):
        name = f"box {i} ({describe_box(b)})"
        coords = (b["x1"], b["y1"], b["x2"], b["y2"])
        if not all(math.isfinite(v) for v in coords):
            bad = [k for k, v in zip(("x1", "y1", "x2", "y2"), coords, strict=True) if not math.isfinite(v)]
            found.append(("non_finite", f"{name} has non-finite coordinate(s) {', '.join(bad)}"))
        else:
            w, h = b["x2"] - b["x1"], b["y2"] - b["y1"]
            problems = []
            if w < cfg.min_box_px:
                problems.append(f"{w:.1f} px wide" + (" (x2 is left of x1)" if w < 0 else ""))
            if h < cfg.min_box_px:
                problems.append(f"{h:.1f} px tall" + (" (y2 is above y1)" if h < 0 else ""))
            if problems:
                found.append(("degenerate", f"{name} is degenerate: {' and '.join(problems)} (min {cfg.min_box_px:.1f})"))
            tol = cfg.out_of_image_tolerance_px
            beyond = {"left": -b["x1"], "top": -b["y1"], "right": b["x2"] - width, "bottom": b["y2"] - height}
            sides = [f"{d:.1f} px on the {side}" for side, d in beyond.items() if d > tol]
            if sides:
                found.append(("out_of_image", f"{name} is outside the {width}x{height} image by {', '.join(sides)} "
                                              f"(tolerance {tol:.1f})"))
        if b["category"] not in cfg.classes:
            found.append(("unknown_class", f"{name} has unknown class {b['category']!r}; valid classes are "
                                           f"{', '.join(cfg.classes)}"))
    # 2. Against the pre-labels: an empty frame the model saw objects in, or confident pre-labels left unmatched.
    seen = [p for p in pres if p["score"] >= cfg.empty_prelabel_confidence] if not subs else []
    if seen:
        listed = ", ".join(f"{p['category']} {p['score']:.2f}" for p in seen)
        found.append(("empty_but_model_saw", f"labeler drew nothing but the model saw {len(seen)} object(s) with "
                                             f"confidence >= {cfg.empty_prelabel_confidence:.2f} ({listed})"))
    ious = iou_matrix(box_array(pres), box_array(subs))
    for j, p in enumerate(pres):
        # Pre-labels the empty-frame finding already names are not repeated one by one.
        if p["score"] < cfg.prelabel_confidence or any(p is q for q in seen):
            continue
        same = [i for i, b in enumerate(subs) if b["category"] == p["category"]]
        best = max(same, key=lambda i: ious[j, i]) if same else None
        if best is not None and ious[j, best] >= cfg.disagreement_iou:
            continue
        where = (f"best is box {best} with IoU {ious[j, best]:.2f}" if best is not None
                 else f"no {p['category']} box was drawn")
        found.append(("disagrees_with_prelabel",
                      f"pre-label {j} ({describe_box(p)}, score {p['score']:.2f}) disagrees strongly with the labels: "
                      f"no {p['category']} box overlaps it with IoU >= {cfg.disagreement_iou:.2f} ({where})"))
    return found


def check_frame(boxes: Iterable[BoxLike], prelabels: Iterable[BoxLike], width: int, height: int,
                config: QAConfig | None = None) -> list[str]:
    """Why one labeled frame must be held back; empty when it passes.

    Args:
        boxes: the submitted labels (internal pixel-edge boxes).
        prelabels: the boxes the labeler started from, with detector scores (may be empty).
        width, height: image size, px.
        config: QA thresholds (defaults when None).

    Returns:
        One sentence per finding, naming the box index, class, coordinates and the problem, e.g.
        ``"box 2 (car 10.0,5.0,10.0,40.0) is degenerate: 0.0 px wide (min 2.0)"``.

    Raises:
        SchemaError: when a box lacks a field.
    """
    return [text for _, text in compute_findings(boxes, prelabels, width, height, config or QAConfig())]


def run_qa(rows: Iterable[Mapping[str, Any]], config: QAConfig | None = None
           ) -> tuple[list[bool], list[list[str]], dict[str, Any]]:
    """Run label QA over labeled frames.

    Args:
        rows: one mapping per frame with keys frame_id, boxes, prelabels, width, height (px), e.g.
            the rows of a `longtail.schemas.LABEL_SET_SCHEMA` table.
        config: QA thresholds (defaults when None).

    Returns:
        ``accepted`` (one flag per row), ``reasons`` (the findings of each row, empty when
        accepted) and the QA report: ``config``, ``frames``, ``accepted``, ``held``, ``checks``
        (per check id: ``findings`` and ``frames`` it held), and ``held_frames`` (frame_id and
        reasons of each held frame, in input order). The report is JSON-serialisable.

    Raises:
        SchemaError: when a row lacks a key or has a non-positive image size.
    """
    cfg = config or QAConfig()
    accepted: list[bool] = []
    reasons: list[list[str]] = []
    checks = {c: {"findings": 0, "frames": 0} for c in CHECKS}
    held_frames: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise SchemaError(f"label row {n} lacks key(s) {missing}; each row needs {list(ROW_KEYS)}")
        width, height = int(row["width"]), int(row["height"])
        if width <= 0 or height <= 0:
            raise SchemaError(f"label row {n} (frame {row['frame_id']}): image size {width}x{height} must be > 0; "
                              "take width and height from the frame index")
        found = compute_findings(row["boxes"], row["prelabels"], width, height, cfg)
        for check in dict.fromkeys(c for c, _ in found):
            checks[check]["frames"] += 1
        for check, _ in found:
            checks[check]["findings"] += 1
        texts = [t for _, t in found]
        accepted.append(not texts)
        reasons.append(texts)
        if texts:
            held_frames.append({"frame_id": str(row["frame_id"]), "reasons": texts})
    report: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "frames": len(accepted),
        "accepted": sum(accepted),
        "held": len(accepted) - sum(accepted),
        "checks": checks,
        "held_frames": held_frames,
    }
    return accepted, reasons, report
