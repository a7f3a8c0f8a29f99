"""Example frames for the report: ground truth (solid) and predictions (dashed) drawn on the frames
where the challenger errs most (or most against the champion)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from longtail.detector.metrics import Boxes
from longtail.errors import InputError
from longtail.evaluate.run import select_example_frames
from longtail.gallery import CATEGORY_COLORS

EXAMPLE_WIDTH_PX = 480
"""Example frames narrower than this are scaled up by a whole factor (at most 4) before drawing."""


@dataclass(frozen=True)
class Example:
    """One example frame to draw: its image, ground-truth and predicted boxes (pixel edges)."""

    frame_id: str
    image_path: Path
    gt: tuple[Mapping[str, Any], ...]
    preds: tuple[Mapping[str, Any], ...]
    caption: str


def make_examples(evaluation: Mapping[str, Any], predictions: Mapping[str, Boxes], frames_df: pd.DataFrame,
                  version_dir: str | os.PathLike[str], champion: Mapping[str, Any] | None = None,
                  n: int = 6) -> list[Example]:
    """The example frames of the worst regressions (`select_example_frames`), ready to draw.

    Predictions below the evaluation's operating threshold are left out: they are what the
    deployed system would not report.
    """
    threshold = evaluation["config"]["score_threshold"]
    rows = frames_df.set_index("frame_id")
    out = []
    for fid, why in select_example_frames(evaluation, champion, n):
        row = rows.loc[fid]
        gt = tuple(dict(b) for b in (row["boxes"] if row["boxes"] is not None else []))
        preds = tuple(dict(b) for b in predictions.get(fid, ()) if b["score"] >= threshold)
        out.append(Example(fid, Path(version_dir) / str(row["image_path"]), gt, preds, why))
    return out


def _bgr(hex_color: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return (b, g, r)


def _dashed_rect(img: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color: tuple[int, int, int],
                 thickness: int, dash: int = 6) -> None:
    (x1, y1), (x2, y2) = p1, p2
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        for s in range(a, b, 2 * dash):
            e = min(s + dash, b)
            q1, q2 = ((s, fixed), (e, fixed)) if horizontal else ((fixed, s), (fixed, e))
            cv2.line(img, q1, q2, color, thickness)


def draw_example(example: Example) -> bytes:
    """The frame with ground truth (solid) and predictions (dashed, with score) drawn, as JPEG bytes.

    Raises:
        InputError: the image is missing or unreadable.
    """
    img = cv2.imread(str(example.image_path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{example.image_path}: image of frame {example.frame_id} missing or unreadable; restore the "
                         "dataset version (restore_version)")
    k = max(1, min(4, math.ceil(EXAMPLE_WIDTH_PX / img.shape[1])))
    if k > 1:
        img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)

    def pts(b: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
        # Pixel edges -> the last pixel inside the box (x2/y2 are exclusive).
        return ((round(b["x1"] * k), round(b["y1"] * k)), (max(round(b["x2"] * k) - 1, 0), max(round(b["y2"] * k) - 1, 0)))

    for b in example.gt:
        p1, p2 = pts(b)
        cv2.rectangle(img, p1, p2, _bgr(CATEGORY_COLORS.get(b["category"], "#ffffff")), 2)
    for b in example.preds:
        p1, p2 = pts(b)
        color = _bgr(CATEGORY_COLORS.get(b["category"], "#ffffff"))
        _dashed_rect(img, p1, p2, color, 1)
        cv2.putText(img, f"{b['category'][:3]} {b['score']:.2f}", (p1[0], max(p1[1] - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, color, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise InputError(f"{example.image_path}: could not encode frame {example.frame_id} as JPEG")
    return buf.tobytes()


# ---------------------------------------------------------------------------------------------
# HTML
