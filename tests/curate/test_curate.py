"""The curated FiftyOne dataset on a simulated fleet: fields, tags, failure modes, enrichment, increments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from longtail.catalog.failure_modes import UnknownFailureModeError, load_registry, register_failure_mode
from longtail.catalog.frames import load_frame_index
from longtail.curate.embeddings import MissingFrameError
from longtail.curate.run import CurateConfig, list_batches, make_pool, run_curate, run_select
from longtail.curate.select import BudgetError, SelectConfig, select_frames
from longtail.errors import LongtailError
from longtail.ingest.ingest import ingest


@pytest.fixture(scope="module")
def curated(curate_fleet: dict) -> dict:
    """The whole fleet curated once into dataset ``t-fleet`` (read-only for the tests below)."""
    import fiftyone as fo

    root = curate_fleet["root"]
    manifest = run_curate(root, CurateConfig(dataset="t-fleet"))
    return {"root": root, "manifest": manifest, "dataset": fo.load_dataset("t-fleet"), "truth": curate_fleet["truth"]}


def _with_truth(frame: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    out = frame.merge(truth, on=["drive_id", "timestamp_ns"], how="left", validate="one_to_one")
    assert out["scenario"].notna().all(), "every frame maps to the simulator's ground truth"
    out["critical"] = out["scenario"] != ""
    return out


def test_dataset_has_every_frame_with_its_fields(curated: dict) -> None:
    ds, root = curated["dataset"], curated["root"]
    index = load_frame_index(root)
    assert len(ds) == len(index) == curated["manifest"]["samples"]
    assert sorted(ds.values("frame_id")) == sorted(index.frame_id)
    sample = ds.match({"triggers": {"$size": 2}}).first() if len(ds.match({"triggers": {"$size": 2}})) else \
        ds.match({"triggers.0": {"$exists": True}}).first()
    assert sample.triggers and all(f"trigger:{t}" in sample.tags for t in sample.triggers)
    assert sample.signals.speed_mps is not None and sample.signals.decel_mps2 is not None
    assert sample.metadata.width == 320 and sample.metadata.height == 192
    assert Path(sample.filepath).is_file()
    assert {"uniqueness", "similarity", "embedding_map"} <= set(ds.list_brain_runs())
    u = np.array(ds.values("uniqueness"))
    assert np.isfinite(u).all() and u.min() >= 0 and u.max() <= 1 and u.std() > 0


def test_image_tags_against_the_simulator_conditions(curated: dict) -> None:
    ds = curated["dataset"]
    frame = pd.DataFrame({"drive_id": ds.values("drive_id"), "timestamp_ns": ds.values("timestamp_ns"),
                          "tags": ds.values("tags")})
    frame = _with_truth(frame, curated["truth"])
    report = {}
    for tag, truth in (("night", frame.time_of_day == "night"), ("fog", frame.weather == "fog"),
                       ("rain", frame.weather == "rain")):
        pred = frame.tags.map(lambda t, tag=tag: tag in t)
        report[tag] = ((pred & truth).sum() / max(pred.sum(), 1), (pred & truth).sum() / truth.sum())
    print("image tags (precision, recall):", {k: tuple(round(x, 3) for x in v) for k, v in report.items()})
    assert report["night"][0] >= 0.95 and report["night"][1] >= 0.95
    assert report["fog"][0] >= 0.9 and report["fog"][1] >= 0.8
    # This fleet's camera is 320 px wide: too coarse to tell rain streaks, so no frame is tagged rain
    # (test_tags.py measures rain on 640 px frames).
    assert not frame.tags.map(lambda t: "rain" in t).any()


def test_failure_modes_are_discovered_and_saved_as_views(curated: dict) -> None:
    ds, root = curated["dataset"], curated["root"]
    modes = load_registry(root)
    hard = modes["hard_brake_events"]
    assert hard.status == "open" and hard.count > 0 and hard.first_count == hard.count
    assert hard.discovered_at and hard.discovered_by == "query: trigger hard_braking"
    assert [(e["step"], e["ref"], e["at"]) for e in hard.timeline] == [("discovered", hard.discovered_by,
                                                                        hard.discovered_at)]
    assert set(hard.examples) <= set(ds.values("frame_id")) and hard.examples
    assert modes["night_pedestrians"].status == "pending"  # needs a model's predictions
    assert "fm-hard-brake-events" in ds.list_saved_views()
    view = ds.load_saved_view("fm-hard-brake-events")
    assert len(view) == hard.count and all("hard_braking" in t for t in view.values("triggers"))


def test_longtail_batch_is_ten_times_richer_in_critical_frames_than_random(curated: dict) -> None:
    ds, root = curated["dataset"], curated["root"]
    pool, vectors, labeled = make_pool(root, ds)
    pool = _with_truth(pool, curated["truth"])
    budget = round(0.02 * len(pool))
    base = pool.critical.mean()

    def share(selector: str, seed: int = 0) -> float:
        picks = select_frames(pool, vectors, SelectConfig(budget=budget, selector=selector, seed=seed), labeled)
        return float(pool.set_index("frame_id").loc[picks.frame_id].critical.mean())

    longtail = share("longtail")
    random = float(np.mean([share("random", s) for s in range(20)]))
    unique = share("uniqueness")
    print(f"pool {len(pool)} frames, {base:.2%} critical; budget {budget}: longtail {longtail:.1%} "
          f"({longtail / base:.1f}x), random {random:.1%} ({random / base:.1f}x), uniqueness {unique:.1%} "
          f"({unique / base:.1f}x)")
    assert 0 < base < 0.1
    assert longtail / base >= 10
    assert longtail >= 10 * random
    assert longtail > unique


def test_adding_a_drive_adds_only_its_frames_and_rerunning_changes_nothing(curate_fleet: dict, tmp_path: Path) -> None:
    import fiftyone as fo

    root = tmp_path / "data"
    logs = curate_fleet["logs"]
    ingest(logs[:2], root, progress=False)
    first = run_curate(root, CurateConfig(dataset="t-increment"))
    ds = fo.load_dataset("t-increment")
    before = dict(zip(ds.values("frame_id"), ds.values("last_modified_at"), strict=True))

    ingest([logs[2]], root, progress=False)
    new_frames = len(load_frame_index(root)) - first["samples"]
    second = run_curate(root, CurateConfig(dataset="t-increment"))
    assert second["added"] == new_frames > 0 and second["samples"] == first["samples"] + new_frames
    after = dict(zip(ds.values("frame_id"), ds.values("last_modified_at"), strict=True))
    # Existing samples were not rewritten, apart from the brain's refreshed uniqueness.
    assert set(before) < set(after)

    ds.reload()
    snapshot = (dict(zip(ds.values("frame_id"), ds.values("last_modified_at"), strict=True)),
                (root / "curate" / "manifest.json").read_bytes(), (root / "curate" / "failure_modes.json").read_bytes(),
                sorted(ds.list_saved_views()), {k: ds.get_brain_info(k).timestamp for k in ds.list_brain_runs()})
    third = run_curate(root, CurateConfig(dataset="t-increment"))
    assert third["added"] == 0
    ds.reload()
    now = (dict(zip(ds.values("frame_id"), ds.values("last_modified_at"), strict=True)),
           (root / "curate" / "manifest.json").read_bytes(), (root / "curate" / "failure_modes.json").read_bytes(),
           sorted(ds.list_saved_views()), {k: ds.get_brain_info(k).timestamp for k in ds.list_brain_runs()})
    for what, a, b in zip(("samples", "manifest", "registry", "saved views", "brain runs"), snapshot, now, strict=True):
        assert a == b, f"re-running curate changed the {what}"


def test_an_index_pointing_at_missing_frames_is_refused_and_the_dataset_unchanged(curate_fleet: dict,
                                                                                  tmp_path: Path) -> None:
    import fiftyone as fo

    root = tmp_path / "data"
    logs = curate_fleet["logs"]
    ingest(logs[:1], root, progress=False)
    run_curate(root, CurateConfig(dataset="t-missing"))
    ds = fo.load_dataset("t-missing")
    ids = sorted(ds.values("frame_id"))
    ingest([logs[3]], root, progress=False)
    index = load_frame_index(root)
    victim = index[~index.frame_id.isin(ids)].iloc[5]
    (root / victim.store_path).unlink()
    with pytest.raises(MissingFrameError, match=rf"index/frames/{victim.log_id}\.parquet: frame {victim.frame_id} "
                                                r"points at .*not in the frame store; nothing was added\. Re-ingest"):
        run_curate(root, CurateConfig(dataset="t-missing"))
    assert sorted(ds.values("frame_id")) == ids


def test_select_writes_a_labeling_batch_and_refuses_bad_requests(curate_fleet: dict, fresh_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import fiftyone as fo
    import pyarrow.parquet as pq

    from longtail.schemas import validate_labeling_batch

    root = fresh_root(curate_fleet["root"])
    run_curate(root, CurateConfig(dataset="t-select"))
    ds = fo.load_dataset("t-select")
    n = len(ds)

    with pytest.raises(BudgetError, match=rf"budget {n + 1} is larger than the pool of {n} "):
        run_select(root, SelectConfig(budget=n + 1), "t-select")
    with pytest.raises(UnknownFailureModeError, match=r"unknown failure mode\(s\) \['nope'\].*known: \[.*'cut_ins'"):
        run_select(root, SelectConfig(budget=5), "t-select", failure_modes=["nope"])
    assert list_batches(root) == [] and "labeling_batch" not in ds.get_field_schema()

    manifest = run_select(root, SelectConfig(budget=30), "t-select")
    folder = root / "batches" / manifest["batch_id"]
    table = pq.read_table(folder / "frames.parquet")
    validate_labeling_batch(json.loads((folder / "manifest.json").read_text()), table, str(folder))
    assert len(manifest["frames"]) == 30 and manifest["pool"]["frames"] == n
    assert manifest["lineage"]["logs"] and all(r for r in table.column("reason").to_pylist())
    assert all((root / p).is_file() for p in table.column("store_path").to_pylist())
    assert sorted(ds.match({"labeling_batch": manifest["batch_id"]}).values("frame_id")) == sorted(manifest["frames"])
    assert manifest["batch_id"] in ds.list_saved_views()

    # The failure modes the batch mined (its frames' fm_name) record it on their timelines.
    mined = {n for n in table.column("fm_name").to_pylist() if n}
    assert mined, "the long-tail selector mines open failure modes"
    steps = {n: [(e["step"], e["ref"]) for e in m.timeline] for n, m in load_registry(root).items()}
    assert {n for n, s in steps.items() if ("mined", manifest["batch_id"]) in s} == mined

    again = run_select(root, SelectConfig(budget=30), "t-select")  # same pool, same config: the same batch
    assert again["batch_id"] == manifest["batch_id"] and len(list_batches(root)) == 1
    assert {n: [(e["step"], e["ref"]) for e in m.timeline] for n, m in load_registry(root).items()} == steps

    nxt = run_select(root, SelectConfig(budget=10), "t-select")  # frames already batched leave the pool
    assert nxt["pool"]["frames"] == n - 30 and not set(nxt["frames"]) & set(manifest["frames"])


def test_failure_mode_registry_takes_user_queries_and_rejects_bad_ones(curated: dict, tmp_path: Path) -> None:
    root = tmp_path / "reg"
    mode = register_failure_mode(root, "night_trucks", {"tags_all": ["night"], "vehicle_type": "truck"},
                                 description="trucks at night")
    assert mode.status == "pending" and mode.query.describe() == "tags night; recorded by a truck"
    view = mode.query.to_view(curated["dataset"])
    assert len(view) > 0 and set(view.values("vehicle_type")) == {"truck"}
    with pytest.raises(LongtailError, match="already in"):
        register_failure_mode(root, "night_trucks", {"tags_all": ["night"]})
    with pytest.raises(LongtailError, match=r"unknown signal\(s\) \['sped'\].*valid signals are"):
        register_failure_mode(root, "fast", {"signals": {"sped": [30, None]}})
    with pytest.raises(LongtailError, match="failure mode name 'Bad Name'"):
        register_failure_mode(root, "Bad Name", {})
