"""Human labeling against a real Label Studio: push a batch with pre-labels, annotate through
Label Studio's REST API as a person's Submit does, pull back, QA; the simulated labeler; and
what happens when Label Studio is down, fails mid-pull, or holds bad coordinates."""

from __future__ import annotations

import http.server
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from longtail.curate.run import CurateConfig, run_curate, run_select
from longtail.curate.select import SelectConfig
from longtail.errors import LongtailError
from longtail.label import server
from longtail.label import studio as studio_module
from longtail.label.blur import privacy_summary
from longtail.label.server import LabelStudioError
from longtail.label.studio import (
    UnknownBatchError,
    batch_truth,
    labels_dir,
    oracle_annotate,
    project_tasks,
    pull_batch,
    push_batch,
    read_label_set,
    request,
    submit_annotation,
    to_studio_result,
)

DATASET = "longtail"


@pytest.fixture(scope="module")
def studio(fleet_subset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    """A data root curated from four drives of the test fleet (town and highway, day and night,
    ~1,000 frames: plenty for batches of up to 12), with its own Label Studio running."""
    root = fleet_subset(tmp_path_factory.mktemp("label") / "data", ("occped", "cutin", "q-town-night", "q-hw-truck"))
    run_curate(root, CurateConfig(dataset=DATASET, brain=False))
    conn = server.start(root)
    yield {"root": root, "conn": conn}
    server.stop(root)


def _batch(root: Path, budget: int, seed: int) -> str:
    return str(run_select(root, SelectConfig(budget=budget, selector="random", seed=seed))["batch_id"])


def _key(boxes: list[dict]) -> list[tuple]:
    return sorted((b["category"], np.float32(b["x1"]), np.float32(b["y1"]), np.float32(b["x2"]), np.float32(b["y2"]))
                  for b in boxes)


def _person_boxes(truth: list[dict]) -> list[dict]:
    """What a careful person submits: the objects, drawn to a tenth of a pixel (not on the pixel grid)."""
    return [dict(b, x1=b["x1"] + 0.3, y1=b["y1"] + 0.1, x2=b["x2"] - 0.2, y2=b["y2"] + 0.4, score=1.0) for b in truth]


def _prelabels_from(truth: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Pre-labels as a half-trained detector gives them: most objects, a few shifted, one missed, a ghost."""
    out = {}
    for k, (fid, boxes) in enumerate(sorted(truth.items())):
        pre = [dict(b, score=0.9) for b in boxes[1:]]                     # misses the first object
        if pre:
            shift = 0.1 * (pre[0]["x2"] - pre[0]["x1"])
            pre[0] = dict(pre[0], x1=pre[0]["x1"] + shift, x2=pre[0]["x2"] + shift, score=0.6)   # shifted
        if k % 2 == 0:
            pre.append({"category": "cyclist", "x1": 5.0, "y1": 5.0, "x2": 25.0, "y2": 45.0, "score": 0.4})  # ghost
        out[fid] = pre
    return out


def test_push_annotate_pull_round_trip_is_exact_and_checked(studio: dict) -> None:
    import fiftyone as fo

    root, conn = studio["root"], studio["conn"]
    batch_id = _batch(root, 6, seed=11)
    truth = _sizes_truth(root, batch_id)
    pre = _prelabels_from(truth)
    record = push_batch(root, batch_id, prelabels=pre, model="test-detector@1")
    assert len(record["tasks"]) == 6 and record["prelabels"] == sum(map(len, pre.values()))
    tasks = project_tasks(conn, record["project_id"])
    assert all(t["total_predictions"] == 1 for t in tasks)  # the pre-labels travel as predictions
    assert all(not t["is_labeled"] for t in tasks)
    _check_people_see_the_blurred_copies(root, conn, batch_id, record, tasks)

    submitted: dict[str, list[dict]] = {}
    for t in tasks:
        fid = record["tasks"][str(t["id"])]
        w, h = _size(root, fid)
        submitted[fid] = _person_boxes(truth[fid])
        submit_annotation(conn, t["id"], submitted[fid], w, h, lead_time_s=30)
    manifest = pull_batch(root, batch_id)

    label_manifest, table = read_label_set(root, batch_id)
    assert label_manifest == manifest and manifest["frames"] == 6 and manifest["source"] == "labelstudio"
    for row in table.to_pylist():
        assert _key(row["boxes"]) == _key(submitted[row["frame_id"]]), row["frame_id"]
        assert _key(row["prelabels"]) == _key(pre[row["frame_id"]])
        assert row["annotator"] == "labeler@longtail.local"
    # QA ran: confident pre-labels matched by the person's boxes, the ghosts were unconfident.
    qa = (labels_dir(root, batch_id) / "qa.json").read_text()
    assert '"checks"' in qa and manifest["qa"]["frames"] == 6
    assert manifest["accepted"] + manifest["held"] == 6
    # The work, counted from the pre-labels in the simulated labeler's units.
    cost = manifest["cost"]
    n_truth = sum(len(b) for b in truth.values())
    assert cost["added"] == sum(1 for b in truth.values() if b)   # the missed first object of each frame
    assert cost["deleted"] == sum(1 for p in pre.values() for b in p if b["category"] == "cyclist" and b["x1"] == 5.0)
    assert cost["boxes"] == n_truth
    # The dataset follows: accepted frames carry the labels as ground truth.
    ds = fo.load_dataset(DATASET)
    accepted = [r for r in table.to_pylist() if r["accepted"]]
    view = ds.select_by("frame_id", [r["frame_id"] for r in accepted])
    assert set(view.distinct("label_status")) == {"accepted"}
    assert sum(len(d.detections) for d in view.values("ground_truth")) == sum(len(r["boxes"]) for r in accepted)
    # Pulling again gives the same label set; its lineage says which version of the frames labelers saw.
    assert pull_batch(root, batch_id)["digest"] == manifest["digest"]
    assert manifest["lineage"]["shown"] == record["privacy"]


def _check_people_see_the_blurred_copies(root: Path, conn: server.Connection, batch_id: str, record: dict,
                                         tasks: list[dict]) -> None:
    """Label Studio serves the copies in DATA/labels/<batch>/shown/, byte for byte, not the frame store."""
    import json

    privacy = json.loads((labels_dir(root, batch_id) / "privacy.json").read_text())
    assert record["privacy"] == privacy_summary(privacy) and record["privacy"]["blurred"] is True
    assert record["privacy"]["detector"].startswith("opencv-haar-")
    for t in tasks:
        fid = record["tasks"][str(t["id"])]
        shown = labels_dir(root, batch_id) / privacy["per_frame"][fid]["shown"]
        url = t["data"]["image"]
        assert "shown" in url and "/frames/" not in url, url
        req = urllib.request.Request(conn.url + url, headers={"Authorization": f"Token {conn.api_key}"})
        with urllib.request.urlopen(req, timeout=30) as answer:
            assert answer.read() == shown.read_bytes()


def test_push_with_blurring_off_shows_the_frame_store_and_records_it(studio: dict) -> None:
    from longtail.privacy import PrivacyConfig

    root, conn = studio["root"], studio["conn"]
    batch_id = _batch(root, 2, seed=23)
    record = push_batch(root, batch_id, privacy=PrivacyConfig(blur=False))
    assert record["privacy"]["blurred"] is False and record["privacy"]["detector"] is None
    for t in project_tasks(conn, record["project_id"]):
        assert "/frames/" in t["data"]["image"] and "shown" not in t["data"]["image"]


def _size(root: Path, fid: str) -> tuple[int, int]:
    import fiftyone as fo

    s = fo.load_dataset(DATASET).select_by("frame_id", [fid]).first()
    return int(s.metadata.width), int(s.metadata.height)


def _sizes_truth(root: Path, batch_id: str) -> dict[str, list[dict]]:
    """The simulator's boxes for a batch, before it is pushed (batch_truth needs the push's sizes)."""
    import pyarrow.parquet as pq

    from longtail.catalog.truth import find_truth_files, load_truth
    from longtail.label.oracle import truth_boxes

    frames = pq.read_table(root / "batches" / batch_id / "frames.parquet").to_pandas()
    truth = load_truth(find_truth_files(root, sorted(set(frames.log_id))), frames)
    return {fid: [dict(b) for b in truth_boxes(t.objects, *_size(root, fid))] for fid, t in truth.items()}


def test_oracle_labels_a_simulated_batch_and_counts_the_work(studio: dict) -> None:
    root = studio["root"]
    plain = _batch(root, 5, seed=21)
    push_batch(root, plain)  # no model yet: no pre-labels
    truth = batch_truth(root, plain)
    cost = oracle_annotate(root, plain, truth)
    manifest = pull_batch(root, plain, source="oracle", cost=cost)
    _, table = read_label_set(root, plain)
    for row in table.to_pylist():
        assert _key(row["boxes"]) == _key(truth[row["frame_id"]])
    n = sum(map(len, truth.values()))
    assert manifest["cost"]["added"] == n and manifest["cost"]["accepted"] == 0 and manifest["accepted"] == 5
    assert manifest["source"] == "oracle" and manifest["cost"]["seconds"] > 0

    pre_batch = _batch(root, 5, seed=22)
    push_batch(root, pre_batch, prelabels=_prelabels_from(_sizes_truth(root, pre_batch)), model="test-detector@1")
    cost_pre = oracle_annotate(root, pre_batch, batch_truth(root, pre_batch))
    assert cost_pre.added < cost_pre.boxes and cost_pre.accepted > 0  # people correct rather than draw
    assert cost_pre.seconds / cost_pre.frames < cost.seconds / cost.frames
    assert pull_batch(root, pre_batch, source="oracle", cost=cost_pre)["frames"] == 5


def test_pull_refuses_unknown_unpushed_and_unfinished_batches(studio: dict) -> None:
    root, conn = studio["root"], studio["conn"]
    with pytest.raises(UnknownBatchError, match=r"batch-doesnotexist.*known batches"):
        pull_batch(root, "batch-doesnotexist")
    unpushed = _batch(root, 3, seed=31)
    with pytest.raises(UnknownBatchError, match="never pushed"):
        pull_batch(root, unpushed)
    record = push_batch(root, unpushed)
    first = project_tasks(conn, record["project_id"])[0]
    submit_annotation(conn, first["id"], [], *_size(root, record["tasks"][str(first["id"])]))
    with pytest.raises(LongtailError, match=r"2 of 3 task.*not finished"):
        pull_batch(root, unpushed)
    assert not (labels_dir(root, unpushed) / "manifest.json").exists()
    assert pull_batch(root, unpushed, partial=True)["frames"] == 1


class _FaultyProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to Label Studio, but answers 500 to the second page of the task listing: Label
    Studio failing in the middle of a pull (the test lists one task per page)."""

    upstream = ""

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0)) or None
        if self.command == "GET" and self.path.startswith("/api/tasks?") and "&page=2&" in self.path:
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"detail": "injected failure"}')
            return
        req = urllib.request.Request(self.upstream + self.path, data=body, method=self.command,
                                     headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, headers, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, headers, payload = exc.code, exc.headers, exc.read()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward  # noqa: N815  (http.server's names)

    def log_message(self, *args: object) -> None:
        pass


def test_a_failure_mid_pull_writes_nothing_and_the_pull_can_be_retried(studio: dict,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import fiftyone as fo

    root, conn = studio["root"], studio["conn"]
    batch_id = _batch(root, 3, seed=41)
    batch_frames = list(push_batch(root, batch_id)["tasks"].values())
    oracle_annotate(root, batch_id, batch_truth(root, batch_id))

    _FaultyProxy.upstream = conn.url
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setattr(studio_module, "PAGE_SIZE", 1)
    monkeypatch.setenv(server.URL_ENV, f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv(server.KEY_ENV, conn.api_key)
    try:
        with pytest.raises(LabelStudioError, match="answered 500"):
            pull_batch(root, batch_id)
    finally:
        proxy.shutdown()
    assert not labels_dir(root, batch_id).joinpath("manifest.json").exists()
    assert not labels_dir(root, batch_id).joinpath("labels.parquet").exists()
    assert fo.load_dataset(DATASET).select_by("frame_id", batch_frames).count("ground_truth.detections") == 0
    monkeypatch.delenv(server.URL_ENV)
    assert pull_batch(root, batch_id)["frames"] == 3  # the retry, straight to Label Studio


def test_invalid_coordinates_are_held_by_qa_until_fixed(studio: dict) -> None:
    root, conn = studio["root"], studio["conn"]
    batch_id = _batch(root, 2, seed=51)
    record = push_batch(root, batch_id)
    tasks = project_tasks(conn, record["project_id"])
    bad_task, good_task = tasks[0], tasks[1]
    w, h = _size(root, record["tasks"][str(bad_task["id"])])
    result = to_studio_result([{"category": "car", "x1": 10.0, "y1": 10.0, "x2": 60.0, "y2": 40.0}], w, h)
    result[0]["value"]["x"] = 130.0        # beyond the right edge (percent of the width)
    result[0]["value"]["width"] = -20.0    # and negative
    bad = request(conn, "POST", f"/api/tasks/{bad_task['id']}/annotations", {"result": result})
    submit_annotation(conn, good_task["id"], [], *_size(root, record["tasks"][str(good_task["id"])]))

    manifest = pull_batch(root, batch_id)
    assert manifest["held"] == 1 and manifest["accepted"] == 1
    _, table = read_label_set(root, batch_id)
    held = [r for r in table.to_pylist() if not r["accepted"]]
    assert held[0]["frame_id"] == record["tasks"][str(bad_task["id"])]
    assert any("degenerate" in r or "outside" in r or "image" in r for r in held[0]["qa_reasons"]), held[0]["qa_reasons"]

    # The labeler fixes the box in Label Studio (an update of the same annotation); the next pull accepts it.
    fixed = to_studio_result([{"category": "car", "x1": 10.0, "y1": 10.0, "x2": 60.0, "y2": 40.0}], w, h)
    request(conn, "PATCH", f"/api/annotations/{bad['id']}", {"result": fixed})
    again = pull_batch(root, batch_id)
    assert again["held"] == 0 and again["accepted"] == 2 and again["digest"] != manifest["digest"]


def test_a_stopped_label_studio_gives_a_clear_error(studio: dict, tmp_path: Path) -> None:
    with pytest.raises(LabelStudioError, match=r"no Label Studio is running.*longtail label serve"):
        server.connect(tmp_path)


def test_the_label_commands_from_serve_to_a_restored_dataset_version(studio: dict, tmp_path: Path) -> None:
    import hashlib
    import json
    import os
    import subprocess
    import sys

    root = studio["root"]

    def longtail(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "longtail", *args], capture_output=True, text=True,
                             env=dict(os.environ), timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    assert longtail("label", "serve", "--root", str(root)).startswith(studio["conn"].url)  # the running one
    assert longtail("label", "status", "--root", str(root)).strip() == studio["conn"].url
    batch_id = _batch(root, 8, seed=61)
    pushed = longtail("label", "push", batch_id, "--root", str(root), "--no-blur")
    assert "8 task(s), 0 pre-label(s)" in pushed and "frames people see: ORIGINALS: blurring was switched off" in pushed
    manifest = json.loads(longtail("label", "pull", batch_id, "--root", str(root), "--oracle", "--json"))
    assert manifest["source"] == "oracle" and manifest["frames"] == 8
    assert manifest["cost"]["added"] == manifest["cost"]["boxes"] > 0  # no pre-labels: every box drawn

    remote = tmp_path / "remote"
    version = json.loads(longtail("label", "version", "--root", str(root), "--remote", str(remote), "--json"))
    vid = version["version_id"]
    assert batch_id in version["lineage"]["batches"] and version["frames"] > 0
    # A fresh checkout of the data root's metadata: DVC's config and the version's record only.
    checkout = tmp_path / "checkout"
    (checkout / "datasets").mkdir(parents=True)
    shutil.copytree(root / ".dvc", checkout / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    shutil.copy(root / "datasets" / f"{vid}.dvc", checkout / "datasets" / f"{vid}.dvc")
    longtail("label", "restore", vid, "--root", str(checkout), "--remote", str(remote))
    original, restored = root / "datasets" / vid, checkout / "datasets" / vid

    def digests(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    assert digests(restored) == digests(original) and len(digests(original)) > 2


def test_push_pre_labels_with_the_newest_trained_model(studio: dict) -> None:
    import json
    import os
    import subprocess
    import sys

    import pyarrow.parquet as pq

    from longtail.label.prelabel import current_model
    from longtail.label.version import build_version
    from longtail.train.run import make_train_config, train

    root = studio["root"]
    seed_batch = _batch(root, 12, seed=71)
    push_batch(root, seed_batch)
    pull_batch(root, seed_batch, source="oracle", cost=oracle_annotate(root, seed_batch, batch_truth(root, seed_batch)))
    version = build_version(root)
    assert current_model(root) is None  # nothing trained yet: the first batches go without pre-labels
    train(root, version["version_id"], make_train_config("test", epochs=1, max_train_frames=8, batch_size=4,
                                                         threads=1), progress=False)
    assert current_model(root) == "models:/longtail-detector/1"

    batch_id = _batch(root, 4, seed=72)
    out = subprocess.run([sys.executable, "-m", "longtail", "label", "push", batch_id, "--root", str(root),
                          "--prelabel-threshold", "0.0"], capture_output=True, text=True, env=dict(os.environ),
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((labels_dir(root, batch_id) / "push.json").read_text())
    assert record["prelabel_model"].startswith("models:/longtail-detector/1 (run ")
    rows = pq.read_table(labels_dir(root, batch_id) / "prelabels.parquet").to_pylist()
    boxes = [b for r in rows for b in r["boxes"]]
    assert record["prelabels"] == len(boxes) > 0  # an untrained model still scores boxes above 0
    assert all(0.0 <= b["score"] <= 1.0 and b["category"] in ("car", "truck", "pedestrian", "cyclist") for b in boxes)
    tasks = project_tasks(studio["conn"], record["project_id"])
    assert all(t["total_predictions"] == 1 for t in tasks)

    # Once the registry has a champion, the pipeline's label task pre-labels every batch with it and
    # the label set counts what the same boxes would have cost drawn from nothing.
    from longtail.detector.registry import promote, tracking_uri_for
    from longtail.label.report import cost_table
    from longtail.label.run import run_label

    promote(tracking_uri_for(root), "1", lock_dir=root / "mlflow", expected_champion=None, reason="test")
    batch_id = _batch(root, 4, seed=73)
    run = run_label(root, batch_id, oracle=True, remote=str(root.parent / "remote-champion"))
    assert run.push["prelabel_model"].startswith("models:/longtail-detector/1 (run ")
    assert run.push["prelabels"] > 0
    assert run.label_set is not None and run.label_set["lineage"]["prelabel_model"] == run.push["prelabel_model"]
    scratch, cost = run.label_set["cost_without_prelabels"], run.label_set["cost"]
    assert scratch["added"] == scratch["boxes"] == cost["boxes"] and scratch["accepted"] == 0
    table = cost_table(run.label_set)
    assert list(table.columns)[-1] == "per frame without pre-labels"
