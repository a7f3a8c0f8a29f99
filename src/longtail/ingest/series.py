"""Collect bound signals from a log's messages into time series; derive what physics allows.

`SignalCollector` takes decoded messages of the channels a signal is bound to
(`longtail.ingest.signals`), checks on each channel's first message that the mapped fields
exist (a wrong map is named, with the fields the message has), and keeps per channel the
sample times and per signal the raw values. `SignalCollector.finish` converts units, derives
missing signals (`derive`) and returns one `Series` per signal.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from longtail.config import IngestConfig
from longtail.ingest.scan import Channel
from longtail.ingest.signals import (
    FLAG_SIGNALS,
    LABEL_SIGNALS,
    NOT_DERIVABLE,
    SIGNALS,
    STATE_COLUMNS,
    VEHICLE_SIGNALS,
    Binding,
    FieldMissingError,
    bind_json_keys,
    bind_signals,
    field_names,
    get_path,
)
from longtail.ingest.triggers import Series

_TRUE = frozenset({"1", "true", "on", "yes", "engaged", "active", "enabled"})


@dataclass
class _Channel:
    bindings: list[Binding]
    t: list[int] = field(default_factory=list)
    values: list[tuple[Any, ...]] = field(default_factory=list)
    getter: Callable[[Any], tuple[Any, ...]] | None = None
    backwards: int = 0


@dataclass
class Signals:
    """A log's signals: one series per signal it has (measured or derived), and what was done."""

    series: dict[str, Series]
    sources: dict[str, dict[str, Any]]
    """Per signal Longtail knows: where it came from (topic, field, unit, from), how it was
    derived, or why it is missing."""
    notes: list[str]
    backwards: int = 0

    def has_vehicle_signals(self) -> bool:
        """Whether any vehicle signal (not only GNSS) has samples."""
        return any(s in self.series for s in VEHICLE_SIGNALS)

    def samples(self) -> int:
        """Samples over all signals."""
        return sum(len(s.t) for s in self.series.values())


class SignalCollector:
    """Gathers bound signals during the scan of one log.

    Args:
        cfg: the ingest config (its signal map and vehicle-state topic).
    """

    def __init__(self, cfg: IngestConfig) -> None:
        self.cfg = cfg
        self.bound: dict[str, Binding] = {}
        self.channels: dict[int, _Channel] = {}
        self.probe: set[int] = set()
        self.seen: set[int] = set()
        self.notes: list[str] = []
        self._map_notes: list[str] = []

    def bind(self, channels: list[Channel], claimed: set[int]) -> None:
        """Bind signals to channels not seen before (``claimed``: channels playing another role)."""
        fresh = [ch for ch in channels if ch.id not in self.seen]
        if not fresh:
            return
        self.seen.update(ch.id for ch in fresh)
        # Only fresh channels are bound: a channel already read keeps the fields it was read with.
        usable = [ch for ch in fresh if ch.id not in claimed]
        new, _ = bind_signals(usable, self.cfg.signal_map, self.bound, self.cfg.vehicle_state_topic)
        _, self._map_notes = bind_signals(channels, {s: m for s, m in self.cfg.signal_map.items()
                                                     if s not in self.bound and s not in {b.signal for b in new}},
                                          {}, None)
        for b in new:
            self._add_binding(b)
        for ch in fresh:
            if ch.message_encoding == "json" and ch.id not in claimed and ch.id not in self.channels:
                self.probe.add(ch.id)

    def _add_binding(self, b: Binding) -> None:
        self.bound[b.signal] = b
        self.channels.setdefault(b.channel_id, _Channel([])).bindings.append(b)

    def wants(self, channel_id: int) -> bool:
        """Whether messages of this channel are read for signals."""
        return channel_id in self.channels or channel_id in self.probe

    def add(self, channel: Channel, t: int, message: Any) -> None:
        """Record one decoded message of ``channel`` at log time ``t`` (ns)."""
        if channel.id in self.probe:
            self.probe.discard(channel.id)
            if isinstance(message, dict):
                for b in bind_json_keys(channel, message, self.bound):
                    self._add_binding(b)
        state = self.channels.get(channel.id)
        if state is None:
            return
        if state.getter is None:
            self._compile(channel, state, message)
            if not state.bindings:
                del self.channels[channel.id]
                return
        if state.t and t <= state.t[-1]:
            state.backwards += 1
            return
        values = state.getter(message)  # type: ignore[misc]
        state.t.append(t)
        state.values.append(values)

    def _compile(self, channel: Channel, state: _Channel, message: Any) -> None:
        """Check the mapped fields on the first message; build a fast getter for the ones present."""
        present, missing = [], []
        for b in state.bindings:
            try:
                get_path(message, b.field)
                present.append(b)
            except FieldMissingError as exc:
                missing.append((b, exc))
        for b, _ in missing:
            del self.bound[b.signal]
        if missing:
            self.notes.append(_wrong_map_note(channel, missing, message))
        state.bindings = present
        fields = [b.field for b in present]
        if not fields:
            return
        get: Callable[[Any], Any]
        if all("." not in f for f in fields) and isinstance(message, dict):
            get = operator.itemgetter(*fields)
        elif all("." not in f for f in fields):
            get = operator.attrgetter(*fields)
        else:
            paths = list(fields)

            def get(m: Any) -> Any:
                return tuple(get_path(m, p) for p in paths)

        state.getter = get if len(fields) > 1 else (lambda m: (get(m),))

    def finish(self, smooth_s: float) -> Signals:
        """The signals as series in Longtail's units, derived ones added; notes on what is missing."""
        series: dict[str, Series] = {}
        sources: dict[str, dict[str, Any]] = {}
        notes = list(self.notes) + self._map_notes
        backwards = 0
        for state in self.channels.values():
            backwards += state.backwards
            if not state.t:
                continue
            t = np.array(state.t, dtype=np.int64)
            for k, b in enumerate(state.bindings):
                raw = [v[k] for v in state.values]
                try:
                    values = _convert(b, raw)
                except (TypeError, ValueError) as exc:
                    notes.append(f"signal {b.signal}: field {b.field!r} of {b.topic} is not a "
                                 f"{'number' if b.signal not in LABEL_SIGNALS else 'value'} ({exc}); fix the signal map")
                    continue
                keep = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(len(t), dtype=bool)
                series[b.signal] = Series(t[keep], values[keep])
                sources[b.signal] = b.describe() | {"samples": int(keep.sum())}
        for name, how in derive(series, smooth_s).items():
            sources[name] = {"derived": how, "samples": len(series[name].t)}
        for name in SIGNALS:
            if name not in sources:
                sources[name] = {"missing": f"not in the log; not derivable: {NOT_DERIVABLE[name]}"
                                 if name in NOT_DERIVABLE else "not in the log"}
        return Signals(series, dict(sorted(sources.items())), notes, backwards)


