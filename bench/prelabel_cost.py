"""Simulated labeling cost of a labeled batch with a model's pre-labels, at several score thresholds.

For each frame of a pulled batch (DATA/labels/<batch>/labels.parquet) of simulated drives, the
simulated labeler's edit plan (`longtail.label.oracle.plan_edits`) from the model's pre-labels to
the simulator's ground truth is counted: boxes drawn, accepted, moved, relabeled and deleted per
frame, and seconds per frame under the oracle's cost model. Threshold 0 means no pre-labels (every
box drawn): the baseline, on the same frames. The same plan is what `label pull --oracle` submits
through Label Studio, so the row at the threshold the batch was pushed with matches its manifest.

Example:
    python bench/prelabel_cost.py --root data --batch batch-117f47519e1a2de7 --model models:/longtail-detector/1
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
import torch

from longtail.catalog.truth import find_truth_files, load_truth
from longtail.label.oracle import plan_edits, total_cost, truth_boxes
from longtail.label.prelabel import prelabel_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the data root")
    parser.add_argument("--batch", required=True, help="a pulled labeling batch of simulated drives")
    parser.add_argument("--model", required=True, help="MLflow model URI of the pre-labeler")
    parser.add_argument("--thresholds", default="0,0.2,0.3,0.4,0.5,0.6,0.7",
                        help="comma-separated pre-label score thresholds (0: no pre-labels)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
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
