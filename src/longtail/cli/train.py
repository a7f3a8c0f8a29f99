"""``longtail train`` and ``sweep``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from longtail.cli.common import _latest_version
from longtail.errors import LongtailError

log = logging.getLogger("longtail")


# ------------------------------------------------------------------------------------ train
def _add_train(sub: Any) -> None:
    from longtail.detector.presets import DEFAULT_PRESET, PRESETS

    p = sub.add_parser(
        "train",
        help="train a detector from scratch on a dataset version, tracked in MLflow",
        description=(
            "Train a torchvision detector from scratch (no weights are downloaded) on a dataset version's train "
            "split, validating on its val split; test suites are never used. Checkpoints go to DATA/runs/<run id>/ "
            "(resume with --resume); MLflow (sqlite:///DATA/mlflow/mlflow.db by default) records params, per-epoch "
            "metrics, the dataset version as an input with its digest, the git commit, the environment lock hash "
            "and the model (a state dict), registered as a new version of the registered model. "
            f"Presets: {', '.join(sorted(PRESETS))} (default {DEFAULT_PRESET}: learns the simulated fleet on 2 CPU "
            "cores in minutes; fcos-resnet50 is for GPUs)."
        ),
        epilog="Example: longtail train --root data --max-minutes 10",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version id (default: the newest)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="model preset")
    p.add_argument("--epochs", type=int, help="epochs (default: the config's)")
    p.add_argument("--max-minutes", type=float, help="stop after this much training time")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--threads", type=int, help="torch threads (2 for one job on a 2-core machine)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--copy-paste", type=int, metavar="N",
                   help="paste up to N pedestrians/cyclists from other training frames into each frame "
                        "(default: the config's, 4; 0: off)")
    p.add_argument("--haze", type=float, metavar="SHARE",
                   help="share of training frames faded toward a uniform haze, as fog fades distant objects "
                        "(default: the config's, 0.5; 0: off)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="training arithmetic (default: the config's, auto: bfloat16 autocast where the CPU or GPU "
                        "runs it natively, else float32)")
    p.add_argument("--init-from", metavar="MODEL",
                   help="fine-tune from 'champion' (the registry's champion) or models:/<name>/<version> "
                        "(default: from scratch)")
    p.add_argument("--finetune-lr", type=float, help="peak learning rate when fine-tuning (default: the config's)")
    p.add_argument("--mined-oversample", type=float, metavar="RATE",
                   help="draw training frames mined for a failure mode RATE times per epoch (default 1: off)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--resume", help="a checkpoint (DATA/runs/<run id>/checkpoint-N.pt) to continue from")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``longtail train``."""
    from longtail.train.run import make_train_config, train

    values = {k: v for k, v in {"preset": args.preset, "epochs": args.epochs, "max_minutes": args.max_minutes,
                                "batch_size": args.batch_size, "lr": args.lr, "threads": args.threads,
                                "seed": args.seed, "copy_paste": args.copy_paste, "haze": args.haze,
                                "device": args.device,
                                "precision": args.precision, "tracking_uri": args.tracking_uri,
                                "init_from": args.init_from, "finetune_lr": args.finetune_lr,
                                "mined_oversample": args.mined_oversample}.items()
              if v is not None}
    if args.resume:
        from longtail.train.run import load_checkpoint

        # A resumed run keeps its own config; only the budget and the machine may change.
        saved = load_checkpoint(args.resume)["config"]
        saved = json.loads(saved) if isinstance(saved, str) else dict(saved)
        values = {**saved, **{k: v for k, v in values.items() if k in ("max_minutes", "threads", "device")}}
    config = make_train_config("longtail train", **values)
    version = args.version or _latest_version(args.root)
    result = train(args.root, version, config, resume=args.resume, progress=not args.no_progress)
    out = {k: v for k, v in result.items() if k not in ("model", "config", "history")}
    if args.json:
        json.dump(out, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        val = result.get("val_map50")
        sys.stdout.write(f"run {result['run_id']} on {version}: {result['epochs_done']} epoch(s), val mAP@0.5 "
                         f"{'n/a' if val is None else f'{val:.3f}'}, {result.get('images_per_s') or 0:.1f} images/s; "
                         f"model {result['model_uri']} (registered {result.get('registered_model')} "
                         f"v{result.get('model_version')})\n")
    return 0


def _parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``FIELD=V1,V2`` items -> {field: [values]}; each value a number, boolean or string (`_grid_value`)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        field, sep, values = item.partition("=")
        if not sep or not field.strip() or not values.strip():
            raise LongtailError(f"--grid {item!r}: write FIELD=VALUE[,VALUE...], e.g. --grid lr=0.001,0.002")
        if field.strip() in grid:
            raise LongtailError(f"--grid {item!r}: field {field.strip()!r} given twice; list all its values in one --grid")
        grid[field.strip()] = [_grid_value(v.strip()) for v in values.split(",")]
    return grid


def _grid_value(text: str) -> Any:
    """A --grid value: a JSON number, boolean or null (``2e-3`` too, which YAML 1.1 reads as text), else YAML."""
    import yaml

    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


def _add_sweep(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="train a grid of presets and hyperparameters in parallel and compare the runs in one table",
        description=(
            "Train one run per point of a grid of training-config fields (any field of longtail.train.config."
            "TrainConfig: preset, lr, batch_size, epochs, ...) on a dataset version. The points run as parallel "
            "tasks of a Ploomber DAG (notebooks/04_train.py each, sharing --threads), every run is tracked in "
            "MLflow with the sweep's id, and a last task reads them back into one table, best validation "
            "mAP@0.5 first: DATA/sweeps/<sweep id>/table.csv. The same request is the same sweep: a re-run "
            "trains only the points not trained yet. A bad grid fails before anything trains."
        ),
        epilog="Example: longtail sweep --root data --grid lr=0.001,0.002,0.004 --grid batch_size=8,16 "
               "--max-minutes 5 --parallel 2",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version id (default: the newest)")
    p.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                   help="a swept field and its values; repeat for more fields (every combination runs)")
    p.add_argument("--preset", help="preset of the points (unless swept)")
    p.add_argument("--epochs", type=int, help="epochs of each point (unless swept)")
    p.add_argument("--max-minutes", type=float, help="time budget of each point")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the whole sweep, shared by the jobs")
    p.add_argument("--parallel", type=int, default=2, help="points trained at once")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--force", action="store_true", help="re-train points already trained")
    p.add_argument("--register", action="store_true",
                   help="register every point's model (off: `evaluate` and pre-labels use the newest registered model)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``longtail sweep``."""
    from longtail.train.run import make_train_config
    from longtail.train.sweep import sweep

    grid = _parse_grid(args.grid)
    values = {k: v for k, v in {"preset": args.preset, "epochs": args.epochs, "max_minutes": args.max_minutes,
                                "threads": args.threads, "tracking_uri": args.tracking_uri}.items() if v is not None}
    base = make_train_config("longtail sweep", **values)
    version = args.version or _latest_version(args.root)
    table = sweep(args.root, version, grid, base, progress=not args.json, parallel=args.parallel, force=args.force,
                  register=args.register)
    if args.json:
        json.dump(table.to_dict("records"), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table.to_string(index=False) + "\n")
    return 0


