"""The KPI experiment (issue 21): does one turn of the loop with Longtail's selection make the model
safer than the same turn with another selector, at the same labeling budget?

For each seed (fleet and training; bench/kpi_world.py builds its world):

1. Baseline champion: trained from scratch on a random seed set of week 1's keyframes.
2. Its boxes and embeddings on week 2's pool (the frames every selector mines), its per-class
   operating thresholds on week 3's validation drives, and its failure modes: the validation frames
   where it makes a critical error (a pedestrian or cyclist missed or imagined; validation frames carry
   no cut-in marks here) are the exemplars that the ``longtail`` selector's failure-mode similarity
   looks for.
3. For each labeling budget and arm, one loop turn: the arm picks ``budget`` pool frames, the
   simulated labeler labels them against the champion's pre-labels (its seconds are the arm's
   labeling cost), and the champion is fine-tuned on them plus a replay sample of the seed set
   (the same replay for every arm at a budget). The new frames are oversampled (the trainer's
   ``mined_oversample``) so that they make up about half of each epoch whatever the budget, and the
   replay fills the rest: every arm trains the same frames per epoch, the same epochs, the same
   steps. Arms:
   - ``longtail``: `longtail.curate.select` (triggers, uncertainty, failure-mode similarity,
     diversity, per-condition quotas) with its weights chosen on the validation drives
     (bench/kpi_select.py: the grid point whose validation batches hold most of the champion's
     critical errors);
   - ``random``: a uniform sample;
   - ``uniqueness``: FiftyOne Brain's uniqueness of the champion's embeddings, top K;
   - ``uncertainty``: the champion's frame uncertainty (`longtail.curate.brain.frame_uncertainty`), top K;
   - ``no_new_data``: no frame labeled; the same steps on seed-set frames alone (so that extra
     training is not credited to selection). One run per seed, compared at every budget.
4. Every model, the baseline included, on week 3's test drives (never used to choose anything):
   critical false positives plus negatives (pedestrian, cyclist, cut-in vehicle) at its calibrated
   thresholds (and, beside them, at the baseline's), overall and on detectable objects only
   (kpi_world.Detectability: height, visibility, luminance from the simulator's truth); AP per class
   and per slice; test_common mAP@0.5; and the fleet test's disengagements and safety-critical
   failures (collisions + near misses + missed hazards) per 100 km on the same seeded drives.

Intervals (`longtail.kpi.experiment`): the mean over seeds, with a bootstrap over seeds and, within
each, over test drives (fleet-test drives for the fleet KPIs); comparisons resample the same drives
for both sides.

Outputs: ``--out`` (bench/results/kpi.json): rows (arm, seed, budget and the KPI pairs), the summary
with intervals and verdicts, the command, git commit and environment lock; ``--plots`` PNGs; with
``--record``, a section in bench/RESULTS.md. ``--quick`` runs the same code on a tiny world (one seed,
one budget, seconds of training) into a temporary folder and records nothing: `make bench-quick`.

Usage:
    python bench/kpi.py [--seeds 0,1,2] [--budgets 60,120,240] [--work build/bench-kpi]
                        [--out bench/results/kpi.json] [--plots bench/results] [--record bench/RESULTS.md]
    python bench/kpi.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import pickle
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kpi_report import readme_block, render_section, save_plots, summarise, update_readme
from kpi_select import ARMS, choose_weights, pick, scored_frames, uniqueness_scores, val_critical_errors
from kpi_world import (
    FULL,
    QUICK,
    Detectability,
    Sizes,
    World,
    build_world,
    calibrate,
    critical_by_drive,
    fleet_perception,
    labeling_cost,
    predict_frames,
    test_table,
    train_model,
    write_version,
)
from longtail.detector.model import load_model
from longtail.evaluate.bootstrap import drive_stats
from longtail.evaluate.run import EvalConfig, evaluate
from longtail.schemas import CATEGORIES
from longtail.sim.fleet_test import FleetTestConfig, run_fleet_test
from longtail.storage import atomic_write_json
from longtail.train.tracking import env_lock_hash, git_commit

log = logging.getLogger("bench.kpi")

SAFETY_CRITICAL = ("collision", "near_miss", "missed_hazard")
FLEET_EVENTS = ("phantom_braking", "missed_hazard", "collision", "near_miss")
"""Fleet-test events counted per drive beside disengagements and their safety-critical sum."""


# ---------------------------------------------------------------------------------------------
# Measuring one model


def baseline_champion(world: World, seed_set: pd.DataFrame, val: pd.DataFrame, sizes: Sizes, wdir: Path, name: str
                      ) -> tuple[Any, str]:
    """The seed's baseline champion: trained from scratch on the seed set once, then read back from
    its run folder (``champion.json`` names it), so that a rerun of the experiment reuses it."""
    record = wdir / "champion.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        model, _ = load_model(saved["run_dir"])
        log.info("seed %d: baseline champion %s reused from %s", world.seed, saved["model_uri"], saved["run_dir"])
        return model, str(saved["model_uri"])
    base = train_model(write_version(wdir / "versions" / "seed-set", world, seed_set, val), wdir, sizes, world.seed,
                       name, None)
    uri = f"models:/{name}/{base['model_version']}"
    atomic_write_json(record, {"model_uri": uri, "run_dir": base["run_dir"], "run_id": base["run_id"]})
    return base["model"], uri


def measure(world: World, model: Any, sizes: Sizes, fleet_out: Path | None, fleet_cache: Path,
            fixed: dict[str, float]) -> dict[str, Any]:
    """Thresholds on validation; critical errors, AP and common mAP on test; the fleet test (None: not driven).
    ``fixed``: the baseline's thresholds, at which critical errors are counted a second time."""
    frames = pd.concat([world.role("val"), world.role("test")])
    preds, _ = predict_frames(world, model, frames, sizes.threads)
    return measure_predictions(world, model, preds, sizes, fleet_out, fleet_cache, fixed)


