"""The record of the labeling batch the curate task chose, which the label task reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longtail.curate.run import record_selected_batch, selected_batch, selected_batch_path
from longtail.errors import InputError, SchemaError


def _batch(root: Path, batch_id: str, budget: int = 10) -> dict:
    """A labeling batch manifest in DATA/batches/<batch_id>/ (only the fields the record keeps matter)."""
    manifest = {"batch_id": batch_id, "digest": batch_id.removeprefix("batch-") * 4, "budget": budget,
                "selector": "longtail", "frames": [f"f{i}" for i in range(budget)], "created_at": "2026-11-01T00:00:00"}
    folder = root / "batches" / batch_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_the_recorded_batch_is_the_one_read_back(tmp_path: Path) -> None:
    manifest = _batch(tmp_path, "batch-0123456789abcdef")
    record = record_selected_batch(tmp_path, manifest)
    assert record == {"batch_id": "batch-0123456789abcdef", "digest": "0123456789abcdef" * 4, "budget": 10,
                      "selector": "longtail"}
    assert selected_batch_path(tmp_path) == tmp_path / "curate" / "selected_batch.json"
    assert json.loads(selected_batch_path(tmp_path).read_text()) == record
    assert selected_batch(tmp_path) == "batch-0123456789abcdef"


def test_recording_the_same_batch_again_leaves_the_file_alone_and_a_new_batch_replaces_it(tmp_path: Path) -> None:
    first = _batch(tmp_path, "batch-aaaaaaaaaaaaaaaa")
    record_selected_batch(tmp_path, first)
    path = selected_batch_path(tmp_path)
    stamp = path.stat().st_mtime_ns
    record_selected_batch(tmp_path, dict(first))
    assert path.stat().st_mtime_ns == stamp
    record_selected_batch(tmp_path, _batch(tmp_path, "batch-bbbbbbbbbbbbbbbb", budget=3))
    assert selected_batch(tmp_path) == "batch-bbbbbbbbbbbbbbbb"
    assert json.loads(path.read_text())["budget"] == 3
    assert not list(path.parent.glob(".*tmp*")), "no temporary file is left behind"


def test_a_declared_product_path_is_written_and_read(tmp_path: Path) -> None:
    manifest = _batch(tmp_path, "batch-cccccccccccccccc")
    product = tmp_path / "elsewhere" / "chosen.json"
    record_selected_batch(tmp_path, manifest, path=product)
    assert product.is_file() and not selected_batch_path(tmp_path).exists()
    assert selected_batch(tmp_path, path=product) == "batch-cccccccccccccccc"


def test_no_record_says_to_run_the_curate_task(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"selected_batch.json: missing; no labeling batch was chosen yet\. "
                                         r"Run the curate task .*longtail select"):
        selected_batch(tmp_path)


def test_a_record_naming_a_deleted_batch_or_garbage_is_refused(tmp_path: Path) -> None:
    manifest = _batch(tmp_path, "batch-dddddddddddddddd")
    record_selected_batch(tmp_path, manifest)
    (tmp_path / "batches" / "batch-dddddddddddddddd" / "manifest.json").unlink()
    with pytest.raises(InputError, match=r"names labeling batch batch-dddddddddddddddd, which is not in .*batches"):
        selected_batch(tmp_path)
    selected_batch_path(tmp_path).write_text("[1, 2]")
    with pytest.raises(InputError, match=r"not a selected-batch record .*run the curate task again"):
        selected_batch(tmp_path)


def test_an_incomplete_batch_or_a_manifest_without_its_fields_is_not_recorded(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"lacks field\(s\) \['digest', 'selector'\]"):
        record_selected_batch(tmp_path, {"batch_id": "batch-eeeeeeeeeeeeeeee", "budget": 1})
    with pytest.raises(InputError, match=r"batch-eeeeeeeeeeeeeeee/manifest.json: missing; .* not complete"):
        record_selected_batch(tmp_path, {"batch_id": "batch-eeeeeeeeeeeeeeee", "digest": "x", "budget": 1,
                                         "selector": "random"})
    assert not selected_batch_path(tmp_path).exists()
