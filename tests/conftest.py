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


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def fiftyone_database(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real MongoDB (the mongod FiftyOne ships) for the whole session, on a free port.

    Every FiftyOne call in the tests, and in the notebooks the pipeline tests run, goes to it
    through FIFTYONE_DATABASE_URI; tests name their own datasets. Stopped at the end.
    """
    from longtail.curate.db import start_database, stop_database

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
