"""The simulated labeler: its edits and their cost by hand, and its ground truth on a real simulated drive."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from longtail.catalog.frames import load_frame_index
from longtail.catalog.truth import GroundTruthError, find_truth_files, load_ground_truth, load_truth
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.errors import ConfigError, SchemaError
from longtail.ingest.ingest import ingest
from longtail.label.oracle import LabelingCost, plan_edits, total_cost, truth_boxes
from longtail.label.qa import check_frame
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan

# Cost model (module docstring of longtail.label.oracle): 2 s per frame, accept 1, adjust 3, relabel 2,
# delete 1.5, draw 7.


def box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, object]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


def counts(cost: LabelingCost) -> tuple[int, int, int, int, int]:
    return cost.accepted, cost.moved, cost.relabeled, cost.deleted, cost.added


# ------------------------------------------------------------------------------------ plan_edits

def test_without_prelabels_every_box_is_drawn() -> None:
    truth = [box("car", 0, 0, 10, 10), box("pedestrian", 20, 0, 25, 15)]
    final, cost = plan_edits([], truth)
    assert final == truth
    assert counts(cost) == (0, 0, 0, 0, 2)
    assert (cost.frames, cost.boxes, cost.seconds) == (1, 2, 2 + 2 * 7)


def test_perfect_prelabels_are_all_accepted_and_keep_their_coordinates() -> None:
    truth = [box("car", 0, 0, 20, 10), box("truck", 40, 0, 60, 20)]
    # The car pre-label is a pixel wider than the truth: IoU 190/200 = 0.95 >= 0.9, so it is kept as it is.
    prelabels = [box("car", 0, 0, 21, 10, 0.8), box("truck", 40, 0, 60, 20, 0.6)]
    final, cost = plan_edits(prelabels, truth)
    assert final == [box("car", 0, 0, 21, 10), box("truck", 40, 0, 60, 20)]
    assert counts(cost) == (2, 0, 0, 0, 0)
    assert cost.seconds == 2 + 2 * 1


def test_a_shifted_prelabel_is_moved_onto_the_truth() -> None:
    # (2,0,12,10) vs (0,0,10,10): 80 / 120 = 0.67, matched (>= 0.5) but not accepted (< 0.9).
    final, cost = plan_edits([box("car", 2, 0, 12, 10, 0.7)], [box("car", 0, 0, 10, 10)])
    assert final == [box("car", 0, 0, 10, 10)]
    assert counts(cost) == (0, 1, 0, 0, 0)
    assert cost.seconds == 2 + 3


def test_a_prelabel_of_the_wrong_class_is_relabeled() -> None:
    final, cost = plan_edits([box("truck", 0, 0, 10, 10, 0.9)], [box("car", 0, 0, 10, 10)])
    assert final == [box("car", 0, 0, 10, 10)]
    assert counts(cost) == (0, 0, 1, 0, 0)
    assert cost.seconds == 2 + 2


def test_a_shifted_prelabel_of_the_wrong_class_is_relabeled_and_moved() -> None:
    final, cost = plan_edits([box("truck", 2, 0, 12, 10, 0.9)], [box("car", 0, 0, 10, 10)])
    assert final == [box("car", 0, 0, 10, 10)]
    assert counts(cost) == (0, 1, 1, 0, 0)
    assert cost.seconds == 2 + 2 + 3


def test_a_ghost_prelabel_is_deleted() -> None:
    final, cost = plan_edits([box("car", 50, 50, 60, 60, 0.95)], [])
    assert final == []
    assert counts(cost) == (0, 0, 0, 1, 0)
    assert (cost.boxes, cost.seconds) == (0, 2 + 1.5)


def test_two_prelabels_on_one_object_the_better_one_is_kept() -> None:
    # Pre-label 0 has IoU 90/110 = 0.82, pre-label 1 IoU 1.0: greedy matching takes the best pair first.
    prelabels = [box("car", 1, 0, 11, 10, 0.9), box("car", 0, 0, 10, 10, 0.8)]
    final, cost = plan_edits(prelabels, [box("car", 0, 0, 10, 10)])
    assert final == [box("car", 0, 0, 10, 10)]
    assert counts(cost) == (1, 0, 0, 1, 0)
    assert cost.seconds == 2 + 1 + 1.5


def test_a_prelabel_overlapping_too_little_is_deleted_and_the_object_drawn() -> None:
    # (0,0,10,10) vs (6,0,16,10): 40 / 160 = 0.25 < 0.5.
    final, cost = plan_edits([box("car", 0, 0, 10, 10, 0.9)], [box("car", 6, 0, 16, 10)])
    assert final == [box("car", 6, 0, 16, 10)]
    assert counts(cost) == (0, 0, 0, 1, 1)
    assert cost.seconds == 2 + 1.5 + 7


def test_a_mixed_frame() -> None:
    truth = [box("car", 0, 0, 10, 10), box("pedestrian", 30, 0, 34, 12), box("cyclist", 60, 0, 66, 12)]
    prelabels = [box("cyclist", 60, 0, 66, 12, 0.5), box("car", 80, 0, 90, 10, 0.4), box("car", 0, 0, 10, 10, 0.9)]
    final, cost = plan_edits(prelabels, truth)
    assert final == [box("cyclist", 60, 0, 66, 12), box("car", 0, 0, 10, 10), box("pedestrian", 30, 0, 34, 12)]
    assert counts(cost) == (2, 0, 0, 1, 1)
    assert cost.seconds == 2 + 2 * 1 + 1.5 + 7


def test_bad_thresholds_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"invalid match_iou=0\.0"):
        plan_edits([], [], match_iou=0.0)
    with pytest.raises(ConfigError, match=r"invalid accept_iou=0.4. Use an IoU in \[match_iou=0.5, 1\]"):
        plan_edits([], [], accept_iou=0.4)


def test_costs_add_up_over_frames() -> None:
    _, a = plan_edits([], [box("car", 0, 0, 10, 10)])
    _, b = plan_edits([box("car", 0, 0, 10, 10, 0.9), box("car", 50, 0, 60, 10, 0.9)], [box("car", 0, 0, 10, 10)])
    total = a.add(b)
    assert total == a + b == total_cost([a, b])
    assert (total.frames, total.accepted, total.deleted, total.added, total.boxes) == (2, 1, 1, 1, 2)
    assert total.seconds == (2 + 7) + (2 + 1 + 1.5)
    per = total.per_frame()
    assert per["seconds"] == pytest.approx(13.5 / 2)
    assert per["boxes"] == 1.0
    assert "frames" not in per
    assert LabelingCost().per_frame()["seconds"] == 0.0
    assert total.as_dict()["frames"] == 2


# ----------------------------------------------------------------------------------- truth_boxes

def gt_object(category: str, vbox: tuple[int, int, int, int], visible_fraction: float = 1.0) -> dict[str, object]:
    vx1, vy1, vx2, vy2 = vbox
    return {"track_id": 1, "category": category, "x1": vx1, "y1": vy1 - 5, "x2": vx2, "y2": vy2,
            "vx1": vx1, "vy1": vy1, "vx2": vx2, "vy2": vy2, "visible_fraction": visible_fraction}


def test_truth_boxes_are_the_visible_extent() -> None:
    # The full box starts 5 px higher (hidden behind something); a person draws what they see.
    assert truth_boxes([gt_object("car", (10, 20, 40, 40))], 320, 192) == [box("car", 10, 20, 40, 40)]


def test_truth_boxes_skip_what_a_person_cannot_see() -> None:
    objects = [
        gt_object("car", (10, 20, 40, 23)),            # 3 px tall visible sliver
        gt_object("pedestrian", (50, 20, 53, 60)),     # 3 px wide
        gt_object("truck", (60, 20, 120, 80), 0.05),   # 5% visible
        gt_object("cyclist", (130, 20, 134, 24), 0.1),  # exactly the minimum size and fraction
    ]
    assert truth_boxes(objects, 320, 192) == [box("cyclist", 130, 20, 134, 24)]
    assert [b["category"] for b in truth_boxes(objects, 320, 192, min_visible_px=3, min_visible_fraction=0.0)] == [
        "car", "pedestrian", "truck", "cyclist"]


def test_truth_boxes_are_clipped_to_the_image() -> None:
    assert truth_boxes([gt_object("car", (-4, 180, 20, 200)), gt_object("car", (318, 0, 330, 10))], 320, 192) == [
        box("car", 0, 180, 20, 192)]  # the second is 2 px wide once clipped


# ------------------------------------------------------------------------- on a simulated drive

@pytest.fixture(scope="module")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 6-second town drive simulated into fleet/ (with fleet/ground_truth/) and ingested into data/."""
    out = tmp_path_factory.mktemp("oracle")
    cfg = SimConfig(minutes=0.1, width=320, height=192, scenario_rates=NO_SCENARIO_RATES)
    log = out / "fleet" / "town.mcap"
    sidecar = out / "fleet" / "ground_truth" / "town.parquet"
    sidecar.parent.mkdir(parents=True)
    simulate_drive(fixed_plan(cfg, 11, road="urban"), cfg, log, sidecar)
    ingest([log], out / "data", progress=False)
    return {"out": out, "log": log, "sidecar": sidecar, "root": out / "data"}


