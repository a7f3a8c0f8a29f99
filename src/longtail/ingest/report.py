"""What came in: tables and figures of an ingest, for the ingest notebook."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from longtail.catalog.frames import list_manifests, load_frame_index
from longtail.errors import InputError

TRIGGER_COLORS = {"hard_braking": "#d62728", "disengagement": "#9467bd", "harsh_steering": "#ff7f0e",
                  "adas_alert": "#1f77b4"}


def log_table(root: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per ingested log or dataset: status, frames, triggers, every reason (damage) and note."""
    rows = []
    for m in list_manifests(root):
        counts: dict[str, int] = {}
        for t in m.get("triggers", []):
            counts[t["name"]] = counts.get(t["name"], 0) + 1
        rows.append({
            "log": Path(m.get("path", "")).name, "log_id": m["log_id"][:12],
            "vehicle": m.get("vehicle", {}).get("vehicle_id", m.get("source", "")),
            "status": m["status"], "frames": m.get("frames_kept", 0), "keyframes": m.get("keyframes", 0),
            "trigger frames": m.get("trigger_frames", 0),
            "triggers": ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
            "reasons": "; ".join(m.get("reasons") or []),
            "notes": "; ".join(m.get("notes") or []),
        })
    return pd.DataFrame(rows)


def trigger_timeline(root: str | os.PathLike[str], log_id: str | None = None) -> go.Figure:
    """Speed, deceleration and steering rate of a log's kept frames, trigger windows shaded."""
    # Logs with frames only: a signals-only drive has no frames to plot the features of.
    manifests = [m for m in list_manifests(root) if m.get("triggers") and m.get("frames_kept")]
    if log_id is None:
        manifests.sort(key=lambda m: -len(m["triggers"]))
        chosen = manifests[0] if manifests else None
    else:
        chosen = next((m for m in list_manifests(root) if m["log_id"].startswith(log_id)), None)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=("speed (m/s)", "deceleration (m/s²)", "steering-wheel rate (°/s)"))
    if chosen is None:
        fig.update_layout(title="no log with triggers")
        return fig
    df = load_frame_index(root)
    df = df[df.log_id == chosen["log_id"]]
    t0 = int(df.timestamp_ns.min())
    t = (df.timestamp_ns - t0) / 1e9
    for row, col in enumerate(("speed_mps", "decel_mps2", "steering_rate_dps"), start=1):
        fig.add_trace(go.Scatter(x=t, y=df[col], mode="markers", marker={"size": 3, "color": "#444"},
                                 showlegend=False, name=col), row=row, col=1)
    cfg = chosen["config"]["triggers"]
    for trig in chosen["triggers"]:
        a = (trig["onset_ns"] - cfg["pre_s"] * 1e9 - t0) / 1e9
        b = (trig["end_ns"] + cfg["post_s"] * 1e9 - t0) / 1e9
        fig.add_vrect(x0=a, x1=b, fillcolor=TRIGGER_COLORS.get(trig["name"], "#999"), opacity=0.2, line_width=0,
                      annotation_text=trig["name"], annotation_position="top left")
    fig.update_layout(height=600, title=f"{Path(chosen['path']).name}: triggers on a timeline",
                      xaxis3_title="seconds since the first kept frame")
    return fig


def frame_gallery(root: str | os.PathLike[str], frames: pd.DataFrame, columns: int = 4, width: int = 320) -> Image.Image:
    """A contact sheet of ``frames`` (rows of the frame index), each labelled with its triggers."""
    tiles = []
    for row in frames.itertuples():
        image = cv2.imread(str(Path(root) / row.store_path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{Path(root) / row.store_path}: frame {row.frame_id} is missing or unreadable")
        scale = width / image.shape[1]
        image = cv2.resize(image, (width, int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        label = ", ".join(row.triggers) if len(row.triggers) else ("keyframe" if row.keyframe else "")
        cv2.putText(image, label, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, label, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(image)
    if not tiles:
        return Image.new("RGB", (width, 40))
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    return Image.fromarray(cv2.cvtColor(sheet, cv2.COLOR_BGR2RGB))
