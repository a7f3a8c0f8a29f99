"""The evaluate stage on a hand-made labels table; champion vs challenger; the promotion decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from longtail.catalog.failure_modes import load_registry
from longtail.errors import InputError, SchemaError
from longtail.evaluate.bootstrap import BootstrapConfig
from longtail.evaluate.compare import relative_change
from longtail.evaluate.gate import GateConfig, Targets, assess_targets, decide
from longtail.evaluate.run import EvalConfig, evaluate, load_evaluation, select_example_frames


def _box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


def _row(fid: str, split: str, tags: list[str], boxes: list[dict[str, Any]], fm_name: str = "") -> dict[str, Any]:
    return {"frame_id": fid, "split": split, "tags": tags, "triggers": [], "fm_name": fm_name, "boxes": boxes,
            "height": 192}


CAR, CAR2 = _box("car", 10, 10, 60, 40), _box("car", 150, 10, 200, 40)
PED, CYC = _box("pedestrian", 100, 20, 120, 80), _box("cyclist", 70, 30, 95, 80)
FRAMES = pd.DataFrame([
    _row("c1", "test_common", [], [CAR, PED]),
    _row("c2", "test_common", ["night"], [CAR, CYC]),
    _row("l1", "test_longtail", [], [CAR, CAR2], fm_name="cut_ins"),   # a cut-in frame: its cars are critical
    _row("l2", "test_longtail", ["night", "glare"], [PED, CAR]),
    _row("t1", "train", [], [CAR]),
])
GT = dict(zip(FRAMES["frame_id"], FRAMES["boxes"], strict=True))
PERFECT = {f: [dict(b, score=0.9) for b in boxes] for f, boxes in GT.items() if f != "t1"}


def _without(preds: dict[str, list[dict[str, Any]]], frame: str, category: str) -> dict[str, list[dict[str, Any]]]:
    """Predictions with the first ``category`` box of ``frame`` removed (a miss)."""
    out = {f: list(b) for f, b in preds.items()}
    i = next(i for i, b in enumerate(out[frame]) if b["category"] == category)
    del out[frame][i]
    return out


def _with(preds: dict[str, list[dict[str, Any]]], frame: str, box: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out = {f: list(b) for f, b in preds.items()}
    out[frame] = [*out[frame], box]
    return out


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    modes = load_registry(tmp_path)

    stats: dict[int, dict[str, Any]] = {}  # id(evaluation) -> its per-frame statistics, for paired gates

    def go(preds: dict[str, list[dict[str, Any]]], champion: dict[str, Any] | None = None, model: str = "m",
           **cfg: Any) -> dict[str, Any]:
        # One frame per drive and a handful of objects: measurable only with the limits at 1.
        cfg.setdefault("bootstrap", BootstrapConfig(min_drives=1, min_objects=1, resamples=50))
        out: dict[str, Any] = {}
        ev = evaluate(tmp_path / "v-00000000000000aa", preds, FRAMES, modes, champion, EvalConfig(**cfg), model=model,
                      champion_stats=None if champion is None else stats[id(champion)], stats_out=out)
        stats[id(ev)] = out
        return ev

    go.stats = stats  # type: ignore[attr-defined]

    return go


def test_evaluation_counts_critical_errors_per_group(run) -> None:  # type: ignore[no-untyped-def]
    # Miss c1's pedestrian and a cut-in car; add a cyclist false positive; a missed car outside a cut-in frame
    # is not critical.
    preds = _without(_without(_without(PERFECT, "c1", "pedestrian"), "l1", "car"), "c2", "car")
    preds = _with(preds, "c1", _box("cyclist", 250, 100, 270, 150, 0.8))
    ev = run(preds)
    assert ev["frames"] == 4 and ev["cut_in_frames"] == ["l1"]  # t1 (train) is not evaluated
    assert {g: {k: v[k] for k in ("fp", "fn", "errors")} for g, v in ev["critical"].items()} == {
        "pedestrian": {"fp": 0, "fn": 1, "errors": 1}, "cyclist": {"fp": 1, "fn": 0, "errors": 1},
        "cut_in_vehicle": {"fp": 0, "fn": 1, "errors": 1}, "total": {"fp": 1, "fn": 2, "errors": 3}}
    # Intervals over the four drives (one frame each): one cyclist FP in one drive -> 0 to 3 of them drawn.
    assert ev["critical"]["pedestrian"]["fp_ci"] == [0.0, 0.0]
    assert 0.0 <= ev["critical"]["cyclist"]["fp_ci"][0] <= 1.0 <= ev["critical"]["cyclist"]["fp_ci"][1] <= 4.0
    assert ev["overall"]["per_class"]["car"]["fn"] == 2
    assert ev["slices"]["suite:test_longtail"]["frames"] == 2 and ev["slices"]["suite:test_longtail"]["objects"] == 4
    assert ev["frame_errors"]["c1"] == {"fp": {"cyclist": 1}, "fn": {"pedestrian": 1}}
    assert [f for f, _ in select_example_frames(ev)] == ["c1", "l1"]  # c2's miss is a car outside a cut-in


def test_first_model_is_judged_on_the_sanity_floors_and_its_missed_targets_are_listed(run) -> None:  # type: ignore[no-untyped-def]
    ev = run(PERFECT)
    assert ev["comparison"] is None
    d = ev["decision"]
    assert d["promote"] is True and d["headline"] == "Promote m to first champion: it passes the sanity floors"
    assert "no champion yet" in " ".join(d["reasons"])
    assert all(f["passed"] for f in d["evidence"]["sanity"])
    statuses = {s["name"]: s["status"] for s in ev["suites"]}
    assert statuses["test_common"] == statuses["test_longtail"] == statuses["cut_ins"] == "passed"
    assert statuses["disengagements"] == "no_data"
    # Nothing predicted on the long-tail frames: suites fail, but the floors hold, so it becomes the first
    # champion and the decision lists the targets it misses.
    bad = run({f: b for f, b in PERFECT.items() if f.startswith("c")})
    assert bad["decision"]["promote"] is True
    missed = {t["target"]: t["status"] for t in bad["decision"]["evidence"]["targets"] if t["status"] != "met"}
    assert missed["suite test_longtail (map50)"] == "not met"
    assert bad["decision"]["headline"].endswith("target(s) not yet met")
    # No pedestrian found anywhere: pedestrian AP 0 is below its 0.05 floor, and the refusal names it.
    blind = _without(_without(PERFECT, "c1", "pedestrian"), "l2", "pedestrian")
    refused = run(blind)["decision"]
    assert refused["promote"] is False
    assert refused["headline"] == ("Do not promote m: sanity floor pedestrian AP@0.5: 0.000 [0.000, 0.000] "
                                   "against the floor 0.050 (not reached)")


def test_better_challenger_is_promoted(run) -> None:  # type: ignore[no-untyped-def]
    champion = run(_without(PERFECT, "l2", "pedestrian"), model="old")
    ev = run(PERFECT, champion, model="new")
    kpi = ev["comparison"]["kpi"]
    assert (kpi["fn"]["champion"], kpi["fn"]["challenger"], kpi["fn"]["relative_change"]) == (1, 0, -1.0)
    assert kpi["fp"]["relative_change"] == 0.0
    d = ev["decision"]
    assert d["promote"] is True
    assert d["headline"] == "Promote new over old: critical errors 1 -> 0, no suite worse beyond its interval"
    c = d["evidence"]["critical"]
    assert (c["champion"], c["challenger"], c["diff"]) == (1, 0, -1)
    # One drive of four holds the only error: a resample draws it 0 to 4 times, so the difference's
    # interval reaches 0 and the reduction is reported as inside its interval.
    assert c["ci"][0] <= -1.0 and c["ci"][1] == 0.0 and c["reduction_beyond_interval"] is False
    assert "the reduction is inside its interval" in " ".join(d["reasons"])
    rows = {r["metric"]: r for r in ev["comparison"]["rows"]}
    assert rows["critical/pedestrian/fn"] == {"metric": "critical/pedestrian/fn", "challenger": 0.0, "champion": 1.0,
                                              "delta": -1.0, "better": True}


def test_a_challenger_worse_on_a_suite_beyond_its_interval_is_refused_with_the_suite_named(run) -> None:  # type: ignore[no-untyped-def]
    champion = run(PERFECT, model="old")
    # Every car missed, in every frame: each resample of drives sees test_common lose its car AP, so the
    # paired difference's interval lies wholly below 0.
    no_cars = {f: [b for b in boxes if b["category"] != "car"] for f, boxes in PERFECT.items()}
    worse = run(no_cars, champion, model="new")
    paired = (run.stats[id(worse)], run.stats[id(champion)])
    lenient = decide(worse, champion, GateConfig(require_critical_reduction=False), BootstrapConfig(resamples=50),
                     paired=paired)
    assert lenient.promote is False
    assert lenient.headline.startswith("Do not promote new: suite test_common is worse: 1.000 -> 0.667")
    row = next(r for r in lenient.evidence["suites"] if r["suite"] == "test_common")
    assert row["ci"][1] < 0 and row["method"] == "paired bootstrap over drives"
    # Without the per-frame statistics (read back from evaluation.json), the same comparison goes unpaired.
    unpaired = decide(worse, champion, GateConfig(require_critical_reduction=False))
    assert not unpaired.promote and unpaired.evidence["suites"][0]["method"].startswith("challenger's interval")


def test_a_challenger_whose_critical_errors_do_not_fall_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    champion = run(PERFECT, model="old")
    worse = run(_with(PERFECT, "c2", _box("cyclist", 250, 100, 270, 150, 0.6)), champion, model="new")
    d = worse["decision"]
    assert d["promote"] is False
    assert d["headline"].startswith("Do not promote new: critical false positives plus negatives 0 -> 1 (+1, 95% "
                                    "interval [")
    assert d["headline"].endswith("): they did not fall")


def test_targets_are_met_not_met_or_inside_their_interval() -> None:
    pc = {"gt": 10, "tp": 6, "recall": 0.6, "recall_ci": [0.4, 0.8]}
    evaluation = {"overall": {"per_class": {
        "car": {"gt": 50, "ap50": 0.9, "ap50_ci": [0.86, 0.93]},
        "truck": {"gt": 20, "ap50": 0.62, "ap50_ci": [0.5, 0.7]},
        "cyclist": {"gt": 8, "ap50": 0.3, "ap50_ci": [0.2, 0.45], "tp": 4, "recall": 0.5, "recall_ci": [0.3, 0.55]},
        "pedestrian": {**pc, "ap50": 0.3, "ap50_ci": [0.25, 0.34]}}},
        "suites": [{"name": "cut_ins", "metric": "map50", "threshold": 0.5, "value": None, "ci": None,
                    "status": "not_measurable"}]}
    rows = {r["target"]: (r["status"], r["ci"]) for r in assess_targets(evaluation, Targets())}
    assert rows["car AP@0.5"][0] == "met"                      # low end 0.86 >= 0.85
    assert rows["truck AP@0.5"][0] == "inside the interval"    # 0.5 < 0.6 <= 0.7
    assert rows["pedestrian AP@0.5"][0] == "not met"           # high end 0.34 < 0.35
    assert rows["pedestrian recall at its operating threshold"] == ("inside the interval", [0.4, 0.8])
    assert rows["cyclist recall at its operating threshold"] == ("not met", [0.3, 0.55])  # 0.55 < 0.6
    assert rows["suite cut_ins (map50)"] == ("not measurable", None)


def test_relative_change_edge_cases() -> None:
    assert relative_change(3, 2) == 0.5 and relative_change(0, 0) == 0.0 and relative_change(1, 0) is None


def test_evaluation_json_round_trip_and_bad_input(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    product = tmp_path / "out" / "evaluation.json"
    ev = evaluate(tmp_path / "v-00000000000000aa", PERFECT, FRAMES, (), product=product)
    assert load_evaluation(product) == json.loads(json.dumps(ev))
    product.write_text(json.dumps({"format": "x"}))
    with pytest.raises(SchemaError, match="evaluation lacks key"):
        load_evaluation(product)
    with pytest.raises(InputError, match="not in version v-00000000000000aa \\(first: 'nope'\\)"):
        evaluate(tmp_path / "v-00000000000000aa", {"nope": []}, FRAMES)
    with pytest.raises(InputError, match=r"labels\.parquet: missing"):
        evaluate(tmp_path / "v-00000000000000aa", {})


def test_critical_errors_are_compared_per_suite_and_group_paired_over_drives(run) -> None:  # type: ignore[no-untyped-def]
    # Every critical object missed in every drive (pedestrians, cyclists, l1's cut-in cars): each resample of
    # drives sees the perfect model make fewer critical errors, so the interval lies wholly below 0; swapped
    # round, wholly above.
    blind = {f: [b for b in boxes if b["category"] not in ("pedestrian", "cyclist") and f != "l1"]
             for f, boxes in PERFECT.items()}
    old = run(blind, model="old")
    assert old["critical_comparison"] is None  # no champion: nothing to compare
    new = run(PERFECT, old, model="new")
    cc = new["critical_comparison"]
    assert set(cc) >= {"all", "test_common", "test_longtail", "cut_ins"}
    total = cc["all"]["total"]
    assert (total["champion"], total["challenger"], total["diff"]) == (5, 0, -5)  # 2 peds, 1 cyclist, 2 cut-in cars
    assert total["ci"][1] < 0 and total["verdict"] == "fewer beyond its interval"
    assert cc["test_longtail"]["cut_in_vehicle"]["diff"] == -2
    assert cc["test_common"]["cut_in_vehicle"] == {"challenger": 0, "champion": 0, "diff": 0, "ci": [0.0, 0.0],
                                                   "verdict": "inside its interval"}
    worse = run(blind, run(PERFECT, model="p"), model="worse")["critical_comparison"]["all"]["total"]
    assert worse["diff"] == 5 and worse["ci"][0] > 0 and worse["verdict"] == "more beyond its interval"
