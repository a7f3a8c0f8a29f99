"""An evaluation for ML engineers, for notebooks/05_evaluate.py, and the evaluate task's records.

The tables show every number of an evaluation (`longtail.evaluate.run.evaluate`) that the HTML
report for product managers shows, as pandas frames to sort and filter; the figures are the
report's own (`longtail.evaluate.report`). `publish_report` copies the report to the stable path
a product manager bookmarks (DATA/reports/evaluation.html) and `record_evaluation` writes what
the evaluate task evaluated (DATA/evaluations/latest.json).
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from longtail.errors import InputError
from longtail.evaluate.compare import CRITICAL_GROUPS
from longtail.evaluate.figures import delta_figure
from longtail.storage import atomic_write_bytes, atomic_write_json, read_json_record

log = logging.getLogger(__name__)

EVALUATION_RECORD_FIELDS = ("version_id", "run_id", "model_uri", "champion_uri", "promote", "headline", "map50",
                            "evaluation_path", "report", "published_report")
"""Fields of DATA/evaluations/latest.json: what the evaluate task evaluated and where the results are."""


@dataclass(frozen=True)
class DecisionNote:
    """The promotion decision as a notebook shows it: verdict, headline and every reason."""

    promote: bool
    headline: str
    reasons: tuple[str, ...]

    def _repr_html_(self) -> str:
        colour, verdict = ("#1e8e3e", "promote") if self.promote else ("#c5221f", "do not promote")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (f"<div class='longtail-decision' style='border-left:6px solid {colour};padding:4px 12px'>"
                f"<b>Decision: {verdict}</b><p>{html.escape(self.headline)}</p><ul>{reasons}</ul></div>")

    def __str__(self) -> str:
        return "\n".join([f"Decision: {'promote' if self.promote else 'do not promote'}", self.headline,
                          *(f"- {r}" for r in self.reasons)])


@dataclass(frozen=True)
class Note:
    """A line of text where a table or figure has nothing to show."""

    text: str

    def _repr_html_(self) -> str:
        return f"<p><i>{html.escape(self.text)}</i></p>"

    def __str__(self) -> str:
        return self.text


def decision_note(evaluation: Mapping[str, Any]) -> DecisionNote:
    """The evaluation's promotion decision (``evaluation["decision"]``) for display."""
    d = evaluation["decision"]
    return DecisionNote(bool(d["promote"]), str(d["headline"]), tuple(str(r) for r in d["reasons"]))


