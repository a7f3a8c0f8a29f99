"""``longtail deploy``: the champion as checked exports, a model card and a servable MLflow model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _add_deploy(sub: Any) -> None:
    p = sub.add_parser(
        "deploy",
        help="deploy the champion: TorchScript and ONNX exports checked against PyTorch, model card, MLflow pyfunc",
        description=(
            "Take the model behind the registry's `champion` alias and write a deployment in "
            "DATA/deployments/<deployment_id>/: TorchScript (model.ts) and ONNX (model.onnx) exports, the per-class "
            "operating thresholds (thresholds.json), a model card (model_card.md: intended use, training data and "
            "its lineage, targets met and missed with intervals, known failure modes), an MLflow pyfunc model "
            "(pyfunc/, for `mlflow models serve`) and the record (deployment.json: model version, sha256 of every "
            "file, parity results, time), written last. Before anything is kept, PyTorch, TorchScript and "
            "onnxruntime run on test frames of a dataset version and must agree: boxes within --box-tolerance px, "
            "scores within --score-tolerance, no detection clearly above its threshold without a counterpart; "
            "otherwise nothing is deployed. DATA/deployments/current.json then points at the deployment, which "
            "the fleet test and the monitor read. The id comes from the model version, its weights and its "
            "thresholds: deploying the same champion again does nothing."
        ),
        epilog=("Examples: longtail deploy --root data\n"
                "          longtail deploy --root data --list\n"
                "Serve it: mlflow models serve -m data/deployments/<deployment_id>/pyfunc --env-manager local "
                "-h 127.0.0.1 -p 5001"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version whose test frames the parity check uses (default: the newest)")
    p.add_argument("--parity-frames", type=int, help="most test frames the parity check runs on (default 32)")
    p.add_argument("--box-tolerance", type=float, help="largest box difference an export may show, px (default 0.5)")
    p.add_argument("--score-tolerance", type=float, help="largest score difference an export may show (default 0.001)")
    p.add_argument("--serve-backend", choices=["onnx", "torchscript"], help="the export the pyfunc model runs "
                                                                            "(default onnx)")
    p.add_argument("--name", help="registered model (default longtail-detector)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--list", action="store_true", help="list the deployments and which one is current; deploy nothing")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=cmd_deploy)


def cmd_deploy(args: argparse.Namespace) -> int:
    """Run ``longtail deploy``."""
    if args.list:
        from longtail.catalog.deployments import list_deployments

        records = list_deployments(args.root)
        if args.json:
            json.dump([{k: r[k] for k in ("deployment_id", "created_at", "model", "path", "current")} for r in records],
                      sys.stdout, indent=2)
            sys.stdout.write("\n")
        for r in records if not args.json else []:
            sys.stdout.write(f"{'*' if r['current'] else ' '} {r['deployment_id']}  {r['created_at']}  "
                             f"{r['model']['uri']}\n")
        if not records and not args.json:
            sys.stdout.write(f"nothing deployed in {args.root} yet\n")
        return 0
    from longtail.deploy.run import make_deploy_config, run_deploy

    config = make_deploy_config("longtail deploy", registered_model=args.name, version_id=args.version,
                                parity_frames=args.parity_frames, box_tolerance_px=args.box_tolerance,
                                score_tolerance=args.score_tolerance, pyfunc_backend=args.serve_backend)
    out = run_deploy(args.root, config, tracking_uri=args.tracking_uri, progress=sys.stderr.isatty())
    record = out["record"]
    if args.json:
        json.dump({**{k: v for k, v in record.items() if k != "files"}, "created": out["created"]}, sys.stdout,
                  indent=2)
        sys.stdout.write("\n")
        return 0
    parity = record["parity"]
    worst = max(r["max_box_diff"] for r in parity["backends"].values())
    what = "deployed" if out["created"] else "already deployed (nothing changed)"
    sys.stdout.write(f"{record['model']['uri']} {what}: {record['deployment_id']}\n"
                     f"  folder: {record['path']}\n"
                     f"  parity on {parity['frames_description']}: boxes within {worst:.2g} px "
                     f"(tolerance {parity['tolerance']['box_px']})\n"
                     f"  model card: {record['path']}/{record['model_card']}\n"
                     f"  serve: mlflow models serve -m {record['path']}/{record['pyfunc']} --env-manager local\n")
    return 0
