"""The KPI experiment's statistics: a figure averaged over seeds, with a two-level bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.kpi.experiment import Estimate, rate_reduction, reduction, seed_bootstrap, sentence


def _pairs(base: list[int], arm: list[int]) -> list[tuple[int, int]]:
    return list(zip(base, arm, strict=True))


def _red(us: list[tuple[int, int]]) -> float | None:
    return reduction([a for a, _ in us], [b for _, b in us])


def test_reduction_and_rate_reduction_are_shares_of_the_baseline() -> None:
    assert reduction([10, 10], [5, 10]) == pytest.approx(0.25)
    assert reduction([0, 0], [1, 0]) is None  # nothing to reduce
    assert reduction([4], [6]) == pytest.approx(-0.5)  # more errors: negative
    # Rates per km: the arm drove twice as far with the same count, so its rate halved.
    assert rate_reduction([(1.0, 4, 2.0, 4)]) == pytest.approx(0.5)
    assert rate_reduction([(1.0, 0, 1.0, 3)]) is None


def test_the_value_is_the_mean_over_seeds_of_the_per_seed_figure() -> None:
    seeds = [_pairs([10, 10, 10, 10], [5, 5, 5, 5]), _pairs([10, 10, 10, 10], [10, 10, 10, 10])]
    est = seed_bootstrap(seeds, _red, resamples=200)
    assert est.value == pytest.approx(0.25)  # (0.5 + 0.0) / 2
    assert est.seeds == 2
    assert est.low is not None and est.high is not None
    assert est.low <= 0.25 <= est.high
    # Resampling seeds: draws of both seeds from the same one reach 0 and 0.5.
    assert est.low == pytest.approx(0.0) and est.high == pytest.approx(0.5)


def test_a_consistent_effect_excludes_zero_and_a_noisy_one_does_not() -> None:
    rng = np.random.default_rng(0)
    steady = [_pairs(list(rng.integers(40, 60, 12)), list(rng.integers(20, 30, 12))) for _ in range(3)]
    est = seed_bootstrap(steady, _red, resamples=300)
    assert est.excludes(0.0)
    assert "larger than its interval" in sentence("critical", est)
    noisy = [_pairs([10, 0, 10, 0], [0, 10, 0, 12]), _pairs([0, 10, 0, 10], [12, 0, 9, 0])]
    est = seed_bootstrap(noisy, _red, resamples=300)
    assert not est.excludes(0.0)
    assert "inside its interval (it spans zero)" in sentence("critical", est)


def test_the_interval_is_reproducible_from_its_seed() -> None:
    seeds = [_pairs([3, 5, 8, 2], [1, 4, 6, 2]), _pairs([6, 2, 4, 4], [3, 3, 2, 1])]
    a = seed_bootstrap(seeds, _red, resamples=100, seed=3)
    b = seed_bootstrap(seeds, _red, resamples=100, seed=3)
    c = seed_bootstrap(seeds, _red, resamples=100, seed=4)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_undefined_statistics_are_reported_not_invented() -> None:
    est = seed_bootstrap([_pairs([0, 0], [1, 2])], _red, resamples=50)
    assert est == Estimate(None, None, None, 1)
    assert "not measurable" in sentence("critical", est)
    assert seed_bootstrap([], _red) == Estimate(None, None, None, 0)


def test_sentences_against_a_target_say_which_side_the_interval_is_on() -> None:
    assert "beyond +25.0% by more than its interval" in sentence("x", Estimate(0.4, 0.3, 0.5, 3), zero=0.25)
    assert "short of +25.0% beyond its interval" in sentence("x", Estimate(0.1, 0.05, 0.2, 3), zero=0.25)
    assert "not distinguishable from +25.0%" in sentence("x", Estimate(0.2, 0.1, 0.3, 3), zero=0.25)