def test_every_ingested_frame_gets_its_truth(sim_root: dict[str, Path]) -> None:
    index = load_frame_index(sim_root["root"])
    assert len(index) >= 10
    files = find_truth_files(sim_root["root"], index["log_id"])
    assert files == [sim_root["sidecar"]]
    truth = load_truth(files, index)
    assert set(truth) == set(index["frame_id"])
    gt_frames, gt_objects = load_ground_truth(sim_root["sidecar"])
    n_boxes = 0
    for row in index.itertuples():
        t = truth[row.frame_id]
        assert (t.drive_id, t.timestamp_ns, t.truth_file) == (row.drive_id, row.timestamp_ns, str(sim_root["sidecar"]))
        expected = gt_frames.loc[gt_frames.timestamp_ns == row.timestamp_ns, "frame_index"]
        assert t.frame_index == int(expected.iloc[0])
        assert len(t.objects) == int((gt_objects.frame_index == t.frame_index).sum())
        boxes = truth_boxes(t.objects, int(row.width), int(row.height))
        for b in boxes:
            assert 0 <= b["x1"] < b["x2"] <= row.width and 0 <= b["y1"] < b["y2"] <= row.height
        # What the oracle submits without pre-labels passes QA.
        final, _ = plan_edits([], boxes)
        assert check_frame(final, [], int(row.width), int(row.height)) == []
        n_boxes += len(boxes)
    assert n_boxes > 0, "a town drive with no visible road user cannot test the labeler"


