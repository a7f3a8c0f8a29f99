"""The deploy stage: exports that answer as PyTorch does, a record written last, idempotent redeploys, a
refusal on failed parity or without a champion, and `mlflow models serve` answering JPEG frames."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from deploy_helpers import THRESHOLDS, register_champion, write_evaluation, write_version
from PIL import Image

from longtail.catalog.deployments import (
    DEPLOYMENT_FIELDS,
    list_deployments,
    load_deployment,
    verify_files,
)
from longtail.catalog.versions import load_version
from longtail.cli import main
from longtail.deploy.parity import ParityError
from longtail.deploy.run import DEPLOYMENT_TAG, DeployConfig, deploy_task, run_deploy
from longtail.detector.export import compare_detections, frame_tensor, load_deployed_detector
from longtail.detector.model import mlflow_client
from longtail.detector.predict import predict
from longtail.detector.registry import REGISTERED_MODEL
from longtail.errors import InputError

PARITY_FRAMES = 6


def _box(category: str, x1: float, score: float) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": 10.0, "x2": x1 + 20.0, "y2": 40.0, "score": score}


def _pytorch(model: Any, frame: np.ndarray) -> list[dict[str, Any]]:
    """PyTorch's boxes at the per-class operating thresholds."""
    return [b for b in predict(model, [frame_tensor(frame)])[0] if b["score"] >= THRESHOLDS[b["category"]]]


def test_compare_detections_worked_by_hand() -> None:
    reference = [[_box("car", 10.0, 0.9), _box("pedestrian", 50.0, 0.6), _box("car", 100.0, 0.3005)]]
    # Same objects, listed in another order; one box 0.2 px off, one score 4e-4 off; the car at 0.3005 sits
    # within 1e-3 of its threshold (0.3) and is missing: excused, it could fall either side of the cut.
    close = [[_box("pedestrian", 50.0, 0.6004), _box("car", 10.2, 0.9)]]
    out = compare_detections(reference, close, {"car": 0.3, "pedestrian": 0.25})
    assert out["max_box_diff"] == pytest.approx(0.2) and out["max_score_diff"] == pytest.approx(4e-4)
    assert (out["missed"], out["detections"], out["passed"]) == (0, 3, True)
    assert out["count_differences"] == 1  # 3 above threshold in the reference, 2 in the candidate
    # The pedestrian 0.6 px off fails the 0.5 px tolerance; a car clearly above threshold with no counterpart
    # is a miss, even when every matched box agrees.
    assert not compare_detections(reference, [[_box("pedestrian", 50.6, 0.6), _box("car", 10.0, 0.9)]],
                                  {"car": 0.3, "pedestrian": 0.25})["passed"]
    missing = compare_detections([[_box("car", 10.0, 0.9), _box("car", 60.0, 0.8)]], [[_box("car", 10.0, 0.9)]],
                                 {"car": 0.3})
    assert (missing["missed"], missing["max_box_diff"], missing["passed"]) == (1, 0.0, False)
    # ... unless the frame reached the detector's top-k: its lowest box may fall either side of that cut.
    assert compare_detections([[_box("car", 10.0, 0.9), _box("car", 60.0, 0.8)]], [[_box("car", 10.0, 0.9)]],
                              {"car": 0.3}, max_detections=2)["passed"]
    # Another class at the same place is not a match.
    assert not compare_detections([[_box("car", 10.0, 0.9)]], [[_box("truck", 10.0, 0.9)]], {})["passed"]
    with pytest.raises(InputError, match="1 reference frame"):
        compare_detections(reference, [], {})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("deploy") / "data"
    folder, manifest = write_version(root)
    version, model, meta = register_champion(root, manifest)
    evaluation = write_evaluation(root, folder, version, meta["run_id"])
    out = run_deploy(root, DeployConfig(parity_frames=PARITY_FRAMES))
    frames, _ = load_version(root, manifest["version_id"])
    images = [np.asarray(Image.open(folder / p).convert("RGB")) for p in frames["image_path"]]
    return {"root": root, "out": out, "record": out["record"], "model": model, "meta": meta, "version": version,
            "manifest": manifest, "evaluation": evaluation, "images": images,
            "jpegs": [(folder / p).read_bytes() for p in frames["image_path"]]}


def _copy_root(deployed: dict[str, Any], dst: Path) -> Path:
    """The data root without its deployments (MLflow's artifacts stay where the copied database says)."""
    shutil.copytree(deployed["root"], dst, ignore=shutil.ignore_patterns("deployments"))
    return dst


