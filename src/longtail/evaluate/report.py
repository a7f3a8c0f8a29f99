"""The evaluation report for product managers: one self-contained HTML file, no code shown.

Structure, top to bottom (`render_report`):

1. ``#decision``: promote or not, the one-line why, and every reason (the first element of the body).
2. ``#kpis``: KPI cards: mAP@[.5:.95], mAP@0.5, critical false positives, critical false negatives
   (with the relative change against the champion, the KPI the business tracks), suites passed.
3. ``#suites``: the regression suites, each with its slice, metric, threshold, value and verdict.
4. ``#critical``: critical FP/FN per group (pedestrian, cyclist, cut-in vehicle) and a chart.
5. ``#classes``: per-class AP, precision, recall, FP, FN, and the per-class AP chart.
6. ``#slices``: one table per kind of slice (test suites, conditions, vehicle, scenarios, failure
   modes) with frame and object counts, and the slice mAP chart.
7. ``#comparison`` (with a champion): the delta chart and every metric side by side.
8. ``#regressions``: the worst regressions (or, without a champion, the weakest slices) and
   example frames with ground truth (solid) and predictions (dashed) drawn, colour per class.

plotly.js is inlined once, with the first figure; the others reuse it, so the file opens offline.
Images are embedded as base64 JPEG.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from longtail.detector.metrics import Boxes
from longtail.errors import InputError
from longtail.evaluate.compare import CRITICAL_GROUPS, compare_evaluations, decide
from longtail.evaluate.run import select_example_frames
from longtail.storage import atomic_writer

CATEGORY_COLORS = {"car": "#3cdc3c", "truck": "#28a0e6", "pedestrian": "#f02828", "cyclist": "#f0dc28"}
"""Colour of each class (RGB hex), the same as `longtail.curate.report.CATEGORY_COLORS`."""
EXAMPLE_WIDTH_PX = 480
"""Example frames narrower than this are scaled up by a whole factor (at most 4) before drawing."""
KIND_TITLES = {"suite": "Test suites: long tail vs common case", "condition": "Conditions",
               "vehicle": "Vehicle type", "scenario": "Scenarios and triggers", "failure_mode": "Failure modes"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;
color:#1d2330}
section{margin:24px 0}
h1{margin:.2em 0}h2{border-bottom:1px solid #dde;padding-bottom:4px}
.decision{padding:16px 20px;border-radius:8px;border-left:8px solid}
.decision.promote{background:#eaf7ee;border-color:#1e8e3e}.decision.hold{background:#fdecea;border-color:#c5221f}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 160px;border:1px solid #dde;border-radius:8px;padding:10px 14px;background:#fafbfd}
.card .v{font-size:1.8em;font-weight:600}.card .l{color:#556;font-size:.9em}
.good{color:#1e8e3e}.bad{color:#c5221f}.muted{color:#778}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}
td,th{border:1px solid #dde;padding:3px 8px;text-align:right}th{background:#f3f5f9}
td.t,th.t{text-align:left}
.examples{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;max-width:100%}figure img{max-width:100%;border:1px solid #ccd}figcaption{font-size:.85em;color:#445}
.legend span{display:inline-block;padding:0 6px;margin-right:6px;border-radius:3px;color:#000}
"""


@dataclass(frozen=True)
class Example:
    """One example frame to draw: its image, ground-truth and predicted boxes (pixel edges)."""

    frame_id: str
    image_path: Path
    gt: tuple[Mapping[str, Any], ...]
    preds: tuple[Mapping[str, Any], ...]
    caption: str


@dataclass(frozen=True)
class ReportSummary:
    """What `render_report` wrote."""

    path: Path
    figures: int
    examples: int


# ---------------------------------------------------------------------------------------------
# Figures (also what the notebook shows)


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


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ci(x: Any, ci: Sequence[float] | None, digits: int = 3) -> str:
    """A value with its 95% interval beneath it: ``0.581 [0.52–0.63]``; counts as whole numbers."""
    text = _fmt(x, digits)
    if not ci:
        return text
    lo, hi = (f"{v:.{digits}f}" if isinstance(x, float) else f"{v:g}" for v in ci)
    return f"{text} <span class='muted'>[{lo}–{hi}]</span>"


