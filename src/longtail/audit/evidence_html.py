"""The evidence pack as one self-contained HTML page: inline CSS, no script, no external resource.

Order follows a reviewer's questions: what was deployed; does its lineage check out (every link with its
digests and status); why it was allowed (the gate, with intervals); how it evaluated; what it does in the
fleet test; what is known not to be met; then label QA, failure modes and the model card.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;color:#1d1d1d;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;width:100%}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}
code,.digest{font-family:ui-monospace,Menlo,monospace;font-size:.85em;word-break:break-all}
.ok{background:#e6f4ea}.broken{background:#fce8e6;font-weight:600}.absent{background:#fff4e5}
.banner{padding:.8em 1em;border-radius:4px;margin:1em 0}.small{color:#555;font-size:.85em}
td .id{display:inline-block;min-width:12em;max-width:22em;word-break:break-all}
pre{background:#f7f7f7;padding:1em;white-space:pre-wrap;font-size:.85em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, ci: Sequence[Any] | None = None) -> str:
    if not isinstance(value, (int, float)):
        return _e(value if value is not None else "-")
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    if ci and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci):
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p class='small'>none</p>"
    body = "".join(f"<tr class='{classes[i] if classes else ''}'>{''.join(f'<td>{c}</td>' for c in row)}</tr>"
                   for i, row in enumerate(rows))
    return f"<table><tr>{''.join(f'<th>{_e(h)}</th>' for h in head)}</tr>{body}</table>"


def _lineage(lineage: Mapping[str, Any]) -> str:
    links = lineage["links"]
    depth: dict[str, int] = {}
    rows = []
    for link in links:
        level = depth.get(link["parent"] or "", -1) + 1
        depth[f"{link['kind']}:{link['id']}"] = level
        digests = (f"recorded <span class='digest'>{_e(link['recorded'] or '-')}</span><br>"
                   f"recomputed <span class='digest'>{_e(link['found'] or '-')}</span>")
        rows.append([f"<span style='padding-left:{level}em'>{_e(link['kind'])}</span>",
                     f"<code class='id'>{_e(link['id'])}</code>", _e(link["status"]), digests,
                     f"{_e(link['message'])}<br><span class='small'>{_e(link['path'])}</span>"])
    return _table(["kind", "id", "status", "digests", "check, and where"], rows, [link["status"] for link in links])


def _gate(gate: Mapping[str, Any] | None) -> str:
    if gate is None:
        return "<p class='broken'>No gate decision was found for this model.</p>"
    verdict = "promoted" if gate["promote"] else "refused"
    parts = [f"<p><b>Gate: {verdict}.</b> {_e(gate.get('headline'))}</p>",
             f"<p class='small'>source: {_e(gate.get('source'))}</p>"]
    if gate.get("reasons"):
        parts.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in gate["reasons"]) + "</ul>")
    targets = gate.get("targets") or []
    parts.append("<h3>Targets</h3>" + _table(["target", "goal", "value [interval]", "status"], [
        [_e(t.get("target")), _num(t.get("goal")), _num(t.get("value"), t.get("ci")), _e(t.get("status"))]
        for t in targets], ["ok" if t.get("status") == "met" else "absent" for t in targets]))
    if gate.get("critical"):
        c = gate["critical"]
        parts.append(f"<p>Critical FP+FN, challenger vs champion: {_num(c.get('challenger'))} vs "
                     f"{_num(c.get('champion'))}, difference {_num(c.get('diff'), c.get('ci'))}</p>")
    if gate.get("suites"):
        parts.append(_table(["suite", "difference [interval]", "verdict"], [
            [_e(s.get("suite")), _num(s.get("diff"), s.get("ci")), _e(s.get("verdict"))] for s in gate["suites"]]))
    if gate.get("sanity"):
        parts.append(f"<p class='small'>sanity floors: <code>{_e(json.dumps(gate['sanity'], default=str))}</code></p>")
    return "".join(parts)


def _evaluation(ev: Mapping[str, Any] | None) -> str:
    if ev is None:
        return "<p class='absent'>No evaluation.json was found for this model.</p>"
    crit = ev.get("critical") or {}
    rows = [["model", _e(ev.get("model"))], ["dataset version", _e(ev.get("version_id"))],
            ["test frames", _e(ev.get("frames"))], ["mAP@0.5 [interval]", _num(ev.get("map50"), ev.get("map50_ci"))],
            ["critical FP+FN", _e(crit.get("errors") if isinstance(crit, dict) else crit)],
            ["source", f"<span class='small'>{_e(ev.get('path'))}</span>"]]
    suites = ev.get("suites", [])
    return _table(["", "value"], rows) + _table(["suite", "metric", "value [interval]", "target", "status", "frames", "drives",
                                           "why"], [
        [_e(s.get("name")), _e(s.get("metric")), _num(s.get("value"), s.get("ci")), _num(s.get("threshold")),
         _e(s.get("status")), _e(s.get("frames")), _e(s.get("drives")), _e(s.get("reason"))] for s in suites],
        ["ok" if s.get("status") == "met" else "absent" for s in suites])


def _fleet(fleet: Mapping[str, Any] | None) -> str:
    if fleet is None:
        return "<p class='absent'>No fleet test result in this data root (DATA/fleet_test/fleet_test.json).</p>"
    head = "" if fleet["same_deployment"] else \
        f"<p class='broken'>The fleet test drove deployment {_e(fleet['deployment_id'])}, not this one.</p>"
    def rows(overall: bool) -> list[list[str]]:
        return [[_e(r.get("scenario")), _e(r.get("arm")), _e(r.get("metric")),
                 _num(r.get("per_100km"), [r.get("ci_low"), r.get("ci_high")]), _e(r.get("count")), _e(r.get("km"))]
                for r in fleet.get("rates") or [] if (r.get("scenario") == "all") == overall]

    head_row = ["scenario", "arm", "metric", "per 100 km [interval]", "events", "km"]
    note = f"<p class='small'>{_e(fleet.get('note'))}</p>" if fleet.get("note") else ""
    arms = "; ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted((fleet.get("arms") or {}).items()))
    return (head + note + f"<p>Arms: {arms}. Reference: {_e(fleet.get('reference'))}.</p>" + _table(head_row, rows(True))
            + f"<details><summary>per scenario</summary>{_table(head_row, rows(False))}</details>"
            + f"<p class='small'>source: {_e(fleet.get('path'))}</p>")


def render_evidence_html(pack: Mapping[str, Any]) -> str:
    """The evidence pack (`longtail.audit.evidence.build_evidence`) as one HTML page."""
    dep = pack["deployment"]
    model = dep.get("model") or {}
    lineage = pack["lineage"]
    counts = lineage["counts"]
    state = "broken" if counts["broken"] else ("absent" if counts["absent"] else "ok")
    verdict = {"broken": f"{counts['broken']} link(s) of the lineage are BROKEN: the deployed model cannot be traced "
                         f"to its data as recorded.",
               "absent": f"Every link present checks out; {counts['absent']} could not be checked (data not here).",
               "ok": "Every link of the lineage checks out, down to the drive logs' sha256."}[state]
    summary = _table(["", "value"], [
        ["deployment", f"<code>{_e(pack['deployment_id'])}</code>"], ["deployed at", _e(dep.get("created_at"))],
        ["model", f"<code>{_e(model.get('uri'))}</code> ({_e(model.get('preset'))})"],
        ["weights sha256", f"<span class='digest'>{_e(model.get('weights_sha256'))}</span>"],
        ["dataset version", f"<code>{_e(model.get('dataset_version'))}</code>"],
        ["thresholds", _e(json.dumps(dep.get("thresholds"), sort_keys=True))],
        ["lineage", f"{counts['ok']} ok, {counts['broken']} broken, {counts['absent']} absent"],
        ["evidence digest", f"<span class='digest'>{_e(pack['digest'])}</span>"]])
    listed = sorted((dep.get("files") or {}).items())

    def files_table(nested: bool) -> str:
        return _table(["file", "sha256"], [[f"<code>{_e(k)}</code>", f"<span class='digest'>{_e(v)}</span>"]
                                           for k, v in listed if ("/" in k) == nested])

    files = files_table(False) + f"<details><summary>{sum('/' in k for k, _ in listed)} more in sub-folders (the " \
                                 f"MLflow pyfunc model and its code)</summary>{files_table(True)}</details>"
    qa = _table(["label set", "frames", "accepted", "held", "findings by check", "status"], [
        [f"<code>{_e(q['batch_id'])}</code>", _e(q.get("frames")), _e(q.get("accepted")), _e(q.get("held")),
         f"<code>{_e(json.dumps(q.get('checks'), sort_keys=True, default=str))}</code>", _e(q["status"])]
        for q in pack["label_qa"]], [q["status"] for q in pack["label_qa"]])
    modes = _table(["failure mode", "title", "status", "discovered", "by", "fixed by"], [
        [f"<code>{_e(m['name'])}</code>", _e(m.get("title")), _e(m.get("status")), _e(m.get("discovered_at")),
         _e(m.get("discovered_by")), _e(m.get("fixed_by"))] for m in pack["failure_modes"]])
    not_met = "<ul>" + "".join(f"<li>{_e(s)}</li>" for s in pack["not_met"]) + "</ul>" if pack["not_met"] else \
        "<p>Nothing known unmet.</p>"
    card = f"<pre>{_e(pack['model_card'])}</pre>" if pack.get("model_card") else "<p class='absent'>No model card.</p>"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Evidence pack {_e(pack['deployment_id'])}</title><style>{_CSS}</style></head><body>"
            f"<h1>Evidence pack: deployment <code>{_e(pack['deployment_id'])}</code></h1>"
            f"<div class='banner {state}' id='verdict'>{_e(verdict)}</div>"
            f"<h2>What was deployed</h2>{summary}<h3>Deployed files</h3>{files}"
            f"<h2 id='lineage'>Where it came from: the lineage</h2>"
            f"<p class='small'>Each link's digest as recorded and as recomputed now. ok: matches; broken: differs or "
            f"the record is missing; absent: the data is not here to recompute.</p>{_lineage(lineage)}"
            f"<h2>Why it was allowed: the gate</h2>{_gate(pack['gate'])}"
            f"<h2>Evaluation</h2>{_evaluation(pack['evaluation'])}"
            f"<h2>Fleet test</h2>{_fleet(pack['fleet_test'])}"
            f"<h2>Known not met</h2>{not_met}"
            f"<h2>Label QA</h2>{qa}<h2>Failure modes</h2>{modes}<h2>Model card</h2>{card}"
            f"<p class='small'>Format {_e(pack['format'])}. Machine-readable twin: evidence-"
            f"{_e(pack['deployment_id'])}.json.</p></body></html>\n")
