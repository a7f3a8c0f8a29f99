"""The KPI experiment's selection (bench/kpi_select.py): the weights of Longtail's selection chosen on
validation frames, the failure-mode similarity that never scores a validation frame against its own
drive, and the oversampling that gives every arm's batch the same share of an epoch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from kpi import fill_fleet_events, oversample_factor  # noqa: E402
from kpi_select import WEIGHTS, choose_weights, scored_frames  # noqa: E402
from kpi_world import FULL, QUICK, World  # noqa: E402
from longtail.curate.select import SelectConfig  # noqa: E402


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _val(n: int = 90, drives: int = 3, seed: int = 0) -> pd.DataFrame:
    """Validation frames, a frame every 2 s on each drive; frames 0, 3, 6, ... are triggered."""
    rng = np.random.default_rng(seed)
    per = n // drives
    return pd.DataFrame({
        "frame_id": [f"d{i // per}-{i % per}" for i in range(n)],
        "drive_id": [f"d{i // per}" for i in range(n)],
        "timestamp_ns": (np.array([i % per for i in range(n)]) * 2e9).astype(np.int64),
        "triggers": [["hard_braking"] if i % 3 == 0 else [] for i in range(n)],
        "tags": [[] for _ in range(n)],
        "uncertainty": rng.uniform(0, 0.5, n),
        "fm_similarity": rng.uniform(0, 1, n),
    })


def test_validation_picks_the_weights_whose_batches_hold_the_errors() -> None:
    val = _val()
    # The champion errs on uncertain, untriggered frames: triggers (weight 1 by default) point away from them.
    errs = [i for i in range(len(val)) if i % 3 != 0][::4]
    val.loc[errs, "uncertainty"] = 0.9
    errors = {val["frame_id"][i]: 2 for i in errs}
    emb = _unit(np.random.default_rng(1).normal(size=(len(val), 8)))
    labeled = _unit(np.random.default_rng(2).normal(size=(5, 8)))

    search = choose_weights(val, emb, labeled, errors, budgets=[100, 200], pool_size=900, seed=0)

    assert search["val_budgets"] == [10, 20]  # 100 and 200 of a 900-frame pool, scaled to 90 frames
    assert search["weights"]["w_trigger"] == 0.0
    assert search["weights"]["w_uncertainty"] > 0
    assert search["captured"] > search["default_captured"]
    assert search["captured"] > search["random_expected"]
    # Every error-holding frame the winner could take at 20 frames holds 2 errors: 10 + 20 frames, all errors.
    assert search["captured"] == 2 * min(len(errs), 10) + 2 * min(len(errs), 20)


def test_a_tie_keeps_the_library_defaults() -> None:
    val = _val()
    emb = _unit(np.random.default_rng(1).normal(size=(len(val), 8)))
    search = choose_weights(val, emb, emb[:3], {}, budgets=[60], pool_size=600, seed=0)
    default = SelectConfig(budget=1)
    assert search["weights"] == {k: getattr(default, k) for k in WEIGHTS}
    assert search["captured"] == search["default_captured"] == 0
    assert search["candidates"] > 40


def test_validation_frames_are_scored_against_the_other_drives_exemplars() -> None:
    val = _val(n=6, drives=2).assign(role="val", vehicle_type="car")
    pool = _val(n=2, drives=1, seed=3).assign(role="pool", vehicle_type="car", frame_id=["p-0", "p-1"])
    world = World(seed=0, root=Path("."), frames=pd.concat([val, pool], ignore_index=True), labels={})
    vec = {"d0-0": [1, 0], "d0-1": [1, 0], "d0-2": [0, 1], "d1-0": [1, 0], "d1-1": [0, 1], "d1-2": [0, 1],
           "p-0": [1, 0], "p-1": [0, 1]}
    emb_of = {f: np.array(v, np.float32) for f, v in vec.items()}
    preds: dict[str, list[dict[str, float | str]]] = {f: [] for f in vec}
    errors = {"d0-0": 1, "d1-1": 3}  # exemplars: [1, 0] on drive d0, [0, 1] on drive d1

    scored = scored_frames(world, "val", preds, emb_of, errors).set_index("frame_id")["fm_similarity"]
    # d0's frames see only d1's exemplar ([0, 1]) and d1's only d0's ([1, 0]): d0-0 is not its own exemplar.
    assert scored.to_dict() == {"d0-0": 0.0, "d0-1": 0.0, "d0-2": 1.0, "d1-0": 1.0, "d1-1": 0.0, "d1-2": 0.0}
    # Pool frames see every exemplar.
    pool_scored = scored_frames(world, "pool", preds, emb_of, errors).set_index("frame_id")["fm_similarity"]
    assert pool_scored.to_dict() == {"p-0": 1.0, "p-1": 1.0}


def test_every_budget_gets_the_same_share_of_an_epoch() -> None:
    assert [oversample_factor(b, FULL) for b in (60, 120, 240)] == [4, 2, 1]
    for b in (60, 100, 120, 240, 300):
        k = oversample_factor(b, FULL)
        assert k >= 1
        assert b * k <= FULL.mined_share * FULL.finetune_frames or k == 1
        assert b * k < FULL.finetune_frames  # room for the replay that fills the rest of the epoch
    assert oversample_factor(4, QUICK) == 2


def _report(folder: Path, drives: list[tuple[str, float, dict[str, int]]]) -> None:
    folder.mkdir(parents=True)
    counts = [{"drive_id": d, "km": km, "counts": {"none": {"disengagement": 0, "collision": 0, "near_miss": 0,
                                                           "missed_hazard": 0, "phantom_braking": 0, **c}}}
              for d, km, c in drives]
    (folder / "fleet_test.json").write_text(json.dumps({"drives": {"model": counts}}))


def test_fleet_events_of_an_earlier_run_are_read_back_from_its_fleet_reports(tmp_path: Path) -> None:
    fleet = tmp_path / "seed-1" / "fleet"
    _report(fleet / "baseline", [("f0", 2.0, {"disengagement": 1, "phantom_braking": 3}), ("f1", 2.0, {})])
    _report(fleet / "random-240", [("f0", 2.0, {"phantom_braking": 1}), ("f1", 2.0, {"collision": 1})])
    _report(fleet / "uniqueness-240", [("f0", 2.0, {"phantom_braking": 9}), ("f1", 2.0, {})])  # overwritten since
    kept = {"baseline": [{"drive_id": "f0", "km": 2.0, "disengagement": 1, "safety_critical": 0},
                         {"drive_id": "f1", "km": 2.0, "disengagement": 0, "safety_critical": 0}],
            "random": [{"drive_id": "f0", "km": 2.0, "disengagement": 0, "safety_critical": 0},
                       {"drive_id": "f1", "km": 2.0, "disengagement": 0, "safety_critical": 1}],
            "uniqueness": [{"drive_id": "f0", "km": 2.0, "disengagement": 5, "safety_critical": 0},
                           {"drive_id": "f1", "km": 2.0, "disengagement": 0, "safety_critical": 0}]}
    units = {f"{arm}|1|240": {"baseline": {"fleet": [dict(d) for d in kept["baseline"]]},
                              "arm": {"fleet": [dict(d) for d in kept[arm]]}} for arm in ("random", "uniqueness")}
    rows = [{"arm": arm, "seed": 1, "budget": 240} for arm in ("random", "uniqueness")]

    fill_fleet_events(rows, units, {1: tmp_path})

    assert units["random|1|240"]["arm"]["fleet"][1]["collision"] == 1
    assert rows[0]["phantom_braking_per_100km_baseline"] == 75.0  # 3 in 4 km
    assert rows[0]["phantom_braking_per_100km"] == 25.0
    assert rows[0]["collision_per_100km"] == 25.0
    # The uniqueness report no longer matches the run's disengagements: nothing is read from it.
    assert "phantom_braking" not in units["uniqueness|1|240"]["arm"]["fleet"][0]
    assert "phantom_braking_per_100km" not in rows[1]
