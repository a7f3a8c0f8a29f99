"""Monitoring end to end on a tiny simulated fleet: a first week trains the champion (a dataset
version of its drives), a second week of the same mix raises no breach, a week of night
and rain does and opens a failure mode that curation mines; a challenger runs in shadow; the
report opens in headless Chromium with the breach first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from monitor_helpers import NIGHT_AND_RAIN, TRAINING_MIX, register_detector, simulate_week, week_config, write_version

from longtail.catalog.failure_modes import load_registry
from longtail.catalog.monitoring import list_monitoring_records, load_monitor_triggers
from longtail.catalog.root import DataRoot
from longtail.config import MonitorConfig
from longtail.errors import InputError
from longtail.monitor.run import run_monitor

CONFIG = MonitorConfig(predict_frames=40, permutations=200)


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("monitor")
    root = base / "data"
    week1 = simulate_week(week_config(1, TRAINING_MIX), base / "week1", root)
    version = write_version(root, week1)
    champion = register_detector(root, seed=0, version_id=version, champion=True)
    challenger = register_detector(root, seed=1, version_id=version, champion=False)
    week2 = simulate_week(week_config(2, TRAINING_MIX), base / "week2", root)
    same = run_monitor(root, CONFIG)
    week3 = simulate_week(week_config(3, NIGHT_AND_RAIN), base / "week3", root)
    shifted = run_monitor(root, CONFIG)
    return {"root": root, "week1": week1, "week2": week2, "week3": week3, "version": version, "same": same,
            "shifted": shifted, "champion": champion, "challenger": challenger}


def test_a_week_of_the_training_mix_raises_no_breach(weeks: dict) -> None:
    rec = weeks["same"]
    assert sorted(rec["logs"]) == sorted(weeks["week2"])  # the batch: the logs ingested since, not week 1's
    assert rec["reference"]["version_id"] == weeks["version"] and rec["champion"]["version"] == weeks["champion"]
    drift = rec["drift"]
    assert drift["status"] == "evaluated" and drift["unit"] == "drive" and drift["drives_batch"] == 12
    assert drift["mmd"]["p_value"] > CONFIG.mmd_p_min and drift["domain"]["auc"] < CONFIG.domain_auc_max
    assert rec["breaches"] == [] and rec["failure_modes"] == []
    saved = json.loads(DataRoot.of(weeks["root"]).monitoring_record(rec["batch_id"]).read_text())
    assert saved == rec


def test_a_week_of_night_and_rain_raises_a_breach_that_opens_a_failure_mode(weeks: dict) -> None:
    rec = weeks["shifted"]
    assert sorted(rec["logs"]) == sorted(weeks["week3"])
    mix = rec["mix"]["time_of_day"]
    assert mix["batch"].get("night", 0) / sum(mix["batch"].values()) > 0.5 > \
        mix["reference"].get("night", 0) / sum(mix["reference"].values())
    metrics = {b["metric"] for b in rec["breaches"]}
    assert metrics & {"domain_auc", "mmd_p"}, rec["drift"]
    assert rec["failure_modes"] == ["distribution_shift"]
    mode = load_registry(weeks["root"])["distribution_shift"]
    assert mode.status == "open" and mode.query.triggers_any == ("distribution_shift",)
    assert {e["batch_id"] for e in mode.evidence} == {rec["batch_id"]}
    assert {e["metric"] for e in mode.evidence} == metrics & {"domain_auc", "mmd_p"}
    assert all({"value", "threshold", "rule"} <= set(e) for e in mode.evidence)
    # The example frames are the batch's, and they are marked for curation.
    table = pq.read_table(DataRoot.of(weeks["root"]).monitor_triggers(rec["batch_id"])).to_pandas()
    marked = set(table.loc[table["trigger"] == "distribution_shift", "frame_id"])
    breach = next(b for b in rec["breaches"] if b["failure_mode"] == "distribution_shift")
    assert set(mode.examples) <= marked == set(breach["examples"]) and len(marked) == CONFIG.examples
    assert set(table["log_id"]) <= set(weeks["week3"])


def test_shadow_disagreements_are_recorded_counted_and_become_a_trigger(weeks: dict) -> None:
    from longtail.catalog.frames import load_frame_index
    from longtail.detector.predict import predict_frames
    from longtail.detector.registry import champion_model_uri, load_champion
    from longtail.monitor.predictions import at_operating_point
    from longtail.monitor.run import run_shadow

    for rec in (weeks["same"], weeks["shifted"]):
        shadow = rec["shadow"]
        assert rec["challenger"]["version"] == weeks["challenger"] and shadow["frames"] == CONFIG.predict_frames
        assert shadow["disagreements"] > 0
        assert shadow["per_1000"] == pytest.approx(1000 * shadow["disagreements"] / shadow["frames"])
        table = pq.read_table(DataRoot.of(weeks["root"]).monitor_triggers(rec["batch_id"])).to_pandas()
        rows = table[table["trigger"] == "shadow_disagreement"]
        assert len(rows) == shadow["disagreements"] and (rows["score"] >= 1).all()
        assert rows["detail"].str.contains("seen by the (?:champion|challenger) only|far apart").all()
    # The champion in shadow of itself agrees on every frame.
    root = weeks["root"]
    index = load_frame_index(root)
    frames = index[index["log_id"].isin(weeks["week2"]) & index["keyframe"]].head(10)
    model, meta = load_champion(root)  # type: ignore[misc]
    kept = at_operating_point(predict_frames(model, root, frames, score_threshold=0.1, path_column="store_path"),
                              meta["thresholds"])
    assert sum(len(b) for b in kept.values()) > 0
    _, itself, found = run_shadow(root, champion_model_uri(root), None, frames, kept, CONFIG, False)
    assert itself["disagreements"] == 0 and found == []


def test_each_batch_is_monitored_once_and_training_logs_are_not_a_batch(weeks: dict) -> None:
    root = weeks["root"]
    assert run_monitor(root, CONFIG) is None  # nothing new
    assert run_monitor(root, CONFIG, log_ids=weeks["week2"]) == weeks["same"]  # the same logs, the same record
    assert [r["batch_id"] for r in list_monitoring_records(root)] == [weeks["same"]["batch_id"],
                                                                       weeks["shifted"]["batch_id"]]
    with pytest.raises(InputError, match="belong to dataset version"):
        run_monitor(root, CONFIG, log_ids=weeks["week1"][:1])


def test_curation_takes_the_monitor_triggers_and_mines_the_failure_mode(weeks: dict) -> None:
    from longtail.catalog.db import open_dataset
    from longtail.catalog.failure_modes import discover_failure_modes
    from longtail.curate.dataset import add_new_frames, load_pool_fields, sync_monitor_triggers
    from longtail.curate.select import compute_trigger_priority

    root = weeks["root"]
    marked = load_monitor_triggers(root)
    ds = open_dataset(root, "t-monitor", create=True)
    add_new_frames(root, ds)
    pool = load_pool_fields(ds).set_index("frame_id")
    for fid, triggers in marked.items():
        assert set(triggers) <= set(pool.at[fid, "triggers"])
        assert {f"trigger:{t}" for t in triggers} <= set(pool.at[fid, "tags"])
    shadow = [f for f, t in marked.items() if "shadow_disagreement" in t]
    assert (compute_trigger_priority(pool.loc[shadow].reset_index()) > 0).all()
    modes = discover_failure_modes(root, ds)
    drift_frames = sum("distribution_shift" in t for t in marked.values())
    assert modes["distribution_shift"].status == "open" and modes["distribution_shift"].count == drift_frames
    # Frames that were in the dataset before the monitor marked them get its triggers on the next curation.
    some = shadow[:3]
    view = ds.select_by("frame_id", some, ordered=True)
    view.set_values("triggers", [[] for _ in some])
    assert sync_monitor_triggers(root, ds) == 3
    assert all("shadow_disagreement" in t for t in ds.select_by("frame_id", some).values("triggers"))
    assert sync_monitor_triggers(root, ds) == 0
    ds.delete()


def test_report_opens_offline_in_chromium_with_the_open_breach_first(weeks: dict, chromium, tmp_path: Path
                                                                     ) -> None:  # type: ignore[no-untyped-def]
    from longtail.monitor.report import render_report

    summary = render_report(weeks["root"], tmp_path / "monitoring.html")
    assert summary.figures == 7 and summary.open_breaches >= 1
    text = summary.path.read_text()
    assert "<script src=" not in text and "cdn.plot.ly" not in text.split("<script")[0]
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"network: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
    page.goto(summary.path.as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7", timeout=30_000)
    assert page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.trace'))")
    first = page.evaluate("[document.body.firstElementChild.id, document.body.firstElementChild.innerText]")
    assert first[0] == "breaches" and "open breach" in first[1] and "distribution_shift" in first[1]
    assert weeks["shifted"]["batch_id"][3:11] in first[1] and weeks["same"]["batch_id"][3:11] not in first[1]
    sections = page.evaluate("[...document.querySelectorAll('body > section')].map(s => s.id)")
    assert sections == ["breaches", "latest", "trends", "predictions", "batches", "failure-modes"]
    assert page.locator("pre, code, script[src], link[href]").count() == 0
    assert problems == []
    page.close()


def test_cli_monitor_says_nothing_is_new_and_writes_the_report(weeks: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from longtail.cli import main

    assert main(["monitor", "--root", str(weeks["root"]), "--target", "ci", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch_id"] is None and out["open_breaches"] >= 1
    assert Path(out["report"]) == DataRoot.of(weeks["root"]).reports / "monitoring.html"
    assert Path(out["report"]).is_file()
