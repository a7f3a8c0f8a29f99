"""Several cameras end to end (issue 22): the simulator records a wide front camera beside the
front one; ingest indexes both and keeps every time step with all its cameras; curation makes a
grouped dataset (a group per time step, a slice per camera, front by default); selection,
labeling and a dataset version work on a chosen slice. Logs are written here with the real
writer, small (160x96 px, 5 fps) to stay fast."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mcap.reader import make_reader

from longtail.catalog.db import open_dataset, slices_view
from longtail.catalog.frames import load_frame_index, load_manifest
from longtail.catalog.truth import GroundTruthError, find_truth_files, load_truth
from longtail.config import NO_SCENARIO_RATES, IngestConfig, SimConfig
from longtail.errors import InputError
from longtail.ingest.ingest import ingest
from longtail.label.oracle import truth_boxes
from longtail.schemas import LABEL_SET_KEYS, LABEL_SET_SCHEMA
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan
from longtail.storage import sha256_file

CFG = SimConfig(minutes=20 / 60, width=160, height=96, fps=5.0, scenario_rates=NO_SCENARIO_RATES,
                cameras=("front", "wide"))
EVENTS = (("emergency_braking", 8.0, 12.0),)


@pytest.fixture(scope="module")
def two_cameras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 20-second highway drive with a hard stop, recorded with the front and a wide camera, ingested."""
    out = tmp_path_factory.mktemp("cameras")
    (out / "ground_truth").mkdir()
    plan = fixed_plan(CFG, 11, road="highway", events=EVENTS)
    log = out / "two.mcap"
    simulate_drive(plan, CFG, log, out / "ground_truth" / "two.parquet")
    root = out / "data"
    [result] = ingest([log], root, progress=False)
    assert result.status == "ingested", result.reasons + result.notes
    return {"log": log, "root": root}


def test_the_wide_camera_has_its_own_topics_and_calibration(two_cameras: dict[str, Path]) -> None:
    with open(two_cameras["log"], "rb") as fh:
        summary = make_reader(fh).get_summary()
    assert summary is not None and summary.statistics is not None
    counts = {ch.topic: summary.statistics.channel_message_counts[ch.id] for ch in summary.channels.values()}
    assert counts["/camera/front/image"] == counts["/camera/wide/image"] == 100  # 20 s at 5 fps
    assert counts["/camera/wide/calibration"] == counts["/camera/front/calibration"] > 0
    manifest = load_manifest(two_cameras["root"], sha256_file(two_cameras["log"]))
    assert manifest is not None and manifest["default_camera"] == "front"
    front, wide = manifest["cameras"]["front"]["calibration"], manifest["cameras"]["wide"]["calibration"]
    # fx = (width / 2) / tan(hfov / 2): 60 degrees for the car's front camera, 100 for the wide one.
    assert front["K"][0] == pytest.approx(80 / np.tan(np.radians(30)))
    assert wide["K"][0] == pytest.approx(80 / np.tan(np.radians(50)))


def test_both_cameras_are_indexed_and_a_time_step_keeps_all_its_cameras(two_cameras: dict[str, Path]) -> None:
    index = load_frame_index(two_cameras["root"])
    by_slice = {name: group.sort_values("time_step_ns") for name, group in index.groupby("camera_slice")}
    assert set(by_slice) == {"front", "wide"}
    front, wide = by_slice["front"], by_slice["wide"]
    assert set(front["camera"]) == {"/camera/front/image"} and set(wide["camera"]) == {"/camera/wide/image"}
    # The same time steps, each camera once per step; the front camera's frame time is the step.
    assert front["time_step_ns"].tolist() == wide["time_step_ns"].tolist()
    assert (front["time_step_ns"] == front["timestamp_ns"]).all()
    assert (wide["timestamp_ns"] == wide["time_step_ns"]).all()  # the simulator triggers both together
    # Keyframes at 2 Hz over 20 s, plus every frame of the hard stop's trigger window, for both cameras.
    assert front["keyframe"].sum() == wide["keyframe"].sum() == 40
    assert (~front["keyframe"]).sum() == (~wide["keyframe"]).sum() > 0
    assert front["triggers"].map(list).tolist() == wide["triggers"].map(list).tolist()
    assert any("hard_braking" in t for t in front["triggers"])
    assert front["frame_id"].nunique() + wide["frame_id"].nunique() == len(index)
    assert not set(front["image_sha256"]) & set(wide["image_sha256"])  # different pictures


