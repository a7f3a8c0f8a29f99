"""The fleet test: a fixed, seeded test fleet drives with a given perception, and its ADAS outcomes
are counted per 100 km and per scenario (`longtail.sim.fleet_metrics`).

The fleet is scenario-dense: one drive per vehicle type (car, truck), time of day, weather and road
type (highway, town), each staging the critical scenarios eligible there back to back
(`plan_fleet_test`). Every arm drives the same plans with the same seeds; the ``truth`` arm (the
simulator's own perception) is the reference the others are compared with, paired over drives.

Layout of the output folder::

    OUT/<arm>/<drive_id>.mcap                  the drive logs, with /camera/front/detections
    OUT/<arm>/ground_truth/<drive_id>.parquet  the simulator's truth
    OUT/fleet_test.json                        the results, written last
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from longtail import __version__
from longtail.catalog.truth import GT_DIR
from longtail.config import NO_SCENARIO_RATES, SCENARIOS, TIMES_OF_DAY, WEATHERS, SimConfig
from longtail.detector.model import MODEL_FILE, load_model
from longtail.detector.predict import make_frame_predictor
from longtail.detector.shadow import DEFAULT_SHADOW_IOU, compare_detections
from longtail.errors import ConfigError, InputError
from longtail.sim.drive import DriveSession
from longtail.sim.fleet_cache import restore_truth, store_truth, truth_cache_key
from longtail.sim.fleet_metrics import METRICS, DriveMeter, compute_rates
from longtail.sim.perception import Perceive, make_critical_test
from longtail.sim.plan import DrivePlan, eligible, fixed_plan
from longtail.storage import atomic_write_json

log = logging.getLogger(__name__)

RESULTS = "fleet_test.json"
REFERENCE_ARM = "truth"
EVENT_S = 5.0
"""Length of each staged scenario event, s."""
EVENT_EVERY_S = 15.0
"""A scenario event starts this often in a fleet-test drive, s (the first after 8 s)."""


class FleetTestConfig(BaseModel):
    """The fixed test fleet and what counts. Units are in each field's description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, ge=0, lt=2**63, description="fleet-test seed; the same seed drives the same roads")
    minutes: float = Field(1.0, gt=0, le=60, description="length of each drive, minutes")
    max_drives: int | None = Field(None, ge=1, description="only the first N drives of the plan (None: all 36)")
    width: int = Field(320, ge=64, le=4096, description="camera image width, px")
    height: int = Field(192, ge=48, le=4096, description="camera image height, px")
    fps: float = Field(10.0, gt=0, le=60, description="camera frame rate, Hz")
    perception_hz: float = Field(5.0, gt=0, le=60, description="perception rate, Hz (a divisor of fps)")
    profile: Literal["foxglove", "ros2"] = Field("foxglove", description="recording profile of the logs")
    batch_size: int = Field(16, ge=1, le=1024, description="frames of several drives per perception call")
    ttc_s: float = Field(1.5, gt=0, le=10, description="a time to collision under this is a near miss, s")
    phantom_decel: float = Field(3.0, gt=0, le=10, description="ADAS braking that counts as hard, m/s^2")
    shadow_iou: float = Field(DEFAULT_SHADOW_IOU, gt=0, le=1, description="shadow boxes overlapping less disagree")
    n_boot: int = Field(2000, ge=100, le=100_000, description="bootstrap resamples of the drives")

    def sim_config(self) -> SimConfig:
        """The simulator configuration of every drive (no randomly placed scenarios: they are staged)."""
        return SimConfig(minutes=self.minutes, width=self.width, height=self.height, fps=self.fps,
                         profile=self.profile, seed=self.seed, scenario_rates=NO_SCENARIO_RATES)

    def perceive_every(self) -> int:
        """Camera frames per perception frame.

        Raises:
            ConfigError: the perception rate does not divide the frame rate.
        """
        every = self.fps / self.perception_hz
        if abs(every - round(every)) > 1e-9 or round(every) < 1:
            raise ConfigError(f"perception_hz={self.perception_hz} must divide fps={self.fps} "
                              f"(e.g. {self.fps / 2:g} or {self.fps:g})")
        return round(every)


