"""Statistics of the KPI experiment (bench/kpi.py): estimates over seeds with intervals that combine
the bootstrap over test drives with the spread over seeds, and the sentence each comparison gets.

An experiment has several seeds (fleet and training); each seed has its own test drives. A figure
is the mean over seeds of a per-seed statistic (a reduction in critical errors, a difference in
mAP). Its interval is a two-level bootstrap (Davison & Hinkley 1997, section 3.8): draw the seeds
with replacement, then within each drawn seed draw its drives with replacement, recompute the
per-seed statistic and average. With one seed it is the ordinary bootstrap over drives; with many
seeds of few drives the seed spread dominates. Paired comparisons (an arm against the baseline,
Longtail against random) resample the same drives for both sides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Estimate:
    """A figure, its 95% interval, and how many seeds it averages."""

    value: float | None
    low: float | None
    high: float | None
    seeds: int

    def excludes(self, x: float = 0.0) -> bool:
        """The interval lies wholly above or below ``x``."""
        return self.low is not None and self.high is not None and (self.low > x or self.high < x)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci": None if self.low is None else [self.low, self.high], "seeds": self.seeds}


def seed_bootstrap(per_seed: Sequence[Sequence[T]], statistic: Callable[[list[T]], float | None],
                   resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """The mean over seeds of ``statistic`` on each seed's units (drives), with a two-level bootstrap interval.

    Args:
        per_seed: for each seed, its units (one per test drive: whatever ``statistic`` reads).
        statistic: the per-seed figure from a list of units (repeats allowed); None where undefined.
        resamples: bootstrap draws.
        seed: seed of the draws.
        confidence: coverage of the interval.

    Returns:
        The estimate; value None when no seed defines the statistic, interval None when no draw does.
    """
    seeds = [list(units) for units in per_seed if len(units)]
    if not seeds:
        return Estimate(None, None, None, 0)
    point = [statistic(units) for units in seeds]
    defined = [v for v in point if v is not None and math.isfinite(v)]
    value = float(np.mean(defined)) if defined else None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    draws = []
    for _ in range(resamples):
        values = []
        for s in rng.integers(0, len(seeds), size=len(seeds)):
            units = seeds[int(s)]
            v = statistic([units[int(i)] for i in rng.integers(0, len(units), size=len(units))])
            if v is not None and math.isfinite(v):
                values.append(v)
        if values:
            draws.append(float(np.mean(values)))
    if not draws:
        return Estimate(value, None, None, len(seeds))
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value, float(lo), float(hi), len(seeds))


def reduction(base: Sequence[float], arm: Sequence[float]) -> float | None:
    """1 - sum(arm) / sum(base): the share of the baseline's errors removed (negative: more errors)."""
    b = float(np.sum(base))
    return None if b <= 0 else 1.0 - float(np.sum(arm)) / b


def rate_reduction(units: Sequence[Sequence[float]]) -> float | None:
    """1 - rate(arm) / rate(baseline) over drives given as (base_km, base_count, arm_km, arm_count)."""
    a = np.asarray(units, float).reshape(-1, 4)
    base_km, base_n, arm_km, arm_n = a.sum(axis=0)
    if base_n <= 0 or base_km <= 0 or arm_km <= 0:
        return None
    return 1.0 - (arm_n / arm_km) / (base_n / base_km)


def sentence(what: str, est: Estimate, unit: str = "%", scale: float = 100.0, zero: float = 0.0) -> str:
    """One sentence: the figure, its interval, and whether the interval excludes ``zero``."""
    if est.value is None:
        return f"{what}: not measurable (no baseline errors or no data)."
    value = f"{est.value * scale:+.1f}{unit}"
    if est.low is None or est.high is None:
        return f"{what}: {value} (no interval)."
    ci = f"[{est.low * scale:+.1f}, {est.high * scale:+.1f}]"
    where = "larger than its interval" if est.excludes(zero) else "inside its interval"
    if zero:
        where = (f"beyond {zero * scale:+.1f}{unit} by more than its interval" if est.low > zero else
                 f"short of {zero * scale:+.1f}{unit} beyond its interval" if est.high < zero else
                 f"not distinguishable from {zero * scale:+.1f}{unit} (inside its interval)")
    else:
        where = "the difference is " + where + (" (it spans zero)" if not est.excludes(zero) else "")
    return f"{what}: {value} {ci} over {est.seeds} seed(s); {where}."
