"""Run the SageMaker training entry point on this machine, then score the model it wrote.

What a SageMaker training job does, minus SageMaker: for each preset, set the SM_* variables a
training container gets (SM_CHANNEL_TRAINING -> a dataset version folder, SM_MODEL_DIR,
SM_OUTPUT_DATA_DIR, SM_NUM_GPUS, SM_NUM_CPUS, SM_HPS) to local folders, call
`longtail.train.sagemaker_entry.main` unchanged, load the model.pt it wrote with
`longtail.train.run.load_model` (``weights_only=True``) and score it on the version's splits with
``bench/quality.py``'s `score_splits` (the evaluation's metric and ignore rule).

Used to check the GPU path (``device`` follows SM_NUM_GPUS, as on SageMaker) and to compare the
presets' quality at a fixed time budget. Prints one markdown row per preset and split (the training
log above them gives each epoch's images/s); ``--out`` writes the rows, with each model's meta, as JSON.

Example (a GPU machine, 4 minutes of ``fcos-resnet50`` then 2 of ``fcos-small``):
    python bench/sm_entry.py --version-dir data/datasets/v-ab61451c91a17dbe \\
        --run fcos-resnet50:4 --run fcos-small:2 --hps '{"num_workers": 8}' --work /tmp/sm

``--quick`` (with no ``--version-dir``) runs one job of about a second on a tiny synthetic version, all in a
temporary folder, to check that this script still runs (`make bench-quick`):
    python bench/sm_entry.py --quick
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from _results import parse_args, quick_requested
from longtail.detector.model import load_model
from longtail.train import sagemaker_entry
from quality import score_splits

log = logging.getLogger("bench.sm_entry")


def sm_environ(version_dir: Path, job_dir: Path, hps: dict[str, Any], gpus: int) -> dict[str, str]:
    """The SM_* variables of a training job whose folders are under ``job_dir``."""
    for sub in ("model", "output/data"):
        (job_dir / sub).mkdir(parents=True, exist_ok=True)
    return {**os.environ,
            "SM_CHANNEL_TRAINING": str(version_dir), "SM_MODEL_DIR": str(job_dir / "model"),
            "SM_OUTPUT_DIR": str(job_dir / "output"), "SM_OUTPUT_DATA_DIR": str(job_dir / "output/data"),
            "SM_NUM_GPUS": str(gpus), "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_HPS": json.dumps(hps), "TRAINING_JOB_NAME": job_dir.name}


def score(model_dir: Path, version_dir: Path, splits: list[str]) -> list[dict[str, Any]]:
    """mAP@0.5 and per-class AP@0.5 of the model in ``model_dir`` on each split."""
    model, _ = load_model(model_dir, "cuda" if torch.cuda.is_available() else "cpu")
    frames = pd.read_parquet(version_dir / "labels.parquet")
    return [{"split": split, "frames": len(part), "map50": r["map50"],
             "per_class": {c: v["ap50"] for c, v in r["per_class"].items() if v["ap50"] is not None}}
            for split, part, r in score_splits(model, version_dir, frames, splits)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = quick_requested(argv)
    parser.add_argument("--version-dir", required=not quick, type=Path, help="a dataset version folder (the channel)")
    parser.add_argument("--run", action="append", required=not quick,
                        help="PRESET:MINUTES, one training job each (repeatable), in order")
    parser.add_argument("--hps", default="{}", help="JSON hyperparameters added to every job's SM_HPS")
    parser.add_argument("--splits", default="val,test_common,test_longtail", help="comma-separated splits scored")
    parser.add_argument("--work", type=Path, default=Path("sm-jobs"), help="folder for the jobs' SM_* folders")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parse_args(parser, {"splits": "val", "hps": '{"threads": 1, "batch_size": 4}', "out": None}, argv)
    logging.basicConfig(level=logging.INFO)
    if args.quick:
        args.run = args.run or ["fcos-small:0.02"]
        with tempfile.TemporaryDirectory(prefix="longtail-bench-sm-entry-") as tmp:
            args.work = Path(tmp) / "sm-jobs"
            if not args.version_dir:
                from _tiny_version import write_tiny_version

                args.version_dir, _ = write_tiny_version(Path(tmp) / "data")
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Each training job in turn, then its scores; prints a row per preset and split, ``--out`` the JSON."""
    gpus = torch.cuda.device_count()
    device_name = torch.cuda.get_device_name(0) if gpus else "cpu"
    results = []
    for spec in args.run:
        preset, _, minutes = spec.partition(":")
        hps = {"preset": preset, "max_minutes": float(minutes), "epochs": 10_000, **json.loads(args.hps)}
        job_dir = args.work / f"{preset}-{minutes}min"
        environ = sm_environ(args.version_dir, job_dir, hps, gpus)
        start = time.perf_counter()
        status = sagemaker_entry.main(environ)
        wall = time.perf_counter() - start
        if status != 0:
            log.error("job %s failed with status %d", job_dir, status)
            return status
        meta = json.loads((job_dir / "model" / "model.json").read_text())
        rows = score(job_dir / "model", args.version_dir, args.splits.split(","))
        results.append({"preset": preset, "minutes": float(minutes), "device": device_name, "wall_s": wall,
                        "hps": hps, "meta": meta, "scores": rows})
        for r in rows:
            classes = ", ".join(f"{c} {v:.2f}" for c, v in r["per_class"].items())
            print(f"| {preset} | {minutes} min | {device_name} | {r['split']} | {r['frames']} | "
                  f"{r['map50'] if r['map50'] is not None else float('nan'):.3f} | {classes} |", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
