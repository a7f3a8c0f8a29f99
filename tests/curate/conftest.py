"""A small simulated fleet with its ground truth, ingested once per session for the curate tests.

Twelve 2-minute drives (24 minutes, 7,200 frames at 5 fps, 320x192): four stage one 3-second
critical scenario each (under 1% of frames, as in a real fleet's long tail), eight are ordinary
drives across day, dusk, night, rain and fog. Drives are simulated in parallel, two processes.
"""

from __future__ import annotations

import dataclasses
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan
from longtail.sim.truth import load_ground_truth

CFG = SimConfig(minutes=2.0, width=320, height=192, fps=5.0, scenario_rates=NO_SCENARIO_RATES)
DRIVES = (
    # name, road, vehicle, time of day, weather, staged events
    ("ebrake", "highway", "car", "day", "clear", (("emergency_braking", 30.0, 33.0),)),
    ("elane", "highway", "truck", "night", "clear", (("emergency_lane_change", 50.0, 53.0),)),
    ("occped", "urban", "car", "day", "clear", (("occluded_pedestrian", 40.0, 43.0),)),
    ("cutin", "highway", "car", "day", "fog", (("cut_in", 60.0, 63.0),)),
    ("q-hw-day", "highway", "car", "day", "clear", ()),
    ("q-town-night", "urban", "car", "night", "clear", ()),
    ("q-hw-rain", "highway", "truck", "dusk", "rain", ()),
    ("q-town-rain", "urban", "car", "day", "rain", ()),
    ("q-hw-fog-night", "highway", "truck", "night", "fog", ()),
    ("q-town-dusk", "urban", "car", "dusk", "clear", ()),
    ("q-hw-truck", "highway", "truck", "day", "clear", ()),
    ("q-town-day", "urban", "car", "day", "clear", ()),
)


def _plan(k: int, drive: tuple):  # type: ignore[no-untyped-def]
    name, road, vehicle, tod, weather, events = drive
    plan = fixed_plan(CFG, 100 + k, road=road, vehicle=vehicle, time_of_day=tod, weather=weather, events=events)
    return name, dataclasses.replace(plan, vehicle_id=f"{vehicle}-{k:03d}", drive_id=f"{vehicle}-{k:03d}_drive000")


@pytest.fixture(scope="session")
def curate_fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The fleet's logs, a data root with all of them ingested, and the ground truth per frame."""
    from longtail.ingest.ingest import ingest

    out = tmp_path_factory.mktemp("curate-fleet")
    (out / "ground_truth").mkdir()
    plans = [_plan(k, d) for k, d in enumerate(DRIVES)]
    logs = [out / f"{k:02d}-{name}.mcap" for k, (name, _) in enumerate(plans)]
    truths = [out / "ground_truth" / f"{k:02d}-{name}.parquet" for k, (name, _) in enumerate(plans)]
    # Library functions only cross the process boundary (conftest modules share one name).
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(simulate_drive, [p for _, p in plans], [CFG] * len(plans), logs, truths))
    root = tmp_path_factory.mktemp("curate-data")
    ingest(logs, root, workers=2, progress=False)
    truth = pd.concat([load_ground_truth(p)[0] for p in sorted((out / "ground_truth").glob("*.parquet"))])
    return {"logs": logs, "root": root, "truth": truth[["drive_id", "timestamp_ns", "time_of_day", "weather",
                                                        "road_type", "scenario"]]}


@pytest.fixture
def fresh_root(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a data root (frame store and index only) so a test can change it freely."""

    def copy(src: Path) -> Path:
        dst = tmp_path / "data"
        shutil.copytree(src / "frames", dst / "frames")
        shutil.copytree(src / "index", dst / "index")
        return dst

    return copy
