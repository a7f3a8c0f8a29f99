"""Triggers from vehicle signals, as a production data engine fires them on the vehicle.

- ``hard_braking``: smoothed deceleration at or above a threshold for a minimum time.
- ``disengagement``: the driver overrides, or assistance switches off (one event per second).
- ``harsh_steering``: smoothed steering-wheel rate at or above a threshold for a minimum time.
- ``adas_alert``: a forward-collision, emergency-braking or lane-departure alert.

Each event marks the frames in [onset - pre_s, end + post_s]. Smoothing is causal (a trailing
moving average), so a trigger depends only on what the vehicle had seen at that moment, as an
on-board trigger would; detection runs vectorized over a whole log's signals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from longtail.config import TriggerConfig

TRIGGERS = ("hard_braking", "disengagement", "harsh_steering", "adas_alert")


@dataclass
class TriggerEvent:
    """A fired trigger: its name, onset and end (ns since epoch), peak value and detail."""

    name: str
    onset_ns: int
    end_ns: int
    peak: float
    detail: str = ""

    def window(self, cfg: TriggerConfig) -> tuple[int, int]:
        """Time window (ns, inclusive) of the frames the trigger marks."""
        return self.onset_ns - int(cfg.pre_s * 1e9), self.end_ns + int(cfg.post_s * 1e9)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return asdict(self)


def trailing_mean(t_ns: np.ndarray, x: np.ndarray, span_s: float) -> np.ndarray:
    """Causal moving average of ``x`` over the last ``span_s`` seconds (near-uniform sampling)."""
    if len(x) < 2:
        return x.astype(float)
    dt = float(np.median(np.diff(t_ns))) / 1e9
    k = max(round(span_s / max(dt, 1e-6)), 1)
    c = np.cumsum(np.concatenate([[0.0], x.astype(float)]))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - k, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the runs of True in ``active``."""
    if not len(active):
        return []
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _sustained(name: str, t: np.ndarray, value: np.ndarray, threshold: float, min_s: float) -> list[TriggerEvent]:
    out = []
    for a, b in _runs(value >= threshold):
        if (t[b - 1] - t[a]) / 1e9 >= min_s:
            out.append(TriggerEvent(name, int(t[a]), int(t[b - 1]), round(float(value[a:b].max()), 3)))
    return out


def detect_triggers(
    t_ns: np.ndarray,
    accel: np.ndarray,
    steering_deg: np.ndarray,
    engaged: np.ndarray,
    override: np.ndarray,
    alerts: list[str],
    cfg: TriggerConfig,
) -> list[TriggerEvent]:
    """Every trigger in a log's vehicle signals, by onset.

    Args:
        t_ns: sample times, ns (increasing).
        accel: longitudinal acceleration, m/s^2.
        steering_deg: steering-wheel angle, degrees.
        engaged: ADAS engaged.
        override: driver override.
        alerts: ADAS alert per sample ("none", "fcw", ...).
        cfg: thresholds.
    """
    if len(t_ns) < 2:
        return []
    events: list[TriggerEvent] = []
    decel = -trailing_mean(t_ns, accel, cfg.smooth_s)
    events += _sustained("hard_braking", t_ns, decel, cfg.hard_brake_mps2, cfg.hard_brake_min_s)
    steer = trailing_mean(t_ns, steering_deg, cfg.smooth_s)
    rate = np.zeros(len(t_ns))
    rate[1:] = np.abs(np.diff(steer)) / np.maximum(np.diff(t_ns) / 1e9, 1e-6)
    events += _sustained("harsh_steering", t_ns, rate, cfg.harsh_steer_dps, cfg.harsh_steer_min_s)
    # Disengagement: the override's rising edge or assistance switching off; one event per second.
    rising = np.flatnonzero(override[1:] & ~override[:-1]) + 1
    falling = np.flatnonzero(engaged[:-1] & ~engaged[1:]) + 1
    last: int | None = None
    for i in sorted(set(rising.tolist()) | set(falling.tolist())):
        if last is None or int(t_ns[i]) - last > 1_000_000_000:
            events.append(TriggerEvent("disengagement", int(t_ns[i]), int(t_ns[i]), 1.0,
                                       "override" if override[i] else "switched off"))
            last = int(t_ns[i])
    alert_on = np.array([a in cfg.alerts for a in alerts], dtype=bool)
    for a, b in _runs(alert_on):
        kinds = [alerts[i] for i in range(a, b)]
        events.append(TriggerEvent("adas_alert", int(t_ns[a]), int(t_ns[b - 1]), 1.0, max(set(kinds), key=kinds.count)))
    return sorted(events, key=lambda e: (e.onset_ns, e.name))


def frames_in_windows(frame_ns: np.ndarray, events: list[TriggerEvent], cfg: TriggerConfig) -> list[list[str]]:
    """For each frame time, the names of the triggers whose window covers it (sorted)."""
    out: list[set[str]] = [set() for _ in range(len(frame_ns))]
    for e in events:
        a, b = e.window(cfg)
        lo, hi = np.searchsorted(frame_ns, a, side="left"), np.searchsorted(frame_ns, b, side="right")
        for i in range(lo, hi):
            out[i].add(e.name)
    return [sorted(s) for s in out]
