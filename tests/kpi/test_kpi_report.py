"""The KPI experiment's summary (bench/kpi_report.py) on rows and bootstrap units built by hand, and the
README's headline numbers against bench/results/kpi.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from kpi_report import readme_block, summarise, target_verdict  # noqa: E402
from longtail.detector.metrics import compute_frame_stats  # noqa: E402
from longtail.evaluate.bootstrap import drive_stats  # noqa: E402

ROW_KEYS = ("arm", "seed", "budget", "baseline_critical_fp_fn", "critical_fp_fn", "baseline_critical_fp_fn_detectable",
            "critical_fp_fn_detectable", "common_map50_baseline", "common_map50", "disengagements_per_100km_baseline",
            "disengagements_per_100km", "safety_critical_per_100km_baseline", "safety_critical_per_100km",
            "labeling_cost_s")


def _common(found: float, drives: list[str]) -> dict[str, Any]:
    """Per-drive detection statistics of a model that finds ``found`` of 10 cars per frame."""
    gt, preds, drive_of = {}, {}, {}
    for d in drives:
        for i in range(3):
            fid = f"{d}-{i}"
            drive_of[fid] = d
            gt[fid] = [{"category": "car", "x1": 10.0 * k, "y1": 10, "x2": 10.0 * k + 8, "y2": 40} for k in range(10)]
            preds[fid] = [dict(b, score=0.9) for b in gt[fid][: int(found)]]
    return drive_stats(compute_frame_stats(gt, preds, min_height=0.0), drive_of)


def _units(base: list[int], arm: list[int], found: tuple[float, float], fleet: tuple[int, int]) -> dict[str, Any]:
    drives = [f"d{i}" for i in range(len(base))]
    fleet_drives = [f"f{i}" for i in range(6)]
    return {"baseline": {"critical": dict(zip(drives, base, strict=True)),
                         "detectable": dict(zip(drives, base, strict=True)),
                         "common": _common(found[0], drives),
                         "fleet": [{"drive_id": f, "km": 1.0, "disengagement": fleet[0], "safety_critical": fleet[0]}
                                   for f in fleet_drives]},
            "arm": {"critical": dict(zip(drives, arm, strict=True)), "detectable": dict(zip(drives, arm, strict=True)),
                    "common": _common(found[1], drives),
                    "fleet": [{"drive_id": f, "km": 1.0, "disengagement": fleet[1], "safety_critical": fleet[1]}
                              for f in fleet_drives]}}


def _row(arm: str, seed: int) -> dict[str, Any]:
    night = 0.3 + (0.1 if arm == "longtail" else 0.0) + 0.01 * seed
    return {"arm": arm, "seed": seed, "budget": 50, "labeling_cost_s": 100.0 * seed, "batch": {"critical_objects": 4},
            "slices_map50": {"condition:night": night}, "slices_map50_baseline": {"condition:night": 0.3}}


def test_a_selector_that_halves_errors_beats_one_that_changes_nothing_beyond_the_interval() -> None:
    rng = np.random.default_rng(1)
    units, rows = {}, []
    for seed in range(3):
        base = [int(x) for x in rng.integers(20, 30, 8)]
        units[f"longtail|{seed}|50"] = _units(base, [b // 2 for b in base], (8, 8), (10, 7))
        units[f"random|{seed}|50"] = _units(base, base, (8, 6), (10, 10))
        rows += [_row("longtail", seed), _row("random", seed)]
    summary = summarise(rows, units, ("longtail", "random"), [50], resamples=100)
    lt = next(e for e in summary if e["arm"] == "longtail")
    rnd = next(e for e in summary if e["arm"] == "random")
    assert lt["critical"]["value"] == pytest.approx(0.5, abs=0.03)
    assert lt["critical"]["ci"][0] > 0.4
    assert rnd["critical"]["value"] == pytest.approx(0.0)
    assert lt["vs_random"]["critical_reduction_difference"]["ci"][0] > 0.3
    assert "larger than its interval" in lt["vs_random"]["sentence"]
    assert lt["disengagements"]["value"] == pytest.approx(0.3)
    assert lt["common_map50"]["value"] == pytest.approx(0.0)  # same cars found
    assert rnd["common_map50"]["value"] < 0  # found 6 of 10 instead of 8
    assert lt["labeling_cost_s"] == {"mean": 100.0, "range": [0.0, 200.0]}
    assert lt["slice_map50_change"]["condition:night"]["mean"] == pytest.approx(0.11)
    assert lt["slice_map50_change"]["condition:night"]["seed_range"] == pytest.approx([0.10, 0.12])
    assert rnd["common_class_ap50_change"]["car"]["value"] == pytest.approx(-0.2, abs=0.02)  # 6 of 10 cars, not 8
    assert target_verdict(lt["critical"], 0.25).startswith("**met**")
    assert target_verdict(rnd["critical"], 0.25).startswith("**not met**")
    assert target_verdict({"value": 0.2, "ci": [0.1, 0.3]}, 0.25).startswith("undecided")


KPI_JSON = REPO / "bench" / "results" / "kpi.json"


def test_the_readme_headline_numbers_are_those_of_kpi_json() -> None:
    result = json.loads(KPI_JSON.read_text())  # committed; `make bench` rewrites it
    assert result["complete"], "kpi.json is from an unfinished run"
    assert result["command"] and result["git_commit"] and result["env_lock_sha256"]
    assert len(result["seeds"]) >= 3 and len(result["budgets"]) >= 3
    cells = {(r["arm"], r["seed"], r["budget"]) for r in result["rows"]}
    arms = ("longtail", "random", "uniqueness", "uncertainty", "no_new_data")
    assert cells == {(a, s, b) for a in arms for s in result["seeds"] for b in result["budgets"]}
    for row in result["rows"]:
        assert all(k in row for k in ROW_KEYS), sorted(set(ROW_KEYS) - set(row))
    readme = (REPO / "README.md").read_text()
    assert readme_block(result) in readme, \
        "README's KPI block differs from kpi.json: run bench/kpi.py --resummarise --readme README.md"


def test_errors_at_the_baselines_thresholds_are_summarised_apart_from_the_recalibrated_ones() -> None:
    rng = np.random.default_rng(2)
    units, rows = {}, []
    for seed in range(3):
        base = [int(x) for x in rng.integers(20, 30, 8)]
        # Recalibration swings the longtail model's count up; at the baseline's thresholds it halves.
        lt = _units(base, [2 * b for b in base], (8, 8), (10, 10))
        lt["baseline"]["fixed"], lt["arm"]["fixed"] = lt["baseline"]["critical"], {
            d: n // 2 for d, n in lt["baseline"]["critical"].items()}
        rnd = _units(base, base, (8, 8), (10, 10))
        rnd["baseline"]["fixed"], rnd["arm"]["fixed"] = rnd["baseline"]["critical"], rnd["arm"]["critical"]
        units[f"longtail|{seed}|50"], units[f"random|{seed}|50"] = lt, rnd
        rows += [_row("longtail", seed), _row("random", seed)]
    summary = summarise(rows, units, ("longtail", "random"), [50], resamples=100)
    lt_e = next(e for e in summary if e["arm"] == "longtail")
    assert lt_e["critical"]["value"] == pytest.approx(-1.0)
    assert lt_e["critical_fixed"]["value"] == pytest.approx(0.5, abs=0.03)
    assert "baseline's thresholds" in lt_e["fixed_sentence"] and "larger than its interval" in lt_e["fixed_sentence"]
    assert lt_e["vs_random"]["fixed_difference"]["ci"][0] > 0.3
    assert lt_e["vs_random"]["critical_reduction_difference"]["ci"][1] < 0
    # Units of an earlier run, without the fixed-threshold counts, still summarise (without that estimate).
    for u in units.values():
        del u["baseline"]["fixed"], u["arm"]["fixed"]
    assert all("critical_fixed" not in e for e in summarise(rows, units, ("longtail", "random"), [50], resamples=50))


def test_fleet_events_are_summarised_when_the_units_hold_them() -> None:
    units, rows = {}, []
    for seed in range(3):
        u = _units([20] * 8, [10] * 8, (8, 8), (10, 10))
        for side, n in (("baseline", 4), ("arm", 1)):  # phantom braking 4 -> 1 per drive and km
            for d in u[side]["fleet"]:
                d.update(phantom_braking=n, missed_hazard=2, collision=0, near_miss=1)
        units[f"longtail|{seed}|50"] = u
        rows.append(_row("longtail", seed))
    (entry,) = summarise(rows, units, ("longtail",), [50], resamples=50)
    assert entry["phantom_braking"]["value"] == pytest.approx(0.75)
    assert entry["missed_hazard"]["value"] == pytest.approx(0.0)
    assert entry["collision"]["value"] is None  # none in either: no rate to reduce
    for u in units.values():
        for d in u["arm"]["fleet"]:
            del d["phantom_braking"]
    (entry,) = summarise(rows, units, ("longtail",), [50], resamples=50)
    assert "phantom_braking" not in entry and "missed_hazard" in entry
