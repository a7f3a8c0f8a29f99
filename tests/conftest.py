"""Test-session setup. Tests use one thread per process: CI has 2 shared cores."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import longtail

# The cached environment is shared between checkouts; its editable install points at one of them.
_SRC = Path(__file__).resolve().parents[1] / "src"
if not Path(longtail.__file__).resolve().is_relative_to(_SRC):
    raise RuntimeError(
        f"the tests import longtail from {Path(longtail.__file__).parent}, not from {_SRC}: "
        "run 'make test' (or env/setup-venv.sh) in this checkout first"
    )


import dataclasses  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from longtail.catalog.truth import load_ground_truth  # noqa: E402
from longtail.config import NO_SCENARIO_RATES, SimConfig  # noqa: E402
from longtail.sim.drive import simulate_drive  # noqa: E402
from longtail.sim.plan import fixed_plan  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def fiftyone_database(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real MongoDB (the mongod FiftyOne ships) for the whole session, on a free port.

    Every FiftyOne call in the tests, and in the notebooks the pipeline tests run, goes to it
    through FIFTYONE_DATABASE_URI; tests name their own datasets. Stopped at the end.
    """
    from longtail.catalog.db import start_database, stop_database

    root = tmp_path_factory.mktemp("fiftyone-db")
    uri = start_database(root)
    saved = os.environ.get("FIFTYONE_DATABASE_URI")
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    yield uri
    if saved is None:
        os.environ.pop("FIFTYONE_DATABASE_URI", None)
    else:
        os.environ["FIFTYONE_DATABASE_URI"] = saved
    stop_database(root)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/data/real beside the checkout (or $LONGTAIL_REAL_DATA): real KITTI and nuScenes samples."""
    for candidate in (os.environ.get("LONGTAIL_REAL_DATA"), _SRC.parents[1] / "shared" / "data" / "real",
                      Path("/work/shared/data/real")):
        if candidate and (Path(candidate) / "kitti").is_dir():
            return Path(candidate)
    pytest.fail("the real KITTI/nuScenes samples were not found: set LONGTAIL_REAL_DATA to shared/data/real")


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def chromium():  # type: ignore[no-untyped-def]
    """Headless Chromium (the OS package env/setup-browser.sh installs) driven by Playwright."""
    import shutil

    from playwright.sync_api import sync_playwright

    exe = os.environ.get("LONGTAIL_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if exe is None:
        pytest.fail("no Chromium: run env/setup-browser.sh (make test does) or set LONGTAIL_CHROMIUM")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


# ------------------------------------------------------------------------------------------------
# A small simulated fleet with its ground truth, ingested once per session (curate and label tests).
#
# Twelve 2-minute drives (24 minutes, 7,200 frames at 5 fps, 320x192): four stage one 3-second
# critical scenario each (under 1% of frames, as in a real fleet's long tail), eight are ordinary
# drives across day, dusk, night, rain and fog. Drives are simulated in parallel, two processes.




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


@pytest.fixture(scope="session")
def fleet_subset(curate_fleet: dict[str, object]):  # type: ignore[no-untyped-def]
    """Copy the test fleet's data root with only some of its drives ingested.

    Tests that run a detector over every frame (a champion predicting and embedding) pay per
    frame: two drives (~500 frames) instead of twelve (~3,000) still give them several logs, a
    scenario if they name one, and ordinary driving, at a sixth of the cost.

    Returns a function ``copy(dst, drives)``: ``dst`` a data root folder that does not exist yet,
    ``drives`` names from ``DRIVES`` (e.g. ``("cutin", "q-hw-day")``). It copies each drive's log
    manifest, frame index, signals and path memo, and the frames its index points at; it returns
    ``dst``.
    """
    src = Path(curate_fleet["root"])  # type: ignore[arg-type]

    def copy(dst: Path, drives: tuple[str, ...]) -> Path:
        names = {name for name, *_ in DRIVES}
        if unknown := set(drives) - names:
            raise ValueError(f"unknown drive(s) {sorted(unknown)}: the test fleet has {sorted(names)}")
        # Logs are named by content; the manifest's source path (NN-<drive>.mcap) names the drive.
        manifests = [json.loads(p.read_text()) for p in sorted((src / "index" / "logs").glob("*.json"))]
        chosen = [m for m in manifests if Path(m["path"]).stem.split("-", 1)[1] in drives]
        if len(chosen) != len(drives):
            raise RuntimeError(f"{src}: found {len(chosen)} log(s) for drives {drives}")
        ids = {m["log_id"] for m in chosen}
        for sub in ("logs", "frames", "signals", "paths"):
            (dst / "index" / sub).mkdir(parents=True)
        for log_id in sorted(ids):
            shutil.copy2(src / "index" / "logs" / f"{log_id}.json", dst / "index" / "logs")
            shutil.copy2(src / "index" / "frames" / f"{log_id}.parquet", dst / "index" / "frames")
            if (signals := src / "index" / "signals" / f"{log_id}.parquet").exists():
                shutil.copy2(signals, dst / "index" / "signals")
            for store_path in pd.read_parquet(dst / "index" / "frames" / f"{log_id}.parquet",
                                              columns=["store_path"])["store_path"]:
                (dst / store_path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / store_path, dst / store_path)
        for memo in (src / "index" / "paths").glob("*.json"):
            if json.loads(memo.read_text())["log_id"] in ids:
                shutil.copy2(memo, dst / "index" / "paths")
        return dst

    return copy


@pytest.fixture
def fresh_root(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a data root (frame store and index only) so a test can change it freely."""

    def copy(src: Path) -> Path:
        dst = tmp_path / "data"
        shutil.copytree(src / "frames", dst / "frames")
        shutil.copytree(src / "index", dst / "index")
        return dst

    return copy