def kpi_table(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """The key numbers: mAP@[.5:.95], mAP@0.5, critical false positives and negatives at the
    operating threshold, suites passed and test frames; with a champion, its values and the change."""
    ev = evaluation
    checked = [s for s in ev["suites"] if s["status"] not in ("no_data", "not_measurable")]
    rows: dict[str, dict[str, Any]] = {
        "mAP@[.5:.95]": {"challenger": ev["overall"]["map"]},
        "mAP@0.5": {"challenger": ev["overall"]["map50"], "ci": ev["overall"].get("map50_ci")},
        "critical false positives": {"challenger": ev["critical"]["total"]["fp"],
                                     "ci": ev["critical"]["total"].get("fp_ci")},
        "critical false negatives": {"challenger": ev["critical"]["total"]["fn"],
                                     "ci": ev["critical"]["total"].get("fn_ci")},
        "regression suites passed": {"challenger": f"{sum(s['status'] == 'passed' for s in checked)} of "
                                                  f"{len(checked)} measurable ({len(ev['suites'])} in all)"},
        "test frames": {"challenger": ev["frames"]},
        "test frames without predictions": {"challenger": ev["frames_without_predictions"]},
    }
    comparison = ev.get("comparison")
    if comparison:
        by_metric = {r["metric"]: r for r in comparison["rows"]}
        for name, key in (("mAP@[.5:.95]", "overall/map"), ("mAP@0.5", "overall/map50")):
            r = by_metric.get(key)
            if r is not None:
                rows[name].update(champion=r["champion"], change=r["delta"])
        for name, key in (("critical false positives", "fp"), ("critical false negatives", "fn")):
            k = comparison["kpi"][key]
            rows[name].update(champion=k["champion"], change=k["delta"], relative_change=k["relative_change"])
    return pd.DataFrame.from_dict(rows, orient="index")


def targets_table(evaluation: Mapping[str, Any]) -> pd.DataFrame | Note:
    """The targets (per class, per suite) with value, 95% interval and status: met, not met, inside the
    interval or not measurable (`longtail.evaluate.gate.assess_targets`)."""
    rows = (evaluation["decision"].get("evidence") or {}).get("targets")
    if not rows:
        return Note("This evaluation was written before targets were assessed.")
    return pd.DataFrame(rows).set_index("target")[["goal", "value", "ci", "status"]]


def promotion_note(evaluation: Mapping[str, Any]) -> Note:
    """Whether the gate moved the registry's champion alias, and why not when it did not."""
    p = evaluation["decision"].get("promotion") or {}
    if p.get("done"):
        return Note(f"The champion alias now names version {p['version']} (it named {p.get('previous') or 'none'}).")
    return Note(f"The champion alias did not move: {p.get('reason', 'no promotion was attempted')}.")


def suites_table(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """The regression suites: slice, subject, metric, threshold, value with its 95% interval (``ci``), frames,
    drives, scored objects, verdict (passed, failed, no_data or not_measurable) and why a suite has no value."""
    table = pd.DataFrame(evaluation["suites"])
    for col in ("subject", "ci", "drives", "objects", "reason"):
        if col not in table.columns:
            table[col] = None  # evaluations written before intervals
    cols = ["name", "slice", "subject", "metric", "threshold", "value", "ci", "frames", "drives", "objects", "status",
            "reason"]
    return table[cols].set_index("name")


def critical_table(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """Critical false positives and negatives per group (pedestrian, cyclist, cut-in vehicle) and in total, with
    their 95% intervals over drives (fp_ci, fn_ci; None in evaluations written before intervals)."""
    rows = {g: {"counts": CRITICAL_GROUPS.get(g, "all groups"), "fp_ci": None, "fn_ci": None,
                **evaluation["critical"][g]} for g in (*CRITICAL_GROUPS, "total")}
    return pd.DataFrame.from_dict(rows, orient="index")[["counts", "fp", "fp_ci", "fn", "fn_ci", "errors"]]


def class_table(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """Per class: objects, detections, AP@[.5:.95], AP@0.5 with its 95% interval (ap50_ci), AP@0.75, and
    precision, recall, FP and FN at the operating threshold."""
    cols = ["gt", "detections", "ap", "ap50", "ap50_ci", "ap75", "precision", "recall", "fp", "fn"]
    rows = {c: {k: m.get(k) for k in cols} for c, m in evaluation["overall"]["per_class"].items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols).rename(columns={"gt": "objects"})


def slices_table(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """Every slice (test suites, conditions, vehicle type, scenarios, failure modes): its rule, frames,
    objects, mAP@[.5:.95], mAP@0.5, and recall, FP and FN at the operating threshold. A slice without
    objects has no metrics (NaN)."""
    rows = []
    for name, s in evaluation["slices"].items():
        m = s["metrics"] or {}
        totals = m.get("totals") or {}
        rows.append({"slice": name, "kind": s["kind"], "rule": s["rule"], "frames": s["frames"],
                     "objects": s["objects"], "map": m.get("map"), "map50": m.get("map50"),
                     "recall": totals.get("recall"), "fp": totals.get("fp"), "fn": totals.get("fn")})
    return pd.DataFrame(rows).set_index("slice")


def comparison_table(evaluation: Mapping[str, Any]) -> pd.DataFrame | Note:
    """Every metric of the challenger beside the champion's (``evaluation["comparison"]``), worst change
    first; a `Note` for a first model (no champion to compare with)."""
    comparison = evaluation.get("comparison")
    if not comparison:
        return Note("No champion yet: this is the first model, so there is nothing to compare against. The decision "
                    "rests on the regression suites alone.")
    table = pd.DataFrame(comparison["rows"]).set_index("metric")
    return table.sort_values("better", key=lambda s: s.map(lambda b: {False: 0, True: 2}.get(b, 1)),
                             kind="stable")


def comparison_figure(evaluation: Mapping[str, Any]) -> go.Figure | Note:
    """Challenger minus champion of the rates (`longtail.evaluate.report.delta_figure`); a `Note` for a first model."""
    comparison = evaluation.get("comparison")
    if not comparison:
        return Note("No champion yet: no change to chart.")
    return delta_figure(comparison)


def publish_report(report: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy an evaluation report to a stable path (atomically: a reader never sees half a file).

    The report's own name carries the version and run (DATA/reports/evaluate-<version>-<run>.html);
    the stable copy (DATA/reports/evaluation.html) is the newest evaluation, the page to bookmark.

    Raises:
        InputError: the report is missing.
    """
    source = Path(report)
    if not source.is_file():
        raise InputError(f"{source}: evaluation report missing; run the evaluation again (`longtail evaluate`)")
    target = Path(path)
    atomic_write_bytes(target, source.read_bytes())
    return target


def record_evaluation(result: Mapping[str, Any], path: str | os.PathLike[str],
                      published_report: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Write what the evaluate task evaluated and where the results are (JSON, atomically).

    Args:
        result: what `longtail.evaluate.model.evaluate_model` returned.
        path: where to write (the pipeline's declared product, DATA/evaluations/latest.json).
        published_report: the stable copy of the report (`publish_report`), if any.

    Returns:
        The record: `EVALUATION_RECORD_FIELDS`.
    """
    ev = result["evaluation"]
    decision = ev["decision"]
    record = {"version_id": ev["version_id"], "run_id": result["run_id"], "model_uri": result["model_uri"],
              "champion_uri": result["champion_uri"], "promote": bool(decision["promote"]),
              "headline": decision["headline"], "map50": ev["overall"]["map50"],
              "evaluation_path": str(result["evaluation_path"]), "report": str(result["report"]),
              "published_report": None if published_report is None else str(published_report)}
    atomic_write_json(path, record)
    log.info("evaluation of %s on %s: %s -> %s", record["model_uri"], record["version_id"], record["headline"], path)
    return record


def load_evaluation_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the evaluate task's record (`record_evaluation`).

    Raises:
        InputError: missing (run the evaluate task), not JSON, or lacking a field.
    """
    return read_json_record(path, EVALUATION_RECORD_FIELDS, kind="an evaluation record", task="evaluate",
                            missing="no model was evaluated yet. Run the evaluate task (`longtail run`) or "
                                    "`longtail evaluate --root <root>`")
