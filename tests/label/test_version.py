"""Dataset versions on small real inputs: JPEG frames in a frame store, labeling batches and label sets
written with pyarrow (manifest last), split by drive log, content-addressed, tracked and restored with DVC."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pydantic import ValidationError

from longtail.catalog.versions import SPLITS, list_versions, load_version
from longtail.errors import ConfigError, InputError, SchemaError
from longtail.ingest.store import FrameStore
from longtail.label.version import (
    DVC_CACHE_TYPE,
    VersionConfig,
    assign_split,
    build_version,
    compute_split_position,
    is_long_tail,
    restore_version,
    track_version,
)
from longtail.schemas import LABEL_SET_KEYS, LABEL_SET_SCHEMA, LABELING_BATCH_FRAMES_SCHEMA, LABELING_BATCH_KEYS

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

# DVC 3.67 reads pygtrie's deprecated _NoneStep.value; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Fleet:
    """A data root with a frame store of real JPEGs, labeling batches and label sets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.frames: dict[str, dict[str, Any]] = {}
        self.logs: list[str] = []

    def add_log(self, log_id: str, n: int = 3, drive_id: str | None = None, t0: int = 0) -> list[str]:
        """``n`` frames of one drive log: frame 0 has a trigger, frame 1 a failure mode, the rest neither.

        The drive is ``<log_id>-drive`` unless ``drive_id`` names it (a drive recorded as several
        files); ``t0`` (ns) shifts the frames' times."""
        ids = []
        for i in range(n):
            frame_id = f"{log_id}-f{i}"
            seed = int(hashlib.sha256(frame_id.encode()).hexdigest()[:6], 16)
            image = Image.new("RGB", (32, 24), ((seed >> 16) & 255, (seed >> 8) & 255, seed & 255))
            image.paste((255 - (seed & 255), 0, 0), (i * 4, 2, i * 4 + 6, 10))
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=90)
            sha = hashlib.sha256(buf.getvalue()).hexdigest()
            rel = f"frames/{sha[:2]}/{sha}.jpg"
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_bytes(buf.getvalue())
            self.frames[frame_id] = {
                "frame_id": frame_id, "image_sha256": sha, "store_path": rel, "log_id": log_id,
                "drive_id": drive_id or f"{log_id}-drive",
                "timestamp_ns": 1_700_000_000_000_000_000 + t0 + i * 100_000_000,
                "triggers": ["hard_brake"] if i == 0 else [], "fm_name": "night_vru" if i == 1 else "",
                "tags": ["night"] if i == 1 else [],
            }
            ids.append(frame_id)
        return ids

    def write_batch(self, batch_id: str, frame_ids: list[str]) -> None:
        folder = self.root / "batches" / batch_id
        folder.mkdir(parents=True)
        rows = [{**{k: self.frames[f][k] for k in ("frame_id", "image_sha256", "store_path", "log_id", "drive_id",
                                                   "timestamp_ns", "fm_name", "tags", "triggers")},
                 "rank": r, "score": 1.0 - r / 100, "priority": 0.5, "uncertainty": 0.0, "fm_similarity": 0.0,
                 "diversity": 0.5, "quota": "", "reason": "test"} for r, f in enumerate(frame_ids)]
        pq.write_table(pa.Table.from_pylist(rows, schema=LABELING_BATCH_FRAMES_SCHEMA), folder / "frames.parquet")
        manifest = dict.fromkeys(LABELING_BATCH_KEYS, None)
        manifest.update(batch_id=batch_id, digest=_sha(folder / "frames.parquet"), budget=len(frame_ids),
                        frames=frame_ids, frames_file="frames.parquet", created_at=T0.isoformat())
        (folder / "manifest.json").write_text(json.dumps(manifest))

    def label_rows(self, frame_ids: list[str], held: frozenset[str] = frozenset(), shift: float = 0.0
                   ) -> list[dict[str, Any]]:
        rows = []
        for k, f in enumerate(frame_ids):
            fr = self.frames[f]
            box = {"category": ("car", "pedestrian", "truck")[k % 3], "x1": 2.0 + shift, "y1": 3.0, "x2": 20.5,
                   "y2": 15.0, "score": 1.0}
            rows.append({k2: fr[k2] for k2 in ("frame_id", "image_sha256", "store_path", "log_id", "drive_id",
                                                "timestamp_ns")}
                        | {"width": 32, "height": 24, "boxes": [box] if k % 4 else [box, {**box, "category": "cyclist"}],
                           "prelabels": [], "accepted": f not in held,
                           "qa_reasons": ["box_too_small"] if f in held else [], "annotator": "oracle"})
        return rows

    def write_label_set(self, batch_id: str, rows: list[dict[str, Any]], created_at: dt.datetime,
                        schema: pa.Schema = LABEL_SET_SCHEMA) -> Path:
        folder = self.root / "labels" / batch_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").unlink(missing_ok=True)
        table = pa.Table.from_pylist(rows, schema=LABEL_SET_SCHEMA).select(schema.names)
        pq.write_table(table, folder / "labels.parquet")
        accepted = sum(r["accepted"] for r in rows)
        manifest = dict.fromkeys(LABEL_SET_KEYS, None)
        manifest.update(batch_id=batch_id, digest=_sha(folder / "labels.parquet"), created_at=created_at.isoformat(),
                        source="oracle", frames=len(rows), accepted=accepted, held=len(rows) - accepted)
        (folder / "manifest.json").write_text(json.dumps(manifest))  # last
        return folder


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """Ten drive logs of ten drives, three frames each (profiles from tags: no ingest manifests), which
    the stratified split sends 6 to train, 2 to val, 2 to test.

    b1 labels logs 0-5, b2 logs 4-9; logs 4 and 5 are labeled in both. In b2, frame 4-f0 gets other
    boxes, 5-f2 is held (accepted in b1) and 5-f0 accepted (held in b1); b1 also holds 1-f2.
    """
    f = Fleet(tmp_path / "data")
    f.logs = [f"drive-{k:03d}" for k in range(10)]
    ids = {log: f.add_log(log) for log in f.logs}
    b1 = [x for log in f.logs[:6] for x in ids[log]]
    b2 = [x for log in f.logs[4:] for x in ids[log]]
    f.write_batch("b1", b1)
    f.write_batch("b2", b2)
    L = f.logs
    f.write_label_set("b1", f.label_rows(b1, held={f"{L[1]}-f2", f"{L[5]}-f0"}), T0)
    rows2 = f.label_rows(b2, held={f"{L[5]}-f2"})
    rows2[0]["boxes"] = [{"category": "truck", "x1": 1.0, "y1": 1.0, "x2": 31.0, "y2": 23.0, "score": 1.0}]
    f.write_label_set("b2", rows2, T0 + dt.timedelta(hours=1))
    return f


