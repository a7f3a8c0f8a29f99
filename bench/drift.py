"""Benchmark monitoring's drift detection: false alarms on same-mix batches, detections on shifted ones.

Three pools of drives of the tiny simulated fleet (160x96, 5 Hz, ``--minutes`` each) are simulated,
ingested, and their keyframes embedded once by an untrained fcos-small-p2 backbone (seed 0; the
drift tests are what is measured, not the model): the simulator's default mix (55% day, 30% night;
70% clear, 18% rain), mostly night and rain (80% night, 75% rain), and night and rain only. Each
trial draws a reference of ``--ref-drives`` default-mix drives (the training drives) and, from the
drives left, a same-mix batch of ``--batch-drives`` drives, plus a batch of as many drives from each
shifted pool, and tests each batch against the reference with the target's thresholds
(`MonitorConfig` defaults: ROC AUC > 0.8, MMD p < 0.01), up to ``drift_frames`` keyframes per side
as `longtail.monitor.run` takes them:

- by drive (Longtail's default): whole drives are permuted, and kept together in the folds;
- by frame (alibi-detect's and Evidently's way), in the first ``--frame-trials`` trials.

A false alarm is a breach on a same-mix batch; a detection, one on a shifted batch. Trials share
drives (they are resamples of the pools), so the exact 95% intervals shown are optimistic.

Usage:
    python bench/drift.py [--trials 40] [--ref-drives 10] [--batch-drives 12] [--minutes 0.2]
                          [--out results.json] [--record bench/RESULTS.md]
    python bench/drift.py --quick    # 2 trials on drives of 3 s, printed only: checks it still runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import append_section, parse_args

POOLS: dict[str, tuple[int, dict[str, Any]]] = {
    "same mix": (0, {}),
    "mostly night and rain": (1, {"time_of_day": {"day": 0.1, "dusk": 0.1, "night": 0.8},
                                  "weather": {"clear": 0.15, "rain": 0.75, "fog": 0.1}}),
    "night and rain only": (2, {"time_of_day": {"night": 1.0}, "weather": {"rain": 1.0}}),
}


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact 95% interval of a binomial proportion k/n."""
    from scipy.stats import beta

    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return lo, hi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40, help="resampled (reference, batch) pairs")
    parser.add_argument("--frame-trials", type=int, default=10, help="trials also tested frame by frame")
    parser.add_argument("--ref-drives", type=int, default=10, help="training drives per trial")
    parser.add_argument("--batch-drives", type=int, default=12, help="drives per batch")
    parser.add_argument("--minutes", type=float, default=0.2, help="minutes per drive")
    parser.add_argument("--spare-drives", type=int, default=12,
                        help="drives in each shifted pool beyond one batch, so that trials draw different drives "
                             "(half as many again in the default-mix pool, which gives the reference too)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--record", help="append a section to this RESULTS.md")
    args = parse_args(parser, {"trials": 2, "frame_trials": 1, "ref_drives": 2, "batch_drives": 2, "minutes": 0.05,
                               "spare_drives": 2,
                               "out": None, "record": None})

    import numpy as np
    import torch

    from longtail.catalog.frames import load_frame_index
    from longtail.config import MonitorConfig, SimConfig
    from longtail.detector.embed import BackboneEmbedder
    from longtail.detector.presets import build_model
    from longtail.ingest.ingest import ingest
    from longtail.monitor.batch import spread_sample
    from longtail.monitor.drift import compute_domain_auc, compute_mmd
    from longtail.monitor.run import embed_frames
    from longtail.schemas import CATEGORIES
    from longtail.sim.fleet import simulate_fleet

    torch.set_num_threads(1)
    cfg = MonitorConfig()
    same_needed = args.ref_drives + args.batch_drives + round(1.5 * args.spare_drives)
    t0 = time.time()
    base = Path(tempfile.mkdtemp(prefix="longtail-bench-drift-"))
    try:
        root = base / "data"
        pool_of: dict[str, str] = {}
        for name, (k, mix) in POOLS.items():
            n = same_needed if k == 0 else args.batch_drives + args.spare_drives
            sim = SimConfig(vehicles=n, minutes=args.minutes, width=160, height=96, fps=5.0, seed=9000 + k, **mix)
            simulate_fleet(sim, base / f"pool{k}", workers=2, progress=False)
            for r in ingest(sorted((base / f"pool{k}").glob("*.mcap")), root, workers=2, progress=False):
                pool_of[r.log_id] = name
        t_sim = time.time() - t0
        index = load_frame_index(root)
        index = index[index["keyframe"]].reset_index(drop=True)
        torch.manual_seed(0)
        embedder = BackboneEmbedder(build_model("fcos-small-p2", len(CATEGORIES)), "bench-untrained")
        vectors = embed_frames(embedder, root, index, progress=False)
        t_embed = time.time() - t0 - t_sim
    finally:
        shutil.rmtree(base, ignore_errors=True)
    index["pool"] = index["log_id"].map(pool_of)
    drives = {name: sorted(index.loc[index["pool"] == name, "log_id"].unique()) for name in POOLS}
    rng = np.random.default_rng(0)

    index["row"] = np.arange(len(index))

    def side(logs: Any) -> tuple[Any, Any]:
        """Embeddings and drive ids of up to drift_frames keyframes of these drives, as the monitor samples them."""
        rows = spread_sample(index[index["log_id"].isin(logs)], cfg.drift_frames)
        return vectors[rows["row"].to_numpy()], rows["drive_id"].to_numpy()

    trials: list[dict[str, Any]] = []
    for t in range(args.trials):
        same = rng.permutation(drives["same mix"])
        ref_vec, ref_g = side(same[:args.ref_drives])
        batches = {"same mix": same[args.ref_drives:args.ref_drives + args.batch_drives],
                   **{n: rng.permutation(drives[n])[:args.batch_drives] for n in POOLS if n != "same mix"}}
        for name, logs in batches.items():
            cur_vec, cur_g = side(logs)
            row: dict[str, Any] = {"trial": t, "batch": name}
            for unit in ("drive", "frame") if t < args.frame_trials else ("drive",):
                groups = (ref_g, cur_g) if unit == "drive" else (None, None)
                p = compute_mmd(ref_vec, cur_vec, cfg.permutations, t, *groups).p_value
                auc = compute_domain_auc(ref_vec, cur_vec, cfg.folds, t, *groups).auc
                row[unit] = {"mmd_p": p, "auc": auc, "mmd_breach": p < (cfg.mmd_p_min or 0),
                             "auc_breach": auc > (cfg.domain_auc_max or 1)}
                row[unit]["breach"] = row[unit]["mmd_breach"] or row[unit]["auc_breach"]
            trials.append(row)
    t_total = time.time() - t0

    summary: dict[str, Any] = {}
    for unit in ("drive", "frame"):
        for name in POOLS:
            sel = [r[unit] for r in trials if r["batch"] == name and unit in r]
            summary[f"{unit}/{name}"] = {
                "n": len(sel), **{k: sum(r[k] for r in sel) for k in ("auc_breach", "mmd_breach", "breach")},
                "median_auc": float(np.median([r["auc"] for r in sel])),
                "median_p": float(np.median([r["mmd_p"] for r in sel]))}
    result = {"date": dt.date.today().isoformat(), "args": vars(args), "config": cfg.model_dump(mode="json"),
              "summary": summary, "trials": trials,
              "seconds": {"simulate_ingest": t_sim, "embed": t_embed, "total": t_total}}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))

    def cell(k: int, n: int) -> str:
        lo, hi = clopper_pearson(k, n)
        return f"{k}/{n} = {k / n:.0%} ({lo:.0%}-{hi:.0%})"

    cmd = ("python bench/drift.py " + " ".join(sys.argv[1:])).strip()
    lines = [f"## Drift detection, {result['date']} ({platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()})", "",
             f"Command: `{cmd}` ({args.trials} trials: a reference of {args.ref_drives} default-mix drives against a "
             f"batch of {args.batch_drives} drives of each mix, drawn from pools of simulated drives of {args.minutes:g} "
             f"min at 160x96, 5 Hz; up to {cfg.drift_frames} keyframes per side embedded by an untrained fcos-small-p2 "
             f"backbone; a breach: ROC AUC > {cfg.domain_auc_max:g} or MMD p < {cfg.mmd_p_min:g}, "
             f"{cfg.permutations} permutations)", "",
             "Share of batches that breach (false alarms on the same mix, detections on the others), exact 95% "
             "intervals (optimistic: trials share drives):", "",
             "| unit of the tests | batch mix | ROC AUC > " f"{cfg.domain_auc_max:g} | MMD p < {cfg.mmd_p_min:g} | "
             "**breach (either)** | median AUC | median p |", "|---|---|---|---|---|---|---|"]
    for unit in ("drive", "frame"):
        for name in POOLS:
            s_ = summary[f"{unit}/{name}"]
            lines.append(f"| {unit} | {name} | {cell(s_['auc_breach'], s_['n'])} | {cell(s_['mmd_breach'], s_['n'])} | "
                         f"**{cell(s_['breach'], s_['n'])}** | {s_['median_auc']:.2f} | {s_['median_p']:.3f} |")
    lines += ["", f"Time: {t_total:.0f} s ({t_sim:.0f} s simulating and ingesting, {t_embed:.0f} s embedding, the rest "
              "testing).", ""]
    text = "\n".join(lines)
    print(text)
    if args.record:
        append_section(args.record, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