def _wrong_map_note(channel: Channel, missing: list[tuple[Binding, FieldMissingError]], message: Any) -> str:
    origins = {b.origin for b, _ in missing}
    fields = field_names(message)
    if any(o.startswith("vehicle_state_topic") for o in origins):
        wanted = [b.field for b, _ in missing]
        return (f"vehicle_state_topic {channel.topic} ({channel.schema_name or channel.message_encoding}): its "
                f"messages have fields {fields}, not Longtail's VehicleState fields (missing: {wanted}); map its "
                "fields to signals with a signal map (--signal-map FILE; see README, 'Bring your own logs')")
    parts = [f"{b.signal} looked for field {b.field!r} ({exc.args[0]})" for b, exc in missing]
    return (f"signal map: topic {channel.topic} ({channel.schema_name or channel.message_encoding}): "
            + "; ".join(parts) + f"; its messages have fields {fields}; fix the field in the signal map")


def _convert(b: Binding, raw: list[Any]) -> np.ndarray:
    if b.signal in LABEL_SIGNALS:
        return np.array([str(v).lower() for v in raw], dtype=object)
    if b.signal in FLAG_SIGNALS:
        return np.array([(str(v).strip().lower() in _TRUE) if isinstance(v, str)
                         else bool(float(v) * b.scale + b.offset) for v in raw], dtype=bool)
    x = np.asarray(raw, dtype=np.float64)
    return (x * b.scale + b.offset) * b.factor


def derive(series: dict[str, Series], smooth_s: float) -> dict[str, str]:
    """Add the signals physics gives from others, in place; returns {signal: how}.

    1. accel from speed: the change of speed over the last ``smooth_s`` seconds (a causal,
       time-based difference; the speed is interpolated between its samples);
    2. lateral accel from speed and yaw rate: a = v * omega (both right-positive).

    Yaw rate is not derived from steering and speed (it needs the steering ratio and wheelbase
    and fails in a skid), nor speed from acceleration (it drifts): `NOT_DERIVABLE`.
    """
    done: dict[str, str] = {}
    speed = series.get("speed")
    if "accel" not in series and speed is not None and len(speed.t) >= 2:
        t = (speed.t - speed.t[0]) / 1e9
        start = np.maximum(t - smooth_s, 0.0)
        width = t - start
        before = np.interp(start, t, speed.v)
        accel = np.where(width > 0, (speed.v - before) / np.where(width > 0, width, 1.0), 0.0)
        series["accel"] = Series(speed.t, accel)
        done["accel"] = f"from speed: its change over the last {smooth_s} s"
    yaw = series.get("yaw_rate")
    if "lateral_accel" not in series and speed is not None and yaw is not None and len(speed.t) and len(yaw.t):
        series["lateral_accel"] = Series(yaw.t, np.interp(yaw.t, speed.t, speed.v) * yaw.v)
        done["lateral_accel"] = "from speed and yaw rate: speed * yaw rate"
    return done


