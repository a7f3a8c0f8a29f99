"""Signal maps: which topic and field of a drive log gives each vehicle signal Longtail uses.

A signal (`longtail.config.SIGNAL_UNITS`: speed, accel, lateral_accel, yaw_rate,
steering_angle, brake, throttle, adas_engaged, driver_override, adas_alert, turn_signal,
latitude, longitude) is bound to one channel and field, in this order of precedence:

1. the user's signal map (``signal_map`` in the ingest config, ``--signal-map FILE``);
2. a built-in map for a known schema (`BUILTIN_MAPS`): Longtail's own VehicleState, ROS 2
   geometry_msgs Twist/TwistStamped, sensor_msgs Imu and NavSatFix, foxglove.LocationFix;
3. a scalar topic (std_msgs/msg/Float64 and friends: the value is ``data``) whose last name
   says what it is (`NAME_ALIASES`: ``/can/speed_kph``, ``/vehicle/steering_angle``);
4. a key of a JSON message with such a name (looked at in the first message of the topic).

Every binding says where it came from; the manifest records them. ROS messages follow REP 103
(x forward, y left, z up): the built-in maps flip y and z to Longtail's right-positive
convention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from longtail.config import SIGNAL_UNITS, SignalSource, _check_signal_map
from longtail.errors import ConfigError
from longtail.ingest.scan import Channel

SIGNALS: tuple[str, ...] = tuple(SIGNAL_UNITS)
FLAG_SIGNALS = ("adas_engaged", "driver_override")
LABEL_SIGNALS = ("adas_alert", "turn_signal")
VEHICLE_SIGNALS = tuple(s for s in SIGNALS if s not in ("latitude", "longitude"))

STATE_COLUMNS: dict[str, str] = {
    "speed": "speed_mps", "accel": "accel_mps2", "lateral_accel": "lateral_accel_mps2",
    "steering_angle": "steering_wheel_angle_deg", "yaw_rate": "yaw_rate_rps", "brake": "brake_pressure_bar",
    "throttle": "throttle_pct", "adas_engaged": "adas_engaged", "driver_override": "driver_override",
    "turn_signal": "turn_signal", "adas_alert": "adas_alert",
}
"""Signal -> field of Longtail's own VehicleState message (`longtail.schemas.VEHICLE_STATE_SCHEMA`)."""

VEHICLE_STATE_SCHEMAS = ("longtail.VehicleState", "longtail_msgs/msg/VehicleState")

_Map = dict[str, tuple[str, str, float]]
_TWIST: _Map = {"speed": ("linear.x", "m/s", 1.0), "yaw_rate": ("angular.z", "rad/s", -1.0)}
_FIX: _Map = {"latitude": ("latitude", "deg", 1.0), "longitude": ("longitude", "deg", 1.0)}
BUILTIN_MAPS: dict[str, _Map] = {
    **{name: {s: (STATE_COLUMNS[s], next(iter(SIGNAL_UNITS[s])), 1.0) for s in STATE_COLUMNS}
       for name in VEHICLE_STATE_SCHEMAS},
    "sensor_msgs/msg/Imu": {"accel": ("linear_acceleration.x", "m/s^2", 1.0),
                            "lateral_accel": ("linear_acceleration.y", "m/s^2", -1.0),
                            "yaw_rate": ("angular_velocity.z", "rad/s", -1.0)},
    "geometry_msgs/msg/TwistStamped": {s: ("twist." + f, u, k) for s, (f, u, k) in _TWIST.items()},
    "geometry_msgs/msg/Twist": _TWIST,
    "sensor_msgs/msg/NavSatFix": _FIX,
    "foxglove.LocationFix": _FIX,
}
"""Schema -> {signal: (field, unit, scale)}, in order of preference when several topics could
give a signal (a measured IMU yaw rate before a twist's). Twist topics named like a command
(``cmd_vel``) are not taken: a command is not what the vehicle did."""

SCALAR_SCHEMAS = tuple(f"std_msgs/msg/{t}" for t in (
    "Float64", "Float32", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Bool", "String"))

NAME_ALIASES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("speed", "speed_mps", "vehicle_speed", "vehicle_speed_mps", "velocity"), ("speed", "m/s")),
    **dict.fromkeys(("speed_kph", "speed_kmh", "vehicle_speed_kph", "vehicle_speed_kmh"), ("speed", "km/h")),
    **dict.fromkeys(("accel", "accel_mps2", "acceleration", "longitudinal_accel", "longitudinal_acceleration",
                     "accel_x"), ("accel", "m/s^2")),
    **dict.fromkeys(("lateral_accel", "lateral_accel_mps2", "lateral_acceleration", "accel_y"),
                    ("lateral_accel", "m/s^2")),
    **dict.fromkeys(("yaw_rate", "yaw_rate_rps"), ("yaw_rate", "rad/s")),
    "yaw_rate_dps": ("yaw_rate", "deg/s"),
    **dict.fromkeys(("steering_angle", "steering_angle_deg", "steering_wheel_angle", "steering_wheel_angle_deg"),
                    ("steering_angle", "deg")),
    **dict.fromkeys(("brake", "brake_pressure", "brake_pressure_bar"), ("brake", "bar")),
    **dict.fromkeys(("throttle", "throttle_pct", "accelerator_pedal", "accelerator_pedal_pct"), ("throttle", "%")),
    **{s: (s, next(iter(SIGNAL_UNITS[s]))) for s in (*FLAG_SIGNALS, *LABEL_SIGNALS, "latitude", "longitude")},
    **dict.fromkeys(("lat",), ("latitude", "deg")), **dict.fromkeys(("lon", "lng"), ("longitude", "deg")),
}
"""A topic's last name (or a JSON key), lower case -> (signal, unit). A name without a unit is
taken in the signal's own unit, and the manifest says so: map it if it is not."""

