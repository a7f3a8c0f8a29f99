"""Read drive logs (MCAP) of either recording profile into plain Python values.

Readers are filtered iterators: `iter_messages` yields small named tuples for the topics asked
for, decoded from protobuf, ROS 2 CDR or JSON. A new ROS 2 decoder factory is made per file:
mcap-ros2-support caches decoders by schema id, so sharing one across files decodes wrongly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from mcap.decoder import DecoderFactory
from mcap.reader import make_reader
from mcap.records import Schema

from longtail.errors import InputError


class JsonDecoderFactory(DecoderFactory):
    """Decodes ``json`` channels to dicts."""

    def decoder_for(self, message_encoding: str, schema: Schema | None) -> Callable[[bytes], Any] | None:
        if message_encoding == "json":
            return lambda data: json.loads(data)
        return None


def decoder_factories() -> list[DecoderFactory]:
    """Fresh decoder factories for one file: protobuf, ROS 2 and JSON."""
    from mcap_protobuf.decoder import DecoderFactory as ProtobufDecoderFactory
    from mcap_ros2.decoder import DecoderFactory as Ros2DecoderFactory

    return [ProtobufDecoderFactory(), Ros2DecoderFactory(), JsonDecoderFactory()]


class LogMessage(NamedTuple):
    """One decoded message: topic, schema name, log time (ns since epoch) and the message."""

    topic: str
    schema: str
    log_time_ns: int
    message: Any


def field(message: Any, name: str) -> Any:
    """A field of a decoded message, whether it decoded to a dict (JSON) or an object (protobuf, ROS 2)."""
    return message[name] if isinstance(message, dict) else getattr(message, name)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """The metadata records of a log, by name."""
    with open(path, "rb") as stream:
        reader = make_reader(stream)
        return {m.name: dict(m.metadata) for m in reader.iter_metadata()}


def iter_messages(
    path: str | os.PathLike[str],
    topics: Iterable[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Iterator[LogMessage]:
    """Yield decoded messages of ``path`` in log-time order.

    Args:
        path: an MCAP file.
        topics: only these topics (all when None).
        start_ns: first log time, inclusive, ns since the UNIX epoch.
        end_ns: last log time, exclusive.

    Raises:
        InputError: when the file cannot be opened as MCAP.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed in finally; generator
    except OSError as exc:
        raise InputError(f"{path}: cannot open drive log ({exc})") from exc
    try:
        reader = make_reader(stream, decoder_factories=decoder_factories())
        for schema, channel, message, decoded in reader.iter_decoded_messages(
            topics=list(topics) if topics is not None else None, start_time=start_ns, end_time=end_ns
        ):
            yield LogMessage(channel.topic, schema.name if schema else "", message.log_time, decoded)
    finally:
        stream.close()
