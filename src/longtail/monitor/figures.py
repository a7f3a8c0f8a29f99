"""The monitoring figures: trends across batches and model versions, and the latest batch's
prediction histograms. Shared by the HTML report and the monitor notebook.

Every trend's x axis is the batch, in the order it was monitored ("3 · mb-1a2b… · v4": number,
batch id, champion version); markers take one colour per champion version, so a new model's
batches stand out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

Record = Mapping[str, Any]


def batch_label(i: int, record: Record) -> str:
    """The x label of a batch: its number, short id and champion version."""
    return f"{i + 1} · {record['batch_id'][3:11]} · v{record['champion']['version']}"


def _colors(history: Sequence[Record]) -> list[str]:
    versions = sorted({str(r["champion"]["version"]) for r in history}, key=lambda v: int(v) if v.isdigit() else 0)
    palette = qualitative.Plotly
    of = {v: palette[i % len(palette)] for i, v in enumerate(versions)}
    return [of[str(r["champion"]["version"])] for r in history]


def _v(x: float | None) -> float:
    return math.nan if x is None else float(x)


def drift_trend_figure(history: Sequence[Record]) -> go.Figure:
    """Domain-classifier ROC AUC and MMD p-value per batch, with their thresholds."""
    from plotly.subplots import make_subplots

    x = [batch_label(i, r) for i, r in enumerate(history)]
    ok = [r["drift"].get("status") == "evaluated" for r in history]
    auc = [_v(r["drift"]["domain"]["auc"]) if k else math.nan for r, k in zip(history, ok, strict=True)]
    p = [_v(r["drift"]["mmd"]["p_value"]) if k else math.nan for r, k in zip(history, ok, strict=True)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Domain classifier ROC AUC (0.5: like training)",
                                                        "MMD permutation p-value (low: drift)"))
    colors = _colors(history)
    fig.add_scatter(x=x, y=auc, mode="lines+markers", name="ROC AUC", marker={"color": colors, "size": 10}, row=1, col=1)
    fig.add_scatter(x=x, y=p, mode="lines+markers", name="p-value", marker={"color": colors, "size": 10}, row=1, col=2)
    if history:
        cfg = history[-1]["config"]
        if cfg.get("domain_auc_max") is not None:
            fig.add_hline(y=cfg["domain_auc_max"], line_dash="dash", line_color="#c5221f", row=1, col=1)
        if cfg.get("mmd_p_min") is not None:
            fig.add_hline(y=cfg["mmd_p_min"], line_dash="dash", line_color="#c5221f", row=1, col=2)
    fig.update_yaxes(range=[0.3, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", range=[-3.2, 0.05], row=1, col=2)
    fig.update_layout(title="Drift of new drives against the champion's training drives", showlegend=False,
                      height=380, margin={"t": 80, "b": 90})
    return fig


def rates_trend_figure(history: Sequence[Record]) -> go.Figure:
    """Trigger and disengagement rates per 100 km per batch; dotted: the training drives' rates."""
    x = [batch_label(i, r) for i, r in enumerate(history)]
    names = sorted({t for r in history for t in r.get("rates") or {}})
    fig = go.Figure()
    palette = qualitative.D3
    for k, name in enumerate(names):
        color = palette[k % len(palette)]
        fig.add_scatter(x=x, y=[_v((r.get("rates") or {}).get(name, {}).get("rate")) for r in history],
                        mode="lines+markers", name=name.replace("_", " "), line={"color": color})
        fig.add_scatter(x=x, y=[_v((r.get("rates") or {}).get(name, {}).get("ref_rate")) for r in history],
                        mode="lines", name=f"{name.replace('_', ' ')} (training)", showlegend=False,
                        line={"color": color, "dash": "dot"})
    fig.update_layout(title="Triggers and disengagements per 100 km (dotted: training drives)", height=380,
                      yaxis={"title": "per 100 km", "rangemode": "tozero"}, margin={"t": 50, "b": 90})
    return fig


def shadow_trend_figure(history: Sequence[Record]) -> go.Figure:
    """Frames where the challenger in shadow disagrees with the champion, per 1,000 frames."""
    x = [batch_label(i, r) for i, r in enumerate(history)]
    y = [_v((r.get("shadow") or {}).get("per_1000")) for r in history]
    text = [f"challenger v{r['challenger']['version']}" if r.get("challenger") else "no challenger" for r in history]
    fig = go.Figure(go.Bar(x=x, y=y, text=text, marker={"color": _colors(history)}))
    fig.update_layout(title="Shadow mode: frames of disagreement per 1,000 frames", height=340,
                      yaxis={"title": "per 1,000 frames", "rangemode": "tozero"}, margin={"t": 50, "b": 90})
    return fig


def mix_trend_figure(history: Sequence[Record], condition: str = "time_of_day") -> go.Figure:
    """Share of keyframes per value of a condition: the training drives, then each batch (stacked)."""
    x = ["training drives", *(batch_label(i, r) for i, r in enumerate(history))]
    counts = [history[-1]["mix"][condition]["reference"] if history else {},
              *(r["mix"][condition]["batch"] for r in history)]
    values = sorted({v for c in counts for v in c})
    fig = go.Figure()
    for v in values:
        fig.add_bar(name=v, x=x, y=[c.get(v, 0) / max(sum(c.values()), 1) for c in counts])
    fig.update_layout(title=f"Mix of {condition.replace('_', ' ')} (share of keyframes)", barmode="stack", height=340,
                      yaxis={"range": [0, 1], "tickformat": ".0%"}, margin={"t": 50, "b": 90})
    return fig


def confidence_figure(record: Record) -> go.Figure:
    """The champion's confidence histogram on the batch against its validation drives (shares)."""
    conf = record["predictions"]["confidence"]
    fig = go.Figure()
    for side, name in (("reference", "validation drives"), ("batch", "this batch")):
        total = max(sum(conf[side]), 1)
        fig.add_bar(name=name, x=conf["bins"], y=[c / total for c in conf[side]])
    fig.update_layout(title=f"Detection confidence (scores from {record['predictions']['score_floor']:g})",
                      barmode="group", height=340, yaxis={"tickformat": ".0%", "title": "share of detections"},
                      xaxis={"title": "score bin (lower edge)"}, margin={"t": 50})
    return fig


def class_figure(record: Record) -> go.Figure:
    """Class frequencies of the champion's detections at its operating thresholds (shares)."""
    classes = record["predictions"]["classes"]
    fig = go.Figure()
    for side, name in (("reference", "validation drives"), ("batch", "this batch")):
        total = max(sum(classes[side].values()), 1)
        fig.add_bar(name=name, x=list(classes[side]), y=[v / total for v in classes[side].values()])
    fig.update_layout(title="Detections per class at the operating thresholds", barmode="group", height=340,
                      yaxis={"tickformat": ".0%", "title": "share of detections"}, margin={"t": 50})
    return fig