def on_base(signals: Signals) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    """Vehicle signals on one time base (the sample times of the densest numeric signal), in the
    column order of Longtail's VehicleState (`longtail.ingest.decode.STATE_FIELDS`, flags, labels).

    Numbers are interpolated (NaN for a signal the log lacks); flags and labels are the latest
    sample at or before each time.

    Returns:
        (times ns, values samples x 7, flags samples x 2, labels per sample (turn_signal, adas_alert)).
    """
    from longtail.ingest.decode import STATE_FIELDS, STATE_FLAGS, STATE_LABELS

    numeric = [s for s in VEHICLE_SIGNALS if s in signals.series and s not in FLAG_SIGNALS + LABEL_SIGNALS]
    present = [s for s in VEHICLE_SIGNALS if s in signals.series]
    if not present:
        return np.zeros(0, np.int64), np.zeros((0, len(STATE_FIELDS))), np.zeros((0, 2), bool), []
    base_name = max(numeric or present, key=lambda s: len(signals.series[s].t))
    t = signals.series[base_name].t
    by_column = {STATE_COLUMNS[s]: s for s in STATE_COLUMNS}
    values = np.full((len(t), len(STATE_FIELDS)), np.nan)
    for k, col in enumerate(STATE_FIELDS):
        s = signals.series.get(by_column[col])
        if s is not None and len(s.t):
            values[:, k] = np.interp(t, s.t, s.v)
    flags = np.zeros((len(t), len(STATE_FLAGS)), dtype=bool)
    labels = [["", ""] for _ in range(len(t))]
    for k, col in enumerate(STATE_FLAGS):
        s = signals.series.get(by_column[col])
        if s is not None and len(s.t):
            flags[:, k] = s.v[_latest(s.t, t)]
    for k, col in enumerate(STATE_LABELS):
        s = signals.series.get(by_column[col])
        if s is not None and len(s.t):
            for i, j in enumerate(_latest(s.t, t).tolist()):
                labels[i][k] = str(s.v[j])
    return t, values, flags, [tuple(x) for x in labels]


def _latest(sample_t: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(sample_t, at, side="right") - 1, 0, len(sample_t) - 1)


def signal_table(log_id: str, signals: Signals, windows: list[tuple[int, int, str]], smooth_s: float) -> pa.Table:
    """The signal index rows of a log (`longtail.schemas.SIGNAL_INDEX_SCHEMA`): the vehicle signals
    on their time base, thinned to the first sample of every 100 ms.

    Args:
        log_id: the log's id.
        signals: its signals.
        windows: (start ns, end ns, trigger) of each trigger's window.
        smooth_s: smoothing window of the deceleration, s.
    """
    from longtail.ingest.triggers import trailing_mean
    from longtail.schemas import SIGNAL_INDEX_SCHEMA

    t, values, flags, labels = on_base(signals)
    if not len(t):
        return SIGNAL_INDEX_SCHEMA.empty_table()
    accel = values[:, 1]
    decel = -trailing_mean(t, accel, smooth_s) if not np.isnan(accel).all() else accel
    keep = np.flatnonzero(np.diff(np.concatenate([[-1], (t - t[0]) // 100_000_000])) > 0)
    tk = t[keep]
    position = {}
    for name in ("latitude", "longitude"):
        s = signals.series.get(name)
        position[name] = np.interp(tk, s.t, s.v) if s is not None and len(s.t) else np.full(len(tk), np.nan)
    covered: list[set[str]] = [set() for _ in range(len(tk))]
    for a, b, name in windows:
        for i in range(int(np.searchsorted(tk, a, side="left")), int(np.searchsorted(tk, b, side="right"))):
            covered[i].add(name)
    v = values[keep].astype(np.float32)
    columns = {
        "log_id": [log_id] * len(tk), "timestamp_ns": tk,
        "speed_mps": v[:, 0], "accel_mps2": v[:, 1], "decel_mps2": decel[keep].astype(np.float32),
        "lateral_accel_mps2": v[:, 2], "yaw_rate_rps": v[:, 4], "steering_angle_deg": v[:, 3],
        "brake_pressure_bar": v[:, 5], "throttle_pct": v[:, 6],
        "adas_engaged": flags[keep, 0], "driver_override": flags[keep, 1],
        "adas_alert": [labels[i][1] for i in keep.tolist()], "turn_signal": [labels[i][0] for i in keep.tolist()],
        "latitude": position["latitude"], "longitude": position["longitude"],
        "triggers": [sorted(c) for c in covered],
    }
    return pa.Table.from_pydict(columns, schema=SIGNAL_INDEX_SCHEMA)


def distance_km(signals: Signals) -> float | None:
    """Distance driven: the integral of speed (trapezoids), else the GNSS track; None without either."""
    speed = signals.series.get("speed")
    if speed is not None and len(speed.t) > 1:
        return float(np.trapezoid(speed.v, speed.t / 1e9)) / 1000
    lat, lon = signals.series.get("latitude"), signals.series.get("longitude")
    if lat is None or lon is None or len(lat.t) < 2 or len(lat.t) != len(lon.t):
        return None
    phi, lam = np.radians(lat.v), np.radians(lon.v)
    a = np.sin(np.diff(phi) / 2) ** 2 + np.cos(phi[:-1]) * np.cos(phi[1:]) * np.sin(np.diff(lam) / 2) ** 2
    return float(2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(a, 0, 1))).sum())
