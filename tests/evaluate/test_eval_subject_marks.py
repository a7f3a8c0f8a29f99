"""Subject marks from the simulator's ground truth, on a real simulated, ingested drive with a cut-in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from longtail.catalog.frames import load_frame_index
from longtail.catalog.truth import load_ground_truth
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.evaluate.model import load_subject_marks
from longtail.ingest.ingest import ingest
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan


def test_marks_are_the_cut_in_vehicle_and_only_simulated_frames_get_them(tmp_path: Path) -> None:
    cfg = SimConfig(minutes=0.2, width=160, height=96, fps=5.0, scenario_rates=NO_SCENARIO_RATES)
    log, sidecar = tmp_path / "fleet" / "hw.mcap", tmp_path / "fleet" / "ground_truth" / "hw.parquet"
    sidecar.parent.mkdir(parents=True)
    simulate_drive(fixed_plan(cfg, 2, road="highway", events=(("cut_in", 3.0, 9.0),)), cfg, log, sidecar)
    ingest([log], tmp_path / "data", progress=False)
    index = load_frame_index(tmp_path / "data")
    stranger = pd.DataFrame([{"frame_id": "x", "log_id": "not-ingested", "drive_id": "d", "timestamp_ns": 1}])
    marks = load_subject_marks(tmp_path / "data", pd.concat([index, stranger], ignore_index=True))
    assert set(marks) == set(index["frame_id"])  # the frame of a log not ingested has no marks
    gt_frames, gt_objects = load_ground_truth(sidecar)
    critical = gt_objects[gt_objects["critical"]]
    by_time = dict(zip(gt_frames["timestamp_ns"], gt_frames["frame_index"], strict=True))
    for row in index.itertuples():
        expected = critical[critical["frame_index"] == by_time[row.timestamp_ns]]
        got = marks[row.frame_id]
        assert [(m["category"], m["x1"], m["y2"], m["scenario"]) for m in got] == \
            [(o.category, float(o.vx1), float(o.vy2), o.scenario) for o in expected.itertuples()]
    assert any(m["scenario"] == "cut_in" and m["category"] in ("car", "truck") for ms in marks.values() for m in ms)
