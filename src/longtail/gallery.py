"""Frame galleries for notebooks and reports: thumbnails with boxes drawn, embedded as JPEG data
URIs so that a rendered report stands alone. Shared by the curate and label reports."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from longtail.errors import InputError

CATEGORY_COLORS = {"car": "#3cdc3c", "truck": "#28a0e6", "pedestrian": "#f02828", "cyclist": "#f0dc28"}
"""Colour of each object class in galleries (RGB hex), the same as the simulator's preview."""

@dataclass(frozen=True)
class Gallery:
    """A grid of captioned frame thumbnails; renders inline in a notebook."""

    html: str
    frame_ids: tuple[str, ...]

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<Gallery of {len(self.frame_ids)} frames>"


def draw_boxes(image: np.ndarray, boxes: Iterable[Mapping[str, Any]], scale: float = 1.0,
               thickness: int = 2) -> np.ndarray:
    """A copy of a BGR ``image`` with ``boxes`` drawn in their class colours (`CATEGORY_COLORS`;
    white for an unknown class).

    Args:
        image: the image, BGR, possibly resized from the one the boxes refer to.
        boxes: mappings with category, x1, y1, x2, y2 in the internal convention (pixel edges of
            the original image, x2/y2 exclusive).
        scale: thumbnail width / original width.
        thickness: line width, px.
    """
    out = image.copy()
    for box in boxes:
        rgb = CATEGORY_COLORS.get(str(box["category"]), "#ffffff")
        bgr = (int(rgb[5:7], 16), int(rgb[3:5], 16), int(rgb[1:3], 16))
        # x2/y2 are exclusive edges: the last pixel inside the box is x2 - 1.
        x1, y1 = round(float(box["x1"]) * scale), round(float(box["y1"]) * scale)
        x2, y2 = round(float(box["x2"]) * scale) - 1, round(float(box["y2"]) * scale) - 1
        cv2.rectangle(out, (x1, y1), (max(x1, x2), max(y1, y2)), bgr, thickness)
    return out


def gallery(root: str | os.PathLike[str], frames: pd.DataFrame, columns: int = 4, width: int = 240,
            title: str = "") -> Gallery:
    """Thumbnails of ``frames`` with captions, in a grid.

    Args:
        root: the data root.
        frames: one row per frame with ``frame_id``, ``store_path`` (relative to the root, or
            absolute), optionally ``caption`` and optionally ``boxes`` (box mappings in the
            original image's pixels, drawn with `draw_boxes`).
        columns: thumbnails per row.
        width: thumbnail width, px.
        title: a heading above the grid (plain text).

    Raises:
        InputError: naming the file when a frame image is missing or unreadable.
    """
    cells = []
    for row in frames.itertuples():
        path = Path(root) / str(row.store_path)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: frame {row.frame_id} is missing or unreadable")
        scale = width / image.shape[1]
        image = cv2.resize(image, (width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        boxes = getattr(row, "boxes", None)
        if boxes is not None and len(boxes):
            image = draw_boxes(image, boxes, scale)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise InputError(f"{path}: frame {row.frame_id} could not be encoded as a thumbnail")
        caption = html.escape(str(getattr(row, "caption", "")))
        cells.append(
            f'<figure style="margin:0;width:{width}px"><img src="data:image/jpeg;base64,'
            f'{base64.b64encode(jpeg.tobytes()).decode()}" width="{width}" alt="frame {html.escape(row.frame_id)}"'
            f' title="{html.escape(row.frame_id)}"/><figcaption style="font-size:11px;line-height:1.25">'
            f"<code>{html.escape(row.frame_id[:12])}</code> {caption}</figcaption></figure>")
    head = f"<h4>{html.escape(title)}</h4>" if title else ""
    body = "".join(cells) or "<p><em>no frames</em></p>"
    grid = (f'<div style="display:grid;grid-template-columns:repeat({columns},{width}px);gap:6px">{body}</div>'
            if cells else body)
    return Gallery(html=head + grid, frame_ids=tuple(frames["frame_id"]) if len(frames) else ())