def test_a_named_camera_topic_that_is_not_in_the_log_is_named(two_cameras: dict[str, Path], tmp_path: Path) -> None:
    cfg = IngestConfig(cameras={"front": "/camera/front/image", "rear": "/camera/rear/image"})
    [result] = ingest([two_cameras["log"]], tmp_path / "data", cfg, progress=False)
    assert result.status == "ingested"
    assert any("rear (/camera/rear/image)" in n and "not topics of this log" in n for n in result.notes), result.notes
    index = load_frame_index(tmp_path / "data")
    assert set(index["camera_slice"]) == {"front"}  # the wide camera was not named, so not taken
    cfg = IngestConfig(cameras={"rear": "/camera/rear/image"})
    [result] = ingest([two_cameras["log"]], tmp_path / "other", cfg, progress=False)
    assert any(n.startswith("no camera: camera(s) rear (/camera/rear/image)") for n in result.notes), result.notes


def _label_set(root: Path, batch_id: str, rows: list[dict]) -> None:
    """What a pull writes (labels.parquet, then the manifest), with the simulated labeler's boxes."""
    folder = root / "labels" / batch_id
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LABEL_SET_SCHEMA), folder / "labels.parquet")
    manifest = dict.fromkeys(LABEL_SET_KEYS, None)
    manifest.update(batch_id=batch_id, digest=sha256_file(folder / "labels.parquet"), source="oracle",
                    created_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC).isoformat(), frames=len(rows),
                    accepted=len(rows), held=0)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_grouped_dataset_then_select_label_and_version_a_chosen_slice(two_cameras: dict[str, Path]) -> None:
    from longtail.curate.run import CurateConfig, run_curate, run_select
    from longtail.curate.select import SelectConfig
    from longtail.label.version import VersionConfig, build_version

    root = two_cameras["root"]
    per_camera = load_frame_index(root)["camera_slice"].value_counts().to_dict()
    manifest = run_curate(root, CurateConfig(dataset="cameras-test", brain=False))
    assert manifest["slices"] == per_camera and manifest["default_slice"] == "front"
    assert per_camera["front"] == per_camera["wide"] > 40
    dataset = open_dataset(root, "cameras-test")
    assert dataset.media_type == "group" and dataset.default_group_slice == "front"
    # The App opens on the front camera; each group holds the front and the wide frame of one time step.
    assert set(dataset.values("camera")) == {"/camera/front/image"}
    group = dataset.get_group(dataset.first().group.id)
    assert {name: s.camera for name, s in group.items()} == {"front": "/camera/front/image",
                                                             "wide": "/camera/wide/image"}
    assert group["front"].timestamp_ns == group["wide"].timestamp_ns
    assert run_curate(root, CurateConfig(dataset="cameras-test", brain=False))["added"] == 0

    index = load_frame_index(root).set_index("frame_id")
    front = run_select(root, SelectConfig(budget=6, min_gap_s=0.0, quotas={}), "cameras-test")
    wide = run_select(root, SelectConfig(budget=4, min_gap_s=0.0, quotas={}, slices=("wide",)), "cameras-test")
    assert set(index.loc[front["frames"], "camera_slice"]) == {"front"}
    assert set(index.loc[wide["frames"], "camera_slice"]) == {"wide"}
    assert dataset.load_saved_view(wide["batch_id"]).values("frame_id") == wide["frames"]
    with pytest.raises(InputError, match=r"no slice\(s\) \['rear'\]; its cameras are \['front', 'wide'\]"):
        slices_view(dataset, ("rear",))

    # Labeling: the simulated labeler's boxes are the front camera's truth; another camera's
    # frames are refused, never given the front camera's boxes.
    batch = pq.read_table(root / "batches" / front["batch_id"] / "frames.parquet").to_pandas()
    batch["camera"] = index.loc[batch["frame_id"], "camera"].to_numpy()
    truth = load_truth(find_truth_files(root, set(batch["log_id"])), batch)
    wide_batch = pq.read_table(root / "batches" / wide["batch_id"] / "frames.parquet").to_pandas()
    wide_batch["camera"] = index.loc[wide_batch["frame_id"], "camera"].to_numpy()
    with pytest.raises(GroundTruthError, match="another camera than the simulator's front one"):
        load_truth(find_truth_files(root, set(wide_batch["log_id"])), wide_batch)
    rows = [{**{k: r[k] for k in ("frame_id", "image_sha256", "store_path", "log_id", "drive_id", "timestamp_ns")},
             "width": 160, "height": 96, "prelabels": [], "accepted": True, "qa_reasons": [], "annotator": "oracle",
             "boxes": [dict(b) for b in truth_boxes(truth[r["frame_id"]].objects, 160, 96)]}
            for r in batch.to_dict("records")]
    _label_set(root, front["batch_id"], rows)
    version = build_version(root, config=VersionConfig(val_share=0.0, test_share=0.0))
    labels = pq.read_table(root / "datasets" / version["version_id"] / "labels.parquet").to_pandas()
    assert sorted(labels["frame_id"]) == sorted(front["frames"])
    assert set(index.loc[labels["frame_id"], "camera_slice"]) == {"front"}
    assert sum(len(b) for b in labels["boxes"]) == sum(len(r["boxes"]) for r in rows) > 0


