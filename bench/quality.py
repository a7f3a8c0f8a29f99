"""Score trained models on a dataset version's splits: mAP@0.5 and AP@0.5 per class.

Not a speed benchmark: the quality a training run reached, with the same metric and the same
ignore rule as the evaluate task (`longtail.evaluate.metrics.evaluate_detections`, objects under
``--min-object-height`` of the frame height neither found nor missed). Each model predicts every
frame of the splits (score >= 0.05), then each split is scored on its own.

Example:
    python bench/quality.py --root data --version v-2e809eab1176d1f5 runs:/<run id>/model models:/longtail-detector/1
    python bench/quality.py --root data --version v-2e809eab1176d1f5 --splits test_common --by drive models:/longtail-detector/1

``--by drive`` scores each drive of each split on its own: a suite of a few drives measures the drives it
happened to get as much as the model, and this shows which.

``--quick`` (with no ``--root``) trains one epoch on a tiny synthetic version in a temporary data root and
scores it there, to check that this script still runs (`make bench-quick`):
    python bench/quality.py --quick
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from longtail.detector.metrics import evaluate_detections
from longtail.detector.model import default_tracking, load_model_from_mlflow
from longtail.detector.predict import predict_frames
from longtail.schemas import MIN_OBJECT_HEIGHT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import parse_args, quick_requested

log = logging.getLogger("bench.quality")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = quick_requested(argv)
    parser.add_argument("--root", required=not quick, help="the data root")
    parser.add_argument("--version", required=not quick, help="dataset version id")
    parser.add_argument("--splits", default="val,test_common,test_longtail", help="comma-separated splits")
    parser.add_argument("--min-object-height", type=float, default=MIN_OBJECT_HEIGHT,
                        help="ignore boxes less tall than this share of the frame height (0: score every box)")
    parser.add_argument("--by", choices=["split", "drive"], default="split",
                        help="one row per split, or per drive of each split")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("models", nargs="*" if quick else "+",
                        help="MLflow model URIs (runs:/<id>/model, models:/name/N)")
    args = parse_args(parser, {"threads": 1}, argv)
    logging.basicConfig(level=logging.WARNING)
    if args.quick and not args.root:
        from _tiny_version import train_tiny_model, write_tiny_version

        with tempfile.TemporaryDirectory(prefix="longtail-bench-quality-") as tmp:
            root = Path(tmp) / "data"
            _, args.version = write_tiny_version(root)
            args.root, args.models = str(root), [train_tiny_model(root, args.version)[0]]
            return report(args)
    if not (args.version and args.models):
        parser.error("--root needs --version and at least one model URI")
    return report(args)


def report(args: argparse.Namespace) -> int:
    """Print the table of every model on ``args.splits`` of ``args.version`` in ``args.root``."""
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    folder = root / "datasets" / args.version
    frames = pd.read_parquet(folder / "labels.parquet")
    splits = args.splits.split(",")
    frames = frames[frames["split"].isin(splits)]
    tracking = default_tracking(root / "mlflow")[0]
    groups = splits
    if args.by == "drive":  # score each (split, drive) as a group of its own
        frames = frames.assign(split=frames["split"] + " " + frames["drive_id"])
        groups = sorted(frames["split"].unique(), key=lambda g: (splits.index(g.split(" ")[0]), g))
    print("| model | split | frames | mAP@0.5 | AP@0.5 per class (scored boxes) |")
    print("|---|---|---|---|---|")
    for uri in args.models:
        model, _ = load_model_from_mlflow(uri, tracking)
        for split, part, r in score_splits(model, folder, frames, groups, args.min_object_height):
            per_class = ", ".join(f"{c} {v['ap50']:.2f} ({v['gt']})" for c, v in r["per_class"].items()
                                  if v["ap50"] is not None)
            print(f"| {uri} | {split} | {len(part)} | {r['map50'] if r['map50'] is not None else float('nan'):.3f} "
                  f"| {per_class} |")
    return 0


def score_splits(model: torch.nn.Module, version_dir: Path, frames: pd.DataFrame, splits: list[str],
                 min_object_height: float = MIN_OBJECT_HEIGHT) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
    """Predict every frame once (score >= 0.05), then score each split on its own.

    Returns:
        (split, its frames, `evaluate_detections`' result) per split, in order.
    """
    preds = predict_frames(model, version_dir, frames[frames["split"].isin(splits)], score_threshold=0.05)
    out = []
    for split in splits:
        part = frames[frames["split"] == split]
        gt = {f: [dict(b) for b in boxes] for f, boxes in zip(part["frame_id"], part["boxes"], strict=True)}
        min_h = {f: min_object_height * h for f, h in zip(part["frame_id"], part["height"], strict=True)}
        out.append((split, part, evaluate_detections(gt, {f: preds.get(f, []) for f in gt}, min_height=min_h)))
    return out


if __name__ == "__main__":
    sys.exit(main())
