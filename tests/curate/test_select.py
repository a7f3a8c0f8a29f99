"""Selection under a budget: scores, near-duplicates, quotas, diversity and baselines, on pools built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from longtail.curate.select import BudgetError, SelectConfig, compute_trigger_priority, select_frames


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _pool(n: int, drive: str = "d0", start_s: float = 0.0, step_s: float = 1.0, **cols: object) -> pd.DataFrame:
    df = pd.DataFrame({
        "frame_id": [f"{drive}-{i}" for i in range(n)],
        "drive_id": drive,
        "timestamp_ns": (np.arange(n) * step_s * 1e9 + start_s * 1e9).astype(np.int64),
        "triggers": [[] for _ in range(n)],
        "tags": [[] for _ in range(n)],
    })
    for k, v in cols.items():
        df[k] = v
    return df


def _spread(n: int, seed: int = 0, dim: int = 16) -> np.ndarray:
    return _unit(np.random.default_rng(seed).normal(size=(n, dim)))


def test_trigger_priority_by_hand() -> None:
    pool = _pool(4)
    pool["triggers"] = [[], ["hard_braking"], ["hard_braking"], ["adas_alert", "hard_braking"]]
    pool["decel_mps2"] = [0.0, 0.0, 6.0, 6.0]
    p = compute_trigger_priority(pool)
    # hard_braking alone: 0.7 * 0.85 = 0.595, half of it at rest, all of it at 6 m/s^2.
    assert p[0] == 0.0
    assert p[1] == pytest.approx(0.2975)
    assert p[2] == pytest.approx(0.595)
    # Two triggers combine as independent evidence: 1 - (1 - 0.7)(1 - 0.595).
    assert p[3] == pytest.approx(1 - 0.3 * 0.405)


def test_trigger_frames_come_first_then_diversity() -> None:
    pool = _pool(50)
    pool.loc[[7, 30], "triggers"] = pd.Series([["hard_braking"], ["adas_alert"]], index=[7, 30])
    picks = select_frames(pool, _spread(50), SelectConfig(budget=5, quotas={}))
    assert set(picks.frame_id[:2]) == {"d0-7", "d0-30"}
    assert picks.frame_id.is_unique and len(picks) == 5
    assert picks.reason[0].startswith("trigger ")


def test_k_center_covers_every_cluster() -> None:
    centers = np.eye(8, dtype=np.float32)[:3]
    rng = np.random.default_rng(1)
    emb = _unit(np.repeat(centers, 20, axis=0) + 0.05 * rng.normal(size=(60, 8)))
    drives = np.repeat(["a", "b", "c"], 20)
    pool = pd.concat([_pool(20, drive=d) for d in ("a", "b", "c")], ignore_index=True)
    picks = select_frames(pool, emb, SelectConfig(budget=3, quotas={}))
    chosen = pool.set_index("frame_id").loc[picks.frame_id].drive_id
    assert sorted(chosen) == ["a", "b", "c"]
    assert (drives == "a").sum() == 20


def test_near_duplicates_of_one_drive_are_not_picked_twice() -> None:
    # Drive "burst": 10 high-priority frames 0.1 s apart, all alike. Drive "quiet": plain frames.
    burst = _pool(10, drive="burst", step_s=0.1)
    burst["triggers"] = [["hard_braking"]] * 10
    burst["decel_mps2"] = 6.0
    quiet = _pool(10, drive="quiet", step_s=5.0)
    pool = pd.concat([burst, quiet], ignore_index=True)
    base = np.random.default_rng(2).normal(size=16)
    emb = np.concatenate([_unit(np.tile(base, (10, 1)) + 1e-4 * np.random.default_rng(3).normal(size=(10, 16))),
                          _spread(10, seed=4)])
    picks = select_frames(pool, emb, SelectConfig(budget=6, quotas={}))
    assert (picks.frame_id.str.startswith("burst")).sum() == 1
    # Without the similarity rule, only the time gap applies: frames >= 0.25 s apart may both be picked.
    picks = select_frames(pool, emb, SelectConfig(budget=6, quotas={}, duplicate_similarity=1.0))
    times = sorted(pool.set_index("frame_id").loc[picks.frame_id[picks.frame_id.str.startswith("burst")]].timestamp_ns)
    assert len(times) > 1 and np.diff(times).min() > 0.25e9


def test_quotas_are_met_when_the_pool_allows() -> None:
    pool = _pool(100)
    pool["triggers"] = [["hard_braking"] if i < 60 else [] for i in range(100)]
    pool["tags"] = [["night"] if i >= 90 else [] for i in range(100)]
    picks = select_frames(pool, _spread(100), SelectConfig(budget=10, quotas={"night": 0.3}, min_gap_s=0))
    night = pool.set_index("frame_id").loc[picks.frame_id].tags.map(lambda t: "night" in t)
    assert night.sum() >= 3
    assert (picks.quota == "night").sum() >= 3
    # A quota the pool cannot meet takes what there is and fills the rest.
    pool["tags"] = [["night"] if i == 99 else [] for i in range(100)]
    picks = select_frames(pool, _spread(100), SelectConfig(budget=10, quotas={"night": 0.5}, min_gap_s=0))
    assert len(picks) == 10 and "d0-99" in set(picks.frame_id)


def test_failure_mode_similarity_and_uncertainty_raise_the_score() -> None:
    pool = _pool(20, fm_similarity=0.0, uncertainty=0.0)
    pool.loc[4, "fm_similarity"] = 0.9
    pool.loc[11, "uncertainty"] = 0.95
    picks = select_frames(pool, _spread(20), SelectConfig(budget=2, quotas={}))
    assert set(picks.frame_id) == {"d0-4", "d0-11"}
    assert "failure mode" in " ".join(picks.reason) and "uncertainty" in " ".join(picks.reason)


def test_baselines() -> None:
    pool = _pool(30, uniqueness=np.linspace(0, 1, 30))
    a = select_frames(pool, _spread(30), SelectConfig(budget=7, selector="random", seed=3))
    b = select_frames(pool, _spread(30), SelectConfig(budget=7, selector="random", seed=3))
    assert a.frame_id.tolist() == b.frame_id.tolist() and a.frame_id.is_unique
    u = select_frames(pool, _spread(30), SelectConfig(budget=3, selector="uniqueness"))
    assert u.frame_id.tolist() == ["d0-29", "d0-28", "d0-27"]


def test_bad_budgets_and_quotas() -> None:
    pool = _pool(5)
    with pytest.raises(BudgetError, match=r"budget 6 is larger than the pool of 5 .*lower --budget to at most 5"):
        select_frames(pool, _spread(5), SelectConfig(budget=6))
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        SelectConfig(budget=0)
    with pytest.raises(ValidationError, match="quota of 'night' must be a share"):
        SelectConfig(budget=3, quotas={"night": 2.0})
    with pytest.raises(ValidationError, match=r"quotas add up to 1\.50"):
        SelectConfig(budget=3, quotas={"night": 0.9, "fog": 0.6})


def test_selection_scales_to_a_large_pool() -> None:
    n = 20_000
    pool = _pool(n, step_s=0.5)
    pool["triggers"] = [["hard_braking"] if i % 200 == 0 else [] for i in range(n)]
    picks = select_frames(pool, _spread(n, dim=64), SelectConfig(budget=200))
    assert len(picks) == 200 and picks.frame_id.is_unique
    assert (picks.priority > 0).sum() == len(range(0, n, 200))  # every trigger frame, then diversity
    assert (picks.priority[:100] > 0).all()
