"""The pipeline's fleet-test task: the current deployment drives the test fleet beside truth, and the
report for product managers opens offline in Chromium with the deployment's rates and intervals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from deploy_helpers import register_champion, write_evaluation, write_version

from longtail.catalog.deployments import load_deployment
from longtail.deploy.run import DeployConfig, run_deploy
from longtail.logs import iter_messages
from longtail.sim.fleet_task import DEPLOYED_ARM, run_fleet_test_task
from longtail.sim.fleet_test import REFERENCE_ARM, FleetTestConfig

TINY = FleetTestConfig(minutes=0.15, max_drives=2, width=160, height=96, n_boot=200)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fleet-task") / "data"
    folder, manifest = write_version(root, frames=8)
    version, _, meta = register_champion(root, manifest)
    write_evaluation(root, folder, version, meta["run_id"])
    run_deploy(root, DeployConfig(parity_frames=2))
    return root


def test_the_deployment_drives_beside_truth_and_the_report_says_so(root: Path, tmp_path: Path,
                                                                   chromium: Any) -> None:
    record = load_deployment(root)
    out, report = tmp_path / "fleet_test", tmp_path / "fleet_test.html"
    results = run_fleet_test_task(root, TINY, out, report, progress=False)
    assert list(results["arms"]) == [REFERENCE_ARM, DEPLOYED_ARM]
    assert results["deployment"]["deployment_id"] == record["deployment_id"]
    assert json.loads((out / "fleet_test.json").read_text())["deployment"] == results["deployment"]
    # the model's boxes are in its drive logs, on their own topic, beside the camera
    logs = sorted((out / DEPLOYED_ARM).glob("*.mcap"))
    assert len(logs) == 2
    topics = {m.topic for m in iter_messages(logs[0])}
    assert "/camera/front/detections" in topics and "/camera/front/image" in topics
    assert not any("detections" in m.topic for m in iter_messages(sorted((out / REFERENCE_ARM).glob("*.mcap"))[0]))
    # every rate of both arms, and the paired difference of the deployment, carry an interval
    rows = [r for r in results["rates"] if r["scenario"] == "all"]
    assert {r["arm"] for r in rows} == {REFERENCE_ARM, DEPLOYED_ARM}
    assert all(r["ci_low"] <= r["per_100km"] <= r["ci_high"] for r in rows)
    assert {p["arm"] for p in results["paired"]} == {DEPLOYED_ARM}
    # the page: offline, one figure drawn, the deployment and the definitions on it
    text = report.read_text()
    assert "<script src=" not in text and record["deployment_id"] in text
    page = chromium.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"network: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .trace').length >= 2", timeout=30_000)
    body = page.inner_text("body")
    for shown in ("phantom_braking", "missed_hazard", "disengagement", "per 100 km", "vs truth", "Shadow mode"):
        assert shown in body, shown
    assert problems == []
    page.close()


def test_before_any_deployment_truth_drives_alone_and_the_report_says_why(root: Path, tmp_path: Path) -> None:
    bare = tmp_path / "data"
    shutil.copytree(root, bare, ignore=shutil.ignore_patterns("deployments"))
    results = run_fleet_test_task(bare, TINY.model_copy(update={"max_drives": 1}), tmp_path / "out",
                                  tmp_path / "report.html", progress=False)
    assert list(results["arms"]) == [REFERENCE_ARM] and results["deployment"] is None
    assert "Nothing is deployed yet" in (tmp_path / "report.html").read_text()