def _files(folder: Path) -> dict[str, tuple[str, int, float]]:
    return {str(p.relative_to(folder)): (_sha(p), p.stat().st_ino, p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _group(split: str) -> str:
    return "test" if split.startswith("test") else split


# ---------------------------------------------------------------------------------------------
# Pure functions


def test_split_position_by_hand() -> None:
    # sha256("longtail-split-v1\nlog-a"), first 8 bytes big-endian over 2**64, computed independently here.
    digest = hashlib.sha256(b"longtail-split-v1\nlog-a").hexdigest()
    expected = int(digest[:16], 16) / 2**64
    assert compute_split_position("log-a", "longtail-split-v1") == expected
    cfg = VersionConfig()
    assert assign_split("log-a", cfg) == ("test" if expected < 0.2 else "val" if expected < 0.4 else "train")


def test_split_shares_and_edges() -> None:
    cfg = VersionConfig(val_share=0.25, test_share=0.15)
    splits = [assign_split(f"log-{i}", cfg) for i in range(4000)]
    assert abs(splits.count("test") / 4000 - 0.15) < 0.03
    assert abs(splits.count("val") / 4000 - 0.25) < 0.03
    assert {assign_split(f"log-{i}", VersionConfig(test_share=0.0)) for i in range(200)} <= {"train", "val"}
    other_salt = VersionConfig(split_salt="another")
    assert [assign_split(f"log-{i}", other_salt) for i in range(200)] != splits[:200]


def test_long_tail_rules() -> None:
    assert is_long_tail(["hard_brake"], "", "trigger_or_failure_mode")
    assert is_long_tail([], "night_vru", "trigger_or_failure_mode")
    assert not is_long_tail([], "", "trigger_or_failure_mode")
    assert is_long_tail(["aeb"], "", "trigger") and not is_long_tail([], "night_vru", "trigger")
    assert is_long_tail([], "night_vru", "failure_mode") and not is_long_tail(["aeb"], "", "failure_mode")
    with pytest.raises(ConfigError, match=r"long_tail='most'.*trigger_or_failure_mode"):
        is_long_tail([], "", "most")


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="val_share \\+ test_share must stay under 1"):
        VersionConfig(val_share=0.5, test_share=0.5)
    with pytest.raises(ValidationError, match="trigger_or_failure_mode"):
        VersionConfig(long_tail="rare")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        VersionConfig(test_share=-0.1)


# ---------------------------------------------------------------------------------------------
# Building versions


def test_version_splits_by_log_and_keeps_accepted_frames(fleet: Fleet) -> None:
    manifest = build_version(fleet.root)
    labels, loaded = load_version(fleet.root, manifest["version_id"], check_images=True)
    assert loaded == manifest
    L = fleet.logs
    # Accepted frames only, the later label set (b2) deciding frames of logs 4 and 5.
    expected = {f for f in fleet.frames} - {f"{L[1]}-f2", f"{L[5]}-f2"}
    assert set(labels["frame_id"]) == expected
    assert manifest["frames"] == len(expected) == 28 and manifest["frames_held"] == 2
    relabeled = labels.set_index("frame_id").loc[f"{L[4]}-f0"]
    assert relabeled["batch_id"] == "b2" and [b["category"] for b in relabeled["boxes"]] == ["truck"]
    assert labels.set_index("frame_id").loc[f"{L[5]}-f0", "batch_id"] == "b2"  # held in b1, accepted in b2
    assert manifest["duplicates"]["overridden"][f"{L[4]}-f1"] == {"kept": "b2", "dropped": ["b1"]}
    assert len(manifest["duplicates"]["overridden"]) == 6 and "latest" in manifest["duplicates"]["policy"]
    # Split by drive: each drive in one split, the one the manifest and the record name.
    per_drive = labels.groupby("drive_id")["split"].agg(lambda s: sorted({_group(x) for x in s}))
    assert all(len(v) == 1 for v in per_drive)
    drives = manifest["split"]["drives"]
    assert {d: v[0] for d, v in per_drive.items()} == drives
    assert sorted(Counter(drives.values()).items()) == [("test", 2), ("train", 6), ("val", 2)]
    assert json.loads((fleet.root / "datasets" / "splits.json").read_text())["drives"] == drives
    assert manifest["split"]["method"] == "stratified_drive/1" and manifest["split"]["unit"] == "drive_id"
    # Profiles from tags: drives 1 and 5 kept two frames, one tagged night, so they are night drives
    # (night on at least half the frames); the other eight are day. Night's two drives: train first,
    # then the val/test tie the hash breaks; day's eight: one in each split first, then by shortfall.
    assert manifest["split"]["coverage"] == {"day/clear": {"train": 5, "val": 2, "test": 1},
                                             "night/clear": {"train": 1, "val": 0, "test": 1}}
    assert {p["source"] for p in manifest["split"]["profiles"].values()} == {"tags"}
    # Test drives: long-tail frames (trigger or failure mode) in test_longtail, the rest in test_common.
    test = labels[labels["split"].str.startswith("test")]
    assert set(test["drive_id"]) == {d for d, s in drives.items() if s == "test"}
    for row in test.itertuples():
        assert row.split == ("test_longtail" if row.frame_id.endswith(("-f0", "-f1")) else "test_common")
    assert (labels["long_tail"] == labels["frame_id"].str.endswith(("-f0", "-f1"))).all()
    # Counts and lineage.
    assert manifest["counts"] == {s: int((labels["split"] == s).sum()) for s in SPLITS}
    boxes = {s: {c: 0 for c in ("car", "truck", "pedestrian", "cyclist")} for s in SPLITS}
    for row in labels.itertuples():
        for b in row.boxes:
            boxes[row.split][b["category"]] += 1
    assert manifest["categories"] == boxes
    assert manifest["batches"] == ["b1", "b2"]
    assert [s["batch_id"] for s in manifest["label_sets"]] == ["b1", "b2"]
    assert manifest["label_sets"][0]["digest"] == _sha(fleet.root / "labels/b1/labels.parquet")
    assert manifest["lineage"]["batches"]["b2"] == json.loads((fleet.root / "batches/b2/manifest.json").read_text())["digest"]
    assert manifest["lineage"]["drive_logs"] == sorted(L)
    assert set(manifest["logs"]["test_longtail"]) | set(manifest["logs"]["test_common"]) == set(test["log_id"])
    assert manifest["config"] == VersionConfig().model_dump(mode="json") and manifest["parent"] is None
    # Self-contained folder: images hardlinked from the frame store (same file system here).
    folder = fleet.root / "datasets" / manifest["version_id"]
    for row in labels.itertuples():
        image = folder / row.image_path
        assert image.name.startswith(row.image_sha256) and _sha(image) == row.image_sha256
        assert image.stat().st_ino == (fleet.root / fleet.frames[row.frame_id]["store_path"]).stat().st_ino
    assert manifest["images"] == {"files": 28, "bytes": sum((folder / p).stat().st_size for p in labels["image_path"]),
                                  "hardlinked": 28, "copied": 0}
    assert manifest["digest"] == _sha(folder / "labels.parquet")
    assert sorted(p.name for p in (fleet.root / "datasets").iterdir()) == ["splits.json", manifest["version_id"]]


def test_same_inputs_same_id_and_nothing_rewritten(fleet: Fleet) -> None:
    first = build_version(fleet.root)
    folder = fleet.root / "datasets" / first["version_id"]
    before = _files(folder)
    again = build_version(fleet.root, batch_ids=["b2", "b1"])
    assert again == first
    assert _files(folder) == before  # same bytes, inodes and mtimes
    assert [m["version_id"] for m in list_versions(fleet.root)] == [first["version_id"]]
    assert first["version_id"].startswith("v-") and len(first["version_id"]) == 18


def test_changed_label_makes_a_new_version_and_keeps_the_old(fleet: Fleet) -> None:
    first = build_version(fleet.root)
    old = fleet.root / "datasets" / first["version_id"]
    before = _files(old)
    rows = pq.read_table(fleet.root / "labels/b2/labels.parquet").to_pylist()
    rows[3]["boxes"][0]["x2"] = 21.0  # one box edge moved half a pixel
    fleet.write_label_set("b2", rows, T0 + dt.timedelta(hours=2))
    second = build_version(fleet.root)
    assert second["version_id"] != first["version_id"]
    assert second["parent"] == first["version_id"]
    assert _files(old) == before
    assert [m["version_id"] for m in list_versions(fleet.root)] == [first["version_id"], second["version_id"]]
    # A changed config also changes the id, over the same labels.
    third = build_version(fleet.root, config=VersionConfig(long_tail="trigger"))
    assert third["version_id"] not in (first["version_id"], second["version_id"])


def test_splits_stable_as_logs_arrive_and_test_logs_never_trained(fleet: Fleet) -> None:
    v1 = build_version(fleet.root)
    more = [f"later-{k:03d}" for k in range(6)]
    fleet.write_batch("b3", [f for log in more for f in fleet.add_log(log)])
    fleet.write_label_set("b3", fleet.label_rows(pq.read_table(fleet.root / "batches/b3/frames.parquet")
                                                 .column("frame_id").to_pylist()), T0 + dt.timedelta(days=1))
    v2 = build_version(fleet.root)
    labels1, _ = load_version(fleet.root, v1["version_id"])
    labels2, _ = load_version(fleet.root, v2["version_id"])
    split1 = {r.drive_id: _group(r.split) for r in labels1.itertuples()}
    split2 = {r.drive_id: _group(r.split) for r in labels2.itertuples()}
    assert len(split2) == 16 and set(split1) < set(split2)
    assert {d: split2[d] for d in split1} == split1
    # The new drives fill the shortfalls: 16 drives at 0.6/0.2/0.2 are 9.6/3.2/3.2.
    assert sorted(Counter(split2.values()).items()) == [("test", 4), ("train", 9), ("val", 3)]
    test1 = set(v1["logs"]["test_longtail"]) | set(v1["logs"]["test_common"])
    assert test1 and not test1 & (set(v2["logs"]["train"]) | set(v2["logs"]["val"]))
    # Settings that would move a log across the test split of an existing version are refused.
    for bad in (VersionConfig(test_share=0.05), VersionConfig(split_salt="reshuffled")):
        with pytest.raises(ConfigError, match=r"never trained on.*split_salt='longtail-split-v1', test_share=0.2"):
            build_version(fleet.root, config=bad)
    assert len(list((fleet.root / "datasets").iterdir())) == 3  # two versions and splits.json
    # Without the record, the versions' own copies keep every drive where it was.
    (fleet.root / "datasets" / "splits.json").unlink()
    last = fleet.add_log("last-000")
    fleet.write_batch("b4", last)
    fleet.write_label_set("b4", fleet.label_rows(last), T0 + dt.timedelta(days=2))
    v3 = build_version(fleet.root)
    assert {d: v3["split"]["drives"][d] for d in split2} == split2


def test_a_drive_recorded_as_two_files_never_straddles_splits(fleet: Fleet) -> None:
    # Every drive of the fixture recorded a second time as another file (another log id), labeled
    # in a later batch: the copies follow their drive, whatever their log id.
    first = build_version(fleet.root)
    copies = [f for k, log in enumerate(fleet.logs)
              for f in fleet.add_log(f"copy-{k:03d}", drive_id=f"{log}-drive", t0=10**9)]
    fleet.write_batch("b3", copies)
    fleet.write_label_set("b3", fleet.label_rows(copies), T0 + dt.timedelta(days=1))
    second = build_version(fleet.root)
    labels, _ = load_version(fleet.root, second["version_id"])
    per_drive = labels.groupby("drive_id").agg(logs=("log_id", "nunique"),
                                               splits=("split", lambda s: len({_group(x) for x in s})))
    assert (per_drive["logs"] == 2).all() and (per_drive["splits"] == 1).all()
    assert second["split"]["drives"] == first["split"]["drives"]
    # Both files of a drive in one batch, before any version, also stay together.
    other = Fleet(fleet.root.parent / "other")
    ids = other.add_log("x-1", drive_id="twice") + other.add_log("x-2", drive_id="twice", t0=10**9) + \
        [f for k in range(4) for f in other.add_log(f"y-{k}")]
    other.write_batch("b1", ids)
    other.write_label_set("b1", other.label_rows(ids), T0)
    labels, _ = load_version(other.root, build_version(other.root)["version_id"])
    assert labels[labels["drive_id"] == "twice"]["split"].map(_group).nunique() == 1


def _no_version_written(root: Path) -> bool:
    folder = root / "datasets"
    return not folder.exists() or not any(folder.iterdir())


def test_digest_mismatch_is_refused(fleet: Fleet) -> None:
    path = fleet.root / "labels/b2/labels.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[0]["boxes"] = []
    pq.write_table(pa.Table.from_pylist(rows, schema=LABEL_SET_SCHEMA), path)  # manifest left as it was
    with pytest.raises(InputError, match=r"labels/b2/labels.parquet: sha256 \w+ differs from field digest=.*"
                                         r"Pull or relabel batch b2 again"):
        build_version(fleet.root)
    assert _no_version_written(fleet.root)


def test_missing_manifest_is_refused_or_skipped(fleet: Fleet) -> None:
    (fleet.root / "labels/b2/manifest.json").unlink()
    with pytest.raises(InputError, match=r"labels/b2/manifest.json: missing; the label set is incomplete"):
        build_version(fleet.root, batch_ids=["b1", "b2"])
    assert _no_version_written(fleet.root)
    only_b1 = build_version(fleet.root)  # all label sets: the incomplete one is skipped
    assert only_b1["batches"] == ["b1"]


def test_schema_mismatch_is_refused(fleet: Fleet) -> None:
    rows = pq.read_table(fleet.root / "labels/b2/labels.parquet").to_pylist()
    schema = pa.schema([f for f in LABEL_SET_SCHEMA if f.name != "annotator"])
    fleet.write_label_set("b2", rows, T0, schema=schema)
    with pytest.raises(SchemaError, match=r"labels/b2/labels.parquet: schema differs .*missing field annotator"):
        build_version(fleet.root)
    assert _no_version_written(fleet.root)


def test_bad_box_and_missing_image_are_refused(fleet: Fleet) -> None:
    rows = pq.read_table(fleet.root / "labels/b2/labels.parquet").to_pylist()
    rows[1]["boxes"][0]["x2"] = 40.0  # past the 32 px wide image
    fleet.write_label_set("b2", rows, T0 + dt.timedelta(hours=1))
    with pytest.raises(SchemaError, match=r"box 0 .* outside the 32x24 image"):
        build_version(fleet.root)
    rows[1]["boxes"][0]["x2"] = 20.0
    fleet.write_label_set("b2", rows, T0 + dt.timedelta(hours=1))
    frame = fleet.frames[rows[2]["frame_id"]]
    (fleet.root / frame["store_path"]).unlink()
    with pytest.raises(InputError, match=r"frame image missing from the frame store \(1 missing"):
        build_version(fleet.root)
    assert _no_version_written(fleet.root)


def test_damaged_image_leaves_no_temporary_folder(fleet: Fleet) -> None:
    """The image check runs while the version is written: the temporary folder must go."""
    victim = next(iter(fleet.frames.values()))
    (fleet.root / victim["store_path"]).write_bytes(b"not the jpeg it was")
    with pytest.raises(InputError, match=r"differs from field image_sha256=.*Re-ingest"):
        build_version(fleet.root)
    assert _no_version_written(fleet.root)


def test_load_version_detects_damage(fleet: Fleet) -> None:
    manifest = build_version(fleet.root)
    with pytest.raises(ConfigError, match="version_id='latest'"):
        load_version(fleet.root, "latest")
    with pytest.raises(InputError, match=r"no dataset version v-0000000000000000.*Versions here: \['v-"):
        load_version(fleet.root, "v-0000000000000000")
    labels, _ = load_version(fleet.root, manifest["version_id"])
    image = fleet.root / "datasets" / manifest["version_id"] / labels["image_path"][0]
    image.unlink()  # break the link rather than edit the frame store's inode
    image.write_bytes(b"edited in place")
    load_version(fleet.root, manifest["version_id"])  # existence only
    with pytest.raises(InputError, match="bytes differ from their sha256 name"):
        load_version(fleet.root, manifest["version_id"], check_images=True)
    with pytest.raises(InputError, match="differs from field digest"):
        (fleet.root / "datasets" / manifest["version_id"] / "labels.parquet").write_bytes(b"x")
        build_version(fleet.root)


# ---------------------------------------------------------------------------------------------
# DVC


def test_dvc_round_trip_from_metadata_only(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONGTAIL_DVC_REMOTE", raising=False)
    manifest = build_version(fleet.root)
    vid = manifest["version_id"]
    record = track_version(fleet.root, vid)
    default_remote = tmp_path / "data.dvc-remote"
    assert record["remote"] == str(default_remote) and record["pushed"] == 31  # 30 files and the .dir listing
    assert record["dvc_file"] == f"datasets/{vid}.dvc" and (fleet.root / record["dvc_file"]).is_file()
    assert track_version(fleet.root, vid)["pushed"] == 0  # idempotent
    config = (fleet.root / ".dvc/config").read_text()
    assert "analytics = False" in config and DVC_CACHE_TYPE in config and "no_scm = True" in config
    assert (fleet.root / ".dvc/tmp/site-cache").is_dir()  # not the machine-wide /var/tmp/dvc
    # No image stored twice: frame store, version folder and DVC cache share one inode (read-only now).
    folder = fleet.root / "datasets" / vid
    labels, _ = load_version(fleet.root, vid)
    frame = fleet.frames[labels["frame_id"][0]]
    store_file = fleet.root / frame["store_path"]
    assert store_file.stat().st_ino == (folder / labels["image_path"][0]).stat().st_ino
    assert store_file.stat().st_nlink == 3
    assert not store_file.stat().st_mode & stat.S_IWUSR
    # ... which the frame store tolerates: putting the same bytes again is a no-op, not an error.
    store = FrameStore(fleet.root)
    assert store.put(store_file.read_bytes(), "jpeg") == (frame["image_sha256"], frame["store_path"])
    store.close()

    # A fresh checkout with only the DVC metadata, and the remote moved (as to another machine).
    fresh = tmp_path / "fresh"
    (fresh / ".dvc").mkdir(parents=True)
    (fresh / "datasets").mkdir()
    shutil.copy(fleet.root / ".dvc/config", fresh / ".dvc/config")
    shutil.copy(fleet.root / f"datasets/{vid}.dvc", fresh / f"datasets/{vid}.dvc")
    moved = tmp_path / "elsewhere" / "remote"
    moved.parent.mkdir()
    shutil.move(default_remote, moved)
    with pytest.raises(InputError, match=r"'dvc pull' from the configured remote .*data\.dvc-remote failed: "
                                         r"Checkout failed.*missing-files>\. Pass the remote"):
        restore_version(fresh, vid)  # .dvc/config still names the old remote folder
    restored = restore_version(fresh, vid, remote=moved)
    assert restored == manifest
    original = {k: v[0] for k, v in _files(folder).items()}
    assert {k: v[0] for k, v in _files(fresh / "datasets" / vid).items()} == original
    assert len(original) == 30  # 28 images, labels.parquet, manifest.json
    labels_fresh, manifest_fresh = load_version(fresh, vid, check_images=True)
    assert manifest_fresh == manifest and labels_fresh.equals(labels)
    with pytest.raises(InputError, match=r"v-0000000000000000.dvc: missing.*records here: \['v-"):
        restore_version(fresh, "v-0000000000000000", remote=moved)


def test_restore_a_deleted_version_in_the_data_root(fleet: Fleet, tmp_path: Path) -> None:
    manifest = build_version(fleet.root)
    vid = manifest["version_id"]
    track_version(fleet.root, vid, remote=tmp_path / "remote")
    folder = fleet.root / "datasets" / vid
    before = {k: v[0] for k, v in _files(folder).items()}
    shutil.rmtree(folder)
    assert restore_version(fleet.root, vid) == manifest
    assert {k: v[0] for k, v in _files(folder).items()} == before
    assert os.path.isdir(tmp_path / "remote" / "files" / "md5")
