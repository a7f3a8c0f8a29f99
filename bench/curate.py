"""Benchmark the curate stage: dataset build, embedding, selection at scale, and enrichment.

In one run, each against a baseline measured in the same run:

1. Dataset build: samples/s of `add_new_frames` (samples built with every field, added in
   batches with ``dataset.add_samples``) against FiftyOne's per-sample path: the same samples,
   built with `make_samples` from the same cached statistics, added one at a time with
   ``dataset.add_sample`` to a second dataset. The descriptor cache is warm for both, so both
   time building and writing samples only.
2. Embedding: descriptor frames/s of `compute_descriptors` on 1 and on 2 worker processes, each
   from a cold cache, reported per core (wall) and per CPU-second.
3. Selection: seconds to choose a budget of 1,000 among 100,000 synthetic candidates with
   192-d embeddings (1% of them in trigger windows, night/fog/rain tags for the quotas), for the
   longtail, random and uniqueness selectors.
4. Enrichment: a simulated fleet at the simulator's default scenario rates is ingested and
   curated (`run_curate`: FiftyOne Brain uniqueness, similarity, map; failure-mode queries);
   then 2% of the pool is selected by each selector. The share of truly critical frames in each
   batch (from the simulator's ground truth, which nothing in the pipeline reads) over their
   share in the pool is the enrichment. `run_select` writes the longtail batch once more, end
   to end, and its frames are checked against the direct selection.

Drive logs are cached in build/bench/curate/ (``--quick``: in the temporary data root); the data root
(frame store, index, embedding cache, and its own mongod) is a fresh temporary folder under /tmp,
removed at the end.

Target (issue): a longtail batch of 2% of the pool holds >= 10x the share of critical frames that
a random batch does.

Usage:
    python bench/curate.py [--drives 12] [--minutes 5] [--pool 100000] [--budget 1000]
                           [--out results.json] [--record bench/RESULTS.md]
    python bench/curate.py --quick    # 2 drives of 12 s at 320x192, a pool of 2,000: checks it still runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from _results import append_section, parse_args
from longtail.catalog.db import URI_ENV, configure_fiftyone, stop_database
from longtail.catalog.frames import load_frame_index
from longtail.catalog.truth import GT_DIR, load_ground_truth
from longtail.config import DEFAULT_SCENARIO_RATES, SimConfig
from longtail.curate.descriptor import DESCRIPTOR_KEY, DIM
from longtail.curate.embeddings import FeatureCache, compute_descriptors
from longtail.curate.select import SelectConfig, select_frames
from longtail.curate.tags import compute_image_tags
from longtail.sim.fleet import simulate_fleet

log = logging.getLogger("bench.curate")

CACHE = Path("build/bench/curate")
SELECTORS = ("longtail", "random", "uniqueness")


def children_cpu() -> float:
    """CPU seconds of every child process reaped so far (user + system)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def simulate(args: argparse.Namespace, cache: Path) -> tuple[list[Path], pd.DataFrame, SimConfig, dict[str, float]]:
    """The fleet's drive logs (cached in ``cache``), its ground truth per camera frame, and what simulating took."""
    rates = {k: v * args.scenario_scale for k, v in DEFAULT_SCENARIO_RATES.items()}
    cfg = SimConfig(vehicles=args.drives, minutes=args.minutes, seed=args.seed, width=args.width, height=args.height,
                    scenario_rates=rates)
    scaled = f"_scenarios{args.scenario_scale:g}x" if args.scenario_scale != 1 else ""
    out = cache / f"fleet_{args.drives}x{args.minutes:g}min_seed{args.seed}_{args.width}x{args.height}{scaled}"
    start = time.perf_counter()
    fleet = simulate_fleet(cfg, out, workers=args.workers, progress=False)
    info = {"simulated_now": len(fleet.drives) - fleet.skipped, "seconds": time.perf_counter() - start,
            "frames": sum(d.frames for d in fleet.drives),
            "critical_frames": sum(sum(d.scenario_frames.values()) for d in fleet.drives)}
    log.info("fleet of %d drives in %s (%d simulated now, %.0f s)", len(fleet.drives), out,
             info["simulated_now"], info["seconds"])
    logs = [out / f"{d.drive_id}.mcap" for d in fleet.drives]
    truth = pd.concat([load_ground_truth(out / GT_DIR / f"{d.drive_id}.parquet")[0] for d in fleet.drives],
                      ignore_index=True)
    return logs, truth[["drive_id", "timestamp_ns", "scenario"]], cfg, info


