"""Benchmark the fleet test: camera frames simulated per second with a detector in the loop, against
truth perception, in the same run on the same drives.

Arms: truth (the simulator's own perception); the model perceiving at 5 Hz with the frames of all
drives batched into one call; the same one frame at a time; and the model at 10 Hz (every frame).
The model is a saved model folder (``--model``) or, by default, the default preset freshly
initialised (same compute per frame as a trained one of that preset; an untrained model keeps
fewer boxes for NMS, so it slightly flatters the model's cost).

Usage:
    python bench/fleet_test.py [--drives 4] [--minutes 0.5] [--model FOLDER] [--record bench/RESULTS.md]
    python bench/fleet_test.py --quick    # one drive of 3 s: checks it still runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from _results import append_section, parse_args
from longtail.detector.predict import make_frame_predictor
from longtail.detector.presets import DEFAULT_PRESET, build_model
from longtail.schemas import CATEGORIES
from longtail.sim.fleet_test import FleetTestConfig, load_perception, plan_fleet_test, run_arm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drives", type=int, default=4, help="drives of the test fleet (its first N)")
    parser.add_argument("--minutes", type=float, default=0.5, help="minutes per drive")
    parser.add_argument("--model", default="", help="a saved model or deployment folder (default: untrained preset)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--record", default="bench/RESULTS.md", help="append a results section here ('' to skip)")
    args = parse_args(parser, {"drives": 1, "minutes": 0.05, "record": ""})

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model:
        perceive, what = load_perception(args.model)
    else:
        perceive = make_frame_predictor(build_model(DEFAULT_PRESET, len(CATEGORIES)).eval(), 0.5)
        what = f"{DEFAULT_PRESET}, freshly initialised"
    base = FleetTestConfig(minutes=args.minutes, max_drives=args.drives)
    plans = plan_fleet_test(base)
    arms = [
        ("truth perception", base, None),
        ("model at 5 Hz, drives batched", base, perceive),
        ("model at 5 Hz, one frame per call", base.model_copy(update={"batch_size": 1}), perceive),
        ("model at 10 Hz, drives batched", base.model_copy(update={"perception_hz": 10.0}), perceive),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, cfg, p) in enumerate(arms):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            drives, _, _ = run_arm(cfg, plans, Path(tmp) / str(k), p, progress=False)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            frames = sum(d["frames"] for d in drives)
            perceived = sum(d["perceived_frames"] for d in drives)
            rows.append((name, frames, perceived, frames / cpu, frames / wall, cpu, wall))
            print(f"{name}: {frames} frames ({perceived} perceived), {frames / cpu:.1f} frames/s CPU, "
                  f"{frames / wall:.1f} wall", file=sys.stderr)
    truth_fps = rows[0][3]
    cmd = "python bench/fleet_test.py " + " ".join(sys.argv[1:])
    lines = [
        f"## Fleet test: the model in the loop, {dt.date.today()} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__})",
        "",
        f"Command: `{cmd.strip()}` ({len(plans)} drives of the fleet-test plan, {args.minutes:g} min each, 320x192 "
        f"at 10 Hz, model: {what}, {args.threads} torch thread(s), one process)",
        "",
        "| arm | frames | perceived frames | frames/s (CPU) | frames/s (wall) | vs truth (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for name, frames, perceived, fps_cpu, fps_wall, _cpu, _wall in rows:
        lines.append(f"| {name} | {frames} | {perceived} | {fps_cpu:.1f} | {fps_wall:.1f} | "
                     f"{fps_cpu / truth_fps:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        append_section(args.record, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
