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

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from longtail.config import TriggerConfig

TRIGGERS = ("hard_braking", "disengagement", "harsh_steering", "adas_alert")


class Series(NamedTuple):
    """One signal's samples: times (ns since epoch, increasing, int64) and values (SI units,
    booleans or strings)."""

    t: np.ndarray
    v: np.ndarray


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
    """Causal, time-weighted moving average of ``x`` over the last ``span_s`` seconds.

    The window is measured in time, not in samples, so uneven sampling or dropped messages
    neither widen nor narrow it. Steps:

    1. integrate ``x`` with the trapezoid rule: ``I(t_i)``;
    2. the integral at ``t_i - span_s``, exact for the signal interpolated linearly between samples;
    3. mean = (I(t_i) - I(t_i - span_s)) / span_s; at the start of the log the window is
       what has been seen so far (the first sample is its own mean).

    Args:
        t_ns: sample times, ns (increasing).
        x: the signal at those times.
        span_s: window length, s.

    Returns:
        The smoothed signal, one value per sample.
    """
    x = x.astype(float)
    if len(x) < 2:
        return x
    t = (t_ns - t_ns[0]) / 1e9
    integral = np.concatenate([[0.0], np.cumsum(np.diff(t) * (x[1:] + x[:-1]) / 2)])
    start = np.maximum(t - span_s, 0.0)
    width = t - start
    safe = np.where(width > 0, width, 1.0)
    return np.where(width > 0, (integral - integral_at(t, x, integral, start)) / safe, x)