def measure_predictions(world: World, model: Any, preds: dict[str, list[dict[str, Any]]], sizes: Sizes,
                        fleet_out: Path | None, fleet_cache: Path, fixed: dict[str, float] | None = None
                        ) -> dict[str, Any]:
    """`measure` on predictions already made. Critical errors are counted at the model's own thresholds
    (recalibrated on validation, as the gate does) and, under ``fixed``, at the baseline's (None: its own):
    on a class the baseline hardly detects, recalibration alone can swing the count."""
    thresholds = calibrate(world, preds)
    out: dict[str, Any] = {"thresholds": thresholds}
    config = EvalConfig()
    for key, detectable_only in (("all", False), ("detectable", True)):
        table = test_table(world, detectable_only)
        test_preds = {f: preds[f] for f in table["frame_id"]}
        stats: dict[str, Any] = {}
        ev = evaluate(Path("kpi"), test_preds, table, config=config, thresholds=thresholds, stats_out=stats)
        out[key] = {"critical_by_drive": critical_by_drive(ev, table)}
        if key == "all":
            if fixed is None:  # the baseline: its own thresholds are the fixed ones
                out["fixed"] = out["all"]
            else:
                at_fixed = evaluate(Path("kpi"), test_preds, table, config=config, thresholds=fixed)
                out["fixed"] = {"critical_by_drive": critical_by_drive(at_fixed, table)}
            common, _ = stats["suites"]["test_common"]
            out["common_drive_stats"] = drive_stats(common, stats["drive_of"])
            suite = {s["name"]: s for s in ev["suites"]}
            out["common_map50"] = suite["test_common"]["value"]
            out["longtail_map50"] = suite.get("test_longtail", {}).get("value")
            out["class_ap50"] = {c: ev["overall"]["per_class"][c]["ap50"] for c in CATEGORIES}
            out["slices_map50"] = {name: (s["metrics"] or {}).get("map50") for name, s in ev["slices"].items()
                                   if s["kind"] != "suite"}
    if fleet_out is None:
        out["fleet_drives"] = None
        return out
    cfg = FleetTestConfig(seed=world.seed, minutes=sizes.fleet_minutes, max_drives=sizes.fleet_drives, n_boot=100)
    fleet = run_fleet_test(cfg, {"model": fleet_perception(model, thresholds)}, fleet_out, progress=False,
                           cache=fleet_cache)
    out["fleet_drives"] = fleet_drive_counts(fleet["drives"]["model"])
    return out


