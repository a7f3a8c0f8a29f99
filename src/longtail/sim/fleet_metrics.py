"""What the fleet test measures, and how it compares perceptions.

Per drive and per scenario (the critical scenario in progress when an event starts, or
``none``), episodes of:

- ``disengagement``: ADAS goes from engaged to off (the driver took over, warned or not);
- ``fcw`` and ``aeb``: the forward-collision warning or emergency braking alert comes on;
- ``phantom_braking``: the ADAS commands at least ``phantom_decel`` m/s^2 of braking while the
  road as it is needs less than 1 m/s^2 (nothing in the truth path calls for it);
- ``missed_hazard``: the road demanded hard braking (beyond the ACC's limit) that the ADAS did
  not react to, neither braking nor warning, so the driver had to take over unwarned;
- ``collision``: the ego reaches a road user in its path (truth gap at or below 0 m);
- ``near_miss``: time to collision with a road user in the truth path under ``ttc_s`` seconds
  (closing faster than 0.5 m/s) without a collision.

An episode starts on a rising edge; the same kind does not count again within
``REFRACTORY_S``. Rates are per 100 km driven. Intervals are percentile bootstrap intervals
over drives (95 %), and two perceptions are compared paired: the same drives (same seeds) are
resampled together, so the interval is that of the difference on the same roads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.config import SCENARIOS

if TYPE_CHECKING:
    from longtail.sim.world import World

METRICS = ("disengagement", "fcw", "aeb", "phantom_braking", "missed_hazard", "collision", "near_miss")
SCENARIO_KEYS = (*SCENARIOS, "none")
REFRACTORY_S = 2.0
"""An episode of one kind does not count again within this time, s."""


def empty_counts() -> dict[str, dict[str, int]]:
    """Zero counts, scenario -> metric -> episodes."""
    return {s: dict.fromkeys(METRICS, 0) for s in SCENARIO_KEYS}


class DriveMeter:
    """Counts the episodes of one drive; called with the world after every physics step.

    Args:
        dt: the physics step, s.
        ttc_s: near-miss threshold on time to collision, s.
        phantom_decel: braking that counts as hard, m/s^2 (positive).
    """

    def __init__(self, dt: float, ttc_s: float, phantom_decel: float) -> None:
        self.dt, self.ttc_s, self.phantom_decel = dt, ttc_s, phantom_decel
        self.counts = empty_counts()
        self.metres = 0.0
        self._active: dict[str, bool] = dict.fromkeys(METRICS, False)
        self._last: dict[str, float] = dict.fromkeys(METRICS, -1e9)
        self._engaged: bool | None = None
        self._missed = 0

    def __call__(self, world: World) -> None:
        ego, t = world.ego, world.t
        self.metres += ego.v * self.dt
        gap, lead_v = world.traffic.leader_gap(ego.s, ego.x, world.spec["width"], lights=False)
        closing = ego.v - lead_v
        collision = gap <= 0.0 and ego.v > 0.5
        ttc = gap / closing if closing > 0.5 else 1e9
        missed = world.driver.missed_hazards > self._missed
        self._missed = world.driver.missed_hazards
        states = {
            "disengagement": self._engaged is True and not ego.adas_engaged,
            "fcw": ego.adas_alert == "fcw",
            "aeb": ego.adas_alert == "aeb",
            "phantom_braking": (ego.adas_engaged or ego.adas_alert == "aeb") and ego.a_cmd <= -self.phantom_decel
            and world.driver.a_truth > -1.0,
            "missed_hazard": missed,
            "collision": collision,
            "near_miss": ttc < self.ttc_s and not collision,
        }
        self._engaged = ego.adas_engaged
        scenario = world.event.name if world.event is not None else "none"
        for name, on in states.items():
            if on and not self._active[name] and t - self._last[name] >= REFRACTORY_S:
                self.counts[scenario][name] += 1
                self._last[name] = t
            self._active[name] = on


def _totals(drives: Sequence[dict[str, Any]], scenario: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per drive: episodes of ``metric`` in ``scenario`` ("all": every scenario) and km driven."""
    counts = np.array([sum(d["counts"][s][metric] for s in SCENARIO_KEYS) if scenario == "all"
                       else d["counts"][scenario][metric] for d in drives], dtype=float)
    km = np.array([d["km"] for d in drives], dtype=float)
    return counts, km


def _per_100km(counts: np.ndarray, km: np.ndarray) -> np.ndarray:
    """Rate per 100 km along the last axis (0 where nothing was driven)."""
    total = km.sum(axis=-1)
    return np.where(total > 0, counts.sum(axis=-1) / np.maximum(total, 1e-9) * 100.0, 0.0)


def compute_rates(drives_by_arm: dict[str, list[dict[str, Any]]], reference: str, n_boot: int = 2000,
                  seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rates per 100 km with bootstrap intervals, and paired differences to the reference arm.

    Args:
        drives_by_arm: arm -> its drives (the same drives, in the same order, in every arm), each
            with ``km`` and ``counts`` (scenario -> metric -> episodes).
        reference: the arm the others are compared with (truth perception).
        n_boot: bootstrap resamples of the drives.
        seed: seed of the resampling.

    Returns:
        (rates, paired): rows ``arm, scenario, metric, count, km, per_100km, ci_low, ci_high``, and
        rows ``arm, reference, scenario, metric, difference_per_100km, ci_low, ci_high``.
    """
    arms = list(drives_by_arm)
    n = len(drives_by_arm[reference])
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), int)
    rates, paired = [], []
    for scenario in ("all", *SCENARIO_KEYS):
        for metric in METRICS:
            per_arm = {}
            for arm in arms:
                counts, km = _totals(drives_by_arm[arm], scenario, metric)
                boot = _per_100km(counts[index], km[index])
                per_arm[arm] = (counts, km, boot)
                rate = float(_per_100km(counts, km))
                lo, hi = (np.percentile(boot, [2.5, 97.5]).tolist() if n else (0.0, 0.0))
                rates.append({"arm": arm, "scenario": scenario, "metric": metric, "count": int(counts.sum()),
                              "km": round(float(km.sum()), 4), "per_100km": round(rate, 3),
                              "ci_low": round(lo, 3), "ci_high": round(hi, 3)})
            ref_counts, ref_km, ref_boot = per_arm[reference]
            for arm in arms:
                if arm == reference:
                    continue
                counts, km, boot = per_arm[arm]
                diff = float(_per_100km(counts, km) - _per_100km(ref_counts, ref_km))
                lo, hi = (np.percentile(boot - ref_boot, [2.5, 97.5]).tolist() if n else (0.0, 0.0))
                paired.append({"arm": arm, "reference": reference, "scenario": scenario, "metric": metric,
                               "difference_per_100km": round(diff, 3), "ci_low": round(lo, 3), "ci_high": round(hi, 3)})
    return rates, paired
