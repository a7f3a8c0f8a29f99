"""The curate notebook's figures, tables and galleries, checked against the dataset they show."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from longtail.catalog.failure_modes import load_registry
from longtail.curate.report import (
    NO_TAG,
    batch_gallery,
    batch_summary,
    batch_table,
    compute_tag_counts,
    embedding_map,
    failure_mode_galleries,
    failure_mode_table,
    primary_scenario,
    scenario_distribution,
)
from longtail.curate.run import CurateConfig, run_curate, run_select
from longtail.curate.select import SelectConfig
from longtail.errors import InputError, LongtailError
from longtail.gallery import gallery

BUDGET = 30


@pytest.fixture(scope="module")
def reported(curate_fleet: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the fleet's data root, curated into dataset ``t-report`` with one labeling batch."""
    import fiftyone as fo

    root = tmp_path_factory.mktemp("report") / "data"
    for sub in ("frames", "index"):
        shutil.copytree(Path(curate_fleet["root"]) / sub, root / sub)
    run_curate(root, CurateConfig(dataset="t-report"))
    batch = run_select(root, SelectConfig(budget=BUDGET), "t-report")
    return {"root": root, "dataset": fo.load_dataset("t-report"), "batch": batch}


def test_tag_counts_and_primary_scenario_by_hand() -> None:
    tags = [["night", "trigger:hard_braking"], ["night"], [], ["fog", "fog"], []]
    counts = compute_tag_counts(tags)
    # Two untagged frames, two at night, the repeated fog tag counted once for its frame.
    assert counts.to_dict() == {NO_TAG: 2, "night": 2, "fog": 1, "trigger:hard_braking": 1}
    # Most frequent first, ties by name, untagged frames last.
    assert list(counts.index) == ["night", "fog", "trigger:hard_braking", NO_TAG]
    assert primary_scenario(["night", "trigger:hard_braking", "trigger:adas_alert"]) == "trigger:adas_alert"
    assert primary_scenario(["glare", "fog"]) == "fog"
    assert primary_scenario(["truck_view"]) == "truck_view"
    assert primary_scenario([]) == NO_TAG


def test_scenario_distribution_counts_every_frame_of_the_pool_and_the_batch(reported: dict) -> None:
    ds, batch = reported["dataset"], reported["batch"]
    fig = scenario_distribution(ds, batch)
    pool, chosen = fig.data
    tags = ds.values("tags")
    by_tag = dict(zip(pool.x, pool.customdata, strict=True))
    assert by_tag[NO_TAG] == sum(not t for t in tags)
    for tag in ("night", "fog", "trigger:hard_braking"):
        assert by_tag[tag] == sum(tag in t for t in tags) > 0
    assert np.allclose(pool.y, np.asarray(pool.customdata) / len(ds))
    in_batch = [t for fid, t in zip(ds.values("frame_id"), tags, strict=True) if fid in set(batch["frames"])]
    assert len(in_batch) == BUDGET
    assert dict(zip(chosen.x, chosen.customdata, strict=True)) == {
        tag: sum(tag in t if tag != NO_TAG else not t for t in in_batch) for tag in pool.x}
    assert f"{len(ds)} frames" in fig.layout.title.text and batch["batch_id"] in fig.layout.title.text


def test_embedding_map_places_every_frame_where_the_brain_put_it(reported: dict) -> None:
    ds, batch = reported["dataset"], reported["batch"]
    fig = embedding_map(ds, batch)
    *scenarios, ringed = fig.data
    assert sum(len(t.x) for t in scenarios) == len(ds)
    placed = {row[0]: (x, y) for t in scenarios for row, x, y in zip(t.customdata, t.x, t.y, strict=True)}
    assert set(placed) == set(ds.values("frame_id"))
    results = ds.load_brain_results("embedding_map")
    frame_of = dict(zip(ds.values("id"), ds.values("frame_id"), strict=True))
    for sid, point in list(zip(results.sample_ids, results.points, strict=True))[::500]:
        assert placed[frame_of[sid]] == pytest.approx(tuple(point))
    tags_of = dict(zip(ds.values("frame_id"), ds.values("tags"), strict=True))
    braking = next(t for t in scenarios if t.name.startswith("trigger:hard_braking"))
    assert all("trigger:hard_braking" in tags_of[row[0]] for row in braking.customdata)
    assert sorted(row[0] for row in ringed.customdata) == sorted(batch["frames"])


