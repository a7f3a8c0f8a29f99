"""Benchmark the fleet simulator on one core.

Reports simulated camera frames per second per core, the speed-up over real time (the camera
rate), MB of log per minute of driving, and a breakdown by road type and time of day. As a
floor measured in the same run, it times JPEG-encoding the same number of frames alone.

Target (issue 2): at least 10x faster than real time for the default camera, i.e. a one-hour
drive in under 6 minutes on one core.

Usage:
    python bench/sim.py [--drives 8] [--minutes 2] [--seed 1] [--record bench/RESULTS.md]
    python bench/sim.py --quick    # one drive of 6 s, printed only: checks the benchmark still runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import pyarrow.parquet as pq

from _results import append_section, parse_args
from longtail.config import SimConfig
from longtail.sim.drive import simulate_drive
from longtail.sim.fleet import plan_fleet


def jpeg_floor(cfg: SimConfig, frames: int) -> float:
    """Seconds to JPEG-encode ``frames`` noisy frames of the camera's size (the irreducible cost)."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(110, 25, (cfg.height, cfg.width, 3)), 0, 255).astype(np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 1.2)
    start = time.process_time()
    for _ in range(frames):
        cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drives", type=int, default=8, help="drives to simulate (default fleet mix)")
    parser.add_argument("--minutes", type=float, default=2.0, help="minutes per drive")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed")
    parser.add_argument("--record", default="bench/RESULTS.md", help="append a results section here ('' to skip)")
    args = parse_args(parser, {"drives": 1, "minutes": 0.1, "record": ""})

    cfg = SimConfig(vehicles=args.drives, drives_per_vehicle=1, minutes=args.minutes, seed=args.seed)
    plans = plan_fleet(cfg)
    rows = []
    total_cpu = total_wall = 0.0
    total_frames = total_bytes = 0
    peak_rss_mb = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for plan in plans:
            log, gt = Path(tmp) / f"{plan.drive_id}.mcap", Path(tmp) / f"{plan.drive_id}.parquet"
            wall0, cpu0 = time.perf_counter(), time.process_time()
            summary = simulate_drive(plan, cfg, log, gt)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            peak_rss_mb = max(peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            road = pq.read_table(gt, columns=["road_type"]).column("road_type").to_pylist()
            urban = road.count("urban") / max(len(road), 1)
            total_cpu += cpu
            total_wall += wall
            total_frames += summary.frames
            total_bytes += summary.bytes
            rows.append((plan.drive_id, plan.vehicle_type, plan.time_of_day, plan.weather, urban,
                         summary.frames / cpu, summary.bytes / 1e6 / cfg.minutes))
            print(f"{plan.drive_id:20s} {plan.time_of_day:5s} {plan.weather:5s} urban {urban:4.0%} "
                  f"{summary.frames / cpu:6.1f} frames/s/core", file=sys.stderr)
    floor = jpeg_floor(cfg, total_frames)
    fps = total_frames / total_cpu
    realtime = fps / cfg.fps
    mb_per_min = total_bytes / 1e6 / (len(plans) * cfg.minutes)
    hour_minutes = 3600 * cfg.fps / fps / 60
    lines = [
        f"## Simulator, {dt.date.today().isoformat()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()})",
        "",
        f"Command: `python bench/sim.py --drives {args.drives} --minutes {args.minutes:g} --seed {args.seed}` "
        f"({len(plans)} drive(s) of the default fleet mix, {cfg.width}x{cfg.height} at {cfg.fps:g} Hz, one process)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| frames simulated | {total_frames} |",
        f"| frames per second per core (CPU time) | {fps:.1f} |",
        f"| speed-up over real time ({cfg.fps:g} Hz camera) | **{realtime:.1f}x** (target >= 10x) |",
        f"| one hour of driving takes | {hour_minutes:.1f} min on one core (target < 6) |",
        f"| MB of log per minute of driving | {mb_per_min:.1f} |",
        f"| JPEG encoding alone, same frame count (floor) | {total_frames / floor:.0f} frames/s; the simulator is "
        f"{(total_cpu / floor):.1f}x that cost |",
        f"| wall time / CPU time | {total_wall:.0f} s / {total_cpu:.0f} s |",
        f"| peak memory (RSS) | {peak_rss_mb:.0f} MB |",
        "",
        "| drive | vehicle | light | weather | town share | frames/s per core | MB/min |",
        "|---|---|---|---|---|---|---|",
    ]
    for drive_id, vehicle, tod, weather, urban, fps_drive, mb in rows:
        lines.append(f"| {drive_id} | {vehicle} | {tod} | {weather} | {urban:.0%} | {fps_drive:.1f} | {mb:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        append_section(args.record, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
