"""Re-check the training defaults on the validation split only: each default against its ablation.

Haze, the stride-4 P2 level (`fcos-small-p2` against `fcos-small`) and copy-paste were once chosen by
looking at test_common numbers. This benchmark trains the default config and one ablation per default
on the same dataset version, with the same seed and time budget, and scores every model on the
validation split alone: mAP@0.5 with a 95% interval from a bootstrap over validation drives, and the
paired difference (ablation minus default, the same drives drawn for both) with its interval. No
test suite is predicted or scored here.

Example (the `make run` version, 10 minutes each on 2 threads, about 45 minutes in all):
    python bench/defaults.py --root data --version v-0123456789abcdef --minutes 10 --seed 0

It prints a Markdown table and writes bench/results/defaults.json. ``--trained ARM=MODEL_URI`` scores an
arm trained by an earlier invocation instead of training it again (its row says ``loaded``).

``--quick`` (with no ``--root``) trains two arms for one short epoch each on a tiny synthetic version in a
temporary data root and writes the JSON there, to check that this script still runs (`make bench-quick`):
    python bench/defaults.py --quick
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from longtail.catalog.root import DataRoot
from longtail.detector.calibrate import MIN_THRESHOLD
from longtail.detector.metrics import compute_frame_stats, evaluate_detections
from longtail.detector.model import default_tracking, load_model_from_mlflow
from longtail.detector.predict import predict_frames
from longtail.evaluate.bootstrap import BootstrapConfig, drive_intervals
from longtail.evaluate.gate import paired_difference
from longtail.schemas import CATEGORIES, MIN_OBJECT_HEIGHT
from longtail.train.run import make_train_config, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import parse_args, quick_requested

log = logging.getLogger("bench.defaults")

ARMS: dict[str, dict[str, Any]] = {
    "default": {},
    "no haze": {"haze": 0.0},
    "no copy-paste": {"copy_paste": 0},
    "fcos-small (no P2 level)": {"preset": "fcos-small"},
}
"""Each arm's changes to the default training config (env/local.yaml's train section)."""


def score_on_val(model: torch.nn.Module, version_dir: Path, frames: pd.DataFrame, boot: BootstrapConfig
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """mAP@0.5 on the validation frames with its interval over drives, and the per-frame statistics."""
    preds = predict_frames(model, version_dir, frames, score_threshold=MIN_THRESHOLD)
    gt = {f: [dict(b) for b in boxes] for f, boxes in zip(frames["frame_id"], frames["boxes"], strict=True)}
    min_h = {f: MIN_OBJECT_HEIGHT * float(h) for f, h in zip(frames["frame_id"], frames["height"], strict=True)}
    result = evaluate_detections(gt, preds, CATEGORIES, iou_thresholds=(0.5,), max_dets=100, min_height=min_h)
    stats = compute_frame_stats(gt, preds, CATEGORIES, max_dets=100, min_height=min_h)
    drive_of = dict(zip(frames["frame_id"], frames["drive_id"], strict=True))
    drives, ci = drive_intervals(stats, drive_of, CATEGORIES, boot)
    return {"map50": result["map50"], "map50_ci": ci.get("map50"), "drives": drives,
            "ap50": {c: v["ap50"] for c, v in result["per_class"].items()}}, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = quick_requested(argv)
    parser.add_argument("--root", required=not quick, help="the data root")
    parser.add_argument("--version", required=not quick, help="dataset version id")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each arm, minutes")
    parser.add_argument("--epochs", type=int, default=16, help="epoch cap (the budget decides)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (the same for every arm)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated arms of {list(ARMS)}")
    parser.add_argument("--trained", action="append", default=[], metavar="ARM=MODEL_URI",
                        help="score this arm's model from an earlier run (MLflow URI) instead of training it again")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "defaults.json"), help="JSON output")
    args = parse_args(parser, {"minutes": 0.02, "epochs": 1, "threads": 1, "arms": "default,no haze", "out": ""},
                      argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quick:
        with tempfile.TemporaryDirectory(prefix="longtail-bench-defaults-") as tmp:
            args.out = str(Path(tmp) / "defaults.json")
            if not args.root:
                from _tiny_version import write_tiny_version

                args.root = str(Path(tmp) / "data")
                _, args.version = write_tiny_version(Path(args.root))
            return run(parser, args, argv)
    if not args.version:
        parser.error("--root needs --version")
    return run(parser, args, argv)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None) -> int:
    """Train (or load) and score each arm, write ``args.out`` and print the table."""
    arms = [a.strip() for a in args.arms.split(",")]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown {unknown}; valid arms are {list(ARMS)}")
    trained = dict(item.split("=", 1) for item in args.trained)
    if set(trained) - set(arms):
        parser.error(f"--trained names arm(s) {sorted(set(trained) - set(arms))} not in --arms")
    root = DataRoot.of(args.root)
    version_dir = root.dataset_version(args.version)
    frames = pd.read_parquet(version_dir / "labels.parquet")
    val = frames[frames["split"] == "val"].reset_index(drop=True)
    boot = BootstrapConfig()
    rows, stats = [], {}
    for arm in arms:
        if arm in trained:  # trained by an earlier invocation: load and score it
            model, meta = load_model_from_mlflow(trained[arm], default_tracking(root.mlflow)[0])
            out = {"model": model, "run_id": meta["run_id"], "epochs_done": meta.get("epochs_done"),
                   "images_per_s": None}
        else:
            config = make_train_config(f"bench/defaults.py ({arm})", max_minutes=args.minutes, epochs=args.epochs,
                                       seed=args.seed, threads=args.threads, registered_model=None,
                                       experiment="bench-defaults", **ARMS[arm])
            out = train(root, args.version, config, progress=False, tags={"longtail.bench": "defaults"})
        torch.set_num_threads(args.threads)
        scored, stats[arm] = score_on_val(out["model"], version_dir, val, boot)
        rows.append({"arm": arm, "changes": ARMS[arm], "run_id": out["run_id"], "epochs": out["epochs_done"],
                     "images_per_s": out["images_per_s"], "loaded": arm in trained, **scored})
        log.info("%s: val mAP@0.5 %.3f %s in %d epochs", arm, scored["map50"] or 0.0, scored["map50_ci"],
                 out["epochs_done"])
    drive_of = dict(zip(val["frame_id"], val["drive_id"], strict=True))
    for row in rows:
        if row["arm"] != "default" and "default" in stats:
            row["diff_vs_default"] = (row["map50"] or 0.0) - (rows[0]["map50"] or 0.0)
            row["diff_ci"] = paired_difference(stats[row["arm"]], stats["default"], drive_of, CATEGORIES, "map50", boot)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "commit": commit, "version": args.version, "split": "val", "val_frames": len(val),
              "val_drives": int(val["drive_id"].nunique()), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"| arm (val split, {len(val)} frames, {record['val_drives']} drives) | epochs | val mAP@0.5 [95% interval] | "
          "ablation - default [95% interval, paired] | car / truck / pedestrian / cyclist AP@0.5 |")
    print("|---|---|---|---|---|")
    for r in rows:
        ci = r["map50_ci"] or [float("nan")] * 2
        diff = "" if "diff_ci" not in r else (f"{r['diff_vs_default']:+.3f} [{r['diff_ci'][0]:+.3f}, {r['diff_ci'][1]:+.3f}]"
                                              if r["diff_ci"] else f"{r['diff_vs_default']:+.3f}")
        aps = " / ".join("n/a" if r["ap50"][c] is None else f"{r['ap50'][c]:.2f}" for c in CATEGORIES)
        print(f"| {r['arm']} | {r['epochs']} | {r['map50']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {diff} | {aps} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
