"""What `longtail run` prints at the end: each turn of the loop, the KPI report, the evidence and
where everything is. Everything is read from the records the pipeline's tasks leave (their products)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longtail.errors import LongtailError

TURNS: dict[int, dict[str, str]] = {
    1: {"what": "week 1: a seed set, trained from scratch", "run": "runs/latest.json",
        "evaluation": "evaluations/latest.json", "fleet_test": "fleet_test/fleet_test.json",
        "fleet_report": "reports/fleet_test.html", "evidence": "reports/evidence/turn-1.json",
        "batch": "curate/selected_batch.json"},
    2: {"what": "week 2: mined with the champion, fine-tuned from it", "run": "runs/turn-2.json",
        "evaluation": "evaluations/turn-2.json", "fleet_test": "fleet_test-2/fleet_test.json",
        "fleet_report": "reports/fleet_test-2.html", "evidence": "reports/evidence/turn-2.json",
        "batch": "curate/selected_batch-2.json"},
}
"""Each turn's records, relative to the data root (pipeline.yaml's products)."""


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def turn_lines(root: str | Path, turn: int) -> list[str]:
    """The lines about one turn, or ``[]`` when it has not run in this data root."""
    from longtail.evaluate.summary import load_evaluation_record
    from longtail.train.report import load_train_record

    root = Path(root)
    paths = TURNS[turn]
    try:
        trained = load_train_record(root / paths["run"])
    except LongtailError:
        return []
    val = trained.get("val_map50")
    lines = [f"Turn {turn} ({paths['what']}):",
             f"  Model: models:/{trained['registered_model']}/{trained['model_version']} (MLflow run {trained['run_id']}; "
             f"dataset version {trained['version_id']}; val mAP@0.5 {'n/a' if val is None else f'{val:.3f}'})"]
    try:
        evaluated = load_evaluation_record(root / paths["evaluation"])
        lines.append(f"  Decision: {evaluated['headline']} (report for product managers: "
                     f"{evaluated['published_report'] or evaluated['report']}; every number: {evaluated['evaluation_path']})")
    except LongtailError:
        lines.append("  Decision: not evaluated yet")
    fleet = _json(root / paths["fleet_test"])
    if fleet is not None:
        tested = (fleet.get("deployment") or {}).get("deployment_id")
        lines.append(f"  Fleet test: {root / paths['fleet_report']} (deployment {tested or 'none: truth perception only'}; "
                     f"numbers {root / paths['fleet_test']})")
    evidence = _json(root / paths["evidence"])
    if evidence is not None:
        lines.append(f"  Evidence pack: {evidence['html']} (and {evidence['json']})" if evidence.get("html")
                     else f"  Evidence pack: none ({evidence.get('reason')})")
    return lines


def task_time_line(tasks: list[dict[str, Any]]) -> str:
    """One line on what this build rebuilt, with each rebuilt task's wall time."""
    ran = [t for t in tasks if t["ran"]]
    if not ran:
        return f"Nothing changed since the last run: all {len(tasks)} tasks are up to date, none was rebuilt."
    total = sum(t["seconds"] for t in ran)
    return (f"This run rebuilt {len(ran)} of {len(tasks)} tasks in {total / 60:.1f} min: "
            + ", ".join(f"{t['task']} {t['seconds']:.0f} s" for t in ran))


def kpi_lines(root: str | Path) -> list[str]:
    """The KPI report of the last turn (reports/kpi.json, the kpi task's product) as text, or ``[]``."""
    from longtail.kpi import format_kpi

    root = Path(root)
    kpi = _json(root / "reports" / "kpi.json")
    if kpi is None:
        return []
    return [f"KPI report of turn 2, v2 against v1 (for product managers: {root / 'reports' / 'kpi.html'}; "
            f"numbers: {root / 'reports' / 'kpi.json'}):", "", *format_kpi(kpi).splitlines(), ""]
