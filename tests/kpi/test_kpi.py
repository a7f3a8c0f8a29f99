"""The KPI of a loop turn, from real-format inputs made with the stages' own writers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from longtail.catalog.failure_modes import FailureModeQuery, load_registry, record_breach, save_registry
from longtail.catalog.timeline import record_step
from longtail.errors import InputError
from longtail.evaluate.bootstrap import BootstrapConfig
from longtail.evaluate.run import EvalConfig, evaluate
from longtail.kpi import build_kpi, format_kpi, render_kpi_html, save_kpi
from longtail.kpi.build import compare_fleet_tests
from longtail.label.oracle import LabelingCost
from longtail.sim.fleet_metrics import compute_rates, empty_counts


def _box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 0.9) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


CAR, CAR2 = _box("car", 10, 10, 60, 40), _box("car", 150, 10, 200, 40)
PED, CYC = _box("pedestrian", 100, 20, 120, 80), _box("cyclist", 70, 30, 95, 80)
ROWS = [("c1", "test_common", [CAR, PED], ""), ("c2", "test_common", [CAR, CYC], ""),
        ("c3", "test_common", [PED], ""), ("l1", "test_longtail", [CAR, CAR2], "cut_ins"),
        ("l2", "test_longtail", [PED, CAR], ""), ("l3", "test_longtail", [CYC, PED], "")]
FRAMES = pd.DataFrame([{"frame_id": f, "split": s, "tags": [], "triggers": [], "fm_name": fm, "boxes": b,
                        "height": 192} for f, s, b, fm in ROWS])
PERFECT = {f: list(b) for f, _, b, _ in ROWS}
BLIND = {f: [b for b in boxes if b["category"] not in ("pedestrian", "cyclist") and f != "l1"]
         for f, boxes in PERFECT.items()}


def _evaluations(root: Path, new: dict[str, Any], old: dict[str, Any]) -> Path:
    """The challenger ``new`` against the champion ``old`` on the same frames, as evaluate writes it."""
    cfg = EvalConfig(bootstrap=BootstrapConfig(min_drives=1, min_objects=1, resamples=200))
    modes = load_registry(root)
    stats: dict[str, Any] = {}
    champion = evaluate(root / "v-00000000000000aa", old, FRAMES, modes, None, cfg, model="v1", stats_out=stats)
    path = root / "evaluations" / "v-00000000000000aa" / "run" / "evaluation.json"
    evaluate(root / "v-00000000000000aa", new, FRAMES, modes, champion, cfg, model="v2", champion_stats=stats,
             product=path)
    return path


def _fleet(root: Path, name: str, episodes: list[dict[str, int]], deployment: str) -> Path:
    """A fleet_test.json: one row per drive of the deployed arm (10 km each), as run_arm writes them."""
    drives = []
    for i, e in enumerate(episodes):
        counts = empty_counts()
        for metric, n in e.items():
            counts["none"][metric] = n
        drives.append({"drive_id": f"ft-{i:03d}", "seed": i, "km": 10.0, "frames": 100, "counts": counts})
    truth = [dict(d, counts=empty_counts()) for d in drives]
    results = {"format": "longtail.fleet_test/1", "reference": "truth", "drives": {"truth": truth, "deployed": drives},
               "deployment": {"deployment_id": deployment, "model": {"uri": f"models:/longtail-detector/{deployment}"}}}
    path = root / name / "fleet_test.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return path


def _label_set(root: Path, batch_id: str = "batch-0123456789abcdef") -> str:
    cost = LabelingCost(frames=40, accepted=90, moved=10, added=20, boxes=120, seconds=1234.5)
    folder = root / "labels" / batch_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({
        "batch_id": batch_id, "frames": 40, "accepted": 38, "held": 2, "cost": cost.as_dict(),
        "cost_without_prelabels": {**cost.as_dict(), "seconds": 4000.0}}))
    return batch_id


def _registry(root: Path) -> None:
    record_breach(root, "dark_cyclists", FailureModeQuery(tags_all=("night",)), title="Dark cyclists", description="",
                  examples=["f1"], evidence={"metric": "recall", "value": 0.2, "threshold": 0.5, "batch_id": "m1"},
                  by="monitor")
    modes = load_registry(root)
    m = modes["dark_cyclists"]
    modes["dark_cyclists"] = m.model_copy(update={"timeline": ({**m.timeline[0], "at": "2026-12-01T10:00:00+00:00"},)})
    save_registry(root, modes)
    for step, ref, at in (("mined", "batch-a", "2026-12-01T10:10:00+00:00"),
                          ("labeled", "batch-a", "2026-12-01T10:30:00+00:00"),
                          ("trained", "v-2/r", "2026-12-01T11:30:00+00:00"),
                          ("evaluated", "e.json", "2026-12-01T11:35:00+00:00"),
                          ("gated", "promoted 2", "2026-12-01T11:35:00+00:00"),
                          ("deployed", "d-2", "2026-12-01T11:45:00+00:00")):
        record_step(root, ["dark_cyclists"], step, ref, at=at)


GOOD = [{"disengagement": 3, "phantom_braking": 2, "missed_hazard": 1}] * 8
BETTER = [{"disengagement": 1, "phantom_braking": 0, "missed_hazard": 0}] * 8


def test_a_better_model_reads_fewer_beyond_its_interval_everywhere_it_is(tmp_path: Path) -> None:
    _registry(tmp_path)
    kpi = build_kpi(tmp_path, _fleet(tmp_path, "t1", GOOD, "d-1"), _fleet(tmp_path, "t2", BETTER, "d-2"),
                    _evaluations(tmp_path, PERFECT, BLIND), _label_set(tmp_path), n_boot=500)
    assert kpi["gate"]["promoted"] is True and kpi["gate"]["champion_after"] == "v2"
    total = next(r for r in kpi["critical"] if r["suite"] == "all" and r["group"] == "total")
    # BLIND misses 4 pedestrians, 2 cyclists and l1's 2 cut-in cars: 8 critical errors, in every drive.
    assert (total["before"], total["after"], total["diff"]) == (8, 0, -8)
    assert total["ci"][1] < 0 and total["verdict"] == "fewer beyond its interval"
    assert [r["suite"] for r in kpi["critical"] if r["group"] == "total"][:3] == ["all", "test_longtail", "test_common"]
    assert any(r["suite"] == "cut_ins" and r["kind"] == "failure_mode" for r in kpi["critical"])
    dis = next(m for m in kpi["fleet"]["metrics"] if m["metric"] == "disengagement")
    # 3 -> 1 per 10 km drive: 30 -> 10 per 100 km; every drive the same, so the interval is the point.
    assert (dis["before"], dis["after"], dis["diff"]) == (30.0, 10.0, -20.0)
    assert dis["ci"] == [-20.0, -20.0] and dis["verdict"] == "fewer beyond its interval"
    assert kpi["labeling"]["seconds"] == 1234.5 and kpi["labeling"]["seconds_per_frame"] == pytest.approx(30.86, 0.01)
    ttmu = kpi["time_to_model_update"][0]
    assert ttmu["failure_mode"] == "dark_cyclists" and ttmu["total_s"] == 6300 and ttmu["deployment"] == "d-2"
    assert [s["since_previous_s"] for s in ttmu["steps"]] == [0, 600, 1200, 3600, 300, 0, 600]
    assert kpi["headline"].startswith("The new model was promoted and deployed: critical false positives plus "
                                      "negatives 8 -> 0 (-8, fewer beyond its interval)")
    text = format_kpi(kpi)
    assert "disengagements" in text and "-20.00" in text and "1 h 45 min" in text


def test_a_worse_model_is_refused_and_the_report_says_why_and_that_the_fleet_ran_the_same_deployment(
        tmp_path: Path) -> None:
    kpi = build_kpi(tmp_path, _fleet(tmp_path, "t1", GOOD, "d-1"), _fleet(tmp_path, "t2", GOOD, "d-1"),
                    _evaluations(tmp_path, BLIND, PERFECT), None, n_boot=200)
    total = next(r for r in kpi["critical"] if r["suite"] == "all" and r["group"] == "total")
    assert total["diff"] == 8 and total["ci"][0] > 0 and total["verdict"] == "more beyond its interval"
    gate = kpi["gate"]
    assert gate["promote"] is False and gate["promoted"] is False and gate["champion_after"] == "v1"
    assert gate["reasons"] and kpi["headline"].startswith("The gate refused the new model, so the champion stays v1: "
                                                          "Do not promote v2")
    assert kpi["fleet"]["same_deployment"] is True and "same deployment (d-1)" in kpi["fleet"]["note"]
    assert all(m["diff"] == 0 and m["verdict"] == "inside its interval" for m in kpi["fleet"]["metrics"])
    text = format_kpi(kpi)
    assert "Why the gate refused it:" in text and gate["reasons"][0] in text and "same deployment" in text


def test_fleet_difference_matches_the_fleet_tests_own_paired_bootstrap() -> None:
    before = [{"km": 5.0 + i, "drive_id": f"d{i}", "counts": {**empty_counts(), "none": {
        **empty_counts()["none"], "disengagement": i % 3, "missed_hazard": i % 2}}} for i in range(12)]
    after = [{**d, "counts": {**empty_counts(), "none": {**empty_counts()["none"], "disengagement": (i + 1) % 2}}}
             for i, d in enumerate(before)]
    out = compare_fleet_tests({"drives": {"deployed": before}}, {"drives": {"deployed": after}}, n_boot=300, seed=7)
    _, paired = compute_rates({"v1": before, "v2": after}, "v1", n_boot=300, seed=7)
    for metric in ("disengagement", "missed_hazard"):
        ref = next(p for p in paired if p["scenario"] == "all" and p["metric"] == metric)
        mine = next(m for m in out["metrics"] if m["metric"] == metric)
        assert mine["diff"] == pytest.approx(ref["difference_per_100km"], abs=1e-3)
        assert mine["ci"] == pytest.approx([ref["ci_low"], ref["ci_high"]], abs=1e-3)


def test_bad_inputs_name_the_file_and_the_fix(tmp_path: Path) -> None:
    t1 = _fleet(tmp_path, "t1", GOOD, "d-1")
    t2 = _fleet(tmp_path, "t2", GOOD[:5], "d-1")
    ev = _evaluations(tmp_path, PERFECT, BLIND)
    with pytest.raises(InputError, match="not in both fleet tests; the two turns must drive the same seeds"):
        build_kpi(tmp_path, t1, t2, ev)
    with pytest.raises(InputError, match=r"missing; the turn's evaluation is needed .* run the evaluate task"):
        build_kpi(tmp_path, t1, t1, tmp_path / "nope.json")
    with pytest.raises(InputError, match=r"labels/batch-x/manifest\.json: missing; the turn's label set"):
        build_kpi(tmp_path, t1, t1, ev, "batch-x")


def test_the_report_opens_offline_in_chromium_decision_first(tmp_path: Path, chromium) -> None:  # type: ignore[no-untyped-def]
    _registry(tmp_path)
    kpi = build_kpi(tmp_path, _fleet(tmp_path, "t1", GOOD, "d-1"), _fleet(tmp_path, "t2", GOOD, "d-1"),
                    _evaluations(tmp_path, BLIND, PERFECT), _label_set(tmp_path), n_boot=200)
    saved = save_kpi(kpi, tmp_path / "kpi.json")
    assert json.loads(saved.read_text())["headline"] == kpi["headline"]
    path = render_kpi_html(kpi, tmp_path / "reports" / "kpi.html")
    text = path.read_text()
    assert "<script src=" not in text
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"network: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=30_000)
    assert page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.trace'))")
    sections = page.evaluate("[...document.querySelectorAll('body > section')].map(s => s.id)")
    assert sections == ["decision", "critical", "fleet", "labeling", "time-to-update"]
    first = page.evaluate("document.querySelector('#decision').innerText")
    assert "The gate refused the new model" in first and "Do not promote v2" in first
    assert "same deployment" in page.evaluate("document.querySelector('#fleet').innerText")
    assert problems == []
    page.close()