def test_the_deployment_holds_checked_exports_thresholds_card_and_record(deployed: dict[str, Any]) -> None:
    record, root = deployed["record"], deployed["root"]
    assert deployed["out"]["created"] and set(DEPLOYMENT_FIELDS) <= set(record)
    assert record["model"]["uri"] == f"models:/{REGISTERED_MODEL}/{deployed['version']}"
    assert record["model"]["dataset_version"] == deployed["manifest"]["version_id"]
    assert record["thresholds"] == THRESHOLDS and "model.json" in record["thresholds_source"]
    folder = Path(record["path"])
    assert folder == root / "deployments" / record["deployment_id"]
    for name in ("model.ts", "model.onnx", "thresholds.json", "export.json", "model_card.md", "pyfunc/MLmodel",
                 "pyfunc/artifacts/model.onnx", "parity.json"):
        assert name in record["files"], name
    verify_files(folder, record)  # every digest matches the bytes
    # Parity on the version's test frames: 4 + 4 test frames of 16, 6 of them sampled.
    parity = record["parity"]
    assert parity["passed"] and parity["frames"] == PARITY_FRAMES
    assert parity["frames_description"] == f"6 of 8 test frames of {deployed['manifest']['version_id']}"
    for backend in ("torchscript", "onnx"):
        assert parity["backends"][backend]["max_box_diff"] <= 0.5 and parity["backends"][backend]["unmatched"] == 0
    # The record is the last file written.
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    assert max(stamps, key=stamps.__getitem__).name == "deployment.json"
    # Model card: lineage, targets with intervals, the exports' parity.
    card = (folder / "model_card.md").read_text()
    for shown in (deployed["manifest"]["version_id"], deployed["manifest"]["digest"], "`b-test`", "## Intended use",
                  "## Known failure modes", "| car AP@0.5 | 0.850 | 1.000 | [1.000, 1.000] | met |", str(deployed["evaluation"]),
                  "| torchscript |", "| onnx |"):
        assert shown in card, shown
    # Found again through the catalog, as the fleet test and the monitor find it; tagged on the model version.
    assert load_deployment(root) == record == load_deployment(root, record["deployment_id"])
    assert (root / "deployments" / "current").resolve() == folder.resolve()
    assert [(r["deployment_id"], r["current"]) for r in list_deployments(root)] == [(record["deployment_id"], True)]
    tags = mlflow_client(record["tracking_uri"]).get_model_version(REGISTERED_MODEL, deployed["version"]).tags
    assert tags[DEPLOYMENT_TAG] == record["deployment_id"]
    with pytest.raises(InputError, match="invalid deployment id 'd-123'"):
        load_deployment(root, "d-123")


def test_other_stages_get_the_pytorch_boxes_from_either_export(deployed: dict[str, Any]) -> None:
    model, images = deployed["model"], deployed["images"]
    resized = np.asarray(Image.fromarray(images[0]).resize((200, 120)))  # a frame size the version does not have
    frames = [*images[:4], resized]
    expected = [_pytorch(model, f) for f in frames]
    for backend in ("torchscript", "onnx"):
        # By id through current.json, and by the folder the `current` link resolves to (as fleet-test takes it).
        assert load_deployed_detector(deployed["root"] / "deployments" / "current", backend).thresholds == THRESHOLDS
        detector = load_deployed_detector("current", backend, root=deployed["root"])  # type: ignore[arg-type]
        found = detector.predict(frames)
        assert [len(f) for f in found] == [len(e) for e in expected] and sum(map(len, expected)) > 0
        assert all(b["score"] >= THRESHOLDS[b["category"]] for f in found for b in f)
        result = compare_detections(expected, found, THRESHOLDS)
        assert result["passed"] and result["max_box_diff"] < 1e-3, (backend, result)


def test_the_fleet_test_drives_with_the_current_deployment(deployed: dict[str, Any]) -> None:
    from longtail.sim.fleet_test import load_perception

    perceive, described = load_perception(deployed["root"] / "deployments" / "current")
    assert described.startswith("deployment ")
    frames = deployed["images"][:2]
    assert perceive(frames) == load_deployed_detector(deployed["record"]["path"]).predict(frames)


