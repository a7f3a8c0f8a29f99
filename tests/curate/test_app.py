"""`longtail app`: the FiftyOne App on a data root's dataset, reached over HTTP, its GraphQL API
and a headless Chromium, as a researcher (or their browser) would."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from longtail.curate.run import CurateConfig, run_curate

DATASET = "t-app"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_root(fleet_subset, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    # The four drives that stage a scenario: each opens the failure mode whose saved view the App shows.
    root = fleet_subset(tmp_path_factory.mktemp("app") / "data", ("ebrake", "elane", "occped", "cutin"))
    run_curate(root, CurateConfig(dataset=DATASET, brain=False))
    return root


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`longtail app` exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the App did not answer at {url} within {timeout_s:.0f} s")


@pytest.fixture
def serve(app_root: Path) -> Iterator:  # type: ignore[type-arg]
    """Start `longtail app` in a subprocess (the database comes from FIFTYONE_DATABASE_URI)."""
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]

    def start(*extra: str) -> str:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "longtail", "app", "--root", str(app_root), "--dataset", DATASET,
             "--address", "127.0.0.1", "--port", str(port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/", proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert not body.get("errors"), body
    return dict(body["data"])


def _open(chromium, url: str):  # type: ignore[no-untyped-def]
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url, wait_until="load", timeout=120_000)
    # The grid draws each sample in a "looker"; wait until some are on screen with their images.
    page.wait_for_function("document.querySelectorAll('[data-cy=looker] canvas').length >= 4", timeout=120_000)
    page.wait_for_timeout(3000)
    return page


def test_app_serves_the_dataset_and_its_failure_mode_views(serve, app_root: Path, chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import fiftyone as fo
    from PIL import Image

    ds = fo.load_dataset(DATASET)
    url = serve()

    data = _graphql(url, '{ datasets(search: "", first: 50) { edges { node { name estimatedSampleCount } } } '
                         f'savedViews(datasetName: "{DATASET}") {{ name }} }}')
    counts = {e["node"]["name"]: e["node"]["estimatedSampleCount"] for e in data["datasets"]["edges"]}
    assert counts.get(DATASET) == len(ds)
    views = {v["name"] for v in data["savedViews"]}
    assert {"fm-hard-brake-events", "fm-cut-ins", "fm-occluded-pedestrians", "fm-emergency-lane-changes"} <= views
    assert views == set(ds.list_saved_views())

    page = _open(chromium, f"{url}/datasets/{DATASET}")
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot))
    assert f"{len(ds):,} samples" in page.inner_text("body")
    page.close()
    # The grid (right of the sidebar, below the toolbars) shows pictures, not an empty page:
    # many distinct colours and real contrast, as the simulator's road scenes have.
    grid = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB"))[160:880, 320:1350]
    assert grid.std() > 20, f"the App's sample grid looks blank (std {grid.std():.1f}); see {shot}"
    assert len(np.unique(grid.reshape(-1, 3) // 8, axis=0)) > 500


def test_app_opens_on_a_failure_mode(serve, chromium) -> None:  # type: ignore[no-untyped-def]
    import fiftyone as fo

    view = fo.load_dataset(DATASET).load_saved_view("fm-cut-ins")
    assert 0 < len(view) < len(fo.load_dataset(DATASET))
    url = serve("--failure-mode", "cut_ins")
    page = _open(chromium, url)
    assert f"{len(view):,} samples" in page.inner_text("body")
    page.close()


def test_app_rejects_an_unknown_failure_mode(app_root: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "longtail", "app", "--root", str(app_root), "--dataset", DATASET,
                          "--port", str(_free_port()), "--failure-mode", "night_unicorns"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "night_unicorns" in out.stderr and "cut_ins" in out.stderr  # names the valid ones
