"""The KPI report of a loop turn: a self-contained HTML page for product managers, and a plain
text table for the terminal (`format_kpi`, what ``longtail run`` prints at the end).

Top to bottom (`render_kpi_html`):

1. ``#decision``: promoted or refused (and why), the champion after the turn, and cards: critical
   errors before -> after, fleet disengagements, labeling cost.
2. ``#critical``: v2 against v1 on critical false positives plus negatives, overall, on the
   long-tail and common suites and per failure mode, each difference with its interval and verdict.
3. ``#fleet``: the fleet tests before and after, per 100 km, with the paired difference.
4. ``#labeling``: what labeling the turn cost.
5. ``#time-to-update``: per failure mode, discovery to deployed fix, and where the time went.

plotly.js is inlined once, with the first figure, so the file opens offline.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from longtail.catalog.failure_modes import STEPS
from longtail.storage import atomic_write_bytes

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;
color:#1d2330}
section{margin:24px 0}h1{margin:.2em 0}h2{border-bottom:1px solid #dde;padding-bottom:4px}
.status{padding:16px 20px;border-radius:8px;border-left:8px solid}
.status.refused{background:#fdecea;border-color:#c5221f}.status.promoted{background:#eaf7ee;border-color:#1e8e3e}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 160px;border:1px solid #dde;border-radius:8px;padding:10px 14px;background:#fafbfd}
.card .v{font-size:1.8em;font-weight:600}.card .l{color:#556;font-size:.9em}
.good{color:#1e8e3e}.bad{color:#c5221f}.muted{color:#778}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}
td,th{border:1px solid #dde;padding:3px 8px;text-align:right}th{background:#f3f5f9}td.t,th.t{text-align:left}
"""

FLEET_NAMES = {"disengagement": "disengagements", "phantom_braking": "phantom braking",
               "missed_hazard": "missed hazards", "collision": "collisions", "near_miss": "near misses"}
GROUP_NAMES = {"total": "all critical", "pedestrian": "pedestrian", "cyclist": "cyclist",
               "cut_in_vehicle": "cut-in vehicle"}
VERDICT_CLASS = {"fewer beyond its interval": "good", "more beyond its interval": "bad", "inside its interval": "muted"}


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _ci(ci: Sequence[float] | None, digits: int = 2) -> str:
    return "–" if not ci else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _duration(seconds: float | None) -> str:
    """Seconds as ``2 d 3 h``, ``3 h 05 min``, ``12 min 30 s`` or ``45 s``."""
    if seconds is None:
        return "–"
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{sec} s"


