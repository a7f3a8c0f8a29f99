"""``longtail evaluate``, ``promote`` and ``rollback``: judging models and the champion alias."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from longtail.cli.common import _latest_version

log = logging.getLogger("longtail")


# ------------------------------------------------------------------------------------ evaluate
def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model on a dataset version's test suites and write the HTML report",
        description=(
            "Run a model (default: the newest registered version) on a dataset version's test frames: COCO mAP "
            "and per-class AP, metrics per slice (conditions, vehicle type, scenario, each failure mode), critical "
            "false positives and negatives at the operating threshold, the long-tail and common-case suites and "
            "each failure mode's regression suite, and, when the registry has a champion, every metric side by "
            "side with the critical-error KPI. Writes DATA/evaluations/<version>/<run>/evaluation.json and a "
            "self-contained HTML report in DATA/reports/ that opens with the promotion decision."
        ),
        epilog="Example: longtail evaluate --root data",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version id (default: the newest)")
    p.add_argument("--model", help="MLflow model URI (runs:/..., models:/name/N, models:/name@alias, or a run id)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--json", action="store_true", help="print the decision and paths as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``longtail evaluate``."""
    from longtail.evaluate.model import evaluate_model

    version = args.version or _latest_version(args.root)
    out = evaluate_model(args.root, version, model_uri=args.model, tracking_uri=args.tracking_uri)
    summary = {k: out[k] for k in ("model_uri", "run_id", "champion_uri", "decision", "evaluation_path", "report")}
    summary["map50"] = out["evaluation"]["overall"]["map50"]
    summary["suites"] = {r["name"]: r["status"] for r in out["evaluation"]["suites"]}
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        d = out["decision"] or {}
        sys.stdout.write(f"{out['model_uri']} on {version}: mAP@0.5 {summary['map50']:.3f}; "
                         f"{d.get('headline', '')}\nreport: {out['report']}\n")
    return 0


# ------------------------------------------------------------------------------------ promote, rollback
def _add_promote(sub: Any) -> None:
    p = sub.add_parser(
        "promote",
        help="make a model version the champion (the registry's `champion` alias)",
        description=(
            "Move the registry's `champion` alias to a model version: curation then embeds and mines with it, "
            "labeling is pre-labeled by it and evaluation judges challengers against it. The pipeline's evaluate "
            "task promotes through the same function when the gate passes; this command is for people (an "
            "override, with the reason recorded as a tag on the version). The move is atomic: the champion it "
            "replaces is recorded, so `longtail rollback` can undo it."),
        epilog="Example: longtail promote 3 --root data --reason 'fleet test passed'",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("version", help="model version number of the registered model")
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--reason", required=True, help="why, in words (recorded on the model version)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--name", default="longtail-detector", help="registered model")
    p.set_defaults(func=cmd_promote)


def cmd_promote(args: argparse.Namespace) -> int:
    """Run ``longtail promote``."""
    import getpass

    from longtail.catalog.root import DataRoot
    from longtail.detector.registry import promote, tracking_uri_for

    out = promote(tracking_uri_for(args.root, args.tracking_uri), args.version, lock_dir=DataRoot.of(args.root).mlflow,
                  name=args.name, reason=args.reason, actor=getpass.getuser())
    if out["changed"]:
        sys.stdout.write(f"{args.name}: champion is version {out['version']} (was {out['previous'] or 'none'})\n")
    else:
        sys.stdout.write(f"{args.name}: version {out['version']} is the champion already; nothing changed\n")
    return 0


def _add_rollback(sub: Any) -> None:
    p = sub.add_parser(
        "rollback",
        help="give the champion alias back to the version the current champion replaced",
        description=("Undo the last promotion: the `champion` alias moves back to the version the current champion "
                     "replaced, and the current one is tagged with when and why it was rolled back."),
        epilog="Example: longtail rollback --root data --reason 'phantom braking in the fleet test'",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--reason", required=True, help="why, in words (recorded on the rolled-back version)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--name", default="longtail-detector", help="registered model")
    p.set_defaults(func=cmd_rollback)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Run ``longtail rollback``."""
    import getpass

    from longtail.catalog.root import DataRoot
    from longtail.detector.registry import rollback, tracking_uri_for

    out = rollback(tracking_uri_for(args.root, args.tracking_uri), lock_dir=DataRoot.of(args.root).mlflow,
                   name=args.name, reason=args.reason, actor=getpass.getuser())
    sys.stdout.write(f"{args.name}: champion is version {out['version']} again (version {out['rolled_back']} "
                     "rolled back)\n")
    return 0


