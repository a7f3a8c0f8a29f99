"""A simulated fleet: which vehicles drive when, in parallel, into one output folder.

Layout of ``--out DIR``::

    DIR/<drive_id>.mcap                 one drive log per drive
    DIR/ground_truth/<drive_id>.parquet the simulator's truth (never read by ingest or mining)
    DIR/fleet.json                      the manifest, written last

Every file is renamed into place only when complete and the manifest is written last, so a
folder with a manifest is whole. Re-running with the same config skips drives already there.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from longtail import __version__
from longtail.catalog.truth import GT_DIR
from longtail.config import SCENARIOS, SimConfig
from longtail.errors import ConfigError
from longtail.sim.drive import DriveSummary, config_record, simulate_drive
from longtail.sim.plan import DrivePlan, plan_drive
from longtail.storage import atomic_write_json, sha256_file

log = logging.getLogger(__name__)

MANIFEST = "fleet.json"


@dataclass(frozen=True)
class FleetResult:
    """What `simulate_fleet` produced."""

    out: Path
    drives: list[DriveSummary]
    skipped: int

    @property
    def manifest(self) -> Path:
        """Path of the fleet manifest."""
        return self.out / MANIFEST


def plan_fleet(cfg: SimConfig) -> list[DrivePlan]:
    """Plan every drive of the fleet: vehicle types, then each drive from its own seed.

    Seeds come from ``numpy.random.SeedSequence`` keyed by (fleet seed, vehicle, drive), so a
    drive's content does not depend on how many vehicles or workers there are.
    """
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xF1EE7]))
    plans = []
    for i in range(cfg.vehicles):
        vehicle_type = "truck" if rng.random() < cfg.truck_share else "car"
        vehicle_id = f"{vehicle_type}-{i + 1:03d}"
        for j in range(cfg.first_drive, cfg.first_drive + cfg.drives_per_vehicle):
            seed = int(np.random.SeedSequence([cfg.seed, i, j]).generate_state(2, dtype=np.uint64)[0] >> 1)
            plans.append(plan_drive(cfg, vehicle_id, vehicle_type, j, seed))
    return plans


def _run_one(plan: DrivePlan, cfg: SimConfig, out: str) -> DriveSummary:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(out)
    return simulate_drive(plan, cfg, root / f"{plan.drive_id}.mcap", root / GT_DIR / f"{plan.drive_id}.parquet")


def _load_manifest(out: Path) -> dict[str, object] | None:
    import json

    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        manifest: dict[str, object] = json.loads(path.read_text())
        return manifest
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); remove it to re-simulate the fleet") from exc


def simulate_fleet(cfg: SimConfig, out: str | os.PathLike[str], workers: int = 1, progress: bool = True) -> FleetResult:
    """Simulate every drive of the fleet into ``out`` (see the module docstring for the layout).

    Args:
        cfg: the fleet's configuration.
        out: output folder (created if missing).
        workers: drives simulated in parallel, one process each.
        progress: show a progress bar on stderr.

    Returns:
        The fleet's drives, in plan order, and how many were already there.

    Raises:
        ConfigError: if ``out`` holds a fleet simulated with a different configuration.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {root}: exists and is not a folder; choose a folder path")
    root.mkdir(parents=True, exist_ok=True)
    (root / GT_DIR).mkdir(exist_ok=True)
    config = config_record(cfg)
    previous = _load_manifest(root)
    done: dict[str, dict[str, object]] = {}
    if previous is not None:
        if previous.get("config") != config:
            raise ConfigError(
                f"--out {root}: holds a fleet simulated with another configuration (see {root / MANIFEST}); "
                "choose another --out folder or remove that one"
            )
        drives = previous.get("drives", [])
        for d in drives if isinstance(drives, list) else []:
            done[str(d["drive_id"])] = d
    plans = plan_fleet(cfg)
    results: dict[str, DriveSummary] = {}
    todo = []
    for plan in plans:
        prev = done.get(plan.drive_id)
        log_file = root / f"{plan.drive_id}.mcap"
        gt_file = root / GT_DIR / f"{plan.drive_id}.parquet"
        if prev and log_file.exists() and gt_file.exists() and sha256_file(log_file) == prev["sha256"]:
            results[plan.drive_id] = DriveSummary(**prev)  # type: ignore[arg-type]
        else:
            todo.append(plan)
    skipped = len(results)
    if skipped:
        log.info("%d of %d drives already simulated in %s; skipping them", skipped, len(plans), root)
    total_frames = cfg.frames_per_drive * len(todo)
    bar = tqdm(total=total_frames, unit="frame", desc="simulating", disable=not progress or not todo)
    if workers <= 1 or len(todo) <= 1:
        for plan in todo:
            results[plan.drive_id] = simulate_drive(
                plan, cfg, root / f"{plan.drive_id}.mcap", root / GT_DIR / f"{plan.drive_id}.parquet",
                on_frame=bar.update,
            )
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_run_one, plan, cfg, str(root)): plan for plan in todo}
            for fut in as_completed(futures):
                summary = fut.result()
                results[summary.drive_id] = summary
                bar.update(summary.frames)
    bar.close()
    drives = [results[p.drive_id] for p in plans]
    atomic_write_json(root / MANIFEST, {
        "format": "longtail.fleet/1",
        "simulator_version": __version__,
        "config": config,
        "drives": [d.to_json() for d in drives],
    })
    return FleetResult(out=root, drives=drives, skipped=skipped)


SHORT = {
    "cut_in": "cut-in",
    "emergency_braking": "e-brake",
    "occluded_pedestrian": "occl-ped",
    "night_vru": "night-vru",
    "emergency_lane_change": "e-lane",
}


def format_table(drives: list[DriveSummary]) -> str:
    """The scenario and condition mix of each drive, and the fleet's totals, as a text table."""
    headers = ["drive", "vehicle", "light", "weather", "urban", "frames", *[SHORT[s] for s in SCENARIOS],
               "critical", "MB"]
    rows = []
    for d in drives:
        crit = sum(d.scenario_frames.get(s, 0) for s in SCENARIOS)
        rows.append([
            d.drive_id, d.vehicle_type, d.time_of_day, d.weather, f"{d.urban_share:.0%}", str(d.frames),
            *[str(d.scenario_frames.get(s, 0)) for s in SCENARIOS],
            f"{crit / max(d.frames, 1):.2%}", f"{d.bytes / 1e6:.1f}",
        ])
    frames = sum(d.frames for d in drives)
    crit_total = sum(sum(d.scenario_frames.get(s, 0) for s in SCENARIOS) for d in drives)
    urban = sum(d.urban_share * d.frames for d in drives) / max(frames, 1)
    rows.append([
        f"fleet ({len(drives)} drives)", "", "", "", f"{urban:.0%}", str(frames),
        *[str(sum(d.scenario_frames.get(s, 0) for d in drives)) for s in SCENARIOS],
        f"{crit_total / max(frames, 1):.2%}", f"{sum(d.bytes for d in drives) / 1e6:.1f}",
    ])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for k, r in enumerate(rows):
        if k == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)