def _suite_name(row: Mapping[str, Any]) -> str:
    return {"all": "all test frames", "test_longtail": "long-tail suite", "test_common": "common suite"}.get(
        row["suite"], f"failure mode {row['suite']}")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: int = 1) -> str:
    head = "".join(f"<th class='t'>{_e(h)}</th>" if i < text_cols else f"<th>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class='t'>{c}</td>" if i < text_cols else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(v: str) -> str:
    return f"<span class='{VERDICT_CLASS.get(v, 'muted')}'>{_e(v)}</span>"


def critical_figure(kpi: Mapping[str, Any]) -> go.Figure:
    """Each suite's change in critical errors (after - before) with its interval, one row per suite."""
    rows = [r for r in kpi["critical"] if r["group"] == "total"]
    fig = go.Figure()
    for name, color in (("fewer beyond its interval", "#1e8e3e"), ("more beyond its interval", "#c5221f"),
                        ("inside its interval", "#778")):
        part = [r for r in rows if r["verdict"] == name]
        if not part:
            continue
        fig.add_trace(go.Scatter(
            x=[r["diff"] for r in part], y=[_suite_name(r) for r in part], mode="markers", name=name,
            marker={"color": color, "size": 10},
            error_x={"type": "data", "symmetric": False,
                     "array": [(r["ci"][1] - r["diff"]) if r["ci"] else 0 for r in part],
                     "arrayminus": [(r["diff"] - r["ci"][0]) if r["ci"] else 0 for r in part]}))
    fig.add_vline(x=0, line_dash="dot", line_color="#556")
    fig.update_layout(title="Critical false positives plus negatives: new model minus old, 95% interval",
                      xaxis_title="change in critical errors (negative: fewer)", height=140 + 30 * len(rows),
                      margin={"l": 220}, template="plotly_white")
    fig.update_yaxes(autorange="reversed")
    return fig


def fleet_figure(kpi: Mapping[str, Any]) -> go.Figure:
    """Fleet-test rates per 100 km before and after, each with its interval."""
    fig = go.Figure()
    metrics = kpi["fleet"]["metrics"]
    for when, color in (("before", "#8aa4c8"), ("after", "#1f4e9c")):
        fig.add_trace(go.Bar(
            name=f"{when} the turn", x=[FLEET_NAMES[m["metric"]] for m in metrics], y=[m[when] for m in metrics],
            marker_color=color,
            error_y={"type": "data", "symmetric": False,
                     "array": [(m[f"{when}_ci"][1] - m[when]) if m[f"{when}_ci"] else 0 for m in metrics],
                     "arrayminus": [(m[when] - m[f"{when}_ci"][0]) if m[f"{when}_ci"] else 0 for m in metrics]}))
    fig.update_layout(barmode="group", title="Fleet test, per 100 km (95% interval over drives)",
                      yaxis_title="episodes per 100 km", template="plotly_white", height=380)
    return fig


def time_to_update_figure(kpi: Mapping[str, Any]) -> go.Figure:
    """Per failure mode deployed, where the time from discovery to deployment went (stacked hours)."""
    rows = [r for r in kpi["time_to_model_update"] if r["total_s"] is not None]
    fig = go.Figure()
    for step in STEPS[1:]:
        fig.add_trace(go.Bar(
            name=f"until {step}", orientation="h", y=[r["failure_mode"] for r in rows],
            x=[sum(s["since_previous_s"] for s in r["steps"] if s["step"] == step) / 3600.0 for r in rows]))
    fig.update_layout(barmode="stack", title="Time to model update: discovery to deployed fix, by step",
                      xaxis_title="hours", template="plotly_white", height=260 + 32 * len(rows),
                      margin={"l": 200}, legend={"orientation": "h", "y": -0.35})
    return fig


def _card(label: str, value: str, sub: str = "") -> str:
    return f"<div class='card'><div class='l'>{_e(label)}</div><div class='v'>{value}</div><div>{sub}</div></div>"


def _decision_html(kpi: Mapping[str, Any]) -> str:
    gate = kpi["gate"]
    cls = "promoted" if gate["promoted"] else "refused"
    reasons = "".join(f"<li>{_e(r)}</li>" for r in gate["reasons"])
    champion = gate["champion_after"] or "none"
    total = next((r for r in kpi["critical"] if r["suite"] == "all" and r["group"] == "total"), None)
    dis = next((m for m in kpi["fleet"]["metrics"] if m["metric"] == "disengagement"), None)
    lab = kpi["labeling"]
    cards = [
        _card("critical errors, all test frames", "–" if total is None else f"{total['before']} → {total['after']}",
              "" if total is None else f"{total['diff']:+d} {_ci(total['ci'], 0)}: {_verdict(total['verdict'])}"),
        _card("disengagements per 100 km", "–" if dis is None else f"{dis['before']:.2f} → {dis['after']:.2f}",
              "" if dis is None else f"{dis['diff']:+.2f} {_ci(dis['ci'])}: {_verdict(dis['verdict'])}"),
        _card("labeling cost of the turn", "–" if lab is None else _duration(lab["seconds"]),
              "" if lab is None else f"{lab['frames']} frames, {_num(lab['seconds_per_frame'], 1)} s per frame"),
    ]
    return (f"<section id='decision'><h1>Loop turn: KPI</h1><div class='status {cls}'><b>{_e(kpi['headline'])}</b>"
            f"<p>Champion after the turn: {_e(champion)}</p>"
            f"<details{' open' if not gate['promoted'] else ''}><summary>The gate's reasons</summary><ul>{reasons}"
            f"</ul></details></div><div class='cards'>{''.join(cards)}</div></section>")


def _critical_html(kpi: Mapping[str, Any]) -> str:
    rows = [[_e(_suite_name(r)), _e(GROUP_NAMES[r["group"]]), r["before"], r["after"], f"{r['diff']:+d}",
             _ci(r["ci"], 0), _verdict(r["verdict"])] for r in kpi["critical"]]
    if not rows:
        return ("<section id='critical'><h2>Critical errors</h2><p>No champion was evaluated on the same frames, "
                "so there is nothing to compare.</p></section>")
    return ("<section id='critical'><h2>Critical errors: new model against old, same test frames</h2>"
            "<p>False positives plus false negatives on pedestrians, cyclists and cut-in vehicles. The interval is "
            "that of the difference, by a paired bootstrap over drives.</p><!--fig0-->"
            + _table(["suite", "group", "before", "after", "change", "95% interval", "verdict"], rows, 2)
            + "</section>")


def _fleet_html(kpi: Mapping[str, Any]) -> str:
    f = kpi["fleet"]
    note = f"<p class='bad'>{_e(f['note'])}</p>" if f["note"] else ""
    if not f["metrics"]:
        return f"<section id='fleet'><h2>Fleet test</h2>{note}</section>"
    rows = [[_e(FLEET_NAMES[m["metric"]]), f"{m['before']:.2f} {_ci(m['before_ci'])}",
             f"{m['after']:.2f} {_ci(m['after_ci'])}", f"{m['diff']:+.2f}", _ci(m["ci"]), _verdict(m["verdict"])]
            for m in f["metrics"]]
    return (f"<section id='fleet'><h2>Fleet test: same drives, same seeds</h2>{note}"
            f"<p>{f['drives']} drives, {f['km_after']:.1f} km; deployment before {_e(f['deployment_before'])}, "
            f"after {_e(f['deployment_after'])}. The change's interval resamples the same drives for both.</p>"
            "<!--fig1-->" + _table(["per 100 km", "before [95%]", "after [95%]", "change", "95% interval", "verdict"],
                                   rows) + "</section>")


def _labeling_html(kpi: Mapping[str, Any]) -> str:
    lab = kpi["labeling"]
    if lab is None:
        return "<section id='labeling'><h2>Labeling cost</h2><p>No label set was given.</p></section>"
    without = lab["seconds_without_prelabels"]
    rows = [["labeling batch", _e(lab["batch_id"])], ["frames labeled (accepted)", f"{lab['frames']} ({lab['accepted']})"],
            ["simulated labeler's time", f"{_duration(lab['seconds'])} ({lab['seconds']:.0f} s)"],
            ["per frame", f"{_num(lab['seconds_per_frame'], 1)} s"],
            ["the same boxes drawn without pre-labels", "–" if without is None else _duration(without)]]
    return ("<section id='labeling'><h2>Labeling cost of the turn</h2>"
            "<p>In the simulated labeler's seconds (a cost model of clicks and checks, not a person's time).</p>"
            + _table(["", ""], rows) + "</section>")


def _ttmu_html(kpi: Mapping[str, Any], has_figure: bool) -> str:
    rows = []
    for r in kpi["time_to_model_update"]:
        if r["total_s"] is not None:
            where = ", ".join(f"{s['step']} +{_duration(s['since_previous_s'])}" for s in r["steps"][1:])
            rows.append([_e(r["failure_mode"]), _e(r["discovered_at"]), _e(r["deployment"]), _e(where),
                         _duration(r["total_s"])])
        else:
            last = r["last_step"]
            rows.append([_e(r["failure_mode"]), _e(r["discovered_at"]), "<span class='muted'>not deployed</span>",
                         _e(f"latest: {last['step']} {last['ref']} at {last['at']}" if last else "no step yet"), "–"])
    table = _table(["failure mode", "discovered", "deployment", "where the time went", "time to model update"],
                   rows, 4) if rows else "<p>No failure mode has been discovered.</p>"
    return ("<section id='time-to-update'><h2>Time to model update</h2>"
            "<p>From a failure mode's discovery (a query, trigger or monitoring breach) to the first deployment "
            "whose model was trained on frames mined for it.</p>" + ("<!--fig2-->" if has_figure else "") + table
            + "</section>")


def render_kpi_html(kpi: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the KPI report (module docstring) atomically, self-contained. Returns the path."""
    figures: list[go.Figure | None] = [
        critical_figure(kpi) if kpi["critical"] else None,
        fleet_figure(kpi) if kpi["fleet"]["metrics"] else None,
        time_to_update_figure(kpi) if any(r["total_s"] is not None for r in kpi["time_to_model_update"]) else None]
    body = (_decision_html(kpi) + _critical_html(kpi) + _fleet_html(kpi) + _labeling_html(kpi)
            + _ttmu_html(kpi, figures[2] is not None))
    first = True
    for i, fig in enumerate(figures):
        if fig is None:
            continue
        body = body.replace(f"<!--fig{i}-->", pio.to_html(fig, include_plotlyjs=first, full_html=False,
                                                          config={"displaylogo": False, "responsive": True}))
        first = False
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Longtail: KPI of the loop turn</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")
    atomic_write_bytes(path, page.encode())
    return Path(path)


def format_kpi(kpi: Mapping[str, Any]) -> str:
    """The KPI as plain text for the terminal: the decision, then one table per section."""
    lines = [kpi["headline"], ""]
    gate = kpi["gate"]
    if not gate["promoted"]:
        lines += ["Why the gate refused it:", *(f"  - {r}" for r in gate["reasons"]), ""]
    lines.append(f"Champion after the turn: {gate['champion_after'] or 'none'}")
    if kpi["critical"]:
        lines += ["", "Critical false positives plus negatives (new - old, same test frames, 95% interval):",
                  f"  {'suite':<34} {'group':<15} {'old':>5} {'new':>5} {'change':>7}  {'interval':<14} verdict"]
        # Every group on the test suites; a failure mode's suite by its total, to keep the table short.
        for r in (r for r in kpi["critical"] if r["kind"] != "failure_mode" or r["group"] == "total"):
            lines.append(f"  {_suite_name(r)[:34]:<34} {GROUP_NAMES[r['group']]:<15} {r['before']:>5} {r['after']:>5} "
                         f"{r['diff']:>+7d}  {_ci(r['ci'], 0):<14} {r['verdict']}")
    f = kpi["fleet"]
    lines += ["", f"Fleet test per 100 km ({f['drives']} drives, same seeds; deployment {f['deployment_before']} -> "
                  f"{f['deployment_after']}):"]
    if f["note"]:
        lines.append(f"  note: {f['note']}")
    if f["metrics"]:
        lines.append(f"  {'metric':<16} {'before':>8} {'after':>8} {'change':>8}  {'interval':<18} verdict")
        for m in f["metrics"]:
            lines.append(f"  {FLEET_NAMES[m['metric']]:<16} {m['before']:>8.2f} {m['after']:>8.2f} {m['diff']:>+8.2f}  "
                         f"{_ci(m['ci']):<18} {m['verdict']}")
    lab = kpi["labeling"]
    lines += ["", "Labeling cost of the turn: " + ("no label set given" if lab is None else
              f"{lab['seconds']:.0f} s of the simulated labeler ({_duration(lab['seconds'])}) for {lab['frames']} "
              f"frames of {lab['batch_id']}")]
    lines += ["", "Time to model update per failure mode:"]
    for r in kpi["time_to_model_update"]:
        if r["total_s"] is not None:
            where = ", ".join(f"{s['step']} +{_duration(s['since_previous_s'])}" for s in r["steps"][1:])
            lines.append(f"  {r['failure_mode']:<24} {_duration(r['total_s']):>12}  ({where})")
        else:
            last = r["last_step"]
            lines.append(f"  {r['failure_mode']:<24} {'not deployed':>12}  "
                         f"({'latest: ' + last['step'] + ' ' + last['ref'] if last else 'no step yet'})")
    return "\n".join(lines)
