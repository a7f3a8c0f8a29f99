"""Simulated labeling cost of a labeled batch with a model's pre-labels, at several score thresholds.

For each frame of a pulled batch (DATA/labels/<batch>/labels.parquet) of simulated drives, the
simulated labeler's edit plan (`longtail.label.oracle.plan_edits`) from the model's pre-labels to
the simulator's ground truth is counted: boxes drawn, accepted, moved, relabeled and deleted per
frame, and seconds per frame under the oracle's cost model. Threshold 0 means no pre-labels (every
box drawn): the baseline, on the same frames. The same plan is what `label pull --oracle` submits
through Label Studio, so the row at the threshold the batch was pushed with matches its manifest.

Example:
    python bench/prelabel_cost.py --root data --batch batch-117f47519e1a2de7 --model models:/longtail-detector/1

``--quick`` (with no ``--root``) builds a temporary data root, to check that this script still runs (`make
bench-quick`): a simulated drive of 12 s at 160x96 ingested, its first keyframes as the batch, and a model
trained for one epoch on a tiny synthetic version:
    python bench/prelabel_cost.py --quick
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from longtail.catalog.truth import find_truth_files, load_truth
from longtail.label.oracle import plan_edits, total_cost, truth_boxes
from longtail.label.prelabel import prelabel_batch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import parse_args, quick_requested

QUICK_BATCH = "batch-quick"


def make_quick_root(folder: Path, frames: int = 8) -> tuple[Path, str, str]:
    """A data root under ``folder`` with a labeling batch of ``frames`` keyframes of one simulated drive.

    The batch holds only what this script reads: DATA/batches/<id>/ (manifest.json, frames.parquet with
    frame_id and store_path) and DATA/labels/<id>/labels.parquet (the frames' ids, drives, times and sizes).

    Returns:
        (the data root, the batch id, the MLflow URI of a model trained one epoch on a tiny version there).
    """
    from _tiny_version import ingest_tiny_drive, train_tiny_model, write_tiny_version
    from longtail.catalog.frames import load_frame_index
    from longtail.catalog.root import DataRoot

    root = DataRoot.of(folder / "data")
    ingest_tiny_drive(folder / "fleet", root.path)
    index = load_frame_index(root.path)
    batch = index[index["keyframe"]].head(frames)
    root.batch(QUICK_BATCH).mkdir(parents=True)
    batch[["frame_id", "store_path"]].to_parquet(root.batch(QUICK_BATCH) / "frames.parquet", index=False)
    (root.batch(QUICK_BATCH) / "manifest.json").write_text(json.dumps({"batch_id": QUICK_BATCH}) + "\n")
    root.label_set(QUICK_BATCH).mkdir(parents=True)
    batch[["frame_id", "log_id", "drive_id", "timestamp_ns", "width", "height"]].to_parquet(
        root.label_set(QUICK_BATCH) / "labels.parquet", index=False)
    _, version = write_tiny_version(root.path)
    return root.path, QUICK_BATCH, train_tiny_model(root.path, version)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = quick_requested(argv)
    parser.add_argument("--root", required=not quick, help="the data root")
    parser.add_argument("--batch", required=not quick, help="a pulled labeling batch of simulated drives")
    parser.add_argument("--model", required=not quick, help="MLflow model URI of the pre-labeler")
    parser.add_argument("--thresholds", default="0,0.2,0.3,0.4,0.5,0.6,0.7",
                        help="comma-separated pre-label score thresholds (0: no pre-labels)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parse_args(parser, {"thresholds": "0,0.3", "threads": 1}, argv)
    logging.basicConfig(level=logging.WARNING)
    if args.quick and not args.root:
        with tempfile.TemporaryDirectory(prefix="longtail-bench-prelabel-") as tmp:
            root, args.batch, args.model = make_quick_root(Path(tmp))
            args.root = str(root)
            return report(args)
    if not (args.batch and args.model):
        parser.error("--root needs --batch and --model")
    return report(args)


def report(args: argparse.Namespace) -> int:
    """Print the cost table of ``args.batch`` at each threshold."""
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    frames = pd.read_parquet(root / "labels" / args.batch / "labels.parquet")
    truth = load_truth(find_truth_files(root, frames["log_id"].unique()), frames)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    floor = min([t for t in thresholds if t > 0] or [0.05])
    prelabels, label = prelabel_batch(root, args.batch, args.model, threshold=floor)
    print(f"{len(frames)} frames of {args.batch}, pre-labels from {label}")
    print("| threshold | drawn / frame | accepted | moved | relabeled | deleted | s / frame |")
    print("|---|---|---|---|---|---|---|")
    for t in thresholds:
        costs = []
        for row in frames.itertuples():
            boxes = truth_boxes(truth[row.frame_id].objects, row.width, row.height)
            shown = [b for b in prelabels.get(row.frame_id, []) if b["score"] >= t] if t > 0 else []
            costs.append(plan_edits(shown, boxes)[1])
        c = total_cost(costs)
        n = max(c.frames, 1)
        print(f"| {'none' if t == 0 else t} | {c.added / n:.2f} | {c.accepted / n:.2f} | {c.moved / n:.2f} | "
              f"{c.relabeled / n:.2f} | {c.deleted / n:.2f} | {c.seconds / n:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