def test_a_modified_export_is_refused(deployed: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "d-copy"
    shutil.copytree(deployed["record"]["path"], copy)
    (copy / "thresholds.json").write_text(json.dumps({"thresholds": {"pedestrian": 0.99}}))
    with pytest.raises(InputError, match=r"thresholds.json: sha256 .* differs from the record"):
        load_deployed_detector(copy, "onnx")


def test_deploying_the_same_champion_again_does_nothing(deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    root = deployed["root"]
    files = [p for p in (root / "deployments").rglob("*") if p.is_file()]
    stamps = [p.stat().st_mtime_ns for p in files]
    again = run_deploy(root, DeployConfig(parity_frames=PARITY_FRAMES))
    assert not again["created"] and not again["current_moved"]
    assert again["record"] == deployed["record"]
    assert main(["deploy", "--root", str(root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["created"] is False and printed["deployment_id"] == deployed["record"]["deployment_id"]
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert sorted(p.name for p in (root / "deployments").iterdir()) == sorted([deployed["record"]["deployment_id"],
                                                                                "current", "current.json"])


def test_a_crash_midway_leaves_no_record_that_looks_whole(deployed: dict[str, Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import longtail.deploy.pyfunc

    root = _copy_root(deployed, tmp_path / "data")

    def power_cut(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("power cut while writing the MLflow model")

    with monkeypatch.context() as patch:
        patch.setattr(longtail.deploy.pyfunc, "save_pyfunc", power_cut)
        with pytest.raises(KeyboardInterrupt):
            run_deploy(root, DeployConfig(parity_frames=2))
    assert list((root / "deployments").iterdir()) == []  # no folder under the final name, no leftovers, no pointer
    with pytest.raises(InputError, match="nothing is deployed"):
        load_deployment(root)
    assert list_deployments(root) == []
    # The next deploy completes, under the same content-addressed id.
    done = run_deploy(root, DeployConfig(parity_frames=2))
    assert done["created"] and done["record"]["deployment_id"] == deployed["record"]["deployment_id"]
    assert load_deployment(root)["deployment_id"] == done["record"]["deployment_id"]
    # A folder under a deployment's name without its record is never taken for a deployment.
    (Path(done["record"]["path"]) / "deployment.json").unlink()
    with pytest.raises(InputError, match="incomplete deployment"):
        load_deployment(root)
    with pytest.raises(InputError, match="incomplete deployment"):
        run_deploy(root, DeployConfig(parity_frames=2))


def test_an_export_outside_the_tolerance_is_not_deployed(deployed: dict[str, Any], tmp_path: Path) -> None:
    root = _copy_root(deployed, tmp_path / "data")
    # onnxruntime's boxes differ from PyTorch's by ~1e-5 px: a tolerance far below that must refuse them.
    with pytest.raises(ParityError, match=r"onnx: boxes differ by up to .* px \(tolerance 1e-09\).*Nothing was deployed"):
        run_deploy(root, DeployConfig(parity_frames=2, box_tolerance_px=1e-9, score_tolerance=1e-12))
    assert list((root / "deployments").iterdir()) == []


def test_without_a_champion_deploy_says_how_to_get_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    with pytest.raises(InputError, match=r"has no champion, so there is nothing to deploy.*longtail promote"):
        run_deploy(root)
    assert not (root / "mlflow").exists()  # looking made no MLflow store
    # A registry with versions but no champion alias.
    _, manifest = write_version(root)
    register_champion(root, manifest)
    client = mlflow_client(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    client.delete_registered_model_alias(REGISTERED_MODEL, "champion")
    assert main(["deploy", "--root", str(root)]) == 2
    assert "has no champion" in capsys.readouterr().err
    assert not (root / "deployments" / "current.json").exists()
    # The pipeline's task records that nothing is deployed, and why, instead of failing the run.
    out = deploy_task(root)
    assert out["record"] is None and "has no champion" in out["reason"]
    assert json.loads((root / "deployments" / "current.json").read_text())["deployment_id"] is None
    with pytest.raises(InputError, match="names no deployment; nothing is deployed"):
        load_deployment(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_mlflow_models_serve_answers_jpeg_frames_with_the_pytorch_boxes(deployed: dict[str, Any]) -> None:
    import longtail

    bin_dir = Path(sys.executable).parent
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # the server starts uvicorn from PATH
           "PYTHONPATH": str(Path(longtail.__file__).parents[1])}
    model_dir = Path(deployed["record"]["path"]) / deployed["record"]["pyfunc"]
    server = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager",
                               "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 180 s"
            time.sleep(0.5)
        jpegs = deployed["jpegs"][2:5]  # 160x96 and 320x192 frames
        body = {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(j).decode()] for j in jpegs]}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as reply:
            answer = json.loads(reply.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    frames = [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs]
    expected = [_pytorch(deployed["model"], f) for f in frames]
    assert [len(a) for a in answer] == [len(e) for e in expected] and sum(map(len, expected)) > 0
    result = compare_detections(expected, answer, THRESHOLDS)
    assert result["passed"] and result["max_box_diff"] < 1e-3, result
