"""The monitoring report for product managers: one self-contained HTML file, no code shown.

Top to bottom (`render_report`):

1. ``#breaches``: open breaches first, newest first: the batch, the rule broken with its value and
   threshold, the failure mode it opened (still open in the registry) and how many example frames
   the next curation mines from. Or a line saying nothing is open.
2. ``#latest``: KPI cards of the latest batch: drift (ROC AUC, MMD p-value), disengagements per
   100 km against the training drives, shadow disagreements per 1,000 frames, km and frames.
3. ``#trends``: drift, trigger rates, shadow disagreements, and the condition mix (time of day,
   weather) across every batch, one colour per champion version.
4. ``#predictions``: the latest batch's confidence and class histograms against the validation drives.
5. ``#batches``: every batch monitored: logs, km, champion and challenger versions, breaches.

plotly.js is inlined once, with the first figure, so the file opens offline (as the evaluation report).
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from longtail.catalog.failure_modes import load_registry
from longtail.catalog.monitoring import list_monitoring_records
from longtail.monitor.figures import (
    batch_label,
    class_figure,
    confidence_figure,
    drift_trend_figure,
    mix_trend_figure,
    rates_trend_figure,
    shadow_trend_figure,
)
from longtail.storage import atomic_writer

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;
color:#1d2330}
section{margin:24px 0}h1{margin:.2em 0}h2{border-bottom:1px solid #dde;padding-bottom:4px}
.status{padding:16px 20px;border-radius:8px;border-left:8px solid}
.status.breach{background:#fdecea;border-color:#c5221f}.status.ok{background:#eaf7ee;border-color:#1e8e3e}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 160px;border:1px solid #dde;border-radius:8px;padding:10px 14px;background:#fafbfd}
.card .v{font-size:1.8em;font-weight:600}.card .l{color:#556;font-size:.9em}
.bad{color:#c5221f}.muted{color:#778}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}
td,th{border:1px solid #dde;padding:3px 8px;text-align:right}th{background:#f3f5f9}td.t,th.t{text-align:left}
"""


