"""The label task's record of the dataset version it leaves for training (DATA/datasets/latest.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longtail.errors import InputError
from longtail.label.run import LabelRun, latest_version, latest_version_path, record_latest_version


def _manifest(root: Path, version_id: str, created_at: str) -> dict[str, Any]:
    manifest = {"version_id": version_id, "digest": version_id[2:] * 4, "frames": 5, "created_at": created_at,
                "counts": {"train": 3, "val": 1, "test_longtail": 0, "test_common": 1}}
    (root / "datasets" / version_id).mkdir(parents=True)
    (root / "datasets" / version_id / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _run(version: dict[str, Any] | None, finished: int = 5, batch: str = "batch-2") -> LabelRun:
    return LabelRun(batch, "http://127.0.0.1:1/projects/1", True, 5, finished, {}, None, version, None)


def test_the_built_version_is_recorded_and_read_back(tmp_path: Path) -> None:
    version = _manifest(tmp_path, "v-00000000000000aa", "2026-01-01T00:00:00+00:00")
    record = record_latest_version(tmp_path, _run(version))
    assert record == {"version_id": "v-00000000000000aa", "digest": version["digest"], "frames": 5,
                      "counts": version["counts"], "batch_id": "batch-2", "waiting": False}
    assert json.loads(latest_version_path(tmp_path).read_text()) == record
    assert latest_version(tmp_path) == "v-00000000000000aa"


def test_an_unchanged_record_is_not_rewritten(tmp_path: Path) -> None:
    version = _manifest(tmp_path, "v-00000000000000aa", "2026-01-01T00:00:00+00:00")
    target = tmp_path / "elsewhere" / "latest.json"
    record_latest_version(tmp_path, _run(version), path=target)
    stamp = target.stat().st_mtime_ns
    record_latest_version(tmp_path, _run(version), path=target)
    assert target.stat().st_mtime_ns == stamp and latest_version(tmp_path, path=target) == "v-00000000000000aa"


def test_while_people_label_the_newest_earlier_version_is_recorded(tmp_path: Path) -> None:
    _manifest(tmp_path, "v-00000000000000aa", "2026-01-01T00:00:00+00:00")
    _manifest(tmp_path, "v-00000000000000bb", "2026-01-02T00:00:00+00:00")
    record = record_latest_version(tmp_path, _run(None, finished=2))
    assert (record["version_id"], record["waiting"], record["batch_id"]) == ("v-00000000000000bb", True, "batch-2")
    assert latest_version(tmp_path) == "v-00000000000000bb"


def test_no_version_yet_names_the_batch_still_being_labeled(tmp_path: Path) -> None:
    record = record_latest_version(tmp_path, _run(None, finished=0, batch="batch-1"))
    assert record["version_id"] is None and record["counts"] is None
    with pytest.raises(InputError, match=r"no dataset version yet: labeling batch batch-1 is still being labeled"):
        latest_version(tmp_path)


def test_missing_damaged_or_stale_records_say_how_to_fix_them(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"latest.json: missing; no dataset version was recorded yet. Run the label"):
        latest_version(tmp_path)
    latest_version_path(tmp_path).parent.mkdir(parents=True)
    latest_version_path(tmp_path).write_text("{")
    with pytest.raises(InputError, match=r"not a dataset-version record \(JSONDecodeError"):
        latest_version(tmp_path)
    latest_version_path(tmp_path).write_text(json.dumps({"version_id": "v-00000000000000cc"}))
    with pytest.raises(InputError, match=r"names dataset version v-00000000000000cc, which is not in"):
        latest_version(tmp_path)