def _fmt_metric(key: str, x: float | None) -> str:
    """Counts (fp, fn, errors) as whole numbers, rates with 3 decimals."""
    if x is not None and key.rsplit("/", 1)[-1] in ("fp", "fn", "errors"):
        return str(round(x))
    return _fmt(x)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: int = 1) -> str:
    head = "".join(f"<th class='t'>{_e(h)}</th>" if i < text_cols else f"<th>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class='t'>{c}</td>" if i < text_cols else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _delta(d: float | None, better: bool | None, digits: int = 3, pct: bool = False) -> str:
    if d is None:
        return "<span class='muted'>–</span>"
    cls = "good" if better else "bad" if better is False else "muted"
    text = f"{d:+.1%}" if pct else f"{d:+.{digits}f}" if isinstance(d, float) and not float(d).is_integer() else f"{d:+g}"
    return f"<span class='{cls}'>{text}</span>"


def _card(label: str, value: str, sub: str = "") -> str:
    return f"<div class='card'><div class='l'>{_e(label)}</div><div class='v'>{value}</div><div>{sub}</div></div>"


def _kpi_cards(ev: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    rows = {r["metric"]: r for r in comparison["rows"]} if comparison else {}

    def sub(key: str) -> str:
        r = rows.get(key)
        return "" if r is None else f"vs champion {_fmt(r['champion'])}: {_delta(r['delta'], r['better'])}"

    cards = [_card("mAP@[.5:.95]", _fmt(ev["overall"]["map"]), sub("overall/map")),
             _card("mAP@0.5", _ci(ev["overall"]["map50"], ev["overall"].get("map50_ci")), sub("overall/map50"))]
    kpi = comparison["kpi"] if comparison else None
    for k, what in (("fp", "Critical false positives"), ("fn", "Critical false negatives")):
        s = ""
        if kpi:
            r = kpi[k]
            rel = r["relative_change"]
            s = (f"champion {r['champion']}: " +
                 (_delta(rel, rel < 0 if rel else None, pct=True) if rel is not None else "<span class='bad'>new</span>"))
        cards.append(_card(what, _ci(ev["critical"]["total"][k], ev["critical"]["total"].get(f"{k}_ci")), s))
    checked = [s for s in ev["suites"] if s["status"] not in ("no_data", "not_measurable")]
    passed = sum(s["status"] == "passed" for s in checked)
    cards.append(_card("Regression suites passed", f"{passed}/{len(checked)}",
                       f"{len(ev['suites']) - len(checked)} without data or not measurable"
                       if len(checked) < len(ev["suites"]) else ""))
    return "<div class='cards'>" + "".join(cards) + "</div>"


def _figure_html(fig: go.Figure, first: bool) -> str:
    return pio.to_html(fig, include_plotlyjs=first, full_html=False, config={"displaylogo": False, "responsive": True})


def _worst_regressions(comparison: Mapping[str, Any], n: int = 10) -> list[dict[str, Any]]:
    def severity(r: Mapping[str, Any]) -> float:
        last = r["metric"].rsplit("/", 1)[-1]
        if last in ("fp", "fn", "errors"):
            return float(r["delta"]) / max(float(r["champion"]), 1.0)
        return -float(r["delta"])

    worse = [r for r in comparison["rows"] if r["better"] is False]
    return sorted(worse, key=lambda r: (-severity(r), r["metric"]))[:n]


def _min_height_text(cfg: dict[str, Any]) -> str:
    share = cfg.get("min_object_height") or 0.0
    if not share:
        return "every object scored; "
    return (f"objects less tall than {share:.0%} of the frame are too far away to score (neither found nor "
            "missed, KITTI's rule); ")


def render_report(evaluation: Mapping[str, Any], path: str | os.PathLike[str], champion: Mapping[str, Any] | None = None,
                  examples: Sequence[Example] = ()) -> ReportSummary:
    """Write the evaluation report: one self-contained HTML file (structure in the module docstring).

    Args:
        evaluation: the challenger's evaluation (`longtail.evaluate.run.evaluate`).
        path: the HTML file to write (atomically).
        champion: the champion's evaluation, for side-by-side columns and deltas.
        examples: frames to draw under the worst regressions (`make_examples`).

    Returns:
        The path, the number of plotly figures and of example images written.
    """
    ev = evaluation
    comparison = ev.get("comparison")
    if champion is not None and comparison is None:
        comparison = compare_evaluations(ev, champion)
    if champion is None:
        comparison = None
    decision = ev.get("decision") or decide(ev, champion).to_dict()
    model = ev.get("model") or "challenger"
    parts: list[str] = []
    # 1. The decision, first thing in the body.
    verdict = "promote" if decision["promote"] else "do not promote"
    reasons = "".join(f"<li>{_e(r)}</li>" for r in decision["reasons"])
    # The headline repeats the verdict ("Promote m: why"); the heading already says it.
    why = decision["headline"].split(": ", 1)[-1]
    why = why[:1].upper() + why[1:]
    parts.append(f"<section id='decision' class='decision {'promote' if decision['promote'] else 'hold'}'>"
                 f"<h1>Decision: {verdict} {_e(model)}</h1><p class='headline'>{_e(why)}</p>"
                 f"<ul>{reasons}</ul></section>")
    cfg = ev["config"]
    champ_text = f"champion <b>{_e(champion.get('model'))}</b>" if champion is not None else "no champion yet"
    parts.append(f"<p class='muted'>Model <b>{_e(model)}</b> on dataset version <b>{_e(ev['version_id'])}</b>, "
                 f"{ev['frames']} test frames ({', '.join(_e(s) for s in cfg['splits'])}); operating threshold "
                 f"{cfg['score_threshold']:.2f} at IoU {cfg['match_iou']:.2f}; {_min_height_text(cfg)}{champ_text}. "
                 f"Evaluated "
                 f"{_e(ev['created_at'])}.</p>")
    if ev.get("frames_without_predictions"):
        parts.append(f"<p class='bad'>{ev['frames_without_predictions']} test frames had no predictions and count as "
                     "frames where nothing was detected.</p>")
    # 2. KPI cards.
    parts.append("<section id='kpis'><h2>Key numbers</h2>" + _kpi_cards(ev, comparison) + "</section>")
    # 3. Suites.
    def _crit(s: Mapping[str, Any]) -> str:
        c = (s.get("critical") or {}).get("total")
        return "–" if not c else f"{_ci(c['fp'], c.get('fp_ci'))} / {_ci(c['fn'], c.get('fn_ci'))}"

    srows = [[_e(s["name"]), _e(s.get("subject") or s["slice"]), _e(s["metric"]), _fmt(s["threshold"]),
              _ci(s["value"], s.get("ci")) if s.get("measurable", True) else
              f"<span class='muted'>not measurable: {_e(s.get('reason'))}</span>",
              s["frames"], "–" if s.get("drives") is None else s["drives"], _crit(s),
              {"passed": "<span class='good'>passed</span>", "failed": "<span class='bad'>FAILED</span>",
               "no_data": "<span class='muted'>no data</span>",
               "not_measurable": "<span class='muted'>not measurable</span>"}[s["status"]]] for s in ev["suites"]]
    parts.append("<section id='suites'><h2>Regression suites</h2><p>Each failure mode's subject (the pedestrians of "
                 "night_pedestrians, the cut-in vehicle of cut_ins...), and the long-tail and common-case test "
                 "suites, must reach a threshold; a model failing any suite is not promoted. Values carry their 95% "
                 "interval from a bootstrap over drives; a suite from too few drives or objects is not measurable "
                 "and gives no number. Critical errors: false positives / negatives of pedestrians, cyclists and "
                 "cut-in vehicles in the suite's frames.</p>"
                 + _table(["suite", "subject", "metric", "threshold", "value [95% interval]", "frames", "drives",
                           "critical FP / FN", "verdict"], srows, 3)
                 + "</section>")
    figures: list[go.Figure] = []
    # 4. Critical errors.
    crow = []
    for g, what in CRITICAL_GROUPS.items():
        c = ev["critical"][g]
        row = [_e(g.replace("_", " ")), _e(what), _ci(c["fp"], c.get("fp_ci")), _ci(c["fn"], c.get("fn_ci"))]
        if comparison:
            k = comparison["kpi"]["groups"][g]
            row += [k["fp"]["champion"], _delta(k["fp"]["delta"], k["fp"]["delta"] < 0 if k["fp"]["delta"] else None),
                    k["fn"]["champion"], _delta(k["fn"]["delta"], k["fn"]["delta"] < 0 if k["fn"]["delta"] else None)]
        crow.append(row)
    head = ["group", "counts", "false positives", "false negatives"]
    if comparison:
        head += ["champion FP", "Δ FP", "champion FN", "Δ FN"]
    figures.append(critical_errors_figure(ev, champion))
    parts.append("<section id='critical'><h2>Critical errors at the operating threshold</h2>" + _table(head, crow, 2)
                 + "<!--fig0--></section>")
    # 5. Classes.
    pc = ev["overall"]["per_class"]
    cp = champion["overall"]["per_class"] if champion is not None else {}
    rows = []
    for c, m in pc.items():
        row = [_e(c), m["gt"], m["detections"], _fmt(m["ap"]), _ci(m["ap50"], m.get("ap50_ci")), _fmt(m["precision"]),
               _fmt(m["recall"]), _ci(m["fp"], m.get("fp_ci")), _ci(m["fn"], m.get("fn_ci"))]
        if champion is not None and c in cp:
            d = None if m["ap"] is None or cp[c]["ap"] is None else m["ap"] - cp[c]["ap"]
            row += [_fmt(cp[c]["ap"]), _delta(d, d > 0 if d else None)]
        rows.append(row)
    head = ["class", "objects", "detections", "AP@[.5:.95]", "AP@0.5", "precision", "recall", "FP", "FN"]
    if champion is not None:
        head += ["champion AP", "Δ AP"]
    figures.append(class_ap_figure(ev, champion))
    parts.append("<section id='classes'><h2>Per class</h2><p>COCO-style AP (101-point interpolation); precision, "
                 "recall, FP and FN at the operating threshold.</p>" + _table(head, rows) + "<!--fig1--></section>")
    # 6. Slices.
    cs = champion["slices"] if champion is not None else {}
    blocks = []
    for kind, title in KIND_TITLES.items():
        srows = []
        for name, s in ev["slices"].items():
            if s["kind"] != kind:
                continue
            m = s["metrics"] or {}
            row = [_e(s["title"]), _e(s["rule"]), s["frames"], s["objects"], _fmt(m.get("map")), _fmt(m.get("map50")),
                   _fmt((m.get("totals") or {}).get("recall")), (m.get("totals") or {}).get("fp", "–"),
                   (m.get("totals") or {}).get("fn", "–")]
            if champion is not None:
                other = (cs.get(name) or {}).get("metrics") or {}
                a, b = m.get("map50"), other.get("map50")
                d = None if a is None or b is None else a - b
                row += [_fmt(b), _delta(d, d > 0 if d else None)]
            srows.append(row)
        if srows:
            head = ["slice", "rule", "frames", "objects", "mAP", "mAP@0.5", "recall", "FP", "FN"]
            if champion is not None:
                head += ["champion mAP@0.5", "Δ mAP@0.5"]
            blocks.append(f"<h3>{_e(title)}</h3>" + _table(head, srows, 2))
    figures.append(slice_map_figure(ev, champion))
    parts.append("<section id='slices'><h2>Slices</h2>" + "".join(blocks) + "<!--fig2--></section>")
    # 7. Champion vs challenger.
    if comparison:
        figures.append(delta_figure(comparison))
        notes = "".join(f"<p class='bad'>{_e(n)}</p>" for n in comparison["notes"])
        allrows = [[_e(r["metric"]), _fmt_metric(r["metric"], r["champion"]), _fmt_metric(r["metric"], r["challenger"]),
                    _delta(r["delta"], r["better"])] for r in comparison["rows"]]
        parts.append("<section id='comparison'><h2>Champion vs challenger</h2>" + notes + "<!--fig3-->"
                     "<details><summary>Every metric side by side</summary>"
                     + _table(["metric", "champion", "challenger", "Δ"], allrows) + "</details></section>")
    # 8. Worst regressions and example frames.
    if comparison:
        worst = _worst_regressions(comparison)
        intro = ("<p>The metrics that got worse most against the champion (counts by relative rise, rates by "
                 "absolute drop).</p>" + (_table(["metric", "champion", "challenger", "Δ"],
                                                 [[_e(r["metric"]), _fmt_metric(r["metric"], r["champion"]),
                                                   _fmt_metric(r["metric"], r["challenger"]),
                                                   _delta(r["delta"], r["better"])] for r in worst])
                                          if worst else "<p class='good'>No metric got worse.</p>"))
        title = "Worst regressions"
    else:
        weak = sorted(((s["metrics"]["map50"], n) for n, s in ev["slices"].items()
                       if s["metrics"] and s["metrics"]["map50"] is not None), key=lambda x: (x[0], x[1]))[:5]
        intro = ("<p>No champion to regress against: the weakest slices by mAP@0.5.</p>"
                 + _table(["slice", "mAP@0.5"], [[_e(n), _fmt(v)] for v, n in weak]))
        title = "Weakest spots"
    legend = "".join(f"<span style='background:{c}'>{_e(k)}</span>" for k, c in CATEGORY_COLORS.items())
    figs_html = []
    for ex in examples:
        data = base64.b64encode(draw_example(ex)).decode()
        figs_html.append(f"<figure><img alt='{_e(ex.frame_id)}' src='data:image/jpeg;base64,{data}'>"
                         f"<figcaption><b>{_e(ex.frame_id)}</b>: {_e(ex.caption)}</figcaption></figure>")
    ex_html = ("<h3>Example frames</h3><p class='legend'>Ground truth solid, predictions at the operating threshold "
               f"dashed with their score; colour per class: {legend}</p><div class='examples'>" + "".join(figs_html)
               + "</div>") if figs_html else "<p class='muted'>No example frame with critical errors.</p>"
    parts.append(f"<section id='regressions'><h2>{title}</h2>{intro}{ex_html}</section>")
    body = "".join(parts)
    for i, fig in enumerate(figures):
        body = body.replace(f"<!--fig{i}-->", _figure_html(fig, first=i == 0))
    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Evaluation: {_e(model)} "
           f"({_e(verdict)})</title><style>{CSS}</style></head><body>{body}</body></html>")
    out = Path(path)
    with atomic_writer(out, "w") as handle:
        handle.write(doc)
    return ReportSummary(out, len(figures), len(figs_html))
