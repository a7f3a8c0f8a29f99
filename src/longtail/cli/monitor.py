"""``longtail monitor``: watch the newly ingested drive logs against the champion's training drives."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger("longtail")


def _add_monitor(sub: Any) -> None:
    p = sub.add_parser(
        "monitor",
        help="monitor the newly ingested drive logs: drift, predictions, shadow mode, trigger rates, breaches",
        description=(
            "Monitor the drive logs ingested since the last run (a batch) against the champion's training drives: "
            "drift on the champion's embeddings (a domain classifier's ROC AUC and an MMD test with a permutation "
            "p-value, drives as the unit), the champion's confidence and class histograms, a challenger in shadow "
            "mode (frames where it disagrees with the champion become the shadow_disagreement trigger for "
            "curation), condition mix, and trigger and disengagement rates per 100 km. A breach of the target's "
            "thresholds (env/<target>.yaml, monitor:) opens or updates a failure mode that the next curation mines. "
            "Writes DATA/monitor/batches/<batch_id>.json and the report DATA/reports/monitoring.html."
        ),
        epilog="Example: longtail monitor --root data --target local",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--target", help="take thresholds and sizes from env/<target>.yaml's monitor: section "
                                    "(default: the built-in defaults, which env/local.yaml repeats)")
    p.add_argument("--logs", nargs="+", metavar="LOG_ID", help="monitor these ingested logs as one batch instead of "
                                                                "the new ones")
    p.add_argument("--no-shadow", action="store_true", help="do not run a challenger beside the champion")
    p.add_argument("--report", help="where to write the HTML report (default: DATA/reports/monitoring.html)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--json", action="store_true", help="print the batch's breaches and paths as JSON")
    p.set_defaults(func=cmd_monitor)


def monitor_config(target: str | None, no_shadow: bool = False) -> Any:
    """The `MonitorConfig` of a target's env file (its ``monitor:`` section), or the defaults.

    Raises:
        ConfigError: the target or a value in its section is invalid, naming the file and field.
    """
    from pydantic import ValidationError

    from longtail.config import MonitorConfig
    from longtail.errors import invalid_config

    section: dict[str, Any] = {}
    source = "longtail monitor"
    if target is not None:
        from longtail.pipeline import load_env, project_root

        section = dict(load_env(target).get("monitor") or {})
        source = str(project_root() / "env" / f"{target}.yaml")
    if no_shadow:
        section["shadow"] = False
    try:
        return MonitorConfig(**section)
    except ValidationError as exc:
        raise invalid_config(source, "monitor: section", exc) from None


def cmd_monitor(args: argparse.Namespace) -> int:
    """Run ``longtail monitor``."""
    from longtail.catalog.root import DataRoot
    from longtail.monitor.report import render_report
    from longtail.monitor.run import run_monitor

    config = monitor_config(args.target, args.no_shadow)
    record = run_monitor(args.root, config, tracking_uri=args.tracking_uri, log_ids=args.logs,
                         progress=sys.stderr.isatty())
    report = render_report(args.root, args.report or DataRoot.of(args.root).reports / "monitoring.html")
    if args.json:
        out: dict[str, Any] = {"batch_id": None, "breaches": [], "report": str(report.path),
                               "open_breaches": report.open_breaches}
        if record is not None:
            out.update(batch_id=record["batch_id"], logs=len(record["logs"]), km=record["km"],
                       breaches=[b["rule"] for b in record["breaches"]], failure_modes=record["failure_modes"],
                       record=str(DataRoot.of(args.root).monitoring_record(record["batch_id"])))
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif record is None:
        sys.stdout.write(f"no drive log ingested since the last monitoring run; report: {report.path}\n")
    else:
        breaches = "; ".join(b["rule"] for b in record["breaches"]) or "no breach"
        sys.stdout.write(f"batch {record['batch_id']}: {len(record['logs'])} log(s), {record['km']:.1f} km: {breaches}\n"
                         f"report: {report.path}\n")
    return 0