NOT_DERIVABLE: dict[str, str] = {
    "speed": "integrating acceleration needs the initial speed and drifts",
    "yaw_rate": "steering angle and speed give it only with the steering ratio and wheelbase, and not in a skid",
    "steering_angle": "no other signal gives it",
    "brake": "brake pressure cannot be recovered from motion",
    "throttle": "the pedal cannot be recovered from motion",
    "adas_engaged": "only the vehicle knows the state of its assistance",
    "driver_override": "only the vehicle knows whether the driver took over",
    "adas_alert": "only the vehicle knows its alerts",
    "turn_signal": "only the vehicle knows its indicators",
    "latitude": "positions need GNSS",
    "longitude": "positions need GNSS",
}
"""Why a signal the log lacks is not derived from others (accel comes from speed, lateral accel
from speed and yaw rate: `longtail.ingest.series.derive`)."""


@dataclass(frozen=True)
class Binding:
    """One signal bound to a channel's field.

    The value is ``(raw * scale + offset) * factor`` where factor converts ``unit`` to the signal's unit.
    """

    signal: str
    channel_id: int
    topic: str
    field: str
    unit: str
    scale: float
    offset: float
    origin: str

    @property
    def factor(self) -> float:
        """Unit conversion to the signal's unit."""
        return SIGNAL_UNITS[self.signal][self.unit]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for the manifest."""
        return {"topic": self.topic, "field": self.field, "unit": self.unit, "scale": self.scale,
                "offset": self.offset, "from": self.origin}


def load_signal_map(path: str | os.PathLike[str]) -> dict[str, SignalSource]:
    """Read a signal map file (YAML): ``{signal: {topic, field, unit, scale, offset}}``, at the top
    level or under a ``signal_map:`` key.

    Raises:
        ConfigError: naming the file, the signal and field, and what is valid.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the signal map ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: the signal map is not valid YAML ({exc})") from None
    if isinstance(data, dict) and set(data) == {"signal_map"}:
        data = data["signal_map"]
    return parse_signal_map(data, str(path))


