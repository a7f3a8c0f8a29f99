"""Failure-mode timelines: recording the loop's steps and reading time to model update back."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longtail.catalog.failure_modes import (
    FailureModeQuery,
    load_registry,
    record_breach,
    register_failure_mode,
    registry_path,
)
from longtail.catalog.timeline import batch_mined_modes, record_step, time_to_model_update, version_mined_modes
from longtail.errors import LongtailError

QUERY = FailureModeQuery(triggers_any=("hard_braking",))


def _open_mode(root: Path, name: str = "dark_cyclists") -> None:
    record_breach(root, name, QUERY, title="Dark cyclists", description="", examples=["f1"],
                  evidence={"metric": "recall", "value": 0.2, "threshold": 0.5, "batch_id": "mon-1"}, by="monitor")


def test_time_to_model_update_is_discovery_to_first_deployment_with_each_step_timed(tmp_path: Path) -> None:
    _open_mode(tmp_path)
    # Rewrite the discovery to a known time, then record the loop at known times.
    modes = load_registry(tmp_path)
    mode = modes["dark_cyclists"]
    first = {**mode.timeline[0], "at": "2026-12-01T10:00:00+00:00"}
    modes["dark_cyclists"] = mode.model_copy(update={"timeline": (first,)})
    from longtail.catalog.failure_modes import save_registry
    save_registry(tmp_path, modes)
    steps = [("mined", "batch-a", "2026-12-01T10:05:00+00:00"),        # +300 s
             ("labeled", "batch-a", "2026-12-01T10:35:00+00:00"),      # +1800 s
             ("trained", "v-2/run", "2026-12-01T11:35:00+00:00"),      # +3600 s
             ("evaluated", "ev.json", "2026-12-01T11:40:00+00:00"),    # +300 s
             ("gated", "promoted 2", "2026-12-01T11:40:10+00:00"),     # +10 s
             ("deployed", "d-1", "2026-12-01T11:50:10+00:00"),         # +600 s
             ("deployed", "d-2", "2026-12-02T09:00:00+00:00")]         # a later deployment: not the first
    for step, ref, at in reversed(steps):  # recorded out of order: the timeline is read by time
        record_step(tmp_path, ["dark_cyclists"], step, ref, at=at)
    ttmu = time_to_model_update(load_registry(tmp_path)["dark_cyclists"])
    assert ttmu is not None
    assert ttmu["deployment"] == "d-1"
    assert ttmu["total_s"] == 300 + 1800 + 3600 + 300 + 10 + 600
    assert [s["step"] for s in ttmu["steps"]] == ["discovered", "mined", "labeled", "trained", "evaluated", "gated",
                                                  "deployed"]
    assert [s["since_previous_s"] for s in ttmu["steps"]] == [0, 300, 1800, 3600, 300, 10, 600]
    assert ttmu["discovered_at"] == "2026-12-01T10:00:00+00:00"
    assert ttmu["steps"][0]["ref"].startswith("breach recall=0.2")


def test_no_time_to_model_update_before_a_deployment_covers_the_mode(tmp_path: Path) -> None:
    _open_mode(tmp_path)
    record_step(tmp_path, ["dark_cyclists"], "gated", "refused 3")
    assert time_to_model_update(load_registry(tmp_path)["dark_cyclists"]) is None


def test_recording_a_step_twice_adds_it_once(tmp_path: Path) -> None:
    _open_mode(tmp_path)
    assert record_step(tmp_path, ["dark_cyclists", "no_such_mode"], "mined", "batch-a", "3 frames") == ["dark_cyclists"]
    assert record_step(tmp_path, ["dark_cyclists"], "mined", "batch-a", "3 frames") == []
    record_step(tmp_path, ["dark_cyclists"], "mined", "batch-b")
    timeline = load_registry(tmp_path)["dark_cyclists"].timeline
    assert [(e["step"], e["ref"]) for e in timeline] == [("discovered", timeline[0]["ref"]), ("mined", "batch-a"),
                                                         ("mined", "batch-b")]
    # The same breach recorded again does not discover the mode twice.
    _open_mode(tmp_path)
    assert sum(e["step"] == "discovered" for e in load_registry(tmp_path)["dark_cyclists"].timeline) == 1


def test_an_unknown_step_is_refused(tmp_path: Path) -> None:
    _open_mode(tmp_path)
    with pytest.raises(LongtailError, match="timeline step 'shipped' is not one of"):
        record_step(tmp_path, ["dark_cyclists"], "shipped", "x")


def test_a_registry_written_before_timelines_loads_with_empty_ones(tmp_path: Path) -> None:
    register_failure_mode(tmp_path, "wet_roads", {"tags_all": ["rain"]})
    path = registry_path(tmp_path)
    data = json.loads(path.read_text())
    for entry in data["failure_modes"]:
        entry.pop("timeline")
    data["failure_modes"][0].update(status="open", discovered_at="2026-11-30T08:00:00+00:00", discovered_by="query")
    path.write_text(json.dumps(data))
    modes = load_registry(tmp_path)
    assert all(m.timeline == () for m in modes.values())
    old = modes[data["failure_modes"][0]["name"]]
    record_step(tmp_path, [old.name], "deployed", "d-9", at="2026-11-30T09:00:00+00:00")
    ttmu = time_to_model_update(load_registry(tmp_path)[old.name])
    assert ttmu is not None and ttmu["total_s"] == 3600  # discovery from discovered_at


def test_mined_modes_come_from_the_batch_and_the_versions_batches(tmp_path: Path) -> None:
    folder = tmp_path / "batches" / "batch-a"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"frame_id": ["a", "b", "c"], "fm_name": ["night_glare", "", "cut_ins"]}),
                   folder / "frames.parquet")
    assert batch_mined_modes(tmp_path, "batch-a") == ["cut_ins", "night_glare"]
    version = tmp_path / "datasets" / "v-1"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text(json.dumps({"batches": ["batch-a", "batch-gone"]}))
    assert version_mined_modes(tmp_path, "v-1") == ["cut_ins", "night_glare"]
    assert version_mined_modes(tmp_path, None) == []