def test_embedding_map_needs_a_curated_dataset(reported: dict) -> None:
    import fiftyone as fo

    bare = fo.Dataset("t-report-bare")
    try:
        with pytest.raises(LongtailError, match=r"dataset 't-report-bare' has no embedding map.*run `longtail curate`"):
            embedding_map(bare)
    finally:
        bare.delete()


def test_failure_mode_table_is_the_registry_open_first(reported: dict) -> None:
    root, ds = reported["root"], reported["dataset"]
    table = failure_mode_table(root)
    registry = load_registry(root)
    assert sorted(table["failure mode"]) == sorted(registry)
    assert table.status.tolist() == sorted(table.status, key=["open", "pending", "fixed"].index)
    row = table.set_index("failure mode").loc["hard_brake_events"]
    assert row.status == "open" and row.frames == len(registry["hard_brake_events"].query.to_view(ds)) > 0
    assert row.query == "trigger hard_braking" and row["discovered at"]
    assert table.set_index("failure mode").loc["night_pedestrians"].status == "pending"


def test_failure_mode_galleries_show_frames_of_each_open_mode(reported: dict) -> None:
    root, ds = reported["root"], reported["dataset"]
    shown = failure_mode_galleries(root, ds, limit=4)
    open_modes = [m for m in load_registry(root).values() if m.status == "open"]
    assert open_modes
    assert len(shown.frame_ids) == shown.html.count("<img ") == sum(min(m.count, 4) for m in open_modes)
    for mode in open_modes:
        assert f"({mode.name}): {mode.count} frames" in shown.html
    members = {fid for m in open_modes for fid in m.query.to_view(ds).values("frame_id")}
    assert set(shown.frame_ids) <= members
    assert shown._repr_html_() == shown.html


def test_gallery_escapes_captions_and_names_a_missing_frame(reported: dict) -> None:
    root = reported["root"]
    table = batch_table(root, reported["batch"])
    store = pd.read_parquet(root / "batches" / reported["batch"]["batch_id"] / "frames.parquet")
    frames = store.head(2).assign(caption=["<night & fog>", ""])
    g = gallery(root, frames, columns=2, title="two")
    assert g.html.count('<img src="data:image/jpeg;base64,') == 2 and "&lt;night &amp; fog&gt;" in g.html
    assert g.frame_ids == tuple(table.frame_id[:2])
    missing = frames.head(1).assign(store_path="frames/00/gone.jpg")
    with pytest.raises(InputError, match=rf"frames/00/gone.jpg: frame {missing.frame_id.iat[0]} is missing"):
        gallery(root, missing)


def test_batch_table_and_gallery_follow_the_order_of_choice(reported: dict) -> None:
    root, batch = reported["root"], reported["batch"]
    table = batch_table(root, batch)
    assert table.frame_id.tolist() == batch["frames"] and table["rank"].tolist() == list(range(BUDGET))
    assert table.reason.str.len().gt(0).all() and table.score.notna().all()
    assert table.triggers.map(lambda s: isinstance(s, str)).all()
    shown = batch_gallery(root, batch, limit=8)
    assert shown.frame_ids == tuple(batch["frames"][:8]) and shown.html.count("<img ") == 8
    assert f"#0: {table.reason.iat[0]}" in shown.html.replace("&#x27;", "'")
    summary = batch_summary(batch)["labeling batch"]
    assert summary["batch"] == batch["batch_id"] and summary["frames"] == BUDGET
    assert summary["candidates in the pool"] == len(reported["dataset"])