def test_frames_of_another_camera_join_the_nearest_time_step_once() -> None:
    from longtail.ingest.roles import camera_name, match_time_steps

    ms = 1_000_000
    steps = np.array([0, 100, 200, 300]) * ms
    # A 15 Hz camera, out of phase: 0 -> 10 (10 ms), 100 -> 77 (23 ms, 143 is 43 ms away),
    # 200 -> 210, 300 -> 277; 143 is nobody's nearest; a tolerance of 20 ms drops 77 and 277.
    times = np.array([10, 77, 143, 210, 277]) * ms
    assert match_time_steps(steps, times, 50 * ms) == {10 * ms: 0, 77 * ms: 100 * ms, 210 * ms: 200 * ms,
                                                      277 * ms: 300 * ms}
    assert match_time_steps(steps, times, 20 * ms) == {10 * ms: 0, 210 * ms: 200 * ms}
    # A 5 Hz camera: frame 100 is nearest to steps 100 (0 ms); it is not also step 200's frame (100 ms).
    assert match_time_steps(steps, np.array([100, 300]) * ms, 100 * ms) == {100 * ms: 100 * ms, 300 * ms: 300 * ms}
    assert match_time_steps(steps, np.array([], np.int64), 50 * ms) == {}
    assert camera_name("/camera/front/image") == "front"
    assert camera_name("/CAM_FRONT_LEFT/image/compressed") == "front_left"
    assert camera_name("/cam3/image/compressed") == "cam3"
    assert camera_name("/image_raw/compressed") == ""


def test_a_plain_dataset_becomes_grouped_when_a_second_camera_arrives(two_cameras: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    from longtail.curate.run import CurateConfig, run_curate

    root = tmp_path / "data"
    ingest([two_cameras["log"]], root, IngestConfig(image_topic="/camera/front/image"), progress=False)
    run_curate(root, CurateConfig(dataset="cameras-convert", brain=False))
    dataset = open_dataset(root, "cameras-convert")
    assert dataset.media_type == "image"  # one camera: a plain dataset, as before several cameras
    before = sorted(dataset.values("frame_id"))
    ingest([two_cameras["log"]], root, progress=False)  # the same log with every camera
    manifest = run_curate(root, CurateConfig(dataset="cameras-convert", brain=False))
    dataset = open_dataset(root, "cameras-convert")
    assert dataset.media_type == "group" and manifest["added"] == len(before)  # the wide frames
    assert sorted(dataset.values("frame_id")) == before  # the front frames are the default slice
    for group in dataset.iter_groups():
        assert set(group) == {"front", "wide"} and group["front"].timestamp_ns == group["wide"].timestamp_ns