def test_a_frame_without_truth_is_named_with_the_files_searched(sim_root: dict[str, Path]) -> None:
    frames = pd.DataFrame({"frame_id": ["f-lost"], "drive_id": ["car-fixed_drive000"], "timestamp_ns": [123]})
    with pytest.raises(GroundTruthError, match=r"no ground truth for 1 of 1 frame\(s\): frame f-lost \(drive "
                                               r"car-fixed_drive000, timestamp_ns 123\); searched 1 file\(s\): .*town.parquet"):
        load_truth([sim_root["sidecar"]], frames)
    with pytest.raises(GroundTruthError, match=r"searched 0 file\(s\): none"):
        load_truth([], frames)
    with pytest.raises(SchemaError, match=r"frames lack column\(s\) \['timestamp_ns'\]"):
        load_truth([sim_root["sidecar"]], frames.drop(columns="timestamp_ns"))


def test_a_log_that_was_not_ingested_has_no_truth(sim_root: dict[str, Path]) -> None:
    with pytest.raises(GroundTruthError, match=r"log abc has no manifest .* it was not ingested into"):
        find_truth_files(sim_root["root"], ["abc"])


def test_a_simulated_log_without_its_sidecar(sim_root: dict[str, Path], tmp_path: Path) -> None:
    lonely = tmp_path / "moved" / "town.mcap"
    lonely.parent.mkdir()
    shutil.copyfile(sim_root["log"], lonely)
    ingest([lonely], tmp_path / "data", progress=False)
    log_id = load_frame_index(tmp_path / "data")["log_id"].iloc[0]
    with pytest.raises(GroundTruthError, match=r"has no ground-truth sidecar at .*moved/ground_truth/town.parquet"):
        find_truth_files(tmp_path / "data", [log_id])


def test_an_imported_real_dataset_is_not_simulated(real_data: Path, tmp_path: Path) -> None:
    from longtail.ingest.external import import_dataset

    result = import_dataset("kitti", real_data / "kitti", tmp_path)
    with pytest.raises(GroundTruthError, match=r"is not a simulated drive \(source 'kitti'\).*Label Studio"):
        find_truth_files(tmp_path, [result.log_id])
