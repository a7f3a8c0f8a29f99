"""Per-frame signal features: vehicle signals aligned to each kept frame's timestamp."""

from __future__ import annotations

import numpy as np

from longtail.ingest.decode import STATE_FIELDS, STATE_FLAGS, STATE_LABELS
from longtail.ingest.triggers import integral_at

FEATURES = (
    "speed_mps", "accel_mps2", "decel_mps2", "jerk_mps3", "lateral_accel_mps2", "yaw_rate_rps",
    "steering_angle_deg", "steering_rate_dps", "brake_pressure_bar", "throttle_pct",
)
"""Numeric features per frame (SI units; decel is positive when braking)."""


def _smooth(t_s: np.ndarray, x: np.ndarray, span_s: float) -> np.ndarray:
    """Centred, time-weighted moving average over ``span_s`` seconds (any sampling).

    The trapezoid integral of ``x`` between t - span/2 and t + span/2 (clipped to the signal's
    span), divided by that window's length: uneven sampling or dropped messages do not change
    how much time the average covers.
    """
    if len(x) < 3:
        return x.copy()
    integral = np.concatenate([[0.0], np.cumsum(np.diff(t_s) * (x[1:] + x[:-1]) / 2)])
    lo = np.maximum(t_s - span_s / 2, t_s[0])
    hi = np.minimum(t_s + span_s / 2, t_s[-1])
    width = hi - lo
    safe = np.where(width > 0, width, 1.0)
    return np.where(width > 0, (integral_at(t_s, x, integral, hi) - integral_at(t_s, x, integral, lo)) / safe, x)


def frame_features(
    frame_ns: np.ndarray,
    signal_ns: np.ndarray,
    values: np.ndarray,
    flags: np.ndarray,
    labels: list[tuple[str, ...]],
    smooth_s: float = 0.2,
) -> dict[str, np.ndarray]:
    """Signals at each frame time.

    Args:
        frame_ns: frame timestamps, ns (sorted).
        signal_ns: vehicle-state sample times, ns (sorted).
        values: samples x `STATE_FIELDS` floats.
        flags: samples x `STATE_FLAGS` booleans.
        labels: per sample, the `STATE_LABELS` strings.
        smooth_s: window of the moving average used for derivatives, s.

    Returns:
        Arrays of length len(frame_ns): every name in `FEATURES` (NaN without signals), the
        flags (the latest sample at or before the frame) and labels.
    """
    n = len(frame_ns)
    out: dict[str, np.ndarray] = {}
    if len(signal_ns) == 0:
        for name in FEATURES:
            out[name] = np.full(n, np.nan)
        for name in STATE_FLAGS:
            out[name] = np.zeros(n, dtype=bool)
        for name in STATE_LABELS:
            out[name] = np.array([""] * n, dtype=object)
        return out
    t0 = signal_ns[0]
    ts = (signal_ns - t0) / 1e9
    tf = (frame_ns - t0) / 1e9
    col = {name: values[:, k] for k, name in enumerate(STATE_FIELDS)}
    accel_s = _smooth(ts, col["accel_mps2"], smooth_s)
    steer_s = _smooth(ts, col["steering_wheel_angle_deg"], smooth_s)
    jerk = np.gradient(accel_s, ts) if len(ts) > 1 else np.zeros_like(ts)
    steer_rate = np.gradient(steer_s, ts) if len(ts) > 1 else np.zeros_like(ts)
    series = {
        "speed_mps": col["speed_mps"],
        "accel_mps2": col["accel_mps2"],
        "decel_mps2": np.maximum(-accel_s, 0.0),
        "jerk_mps3": _smooth(ts, jerk, smooth_s),
        "lateral_accel_mps2": col["lateral_accel_mps2"],
        "yaw_rate_rps": col["yaw_rate_rps"],
        "steering_angle_deg": col["steering_wheel_angle_deg"],
        "steering_rate_dps": steer_rate,
        "brake_pressure_bar": col["brake_pressure_bar"],
        "throttle_pct": col["throttle_pct"],
    }
    for name in FEATURES:
        out[name] = np.interp(tf, ts, series[name])
    # Flags and labels: the latest sample at or before the frame.
    idx = np.clip(np.searchsorted(signal_ns, frame_ns, side="right") - 1, 0, len(signal_ns) - 1)
    for k, name in enumerate(STATE_FLAGS):
        out[name] = flags[idx, k].astype(bool)
    for k, name in enumerate(STATE_LABELS):
        out[name] = np.array([labels[i][k] for i in idx], dtype=object)
    return out