def bench_embedding(root: Path, index: pd.DataFrame, workers: list[int]) -> list[dict[str, float]]:
    """Descriptor throughput from a cold cache for each worker count; leaves the cache warm.

    The multi-process count runs first (the order of the recorded run; forked pools used to hang
    once this process had used OpenCV's thread pool, fixed by starting workers with forkserver).
    """
    shas, paths = index["image_sha256"].tolist(), index["store_path"].tolist()
    rows = []
    for w in workers:
        shutil.rmtree(root / "embeddings" / DESCRIPTOR_KEY, ignore_errors=True)
        frames = len(FeatureCache(root, DESCRIPTOR_KEY, DIM, with_stats=True).missing(shas))
        wall0, cpu0, child0 = time.perf_counter(), time.process_time(), children_cpu()
        compute_descriptors(root, shas, paths, workers=w)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0 + children_cpu() - child0
        rows.append({"workers": w, "frames": frames, "wall_s": wall, "cpu_s": cpu, "frames_per_s": frames / wall,
                     "frames_per_s_per_core": frames / wall / w, "frames_per_cpu_s": frames / cpu})
        log.info("descriptors, %d worker(s): %d frames in %.1f s (%.0f frames/s, %.0f per CPU-second)",
                 w, frames, wall, frames / wall, frames / cpu)
    return rows


def bench_dataset_build(root: Path, index: pd.DataFrame, baseline_frames: int) -> dict[str, Any]:
    """`add_new_frames` against FiftyOne's per-sample ``add_sample`` on the same frames."""
    from longtail.catalog.db import open_dataset
    from longtail.curate.dataset import add_new_frames, make_samples

    fast = open_dataset(root, "bench-add-samples", create=True)
    start = time.perf_counter()
    added = add_new_frames(root, fast, workers=1)
    fast_s = time.perf_counter() - start
    log.info("add_new_frames: %d samples in %.1f s (%.0f samples/s)", added, fast_s, added / fast_s)

    # The baseline: the same rows, the same fields and statistics, one add_sample each.
    part = index if baseline_frames <= 0 else index.iloc[:baseline_frames]
    part = part.reset_index(drop=True)
    slow = open_dataset(root, "bench-per-sample", create=True)
    stats = FeatureCache(root, DESCRIPTOR_KEY, DIM, with_stats=True).stats(part["image_sha256"].tolist())
    tags = compute_image_tags(stats)
    start = time.perf_counter()
    samples = make_samples(root, part, stats, tags)
    make_s = time.perf_counter() - start
    start = time.perf_counter()
    for sample in samples:
        slow.add_sample(sample)
    add_s = time.perf_counter() - start
    n = len(part)
    log.info("per-sample add_sample: %d samples in %.1f s build + %.1f s add (%.0f samples/s)",
             n, make_s, add_s, n / (make_s + add_s))
    same_fields = set(fast.get_field_schema()) == set(slow.get_field_schema())
    if not same_fields:
        log.warning("the two datasets' fields differ: %s vs %s", sorted(fast.get_field_schema()),
                    sorted(slow.get_field_schema()))
    return {"frames": added, "fast_s": fast_s, "fast_per_s": added / fast_s, "baseline_frames": n,
            "baseline_make_s": make_s, "baseline_add_s": add_s, "baseline_per_s": n / (make_s + add_s),
            "baseline_add_only_per_s": n / add_s, "same_fields": same_fields,
            "ratio": (added / fast_s) / (n / (make_s + add_s))}


