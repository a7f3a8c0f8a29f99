"""The evaluation's plotly figures: per-class AP, slice mAP@0.5, critical errors, and the deltas
against the champion. Shared by the HTML report and the evaluate notebook."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from longtail.evaluate.compare import CRITICAL_GROUPS


def _v(x: float | None) -> float:
    return math.nan if x is None else float(x)


def class_ap_figure(evaluation: Mapping[str, Any], champion: Mapping[str, Any] | None = None) -> go.Figure:
    """Per-class AP@[.5:.95] and AP@0.5 bars, the champion's beside the challenger's."""
    fig = go.Figure()
    runs = [(evaluation, evaluation.get("model") or "challenger")]
    if champion is not None:
        runs.append((champion, f"champion {champion.get('model') or ''}".strip()))
    for ev, name in runs:
        pc = ev["overall"]["per_class"]
        classes = list(pc)
        fig.add_bar(name=f"{name} AP@[.5:.95]", x=classes, y=[_v(pc[c]["ap"]) for c in classes])
        fig.add_bar(name=f"{name} AP@0.5", x=classes, y=[_v(pc[c]["ap50"]) for c in classes])
    fig.update_layout(title="Average precision per class", barmode="group", yaxis={"range": [0, 1], "title": "AP"},
                      height=380, margin={"t": 50, "b": 40})
    return fig


def slice_map_figure(evaluation: Mapping[str, Any], champion: Mapping[str, Any] | None = None) -> go.Figure:
    """mAP@0.5 of every slice with objects, horizontal bars (champion beside challenger)."""
    names = [n for n, s in evaluation["slices"].items() if s["metrics"] and s["metrics"]["map50"] is not None]
    fig = go.Figure()
    labels = [f"{n} ({evaluation['slices'][n]['frames']} fr)" for n in names]
    fig.add_bar(name=evaluation.get("model") or "challenger", y=labels, orientation="h",
                x=[evaluation["slices"][n]["metrics"]["map50"] for n in names])
    if champion is not None:
        cs = champion["slices"]
        fig.add_bar(name=f"champion {champion.get('model') or ''}".strip(), y=labels, orientation="h",
                    x=[_v(cs[n]["metrics"]["map50"]) if n in cs and cs[n]["metrics"] else math.nan for n in names])
    fig.update_layout(title="mAP@0.5 per slice", barmode="group", xaxis={"range": [0, 1], "title": "mAP@0.5"},
                      yaxis={"autorange": "reversed"}, height=max(300, 26 * len(names) * (2 if champion else 1) + 120),
                      margin={"l": 260, "t": 50})
    return fig


def critical_errors_figure(evaluation: Mapping[str, Any], champion: Mapping[str, Any] | None = None) -> go.Figure:
    """Critical false positives and negatives per group at the operating threshold."""
    fig = go.Figure()
    groups = list(CRITICAL_GROUPS)
    runs = [(evaluation, evaluation.get("model") or "challenger")]
    if champion is not None:
        runs.append((champion, f"champion {champion.get('model') or ''}".strip()))
    for ev, name in runs:
        for k, what in (("fp", "false positives"), ("fn", "false negatives")):
            fig.add_bar(name=f"{name} {what}", x=[g.replace("_", " ") for g in groups],
                        y=[ev["critical"][g][k] for g in groups])
    fig.update_layout(title="Critical errors at the operating threshold", barmode="group", height=360,
                      yaxis={"title": "objects"}, margin={"t": 50, "b": 40})
    return fig


def delta_figure(comparison: Mapping[str, Any]) -> go.Figure:
    """Challenger - champion of the rates (mAP overall, AP@0.5 per class, mAP@0.5 per slice, recall):
    green is better, red worse. Counts are in `critical_errors_figure`."""
    rows = [r for r in comparison["rows"] if r["delta"] is not None and
            (r["metric"].startswith("overall/") or r["metric"].endswith(("/ap50", "/map50")))]
    fig = go.Figure(go.Bar(x=[r["delta"] for r in rows], y=[r["metric"] for r in rows], orientation="h",
                           marker_color=["#1e8e3e" if r["better"] else "#c5221f" if r["better"] is False else "#999"
                                         for r in rows]))
    fig.update_layout(title="Challenger minus champion: mAP, AP and recall (green better, red worse)",
                      yaxis={"autorange": "reversed"},
                      height=max(300, 22 * len(rows) + 120), margin={"l": 220, "t": 50})
    return fig


# ---------------------------------------------------------------------------------------------
# Example frames