def fleet_drive_counts(drives: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fleet-test drive (`run_fleet_test`'s ``drives`` of one arm): km, disengagements, safety-critical
    failures and each of `FLEET_EVENTS`, summed over the drive's scenarios."""
    return [{"drive_id": d["drive_id"], "km": d["km"],
             "disengagement": sum(c["disengagement"] for c in d["counts"].values()),
             "safety_critical": sum(c[m] for c in d["counts"].values() for m in SAFETY_CRITICAL),
             **{m: sum(c[m] for c in d["counts"].values()) for m in FLEET_EVENTS}}
            for d in drives]


def fleet_event_rates(baseline: list[dict[str, Any]] | None, arm: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Each of `FLEET_EVENTS` per 100 km, the baseline's and the arm's (None where not driven)."""
    out: dict[str, Any] = {}
    for m in FLEET_EVENTS:
        out[f"{m}_per_100km_baseline"] = per_100km(baseline, m)
        out[f"{m}_per_100km"] = per_100km(arm, m)
    return out


def per_100km(drives: list[dict[str, Any]] | None, metric: str) -> float | None:
    if drives is None:
        return None
    km = sum(d["km"] for d in drives)
    return round(100.0 * sum(d[metric] for d in drives) / km, 2) if km else 0.0


# ---------------------------------------------------------------------------------------------
# One seed


def run_seed(seed: int, budgets: list[int], sizes: Sizes, work: Path, rows: list[dict[str, Any]],
             units: dict[str, Any], save: Any) -> None:
    """Every arm at every budget on one seed's world; appends rows and bootstrap units, saving after each."""
    t0 = time.perf_counter()
    wdir = work / f"seed-{seed}"
    world = build_world(seed, sizes, wdir, Detectability())
    log.info("seed %d: world built in %.0f s", seed, time.perf_counter() - t0)
    rng = np.random.default_rng([seed, 1])
    week1 = world.role("week1")
    seed_set = week1.iloc[np.sort(rng.choice(len(week1), size=min(sizes.seed_frames, len(week1)), replace=False))]
    val = world.role("val")
    name = f"kpi-s{seed}"
    model, champion_uri = baseline_champion(world, seed_set, val, sizes, wdir, name)
    frames = pd.concat([world.role("pool"), seed_set, val, world.role("test")])
    preds, emb = predict_frames(world, model, frames, sizes.threads)
    emb_of = dict(zip(frames["frame_id"], emb, strict=True))
    fleet_cache = work / "fleet-cache"
    baseline = measure_predictions(world, model, preds, sizes, wdir / "fleet" / "baseline", fleet_cache)
    thresholds = baseline["thresholds"]
    errors = val_critical_errors(world, preds, thresholds)
    pool = scored_frames(world, "pool", preds, emb_of, errors)
    pool_emb = np.stack([emb_of[f] for f in pool["frame_id"]])
    pool["uniqueness"] = uniqueness_scores(world, pool, pool_emb)
    labeled = np.stack([emb_of[f] for f in seed_set["frame_id"]])
    val_pool = scored_frames(world, "val", preds, emb_of, errors)
    search = choose_weights(val_pool, np.stack([emb_of[f] for f in val_pool["frame_id"]]), labeled, errors, budgets,
                            len(pool), seed)
    log.info("seed %d: baseline trained and measured at %.0f s; selection weights chosen on validation %s (its "
             "batches hold %.0f critical errors; the defaults' %.0f, a random batch's %.1f)", seed,
             time.perf_counter() - t0, search["weights"], search["captured"], search["default_captured"],
             search["random_expected"])

    def finetune(label: str, train: pd.DataFrame, oversample: int, fleet: bool) -> dict[str, Any]:
        started = time.perf_counter()
        # Content-addressed: a version folder holds exactly these frames, however often the experiment reruns.
        content = hashlib.sha256(json.dumps(sorted(zip(train["frame_id"], train["fm_name"], strict=True)),
                                            separators=(",", ":")).encode()).hexdigest()[:12]
        version = write_version(wdir / "versions" / f"{label}-{content}", world, train, val)
        result = train_model(version, wdir, sizes, seed, name, champion_uri, mined_oversample=oversample)
        m = measure(world, result["model"], sizes, wdir / "fleet" / label if fleet else None, fleet_cache,
                    thresholds)
        per_epoch = round(result["sampling"]["frames_per_epoch"])
        m["train"] = {"run_id": result["run_id"], "epochs": result["epochs_done"], "frames": len(train),
                      "frames_per_epoch": per_epoch, "mined_oversample": oversample,
                      "steps": int(np.ceil(per_epoch / 16)) * result["epochs_done"],
                      "seconds": round(time.perf_counter() - started, 1)}
        return m

    # The fleet test drives the models of the largest budget (and the control), where selection has the most to show.
    control = seed_set.sample(n=min(sizes.finetune_frames, len(seed_set)), random_state=seed).assign(fm_name="")
    no_new = finetune("no_new_data", control, 1, fleet=True)
    for budget in budgets:
        # Every arm's new frames make up the same share of each epoch (mined-frame oversampling), and every
        # arm at a budget replays the same seed-set frames: the same frames per epoch, the same steps.
        oversample = oversample_factor(budget, sizes)
        replay = seed_set.sample(n=sizes.finetune_frames - budget * oversample,
                                 random_state=seed + budget).assign(fm_name="")
        for arm in ARMS:
            if arm == "no_new_data":
                picks, cost, m = [], None, no_new
            else:
                picks = pick(arm, pool, pool_emb, labeled, budget, seed, search["weights"])
                cost = labeling_cost(world, picks, preds, thresholds)
                batch = pool[pool["frame_id"].isin(picks)].assign(fm_name="kpi-batch")
                m = finetune(f"{arm}-{budget}", pd.concat([batch, replay]), oversample, fleet=budget == max(budgets))
            rows.append(make_row(arm, seed, budget, world, picks, cost, baseline, m))
            if arm == "longtail":
                rows[-1]["selection"] = search
            units[f"{arm}|{seed}|{budget}"] = {"baseline": strip(baseline), "arm": strip(m)}
            save()
            log.info("seed %d budget %d %s: critical %d -> %d (%.0f s so far)", seed, budget, arm,
                     rows[-1]["baseline_critical_fp_fn"], rows[-1]["critical_fp_fn"], time.perf_counter() - t0)


def oversample_factor(budget: int, sizes: Sizes) -> int:
    """How many times per epoch each new frame is drawn: enough that the batch makes up about
    ``sizes.mined_share`` of the fine-tuning epoch (at least once)."""
    return max(1, int(sizes.mined_share * sizes.finetune_frames // budget))


def strip(m: dict[str, Any]) -> dict[str, Any]:
    """What the bootstrap needs of a measurement: per-drive units."""
    return {"critical": m["all"]["critical_by_drive"], "detectable": m["detectable"]["critical_by_drive"],
            "fixed": m["fixed"]["critical_by_drive"],
            "common": m["common_drive_stats"], "fleet": m["fleet_drives"]}


def make_row(arm: str, seed: int, budget: int, world: World, picks: list[str], cost: Any,
             baseline: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    critical_objects = sum(1 for f in picks for b in world.labels[f] if b["category"] in ("pedestrian", "cyclist"))
    tagged = world.frames.set_index("frame_id").loc[picks, "tags"] if picks else pd.Series([], dtype=object)
    return {
        "arm": arm, "seed": seed, "budget": budget, "frames_labeled": len(picks),
        "baseline_critical_fp_fn": sum(baseline["all"]["critical_by_drive"].values()),
        "critical_fp_fn": sum(m["all"]["critical_by_drive"].values()),
        "baseline_critical_fp_fn_detectable": sum(baseline["detectable"]["critical_by_drive"].values()),
        "critical_fp_fn_detectable": sum(m["detectable"]["critical_by_drive"].values()),
        # At the baseline's thresholds (the gate recalibrates; this count does not move with recalibration).
        "critical_fp_fn_fixed_thresholds": sum(m["fixed"]["critical_by_drive"].values()),
        "common_map50_baseline": baseline["common_map50"], "common_map50": m["common_map50"],
        "longtail_map50_baseline": baseline["longtail_map50"], "longtail_map50": m["longtail_map50"],
        # None where this row's model was not driven in the fleet test (only the largest budget's are).
        "disengagements_per_100km_baseline": per_100km(baseline["fleet_drives"], "disengagement"),
        "disengagements_per_100km": per_100km(m["fleet_drives"], "disengagement"),
        "safety_critical_per_100km_baseline": per_100km(baseline["fleet_drives"], "safety_critical"),
        "safety_critical_per_100km": per_100km(m["fleet_drives"], "safety_critical"),
        **fleet_event_rates(baseline["fleet_drives"], m["fleet_drives"]),
        "labeling_cost_s": round(cost.seconds, 1) if cost is not None else 0.0,
        "class_ap50_baseline": baseline["class_ap50"], "class_ap50": m["class_ap50"],
        "slices_map50_baseline": baseline["slices_map50"], "slices_map50": m["slices_map50"],
        "thresholds": m["thresholds"],
        "batch": {"critical_objects": critical_objects,
                  "night_share": float(np.mean(["night" in t for t in tagged])) if picks else None,
                  "triggered_share": float(np.mean([any(x.startswith("trigger:") for x in t) for t in tagged]))
                  if picks else None},
        "train": m.get("train"),
    }


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the fleets and the training, comma-separated")
    ap.add_argument("--budgets", default="60,120,240", help="labeling budgets (frames per turn), comma-separated")
    ap.add_argument("--work", default="build/bench-kpi", help="working folder (worlds, versions, MLflow, runs)")
    ap.add_argument("--out", default="bench/results/kpi.json", help="results JSON (rows, summary, provenance)")
    ap.add_argument("--plots", default="bench/results", help="folder of the PNG plots")
    ap.add_argument("--record", default=None, help="append the results section to this Markdown file")
    ap.add_argument("--readme", default=None, help="rewrite the README's KPI block (between its markers) from the results")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap draws of each interval")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads of training and inference (default 2; 1 when several seeds run side by side)")
    ap.add_argument("--merge", default=None,
                    help="with --resummarise: comma-separated RESULTS_JSON=WORK_DIR pairs of runs of other seeds "
                         "(run side by side with --seeds N --work DIR --out DIR/kpi.json) merged into --out")
    ap.add_argument("--resummarise", action="store_true",
                    help="only redo the summary, plots and section from the rows in --out and the units in --work "
                         "(after a change to bench/kpi_report.py; no model is trained)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny world (one seed, a budget of 4 frames, seconds of training) in a temporary folder; "
                         "writes nothing under bench/ (make bench-quick: checks the benchmark still runs)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    started = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="kpi-quick-") if args.quick else None
    if tmp is not None:
        sizes, seeds, budgets = QUICK, [0], [4]  # 4 of 16 frames: the new batch is oversampled x2
        work = Path(tmp.name)
        out, plots, record = work / "kpi.json", work, None
        args.resamples = min(args.resamples, 50)
    else:
        sizes, seeds, budgets = FULL, [int(s) for s in args.seeds.split(",")], [int(b) for b in args.budgets.split(",")]
        work, out, plots, record = Path(args.work), Path(args.out), Path(args.plots), args.record
    if args.threads:
        sizes = dataclasses.replace(sizes, threads=args.threads)
    bad = [b for b in budgets if not 0 < b < sizes.finetune_frames]
    if bad:
        raise SystemExit(f"--budgets {bad}: each budget must be between 1 and {sizes.finetune_frames - 1} (the "
                         "fine-tuning set's size: the rest of it is replayed seed-set frames)")
    work.mkdir(parents=True, exist_ok=True)
    if args.resummarise:
        return resummarise(out, work, plots, record, args.resamples, args.readme, args.merge)
    from longtail.catalog.db import configure_fiftyone, stop_database

    configure_fiftyone(work / "fo")
    rows: list[dict[str, Any]] = []
    units: dict[str, Any] = {}
    command = "python bench/kpi.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    provenance = {"command": command, "git_commit": git_commit(), "env_lock_sha256": env_lock_hash(),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                  "sizes": sizes.__dict__, "seeds": seeds, "budgets": budgets,
                  "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}

    def save() -> None:
        atomic_write_json(out, {"format": "longtail.bench.kpi/1", **provenance, "rows": rows, "complete": False,
                                "wall_s": round(time.perf_counter() - started, 1)})
        with open(work / "units.pkl.tmp", "wb") as fh:
            pickle.dump(units, fh)
        os.replace(work / "units.pkl.tmp", work / "units.pkl")

    try:
        for seed in seeds:
            run_seed(seed, budgets, sizes, work, rows, units, save)
    finally:
        stop_database(work / "fo")
    summary = summarise(rows, units, ARMS, budgets, args.resamples)
    elapsed = time.perf_counter() - started
    result = {"format": "longtail.bench.kpi/1", **provenance, "wall_s": round(elapsed, 1), "rows": rows,
              "summary": summary, "complete": True}
    atomic_write_json(out, result)
    pngs = save_plots(summary, plots)
    log.info("KPI experiment: %d rows in %.0f s -> %s (plots %s)", len(rows), elapsed, out, ", ".join(map(str, pngs)))
    if record:
        from _results import append_section

        append_section(record, render_section(result, out, pngs))
    elif tmp is not None:  # the section and README block render in quick runs too, into the temporary folder
        (work / "RESULTS-quick.md").write_text(render_section(result, out, pngs) + readme_block(result))
    if args.readme and tmp is None:
        update_readme(Path(args.readme), result)
    if tmp is not None:
        tmp.cleanup()
    return 0


def resummarise(out: Path, work: Path, plots: Path, record: str | None, resamples: int, readme: str | None,
                merge: str | None = None) -> int:
    """The summary, plots and section again from saved rows and bootstrap units (and those of ``merge``)."""
    result = json.loads(out.read_text())
    with open(work / "units.pkl", "rb") as fh:
        units = pickle.load(fh)
    result["seeds"] = sorted({r["seed"] for r in result["rows"]})  # a run stopped early holds fewer than it planned
    for pair in (merge or "").split(","):
        if not pair:
            continue
        other_json, _, other_work = pair.partition("=")
        other = json.loads(Path(other_json).read_text())
        with open(Path(other_work) / "units.pkl", "rb") as fh:
            other_units = pickle.load(fh)
        seeds = set(other["seeds"])
        if seeds & set(result["seeds"]):
            raise SystemExit(f"--merge {other_json}: seeds {sorted(seeds & set(result['seeds']))} are already in {out}")
        result["rows"] += other["rows"]
        units.update(other_units)
        result["seeds"] = sorted(set(result["seeds"]) | seeds)
        result.setdefault("merged", []).append({k: other[k] for k in ("command", "git_commit", "env_lock_sha256",
                                                                     "seeds", "created_at", "wall_s")})
    work_of = {**{s: work for s in sorted({r["seed"] for r in result["rows"]}) if (work / f"seed-{s}").is_dir()},
               **{s: Path(pair.partition("=")[2]) for pair in (merge or "").split(",") if pair
                  for s in json.loads(Path(pair.partition("=")[0]).read_text())["seeds"]}}
    fill_fleet_events(result["rows"], units, work_of)
    cells = {(r["arm"], r["seed"], r["budget"]) for r in result["rows"]}
    result["complete"] = cells == {(a, s, b) for a in ARMS for s in result["seeds"] for b in result["budgets"]}
    result["summary"] = summarise(result["rows"], units, ARMS, result["budgets"], resamples)
    atomic_write_json(out, result)
    pngs = save_plots(result["summary"], plots)
    if record:
        from _results import append_section

        append_section(record, render_section(result, out, pngs))
    if readme:
        update_readme(Path(readme), result)
    log.info("KPI experiment re-summarised: %d rows -> %s", len(result["rows"]), out)
    return 0


def fill_fleet_events(rows: list[dict[str, Any]], units: dict[str, Any], work_of: dict[int, Path]) -> None:
    """Give units and rows of a run made before `FLEET_EVENTS` were kept their per-event counts, read
    back from the fleet tests' own reports (``<work>/seed-N/fleet/<model>/fleet_test.json``). A report
    whose drives do not match the unit's kilometres, disengagements and safety-critical failures (a
    later run overwrote it) is left out with a warning: the unit then keeps what it had."""
    for row in rows:
        unit = units.get(f"{row['arm']}|{row['seed']}|{row['budget']}")
        work = work_of.get(row["seed"])
        if unit is None or work is None:
            continue
        model = "no_new_data" if row["arm"] == "no_new_data" else f"{row['arm']}-{row['budget']}"
        for side, folder in (("baseline", "baseline"), ("arm", model)):
            kept = unit[side]["fleet"]
            if kept is None or all(all(m in d for m in FLEET_EVENTS) for d in kept):
                continue
            report = work / f"seed-{row['seed']}" / "fleet" / folder / "fleet_test.json"
            if not report.is_file():
                log.warning("%s: no fleet-test report; the %s's fleet events stay unknown", report, side)
                continue
            read = {d["drive_id"]: d for d in fleet_drive_counts(json.loads(report.read_text())["drives"]["model"])}
            same = all(d["drive_id"] in read and all(read[d["drive_id"]][k] == d[k]
                                                      for k in ("km", "disengagement", "safety_critical"))
                       for d in kept)
            if not same:
                log.warning("%s does not match the run's counts (rerun since?); its fleet events are left out", report)
                continue
            unit[side]["fleet"] = [read[d["drive_id"]] for d in kept]
        sides = [unit["baseline"]["fleet"], unit["arm"]["fleet"]]
        if all(f is None or all(m in d for d in f for m in FLEET_EVENTS) for f in sides):
            row.update(fleet_event_rates(*sides))


if __name__ == "__main__":
    raise SystemExit(main())