def synthetic_pool(n: int, dim: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A candidate pool shaped like a large fleet's: 1,000-frame drives at 2 Hz, 1% of frames in
    trigger windows (with braking signals), 30% night, 10% fog, 15% rain; clustered unit vectors."""
    rng = np.random.default_rng(seed)
    per_drive = 1000
    drive = np.arange(n) // per_drive
    ts = (np.arange(n) % per_drive) * 500_000_000 + drive * 10**13
    in_window = rng.random(n) < 0.01
    trig_names = np.array(["hard_braking", "adas_alert", "harsh_steering", "disengagement"])
    triggers = [[str(trig_names[k])] if w else [] for w, k in zip(in_window, rng.integers(0, 4, n), strict=True)]
    u = rng.random(n)
    tags = [["night"] if x < 0.30 else ["fog"] if x < 0.40 else ["rain"] if x < 0.55 else [] for x in u]
    pool = pd.DataFrame({
        "frame_id": [f"f{i:07d}" for i in range(n)],
        "drive_id": [f"d{d:04d}" for d in drive],
        "timestamp_ns": ts.astype(np.int64),
        "triggers": triggers,
        "tags": tags,
        "decel_mps2": np.where(in_window, rng.uniform(0, 8, n), rng.uniform(0, 2, n)),
        "steering_rate_dps": rng.normal(0, 10, n),
        "uniqueness": rng.random(n),
    })
    # Road scenes are alike: vectors near a few dozen scene centres, as the descriptor's are.
    centres = rng.normal(size=(40, dim))
    vec = centres[rng.integers(0, 40, n)] + 0.5 * rng.normal(size=(n, dim))
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    return pool, vec


def bench_selection(n: int, budget: int, dim: int, repeats: int) -> dict[str, dict[str, float]]:
    """Seconds to select ``budget`` of ``n`` synthetic candidates, per selector (median of repeats)."""
    pool, vec = synthetic_pool(n, dim, seed=0)
    out = {}
    for selector in SELECTORS:
        times = []
        picks = pd.DataFrame()
        for _ in range(repeats if selector != "longtail" else 1):
            start = time.perf_counter()
            picks = select_frames(pool, vec, SelectConfig(budget=budget, selector=selector))
            times.append(time.perf_counter() - start)
        t = float(np.median(times))
        out[selector] = {"seconds": t, "picks": len(picks), "unique": bool(picks["frame_id"].is_unique)}
        log.info("select %s: %d of %d in %.3f s", selector, len(picks), n, t)
    return out


def bench_enrichment(root: Path, truth: pd.DataFrame, share: float, random_seeds: int,
                     workers: int) -> dict[str, Any]:
    """`run_curate`, then the share of truly critical frames in a batch of each selector."""
    from longtail.catalog.db import open_dataset
    from longtail.curate.run import CurateConfig, make_pool, run_curate, run_select

    start = time.perf_counter()
    manifest = run_curate(root, CurateConfig(dataset="bench-add-samples", workers=workers))
    curate_s = time.perf_counter() - start
    log.info("run_curate: %d samples, %s, %.1f s", manifest["samples"], manifest["brain_runs"], curate_s)
    ds = open_dataset(root, "bench-add-samples")
    start = time.perf_counter()
    pool, vectors, labeled = make_pool(root, ds)
    pool_s = time.perf_counter() - start
    pool = pool.merge(truth, on=["drive_id", "timestamp_ns"], how="left", validate="one_to_one")
    if pool["scenario"].isna().any():
        raise RuntimeError(f"{int(pool['scenario'].isna().sum())} pool frame(s) have no ground truth")
    critical = (pool["scenario"] != "").to_numpy()
    if not critical.any():
        raise RuntimeError("the fleet staged no critical scenario that ingest kept; use more --drives or --minutes")
    budget = max(round(share * len(pool)), 1)
    base = float(critical.mean())
    row_of = pd.Series(np.arange(len(pool)), index=pool["frame_id"])

    def batch_share(selector: str, seed: int = 0) -> tuple[float, float, list[str]]:
        t = time.perf_counter()
        picks = select_frames(pool, vectors, SelectConfig(budget=budget, selector=selector, seed=seed), labeled)
        t = time.perf_counter() - t
        return float(critical[row_of.loc[picks["frame_id"]].to_numpy()].mean()), t, picks["frame_id"].tolist()

    rows: dict[str, dict[str, float]] = {}
    lt_share, lt_s, lt_ids = batch_share("longtail")
    rows["longtail"] = {"share": lt_share, "seconds": lt_s}
    shares, times = zip(*[batch_share("random", s)[:2] for s in range(random_seeds)], strict=True)
    rows["random"] = {"share": float(np.mean(shares)), "share_min": float(np.min(shares)),
                      "share_max": float(np.max(shares)), "seconds": float(np.median(times))}
    u_share, u_s, _ = batch_share("uniqueness")
    rows["uniqueness"] = {"share": u_share, "seconds": u_s}
    for r in rows.values():
        r["enrichment"] = r["share"] / base

    start = time.perf_counter()
    written = run_select(root, SelectConfig(budget=budget), "bench-add-samples")
    select_s = time.perf_counter() - start
    if written["frames"] != lt_ids:
        log.warning("run_select's batch differs from select_frames on the same pool (%d frames in common of %d)",
                    len(set(written["frames"]) & set(lt_ids)), budget)
    scenarios = pool.loc[critical, "scenario"].value_counts().to_dict()
    log.info("pool %d frames, %.2f%% critical; budget %d: %s", len(pool), 100 * base, budget,
             {k: round(v["enrichment"], 1) for k, v in rows.items()})
    return {"samples": manifest["samples"], "curate_s": curate_s, "pool_s": pool_s, "pool": len(pool),
            "critical": int(critical.sum()), "scenarios": scenarios, "base_share": base, "budget": budget,
            "ceiling": min(int(critical.sum()), budget) / budget / base, "selectors": rows,
            "run_select_s": select_s, "run_select_same": written["frames"] == lt_ids,
            "failure_modes": {k: v["status"] for k, v in manifest["failure_modes"].items()},
            "random_seeds": random_seeds}


def render(args: argparse.Namespace, cfg: SimConfig, res: dict[str, Any]) -> str:
    """The results as a markdown section."""
    b, e, s, n, sim = res["build"], res["embedding"], res["selection"], res["enrichment"], res["sim"]
    cmd = (f"python bench/curate.py --drives {args.drives} --minutes {args.minutes:g} --seed {args.seed} "
           f"--width {args.width} --height {args.height} --pool {args.pool} --budget {args.budget} "
           f"--share {args.share:g} --workers {args.workers}")
    if args.baseline_frames:
        cmd += f" --baseline-frames {args.baseline_frames}"
    if args.scenario_scale != 1:
        cmd += f" --scenario-scale {args.scenario_scale:g}"
    one = next(r for r in e if r["workers"] == 1)
    simulated = (f"simulated in this run in {sim['seconds'] / 60:.1f} min" if sim["simulated_now"]
                 else "drive logs cached from an earlier run")
    lines = [
        f"## Curate, {dt.date.today().isoformat()} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()})",
        "",
        f"Command: `{cmd}` ({args.drives} drives of {args.minutes:g} min, {cfg.width}x{cfg.height} at "
        f"{cfg.fps:g} Hz, default fleet mix and scenario rates, {simulated}; {sim['frames']} camera frames, "
        f"{sim['critical_frames']} in critical scenarios; ingested to {res['ingest']['frames']} frames in "
        f"{res['ingest']['seconds']:.0f} s. Whole run {res['total_s'] / 60:.1f} min; 1-minute load average "
        f"{res['load_average'][0]:.1f} at the start, {res['load_average'][1]:.1f} at the end)",
        "",
        "| measure | value | baseline (same run) | ratio |",
        "|---|---|---|---|",
        f"| dataset build: `add_new_frames` (every field at creation, `add_samples` in batches of 1,000) | "
        f"**{b['fast_per_s']:.0f} samples/s** ({b['frames']} in {b['fast_s']:.1f} s) | FiftyOne's per-sample path: "
        f"`make_samples`, then `add_sample` one at a time: {b['baseline_per_s']:.0f} samples/s ({b['baseline_frames']} "
        f"samples: build {b['baseline_make_s']:.1f} s + add {b['baseline_add_s']:.1f} s) | **{b['ratio']:.2f}x** |",
    ]
    for r in e:
        lines.append(
            f"| descriptors, {r['workers']} worker process(es), cold cache | {r['frames_per_s']:.0f} frames/s = "
            f"**{r['frames_per_s_per_core']:.0f} frames/s per core** ({r['frames_per_cpu_s']:.0f} per CPU-second) "
            f"| 1 worker: {one['frames_per_s']:.0f} frames/s | {r['frames_per_s'] / one['frames_per_s']:.2f}x |")
    rnd_s = s["random"]["seconds"]
    for name in SELECTORS:
        per_pick = f" ({1000 * s[name]['seconds'] / args.budget:.1f} ms per pick)" if name == "longtail" else ""
        lines.append(f"| select {args.budget:,} of {args.pool:,} synthetic candidates ({DIM}-d), {name} | "
                     f"**{s[name]['seconds']:.3g} s**{per_pick} | random: {rnd_s:.3g} s | "
                     f"{s[name]['seconds'] / rnd_s:.0f}x random's time |")
    lines += [
        f"| `run_curate` on the built dataset (FiftyOne Brain uniqueness, similarity, 2-D map; failure-mode "
        f"queries) | {n['curate_s']:.1f} s for {n['samples']} samples | - | - |",
        f"| `run_select` end to end (pool, embeddings, batch files, saved view), budget {n['budget']} | "
        f"{n['run_select_s']:.1f} s (same frames as `select_frames`: {'yes' if n['run_select_same'] else 'NO'}) "
        "| - | - |",
        "",
        f"Enrichment: pool of {n['pool']} frames, {n['critical']} of them in critical scenarios "
        f"({100 * n['base_share']:.2f}%: " + ", ".join(f"{k} {v}" for k, v in sorted(n["scenarios"].items()))
        + f"); budget {n['budget']} ({100 * args.share:g}% of the pool). A batch of critical frames only would be "
        f"{n['ceiling']:.1f}x.",
        "",
        "| selector | critical share of the batch | enrichment (share / pool share) | vs random |",
        "|---|---|---|---|",
    ]
    rnd = n["selectors"]["random"]
    for name in SELECTORS:
        r = n["selectors"][name]
        extra = f" (mean of {n['random_seeds']} seeds; {100 * r['share_min']:.1f}-{100 * r['share_max']:.1f}%)" \
            if name == "random" else ""
        vs = f"{r['share'] / rnd['share']:.1f}x" if rnd["share"] > 0 else "- (random found none)"
        target = " (target >= 10x random)" if name == "longtail" else ""
        lines.append(f"| {name} | {100 * r['share']:.1f}%{extra} | **{r['enrichment']:.1f}x** | {vs}{target} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drives", type=int, default=12, help="simulated drives (default fleet mix and rates)")
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes per drive")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed")
    parser.add_argument("--scenario-scale", type=float, default=1.0,
                        help="multiply the simulator's default scenario rates (a tiny fleet stages none at 1)")
    parser.add_argument("--width", type=int, default=640, help="camera width, px")
    parser.add_argument("--height", type=int, default=384, help="camera height, px")
    parser.add_argument("--pool", type=int, default=100_000, help="synthetic candidates for the selection timing")
    parser.add_argument("--budget", type=int, default=1000, help="budget for the selection timing")
    parser.add_argument("--share", type=float, default=0.02, help="budget of the enrichment batch, share of the pool")
    parser.add_argument("--random-seeds", type=int, default=20, help="random batches averaged for the baseline")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast selectors' timing (median)")
    parser.add_argument("--workers", type=int, default=2, help="processes for simulation, ingest and descriptors")
    parser.add_argument("--baseline-frames", type=int, default=0,
                        help="frames for FiftyOne's per-sample baseline (0 = every frame)")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    parser.add_argument("--record", default="bench/RESULTS.md", help="append a results section here ('' to skip)")
    args = parse_args(parser, {"drives": 2, "minutes": 0.2, "width": 320, "height": 192, "scenario_scale": 40.0,
                               "pool": 2000, "budget": 20, "random_seeds": 2, "repeats": 1, "out": "", "record": ""})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if URI_ENV in os.environ:
        # The bench runs its own mongod; a user's database would mix its datasets with theirs.
        log.info("ignoring %s: the bench starts its own database", URI_ENV)
        del os.environ[URI_ENV]

    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="longtail-bench-curate-", dir="/tmp"))
    try:
        from longtail.ingest.ingest import ingest

        logs, truth, cfg, sim_info = simulate(args, root / "bench-fleet" if args.quick else CACHE)
        results: dict[str, Any] = {"args": vars(args), "date": dt.date.today().isoformat(),
                                   "machine": f"{platform.machine()}, {os.cpu_count()} cores", "sim": sim_info}

        start = time.perf_counter()
        ingest(logs, root, workers=args.workers, progress=False)
        index = load_frame_index(root)
        results["ingest"] = {"frames": len(index), "seconds": time.perf_counter() - start}
        log.info("ingested %d frames into %s", len(index), root)
        configure_fiftyone(root)  # before FiftyOne is imported: starts this root's mongod

        results["embedding"] = bench_embedding(root, index, sorted({1, args.workers}, reverse=True))
        results["build"] = bench_dataset_build(root, index, args.baseline_frames)
        results["enrichment"] = bench_enrichment(root, truth, args.share, args.random_seeds, args.workers)
        results["selection"] = bench_selection(args.pool, args.budget, DIM, args.repeats)
    finally:
        if "fiftyone" in sys.modules:
            # FiftyOne's exit hook queries the database it connected to; stopped, that query waits
            # out pymongo's 30 s server selection. The whole root goes, so there is nothing to clean.
            import atexit

            from fiftyone.core.odm import database

            atexit.unregister(database._delete_non_persistent_datasets_if_allowed)
        stop_database(root)
        shutil.rmtree(root, ignore_errors=True)
    results["total_s"] = time.perf_counter() - t0
    results["load_average"] = [load_start, os.getloadavg()[0]]
    text = render(args, cfg, results)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.record:
        append_section(args.record, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