def parse_signal_map(data: Any, source: str) -> dict[str, SignalSource]:
    """Validate a signal map given as a mapping (from a file, or inline in the target's env file).

    Args:
        data: ``{signal: {topic, field, unit, scale, offset}}``.
        source: where it came from, for messages (a file, or ``ingest.signal_map``).

    Raises:
        ConfigError: naming the source, the signal and field, and what is valid.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a signal map is a mapping signal -> {{topic, field, unit}}, e.g. "
                          "'speed: {topic: /can/speed, field: data, unit: km/h}'")
    try:
        parsed = TypeAdapter(dict[str, SignalSource]).validate_python(data)
        return _check_signal_map(parsed)
    except ValidationError as exc:
        problems = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        raise ConfigError(f"{source}: invalid signal map: {problems}. Each entry takes topic (required), field "
                          f"(default data), unit, scale, offset; signals are {list(SIGNALS)}") from None
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid signal map: {exc}") from None


def resolve_signal_map(value: Any, source: str = "ingest.signal_map") -> dict[str, SignalSource]:
    """The signal map a target's env file gives (``ingest.signal_map``): inline, a file, or none.

    Args:
        value: a mapping (inline map), a path to a YAML signal map file, or None / ``{}`` (none:
            the built-in maps apply).
        source: the setting's name, for messages.

    Raises:
        ConfigError: naming the setting or file, the signal and field, and what is valid.
    """
    if value is None or (isinstance(value, dict) and not value):
        return {}
    if isinstance(value, str | os.PathLike):
        return load_signal_map(value)
    return parse_signal_map(value, source)


def _builtin(channel: Channel, signal: str) -> Binding | None:
    entry = BUILTIN_MAPS.get(channel.schema_name, {}).get(signal)
    if entry is None:
        return None
    if channel.schema_name.startswith("geometry_msgs/msg/Twist") and "cmd" in channel.topic.lower():
        return None
    field, unit, scale = entry
    return Binding(signal, channel.id, channel.topic, field, unit, scale, 0.0,
                   f"built-in map for {channel.schema_name}")


def _by_name(channel: Channel, signal: str) -> Binding | None:
    if channel.schema_name not in SCALAR_SCHEMAS:
        return None
    alias = NAME_ALIASES.get(channel.topic.rstrip("/").rsplit("/", 1)[-1].lower())
    if alias is None or alias[0] != signal:
        return None
    return Binding(signal, channel.id, channel.topic, "data", alias[1], 1.0, 0.0,
                   f"topic name ({channel.schema_name}, unit {alias[1]} read from the name or assumed)")


def bind_signals(channels: list[Channel], cfg_map: dict[str, SignalSource], bound: dict[str, Binding],
                 vehicle_state_topic: str | None = None) -> tuple[list[Binding], list[str]]:
    """Bind the signals not bound yet to the best of ``channels`` (see the module docstring).

    Args:
        channels: the log's channels known so far.
        cfg_map: the user's signal map.
        bound: signals already bound (not changed).
        vehicle_state_topic: a topic configured to carry Longtail's VehicleState fields.

    Returns:
        (new bindings, notes about map entries whose topic is not among ``channels``).
    """
    by_topic = {ch.topic: ch for ch in channels}
    new: list[Binding] = []
    notes: list[str] = []
    taken = set(bound)
    for signal, src in cfg_map.items():
        if signal in taken:
            continue
        ch = by_topic.get(src.topic)
        if ch is None:
            notes.append(f"signal map: {signal} is mapped to topic {src.topic}, which is not in this log "
                         f"(its topics: {sorted(by_topic)}); fix the map's topic")
            continue
        unit = src.unit or next(iter(SIGNAL_UNITS[signal]))
        new.append(Binding(signal, ch.id, ch.topic, src.field, unit, src.scale, src.offset, "signal map"))
        taken.add(signal)
    state = by_topic.get(vehicle_state_topic) if vehicle_state_topic else None
    ordered = sorted(channels, key=lambda ch: (_rank(ch.schema_name), ch.topic))
    for signal in SIGNALS:
        if signal in taken:
            continue
        if state is not None and signal in STATE_COLUMNS:
            new.append(Binding(signal, state.id, state.topic, STATE_COLUMNS[signal], next(iter(SIGNAL_UNITS[signal])),
                               1.0, 0.0, "vehicle_state_topic (Longtail's VehicleState fields)"))
            taken.add(signal)
            continue
        for ch in ordered:
            b = _builtin(ch, signal) or _by_name(ch, signal)
            if b is not None:
                new.append(b)
                taken.add(signal)
                break
    return new, notes


def _rank(schema: str) -> int:
    names = list(BUILTIN_MAPS)
    return names.index(schema) if schema in names else len(names)


def bind_json_keys(channel: Channel, message: dict[str, Any], bound: dict[str, Binding]) -> list[Binding]:
    """Bind signals not bound yet to keys of a JSON message whose names say what they are (`NAME_ALIASES`)."""
    new: list[Binding] = []
    taken = set(bound)
    for key in message:
        alias = NAME_ALIASES.get(str(key).lower())
        if alias is None or alias[0] in taken:
            continue
        new.append(Binding(alias[0], channel.id, channel.topic, str(key), alias[1], 1.0, 0.0,
                           f"JSON key (unit {alias[1]} read from the name or assumed)"))
        taken.add(alias[0])
    return new


def field_names(message: Any) -> list[str]:
    """The fields a decoded message has (JSON dict, ROS 2 object or protobuf)."""
    if isinstance(message, dict):
        return [str(k) for k in message]
    descriptor = getattr(message, "DESCRIPTOR", None)
    if descriptor is not None:
        return [f.name for f in descriptor.fields]
    slots = getattr(type(message), "__slots__", None)
    if slots:
        return [s for s in slots if not s.startswith("_")]
    return sorted(k for k in vars(message) if not k.startswith("_")) if hasattr(message, "__dict__") else []


class FieldMissingError(LookupError):
    """A field path does not exist in a message: names the part that was not found and the fields there."""

    def __init__(self, path: str, part: str, fields: list[str]) -> None:
        super().__init__(f"no field {part!r} (looked for {path!r}); the message has {fields}")
        self.part = part
        self.fields = fields


def get_path(message: Any, path: str) -> Any:
    """The value at a dotted field path (``twist.linear.x``; a number indexes a list).

    Raises:
        FieldMissingError: naming the missing part and the fields present at that level.
    """
    value = message
    for part in path.split("."):
        try:
            if isinstance(value, dict):
                value = value[part]
            elif isinstance(value, (list, tuple)) and part.isdigit():
                value = value[int(part)]
            elif hasattr(value, part):
                value = getattr(value, part)
            else:
                raise KeyError(part)
        except (KeyError, IndexError):
            raise FieldMissingError(path, part, field_names(value)) from None
    return value