def integral_at(t: np.ndarray, x: np.ndarray, integral: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The integral of the piecewise-linear signal ``x(t)`` from ``t[0]`` to each time in ``at``.

    Args:
        t: sample times, s (increasing, at least two).
        x: values at ``t``.
        integral: the trapezoid integral at each ``t`` (``integral[0] == 0``).
        at: times within [t[0], t[-1]], s.

    Returns:
        Exact for the linear interpolation of ``x``: the trapezoid up to ``t[k]``, plus the part
        of the next segment (quadratic in the time into it).
    """
    k = np.clip(np.searchsorted(t, at, side="right") - 1, 0, len(t) - 2)
    d = at - t[k]
    dt = t[k + 1] - t[k]
    slope = np.where(dt > 0, (x[k + 1] - x[k]) / np.where(dt > 0, dt, 1.0), 0.0)
    return integral[k] + x[k] * d + 0.5 * slope * d * d


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the runs of True in ``active``."""
    if not len(active):
        return []
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _sustained(name: str, t: np.ndarray, value: np.ndarray, threshold: float, min_s: float,
               max_gap_s: float) -> list[TriggerEvent]:
    """Runs of ``value >= threshold`` lasting ``min_s`` seconds of signal time.

    Each sample holds its value until the next one (a zero-order hold), so a run lasts from its
    first sample to the first sample after it. A silence longer than ``max_gap_s`` ends a run:
    what happened during dropped messages is not known, so it is not counted.
    """
    out = []
    max_gap = max_gap_s * 1e9
    n = len(t)
    for a, b in _runs(value >= threshold):
        cuts = (np.flatnonzero(np.diff(t[a:b]) > max_gap) + a + 1).tolist()
        for s, e in zip([a, *cuts], [*cuts, b], strict=True):
            held_to = t[e] if e < n and t[e] - t[e - 1] <= max_gap else t[e - 1]
            if (held_to - t[s]) / 1e9 >= min_s - 1e-9:
                out.append(TriggerEvent(name, int(t[s]), int(t[e - 1]), round(float(value[s:e].max()), 3)))
    return out


TRIGGER_NEEDS: dict[str, tuple[str, ...]] = {
    "hard_braking": ("accel",),
    "harsh_steering": ("steering_angle",),
    "disengagement": ("driver_override", "adas_engaged"),
    "adas_alert": ("adas_alert",),
}
"""The signals each trigger reads (`longtail.ingest.signals.SIGNALS`); it is evaluated when the
log has at least one of them, measured or derived."""


def detect_triggers(signals: Mapping[str, Series], cfg: TriggerConfig) -> tuple[list[TriggerEvent], dict[str, str]]:
    """Every trigger in a log's vehicle signals, by onset; and the triggers that could not be evaluated.

    Each trigger runs on its own signals' sample times (signals may come from different topics
    at different rates).

    Args:
        signals: signal name -> its time series (`Series`): ``accel`` (m/s^2, braking negative),
            ``steering_angle`` (deg), ``driver_override`` and ``adas_engaged`` (booleans),
            ``adas_alert`` (strings: "none", "fcw", ...).
        cfg: thresholds.

    Returns:
        (events sorted by onset, {trigger: why it was not evaluated}). A trigger whose signals
        the log lacks is "not evaluated", which is not the same as "did not fire".
    """
    events: list[TriggerEvent] = []
    missing: dict[str, str] = {}
    for name, needs in TRIGGER_NEEDS.items():
        if not any(len(signals[s].t) >= 2 for s in needs if s in signals):
            missing[name] = f"needs the {' or '.join(needs)} signal, which the log does not have"
    if "hard_braking" not in missing:
        t, accel = signals["accel"]
        decel = -trailing_mean(t, accel, cfg.smooth_s)
        events += _sustained("hard_braking", t, decel, cfg.hard_brake_mps2, cfg.hard_brake_min_s, cfg.max_gap_s)
    if "harsh_steering" not in missing:
        t, steering = signals["steering_angle"]
        steer = trailing_mean(t, steering, cfg.smooth_s)
        rate = np.zeros(len(t))
        rate[1:] = np.abs(np.diff(steer)) / np.maximum(np.diff(t) / 1e9, 1e-6)
        events += _sustained("harsh_steering", t, rate, cfg.harsh_steer_dps, cfg.harsh_steer_min_s, cfg.max_gap_s)
    if "disengagement" not in missing:
        # The override's rising edge or assistance switching off; one event per second.
        edges: list[tuple[int, str]] = []
        if "driver_override" in signals and len(signals["driver_override"].t) >= 2:
            t, override = signals["driver_override"]
            on = override.astype(bool)
            edges += [(int(t[i]), "override") for i in (np.flatnonzero(on[1:] & ~on[:-1]) + 1).tolist()]
        if "adas_engaged" in signals and len(signals["adas_engaged"].t) >= 2:
            t, engaged = signals["adas_engaged"]
            on = engaged.astype(bool)
            edges += [(int(t[i]), "switched off") for i in (np.flatnonzero(on[:-1] & ~on[1:]) + 1).tolist()]
        last: int | None = None
        for when, detail in sorted(edges, key=lambda e: (e[0], e[1] != "override")):
            if last is None or when - last > 1_000_000_000:
                events.append(TriggerEvent("disengagement", when, when, 1.0, detail))
                last = when
    if "adas_alert" not in missing:
        t, alerts = signals["adas_alert"]
        alert_on = np.array([a in cfg.alerts for a in alerts], dtype=bool)
        for a, b in _runs(alert_on):
            kinds = [str(alerts[i]) for i in range(a, b)]
            events.append(TriggerEvent("adas_alert", int(t[a]), int(t[b - 1]), 1.0,
                                       max(set(kinds), key=kinds.count)))
    return sorted(events, key=lambda e: (e.onset_ns, e.name)), missing


def frames_in_windows(frame_ns: np.ndarray, events: list[TriggerEvent], cfg: TriggerConfig) -> list[list[str]]:
    """For each frame time, the names of the triggers whose window covers it (sorted)."""
    out: list[set[str]] = [set() for _ in range(len(frame_ns))]
    for e in events:
        a, b = e.window(cfg)
        lo, hi = np.searchsorted(frame_ns, a, side="left"), np.searchsorted(frame_ns, b, side="right")
        for i in range(lo, hi):
            out[i].add(e.name)
    return [sorted(s) for s in out]
