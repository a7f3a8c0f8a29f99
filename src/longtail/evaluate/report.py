"""The evaluation report for product managers: one self-contained HTML file, no code shown.

Structure, top to bottom (`render_report`):

1. ``#decision``: promote or not, the one-line why, and every reason (the first element of the body);
   then whether the champion alias moved (``#promotion``), the targets met or not with intervals
   (``#targets``), and the sanity floors (first champion, ``#sanity``) or the paired comparison with
   the champion (``#gate``).
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
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from longtail.evaluate.compare import CRITICAL_GROUPS, compare_evaluations
from longtail.evaluate.examples import Example, draw_example
from longtail.evaluate.figures import class_ap_figure, critical_errors_figure, delta_figure, slice_map_figure
from longtail.evaluate.gate import decide
from longtail.gallery import CATEGORY_COLORS
from longtail.storage import atomic_writer

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
class ReportSummary:
    """What `render_report` wrote."""

    path: Path
    figures: int
    examples: int


# ---------------------------------------------------------------------------------------------
# Figures (also what the notebook shows)


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
    # A count's interval ends are percentiles of resampled counts: whole numbers read better.
    lo, hi = (f"{v:.{digits}f}" if isinstance(x, float) else f"{v:.0f}" for v in ci)
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


TARGET_STATUS = {"met": "<span class='good'>met</span>", "not met": "<span class='bad'>not met</span>",
                 "inside the interval": "<span class='muted'>inside the interval</span>",
                 "not measurable": "<span class='muted'>not measurable</span>"}


def _gate_html(decision: Mapping[str, Any]) -> str:
    """The gate's evidence (`longtail.evaluate.gate`): promotion, targets met or not, sanity floors or the
    paired comparison with the champion, each with its interval."""
    ev = decision.get("evidence") or {}
    out = []
    promotion = decision.get("promotion")
    if promotion:
        text = (f"Champion alias moved to version {_e(promotion.get('version'))} (was {_e(promotion.get('previous') or 'none')})"
                if promotion.get("done") else f"The champion alias did not move: {_e(promotion.get('reason'))}")
        out.append(f"<p id='promotion' class='{'good' if promotion.get('done') else 'muted'}'>{text}.</p>")
    if ev.get("targets"):
        rows = [[_e(r["target"]), _fmt(r["goal"]), _ci(r["value"], r.get("ci")), TARGET_STATUS[r["status"]]]
                for r in ev["targets"]]
        out.append("<section id='targets'><h2>Targets</h2><p>Per class (AP@0.5 on objects tall enough to score; "
                   "recall of the critical classes at their operating thresholds) and per suite. <i>Met</i>: the "
                   "interval's low end reaches the target; <i>not met</i>: its high end stays below; otherwise "
                   "the difference is inside the interval and not yet decided.</p>"
                   + _table(["target", "goal", "value [95% interval]", "status"], rows) + "</section>")
    if ev.get("sanity"):
        rows = [[_e(r["floor"]), _fmt(r["least"]), _ci(r["value"], r.get("ci")),
                 "<span class='good'>passed</span>" if r["passed"] else "<span class='bad'>not reached</span>"]
                for r in ev["sanity"]]
        out.append("<section id='sanity'><h2>Sanity floors (first champion)</h2>"
                   + _table(["floor", "least", "value [95% interval]", "verdict"], rows) + "</section>")
    if ev.get("suites") or ev.get("critical"):
        rows = [[_e(r["suite"]), _fmt(r["champion"]), _fmt(r["challenger"]), _ci(r["diff"], r.get("ci")), _e(r["verdict"])]
                for r in ev.get("suites", [])]
        c = ev.get("critical") or {}
        crit = "" if not c else (
            f"<p>Critical false positives plus negatives: champion {c['champion']}, challenger {c['challenger']} "
            f"(difference {_ci(c['diff'], c.get('ci'), 0)}; "
            + ("a reduction larger than its interval" if c.get("reduction_beyond_interval") else
               "not a reduction beyond its interval") + ").</p>")
        out.append("<section id='gate'><h2>Against the champion (paired bootstrap over drives)</h2>" + crit
                   + _table(["suite", "champion", "challenger", "difference [95% interval]", "verdict"], rows)
                   + "</section>")
    return "".join(out)


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
    thresholds = ev.get("operating_thresholds") or {}
    op_text = ("per-class operating thresholds calibrated on validation (" + ", ".join(
        f"{_e(c)} {v:.2f}" for c, v in thresholds.items()) + ")") if len(set(thresholds.values())) > 1 else \
        f"operating threshold {cfg['score_threshold']:.2f}"
    parts.append(f"<p class='muted'>Model <b>{_e(model)}</b> on dataset version <b>{_e(ev['version_id'])}</b>, "
                 f"{ev['frames']} test frames ({', '.join(_e(s) for s in cfg['splits'])}); {op_text} at IoU "
                 f"{cfg['match_iou']:.2f}; {_min_height_text(cfg)}{champ_text}. Evaluated "
                 f"{_e(ev['created_at'])}.</p>")
    parts.append(_gate_html(decision))
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
              {"passed": "<span class='good'>reached</span>", "failed": "<span class='bad'>below threshold</span>",
               "no_data": "<span class='muted'>no data</span>",
               "not_measurable": "<span class='muted'>not measurable</span>"}[s["status"]]] for s in ev["suites"]]
    parts.append("<section id='suites'><h2>Regression suites</h2><p>Each failure mode's subject (the pedestrians of "
                 "night_pedestrians, the cut-in vehicle of cut_ins...), and the long-tail and common-case test "
                 "suites, have a threshold, their target. Against a champion, a challenger worse on any suite "
                 "beyond its interval is not promoted. Values carry their 95% "
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
