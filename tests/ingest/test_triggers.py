"""Trigger detection on signals sampled unevenly: windows are measured in seconds, not samples."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.config import TriggerConfig
from longtail.ingest.triggers import Series, detect_triggers, trailing_mean

T0 = 1_700_000_000_000_000_000


def _times(seconds: np.ndarray) -> np.ndarray:
    return T0 + np.round(seconds * 1e9).astype(np.int64)


def _brake(seconds: np.ndarray, start: float, length: float, decel: float = 6.0) -> np.ndarray:
    """Longitudinal acceleration: 0, then -decel from ``start`` for ``length`` seconds."""
    return np.where((seconds >= start) & (seconds < start + length), -decel, 0.0)


def _hard_braking(seconds: np.ndarray, accel: np.ndarray, cfg: TriggerConfig | None = None) -> list:  # type: ignore[type-arg]
    events, missing = detect_triggers({"accel": Series(_times(seconds), accel)}, cfg or TriggerConfig())
    assert "hard_braking" not in missing
    return [e for e in events if e.name == "hard_braking"]


def test_trailing_mean_is_a_time_window_whatever_the_sampling() -> None:
    # A step from 0 to 1 at t=1 s, sampled at 100 Hz before it and at 10 Hz after: 0.2 s after the
    # step the 0.2 s window is all ones; 0.1 s after, half (a linear ramp between samples, by hand).
    seconds = np.concatenate([np.arange(0, 1, 0.01), np.arange(1, 2, 0.1)])
    x = (seconds >= 1).astype(float)
    smooth = trailing_mean(_times(seconds), x, 0.2)
    at = {round(s, 2): v for s, v in zip(seconds.tolist(), smooth.tolist(), strict=True)}
    assert at[0.5] == 0.0
    assert at[1.2] == pytest.approx(1.0)
    # window [0.9, 1.1]: 0 until 0.99, a ramp 0.99..1.0 (area 0.005), 1 from 1.0 to 1.1 (area 0.1)
    assert at[1.1] == pytest.approx((0.005 + 0.1) / 0.2)


def test_dropped_messages_do_not_widen_the_smoothing_window() -> None:
    # 50 Hz, but the log lost most messages during the stop: 5 Hz there. Counted in samples (the
    # median 0.02 s spacing), the 0.2 s window would span 10 samples = 2 s there and dilute the stop.
    seconds = np.concatenate([np.arange(0, 10, 0.02), np.arange(10, 11.0, 0.2), np.arange(11.0, 20, 0.02)])
    accel = _brake(seconds, 10.0, 1.0)
    (event,) = _hard_braking(seconds, accel)
    assert (event.onset_ns - T0) / 1e9 == pytest.approx(10.0, abs=0.21)
    assert event.peak == pytest.approx(6.0)


@pytest.mark.parametrize(("length", "fires"), [(0.25, False), (0.34, True)])
def test_sustained_means_seconds_at_any_rate(length: float, fires: bool) -> None:
    # The same stop at 100 Hz and at a jittered 12 Hz fires (or not) alike: 0.3 s sustained.
    rng = np.random.default_rng(3)
    dense = np.arange(0, 20, 0.01)
    sparse = np.cumsum(rng.uniform(0.06, 0.1, 300))
    sparse = np.sort(np.concatenate([sparse[sparse < 20], 10 + np.arange(0, length, 0.08)]))
    cfg = TriggerConfig(smooth_s=0.02)
    for seconds in (dense, sparse):
        events = _hard_braking(seconds, _brake(seconds, 10.0, length), cfg)
        assert bool(events) is fires, (len(seconds), events)


def test_a_silence_longer_than_max_gap_breaks_a_run() -> None:
    # Two braking samples 2 s apart with nothing in between: not 2 s of braking.
    seconds = np.concatenate([np.arange(0, 10, 0.02), [12.0], np.arange(12.02, 20, 0.02)])
    accel = np.where((seconds > 9.95) & (seconds < 12.05), -6.0, 0.0)
    assert _hard_braking(seconds, accel, TriggerConfig(smooth_s=0.02)) == []


def test_a_trigger_without_its_signal_is_not_evaluated() -> None:
    t = _times(np.arange(0, 5, 0.02))
    events, missing = detect_triggers({"accel": Series(t, np.zeros(len(t)))}, TriggerConfig())
    assert events == []
    assert set(missing) == {"harsh_steering", "disengagement", "adas_alert"}
    assert "steering_angle" in missing["harsh_steering"]
    assert "driver_override or adas_engaged" in missing["disengagement"]


def test_frame_feature_smoothing_is_a_time_window_too() -> None:
    from longtail.ingest.features import _smooth

    # A constant deceleration sampled at 50 Hz, then at 5 Hz: the average of a constant is the
    # constant whatever the sampling; a step is averaged over 0.2 s of time, not 10 samples.
    seconds = np.concatenate([np.arange(0, 5, 0.02), np.arange(5, 10, 0.2)])
    assert np.allclose(_smooth(seconds, np.full(len(seconds), -3.0), 0.2), -3.0)
    step = (seconds >= 7.0).astype(float)
    smooth = _smooth(seconds, step, 0.2)
    at = dict(zip(np.round(seconds, 2).tolist(), smooth.tolist(), strict=True))
    assert at[6.6] == 0.0 and at[7.4] == 1.0
    # Window [6.9, 7.1]: a ramp 6.8..7.0 (from 0.5 at 6.9 to 1: area 0.075), then 1 (area 0.1).
    assert at[7.0] == pytest.approx((0.075 + 0.1) / 0.2)