@dataclass(frozen=True)
class ReportSummary:
    """What `render_report` wrote: the path, plotly figures, open breaches listed."""

    path: Path
    figures: int
    open_breaches: int


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: int = 1) -> str:
    head = "".join(f"<th class='{'t' if i < text_cols else ''}'>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class='{'t' if i < text_cols else ''}'>{c}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def open_breaches(history: Sequence[Mapping[str, Any]], status: Mapping[str, str]) -> list[dict[str, Any]]:
    """Breaches whose failure mode is still open in the registry, newest batch first."""
    out = []
    for i, record in reversed(list(enumerate(history))):
        for b in record.get("breaches") or []:
            if status.get(b["failure_mode"]) == "open":
                out.append({**b, "label": batch_label(i, record), "created_at": record["created_at"],
                            "champion": record["champion"]["version"]})
    return out


def _card(label: str, value: str, sub: str = "") -> str:
    return f"<div class='card'><div class='l'>{_e(label)}</div><div class='v'>{value}</div><div class='muted'>{sub}</div></div>"


def _latest_cards(r: Mapping[str, Any]) -> str:
    drift = r["drift"]
    breached = {b["metric"] for b in r.get("breaches") or []}

    def mark(metric: str, text: str) -> str:
        return f"<span class='bad'>{text}</span>" if metric in breached else text

    if drift.get("status") == "evaluated":
        auc = mark("domain_auc", f"{drift['domain']['auc']:.2f}")
        p = mark("mmd_p", _fmt(drift["mmd"]["p_value"], 2))
        dsub = f"{drift['drives_batch']} drives vs {drift['drives_ref']} training drives"
    else:
        auc = p = "–"
        dsub = _e(drift.get("reason", "not evaluated"))
    dis = (r.get("rates") or {}).get("disengagement") or {}
    shadow = r.get("shadow") or {}
    cards = [
        _card("Drift: domain classifier ROC AUC", auc, dsub),
        _card("Drift: MMD p-value", p, f"{drift.get('frames_batch', 0)} vs {drift.get('frames_ref', 0)} keyframes"),
        _card("Disengagements per 100 km", mark("rate:disengagement", _fmt(dis.get("rate"))),
              f"training drives {_fmt(dis.get('ref_rate'))}" if dis else "no distance recorded"),
        _card("Shadow disagreements per 1,000 frames", mark("shadow_per_1000", _fmt(shadow.get("per_1000"))),
              f"challenger v{r['challenger']['version']}" if r.get("challenger") else _e(shadow.get("reason", ""))),
        _card("Driven", f"{r['km']:.1f} km", f"{len(r['logs'])} logs, {r['frames']['keyframes']} keyframes"),
    ]
    return "<div class='cards'>" + "".join(cards) + "</div>"


def render_report(root: str | os.PathLike[str], path: str | os.PathLike[str], note: str = "") -> ReportSummary:
    """Write the monitoring report of a data root's history (structure in the module docstring).

    Args:
        root: the data root (its monitoring history and failure-mode registry).
        path: the HTML file to write (atomically).
        note: why this run monitored nothing (e.g. no champion yet), shown under the status.
    """
    history = list_monitoring_records(root)
    status = {name: mode.status for name, mode in load_registry(root).items()}
    breaches = open_breaches(history, status)
    modes = load_registry(root)
    parts: list[str] = []
    figures: list[go.Figure] = []
    # 1. Open breaches, first thing in the body.
    if breaches:
        rows = [[_e(b["label"]), _e(b["created_at"]), _e(b["rule"]), f"<b>{_e(b['failure_mode'])}</b>",
                 len(b.get("examples") or []), _e(f"v{b['champion']}")] for b in breaches]
        n_modes = len({b["failure_mode"] for b in breaches})
        parts.append("<section id='breaches' class='status breach'>"
                     f"<h1>{len(breaches)} open breach{'es' if len(breaches) > 1 else ''} in {n_modes} failure "
                     f"mode{'s' if n_modes > 1 else ''}</h1><p>Each opened a failure mode in the registry with its "
                     "example frames; the next curation mines frames like them for labeling.</p>"
                     + _table(["batch", "monitored", "rule broken", "failure mode", "example frames", "champion"],
                              rows, 4) + "</section>")
    else:
        text = "No batch monitored yet." if not history else "No open breach: the new drives look like the training drives."
        more = f"<p>{_e(note)}</p>" if note else ""
        parts.append(f"<section id='breaches' class='status ok'><h1>No open breach</h1><p>{text}</p>{more}</section>")
    if history:
        latest = history[-1]
        champ = latest["champion"]
        parts.append(f"<p class='muted'>Champion v{_e(champ['version'])} ({_e(champ['model_uri'])}), trained on dataset "
                     f"version {_e(latest['reference']['version_id'])}; {len(history)} batch(es) monitored, the latest "
                     f"{_e(latest['created_at'])}. Drift compares the champion's embeddings of new keyframes with its "
                     f"training drives' ({_e(latest['drift'].get('unit', 'drive'))}s as the unit of the tests).</p>")
        # 2. The latest batch.
        parts.append(f"<section id='latest'><h2>Latest batch: {_e(batch_label(len(history) - 1, latest))}</h2>"
                     + _latest_cards(latest) + "</section>")
        # 3. Trends, 4. the latest batch's predictions.
        figures = [drift_trend_figure(history), rates_trend_figure(history), shadow_trend_figure(history),
                   mix_trend_figure(history, "time_of_day"), mix_trend_figure(history, "weather"),
                   confidence_figure(latest), class_figure(latest)]
        parts.append("<section id='trends'><h2>Trends across batches and model versions</h2>"
                     + "".join(f"<!--fig{i}-->" for i in range(5)) + "</section>")
        parts.append("<section id='predictions'><h2>The champion's predictions on the latest batch</h2>"
                     "<!--fig5--><!--fig6--></section>")
        # 5. Every batch.
        rows = [[_e(batch_label(i, r)), _e(r["created_at"]), len(r["logs"]), f"{r['km']:.1f}",
                 r["frames"]["keyframes"], _e(f"v{r['challenger']['version']}" if r.get("challenger") else "–"),
                 "; ".join(_e(b["rule"]) for b in r.get("breaches") or []) or "none"]
                for i, r in enumerate(history)]
        parts.append("<section id='batches'><h2>Every batch monitored</h2>"
                     + _table(["batch", "monitored", "logs", "km", "keyframes", "challenger", "breaches"], rows, 2)
                     + "</section>")
        fm_rows = [[f"<b>{_e(m.name)}</b>", _e(m.title), _e(m.status), m.count, len(m.evidence)]
                   for m in modes.values() if m.evidence]
        if fm_rows:
            parts.append("<section id='failure-modes'><h2>Failure modes monitoring opened</h2>"
                         + _table(["failure mode", "title", "status", "frames", "breaches recorded"], fm_rows, 3)
                         + "</section>")
    body = "".join(parts)
    for i, fig in enumerate(figures):
        body = body.replace(f"<!--fig{i}-->", pio.to_html(fig, include_plotlyjs=i == 0, full_html=False,
                                                          config={"displaylogo": False, "responsive": True}))
    title = f"Monitoring: {len(breaches)} open breach(es)" if breaches else "Monitoring: no open breach"
    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
           f"<style>{CSS}</style></head><body>{body}</body></html>")
    out = Path(path)
    with atomic_writer(out, "w") as handle:
        handle.write(doc)
    return ReportSummary(out, len(figures), len(breaches))


# ---------------------------------------------------------------------------------------------
# Tables (what the monitor notebook shows beside the figures)


def batches_table(history: Sequence[Mapping[str, Any]]) -> Any:
    """One row per batch monitored: logs, km, drift, rates, shadow, breaches (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for i, r in enumerate(history):
        d = r["drift"]
        ok = d.get("status") == "evaluated"
        rows.append({"batch": batch_label(i, r), "monitored": r["created_at"], "logs": len(r["logs"]),
                     "km": round(r["km"], 2), "keyframes": r["frames"]["keyframes"],
                     "domain_auc": round(d["domain"]["auc"], 3) if ok else None,
                     "mmd_p": round(d["mmd"]["p_value"], 4) if ok else None,
                     "disengagements_per_100km": (r.get("rates") or {}).get("disengagement", {}).get("rate"),
                     "shadow_per_1000": (r.get("shadow") or {}).get("per_1000"),
                     "breaches": "; ".join(b["rule"] for b in r.get("breaches") or []) or "none"})
    return pd.DataFrame(rows)


def breaches_table(root: str | os.PathLike[str]) -> Any:
    """The open breaches, newest first, with their failure modes (a pandas DataFrame)."""
    import pandas as pd

    status = {name: mode.status for name, mode in load_registry(root).items()}
    rows = [{k: b.get(k) for k in ("label", "created_at", "rule", "failure_mode", "champion")}
            | {"example_frames": len(b.get("examples") or [])}
            for b in open_breaches(list_monitoring_records(root), status)]
    return pd.DataFrame(rows, columns=["label", "created_at", "rule", "failure_mode", "champion", "example_frames"])