def plan_fleet_test(cfg: FleetTestConfig) -> list[DrivePlan]:
    """The test fleet's drives: every vehicle type x time of day x weather x road type, in an order
    that varies all four from one drive to the next (so the first few drives already mix them).

    Each drive stages the scenarios eligible on its road at its time of day, one every
    `EVENT_EVERY_S`, rotating so that each scenario leads in some drives.
    """
    sim = cfg.sim_config()
    cells = [(v, tod, wx, road) for v in ("car", "truck") for tod in TIMES_OF_DAY for wx in WEATHERS
             for road in ("highway", "urban")]
    order = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xF7])).permutation(len(cells))
    plans = []
    for i, k in enumerate(order[: cfg.max_drives] if cfg.max_drives else order):
        vehicle, tod, weather, road = cells[int(k)]
        names = [s for s in SCENARIOS if eligible(s, road, tod)]
        names = names[i % len(names):] + names[: i % len(names)]
        starts = np.arange(8.0, sim.minutes * 60 - EVENT_S, EVENT_EVERY_S)
        events = tuple((names[j % len(names)], float(a), float(a) + EVENT_S) for j, a in enumerate(starts))
        seed = int(np.random.SeedSequence([cfg.seed, int(k)]).generate_state(2, dtype=np.uint64)[0] >> 1)
        plan = fixed_plan(sim, seed, road=road, vehicle=vehicle, time_of_day=tod, weather=weather, events=events)
        drive_id = f"ft{int(k):02d}-{vehicle}-{road}-{tod}-{weather}"
        plans.append(dataclasses.replace(plan, drive_id=drive_id, vehicle_id=f"{vehicle}-test"))
    return plans


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_arm(cfg: FleetTestConfig, plans: list[DrivePlan], out: Path, perceive: Perceive | None,
            challenger: Perceive | None = None, progress: bool = True, desc: str = "fleet test"
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Drive every plan with one perception, the drives in lockstep so that their frames share calls.

    Args:
        cfg: the fleet test's configuration.
        plans: the drives.
        out: the arm's folder (logs, and ground truth under ``ground_truth/``).
        perceive: the acting perception (None: the simulator's truth).
        challenger: a perception run in shadow beside ``perceive`` (only predicts).
        progress: show a progress bar.
        desc: the progress bar's label.

    Returns:
        (drives, disagreements, shadow frames): per drive its counts and km; the shadow
        disagreements (`longtail.detector.shadow.ObjectDisagreement.to_json` per object, with
        drive, frame, time and scenario; vehicles count only in the ego's path); and the number
        of frames both perceptions saw.
    """
    sim = cfg.sim_config()
    every = cfg.perceive_every() if perceive is not None else 0
    dt = 1.0 / sim.signal_hz
    meters = [DriveMeter(dt, cfg.ttc_s, cfg.phantom_decel) for _ in plans]
    disagreements: list[dict[str, Any]] = []
    shadow_frames = 0
    bar = tqdm(total=sim.frames_per_drive * len(plans), unit="frame", desc=desc, disable=not progress)
    with ExitStack() as stack:
        sessions = [stack.enter_context(DriveSession(
            plan, sim, out / f"{plan.drive_id}.mcap", out / GT_DIR / f"{plan.drive_id}.parquet", perceive_every=every,
            on_frame=bar.update, on_step=meter)) for plan, meter in zip(plans, meters, strict=True)]
        active = list(sessions)
        while active:
            frames = [(s, s.next_frame()) for s in active]
            waiting = [(s, image) for s, image in frames if image is not None]
            active = [s for s, _ in waiting]
            for batch in _batches(waiting, cfg.batch_size):
                images = [image for _, image in batch]
                assert perceive is not None  # frames come back only in perception mode
                acting = perceive(images)
                shadow = challenger(images) if challenger is not None else [None] * len(batch)
                if len(acting) != len(batch) or len(shadow) != len(batch):
                    raise ConfigError(f"perceive() returned {len(acting)} results for {len(batch)} frames; "
                                      "it must return one list of boxes per frame")
                for (session, _), boxes, other in zip(batch, acting, shadow, strict=True):
                    if other is not None:
                        shadow_frames += 1
                        ego = session.world.ego
                        critical = make_critical_test(session.camera, session.world.spec["width"], ego.kappa,
                                                      ego.pitch)
                        for d in compare_detections(boxes, other, iou=cfg.shadow_iou, critical=critical):
                            event = session.world.event
                            disagreements.append({"drive_id": session.plan.drive_id, "frame_index": session.frame_index - 1,
                                                  "timestamp_ns": session.last_frame_ns,
                                                  "scenario": event.name if event is not None else "", **d.to_json()})
                    session.deliver(boxes, shadow=other)
    bar.close()
    drives = []
    for session, meter in zip(sessions, meters, strict=True):
        summary = session.summary()
        plan = session.plan
        drives.append({"drive_id": plan.drive_id, "vehicle_type": plan.vehicle_type, "time_of_day": plan.time_of_day,
                       "weather": plan.weather, "road": plan.segments[0].road_type, "seed": plan.seed,
                       "km": round(meter.metres / 1000.0, 6), "frames": summary.frames,
                       "perceived_frames": perception.frames if (perception := session.world.driver.perception) else 0,
                       "log": f"{out.name}/{summary.log}", "sha256": summary.sha256, "counts": meter.counts})
    return drives, disagreements, shadow_frames


def run_fleet_test(cfg: FleetTestConfig, arms: dict[str, Perceive | None], out: str | os.PathLike[str],
                   challenger: Perceive | None = None, shadow_arm: str | None = None,
                   descriptions: dict[str, str] | None = None, progress: bool = True,
                   extra: dict[str, Any] | None = None, cache: str | os.PathLike[str] | None = None
                   ) -> dict[str, Any]:
    """Run the fleet test with each perception, and write and return the results.

    Args:
        cfg: the fleet test's configuration.
        arms: name -> perception (None: the simulator's truth); ``truth`` is added as the reference.
        out: the output folder (see the module docstring).
        challenger: a perception to run in shadow mode beside ``shadow_arm``'s acting one.
        shadow_arm: the arm the challenger shadows (default: the first arm that is not ``truth``).
        descriptions: arm -> what its perception is (a deployment folder, a model), for the results.
        progress: show progress bars.
        extra: more keys for the results (e.g. the deployment tested), written with them.
        cache: a folder caching the truth arm by everything that determines it
            (`longtail.sim.fleet_cache`): a second fleet test on the same seeds drives only the
            other arms. None: drive it every time.

    Returns:
        The results (what ``OUT/fleet_test.json`` holds): config, drives, rates per 100 km with
        intervals, paired differences to ``truth``, and the shadow disagreements.

    Raises:
        ConfigError: a bad perception rate, or a challenger with no arm to shadow.
    """
    root = Path(out)
    arms = {REFERENCE_ARM: None, **{k: v for k, v in arms.items() if k != REFERENCE_ARM}}
    if challenger is not None:
        shadow_arm = shadow_arm or next((a for a, p in arms.items() if p is not None), None)
        if shadow_arm is None or arms.get(shadow_arm) is None:
            raise ConfigError("a shadow challenger needs an acting perception to run beside; give a deployment "
                              f"or model arm (arms: {sorted(arms)})")
    plans = plan_fleet_test(cfg)
    drives_by_arm: dict[str, list[dict[str, Any]]] = {}
    shadow: dict[str, Any] | None = None
    key = truth_cache_key(cfg, plans) if cache is not None else ""
    for name, perceive in arms.items():
        shadowing = challenger if name == shadow_arm else None
        if name == REFERENCE_ARM and cache is not None and shadowing is None:
            cached = restore_truth(Path(cache), key, plans, root / name)
            if cached is not None:
                drives_by_arm[name] = cached
                continue
        drives, disagreements, frames = run_arm(cfg, plans, root / name, perceive, shadowing, progress,
                                                desc=f"fleet test: {name}")
        drives_by_arm[name] = drives
        if name == REFERENCE_ARM and cache is not None and shadowing is None:
            store_truth(Path(cache), key, plans, root / name, drives)
        if shadowing is not None:
            per_frame = {(d["drive_id"], d["frame_index"]) for d in disagreements}
            shadow = {"arm": name, "frames": frames, "disagreement_frames": len(per_frame),
                      "per_1000_frames": round(1000.0 * len(per_frame) / max(frames, 1), 3),
                      "disagreements": disagreements}
    rates, paired = compute_rates(drives_by_arm, REFERENCE_ARM, cfg.n_boot, cfg.seed)
    results = {
        "format": "longtail.fleet_test/1",
        "version": __version__,
        "config": cfg.model_dump(mode="json"),
        "reference": REFERENCE_ARM,
        "arms": {name: (descriptions or {}).get(name, "simulator truth" if p is None else "perception")
                 for name, p in arms.items()},
        "metrics": list(METRICS),
        "drives": drives_by_arm,
        "rates": rates,
        "paired": paired,
        "shadow": shadow,
        **(extra or {}),
    }
    atomic_write_json(root / RESULTS, results)
    log.info("fleet test: %d drives x %d arms -> %s", len(plans), len(arms), root / RESULTS)
    return results


def load_perception(folder: str | os.PathLike[str], score_threshold: float = 0.5) -> tuple[Perceive, str]:
    """A perception source from a folder: a deployment (``deployment.json``, its per-class operating
    thresholds) or a saved model (``model.pt``, wrapped at ``score_threshold``).

    Args:
        folder: a deployment folder or a model folder.
        score_threshold: the threshold of a saved model's boxes (a deployment has its own).

    Returns:
        (perceive, description).

    Raises:
        InputError: the folder holds neither.
    """
    path = Path(folder)
    if (path / "deployment.json").is_file():
        try:
            from longtail.detector.export import load_deployed_detector  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigError(f"{path}: a deployment, but this install has no longtail.detector.export ({exc}); "
                              "update longtail") from None
        detector = load_deployed_detector(path)
        return detector.predict, f"deployment {path}"
    if (path / MODEL_FILE).is_file():
        model, meta = load_model(path)
        return make_frame_predictor(model, score_threshold), f"model {path} ({meta.get('preset', '?')})"
    raise InputError(f"{path}: neither a deployment (deployment.json) nor a saved model ({MODEL_FILE}); "
                     "pass a folder written by `longtail deploy` or `longtail train`")
