"""Decode the messages ingest needs, in either recording profile.

A role (image, calibration) is recognised by the channel's schema name; topics come from the
ingest config, with defaults for Longtail's own logs. Vehicle signals and GNSS are bound by
signal maps (`longtail.ingest.signals`) and decoded with `Decoders.decode`. A new ROS 2 decoder
factory is made per log: mcap-ros2-support caches decoders by schema id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from mcap.records import Schema

from longtail.ingest.scan import Channel

ROLE_SCHEMAS: dict[str, tuple[str, ...]] = {
    "image": ("foxglove.CompressedImage", "sensor_msgs/msg/CompressedImage"),
    "calibration": ("foxglove.CameraCalibration", "sensor_msgs/msg/CameraInfo"),
}

STATE_FIELDS = (
    "speed_mps", "accel_mps2", "lateral_accel_mps2", "steering_wheel_angle_deg", "yaw_rate_rps",
    "brake_pressure_bar", "throttle_pct",
)
STATE_FLAGS = ("adas_engaged", "driver_override")
STATE_LABELS = ("turn_signal", "adas_alert")


def _get(m: Any, name: str) -> Any:
    return m[name] if isinstance(m, dict) else getattr(m, name)


class Decoders:
    """Decoders for one log's channels (make one per log)."""

    def __init__(self) -> None:
        from mcap_ros2.decoder import DecoderFactory as Ros2DecoderFactory

        self._ros2 = Ros2DecoderFactory()
        self._cache: dict[int, Callable[[Any], Any]] = {}

    def _decoder(self, channel: Channel) -> Callable[[Any], Any]:
        fn = self._cache.get(channel.id)
        if fn is not None:
            return fn
        if channel.message_encoding == "json":
            fn = orjson.loads
        elif channel.message_encoding == "protobuf":
            fn = _protobuf_decoder(channel)
        elif channel.message_encoding == "cdr":
            schema = Schema(id=channel.id, name=channel.schema_name, encoding=channel.schema_encoding,
                            data=channel.schema_data)
            decoder = self._ros2.decoder_for("cdr", schema)
            if decoder is None:
                raise ValueError(f"no ROS 2 decoder for schema {channel.schema_name!r}")
            fn = decoder
        else:
            raise ValueError(f"unsupported message encoding {channel.message_encoding!r} on {channel.topic}")
        self._cache[channel.id] = fn
        return fn

    def decode(self, channel: Channel, data: bytes | memoryview) -> Any:
        """A message decoded: a dict (JSON), a ROS 2 object or a protobuf message.

        Raises:
            ValueError: for an encoding or schema that cannot be decoded.
        """
        return self._decoder(channel)(data if channel.message_encoding == "json" else bytes(data))

    def image(self, channel: Channel, data: bytes | memoryview) -> tuple[str, bytes | memoryview]:
        """(format, image bytes) of a compressed-image message.

        For foxglove.CompressedImage the two fields are read straight from the protobuf wire
        format: the image bytes are a view into the message, never copied or decoded.
        """
        if channel.message_encoding == "protobuf" and channel.schema_name == "foxglove.CompressedImage":
            fields = protobuf_fields(data, _IMAGE_FIELDS)
            if 2 not in fields or 3 not in fields:
                raise ValueError("foxglove.CompressedImage without data or format")
            return bytes(fields[3]).decode("utf-8").lower(), fields[2]
        m = self._decoder(channel)(bytes(data))
        return str(_get(m, "format")).lower(), bytes(_get(m, "data"))

    def calibration(self, channel: Channel, data: bytes | memoryview) -> dict[str, Any]:
        """Image size and intrinsics of a calibration message."""
        m = self._decoder(channel)(bytes(data))
        k = list(_get(m, "K") if channel.message_encoding == "protobuf" else _get(m, "k"))
        return {"width": int(_get(m, "width")), "height": int(_get(m, "height")), "K": [float(v) for v in k]}


# foxglove.CompressedImage: data = 2, format = 3 (both length-delimited), from its descriptor.
_IMAGE_FIELDS = frozenset({2, 3})


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed protobuf varint")


def protobuf_fields(data: bytes | memoryview, wanted: frozenset[int]) -> dict[int, memoryview]:
    """Length-delimited top-level fields of a protobuf message, as zero-copy views.

    Only wire types 0 (varint), 1 (64-bit), 2 (length-delimited) and 5 (32-bit) occur in
    the messages read here; anything else is malformed.

    Raises:
        ValueError: for malformed bytes.
    """
    buf = memoryview(data)
    out: dict[int, memoryview] = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("protobuf field runs past the end of the message")
            if number in wanted:
                out[number] = buf[pos:pos + length]
            pos += length
        elif wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    if pos != end:
        raise ValueError("protobuf message ends inside a field")
    return out


def _protobuf_decoder(channel: Channel) -> Callable[[bytes], Any]:
    from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
    from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix

    classes = {"foxglove.CompressedImage": CompressedImage, "foxglove.CameraCalibration": CameraCalibration,
               "foxglove.LocationFix": LocationFix}
    cls: Any = classes.get(channel.schema_name)
    if cls is not None:
        decode: Callable[[bytes], Any] = cls.FromString
        return decode
    # Any other protobuf schema: from the file descriptor set the log carries.
    from mcap_protobuf.decoder import DecoderFactory as ProtobufDecoderFactory

    schema = Schema(id=channel.id, name=channel.schema_name, encoding=channel.schema_encoding,
                    data=channel.schema_data)
    fn = ProtobufDecoderFactory().decoder_for("protobuf", schema)
    if fn is None:
        raise ValueError(f"unsupported protobuf schema {channel.schema_name!r} on {channel.topic}")
    return fn


def role_of(channel: Channel) -> str | None:
    """The role a channel's schema can play, if any."""
    for role, names in ROLE_SCHEMAS.items():
        if channel.schema_name in names:
            return role
    return None
