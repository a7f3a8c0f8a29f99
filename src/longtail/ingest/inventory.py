"""The topic inventory of a drive log: every topic, what it is, how much of it, and whether it was used.

Like ``mcap info``, plus rates and gaps: per topic its schema, encoding, kind (camera, lidar,
radar, gnss, imu, vehicle, other), message count, time span, median rate, largest gap, messages
whose time went backwards, and what Longtail used it for. Lidar and radar topics are listed and
counted though Longtail does not decode them yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.ingest.scan import Channel

RAW_IMAGE_SCHEMAS = ("sensor_msgs/msg/Image", "foxglove.RawImage")
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("camera", ("compressedimage", "sensor_msgs/msg/image", "rawimage", "camera", "/image")),
    ("lidar", ("pointcloud", "laserscan", "lidar", "velodyne", "ouster", "hesai", "livox", "pandar", "rslidar")),
    ("radar", ("radar",)),
    ("gnss", ("navsatfix", "locationfix", "gnss", "gps")),
    ("imu", ("imu",)),
    ("vehicle", ("vehiclestate", "vehicle", "can", "twist", "speed", "steer", "brake", "throttle", "std_msgs")),
)


def topic_kind(channel: Channel) -> str:
    """What a topic carries, from its schema name first, then its topic name."""
    for text in (channel.schema_name.lower(), channel.topic.lower()):
        for kind, words in _KINDS:
            if any(w in text for w in words):
                return kind
    return "other"


class TopicTimes:
    """Log times of every message, per channel, gathered during the scan."""

    def __init__(self) -> None:
        self.times: dict[int, list[int]] = {}

    def add(self, channel_id: int, t: int) -> None:
        """Record one message."""
        times = self.times.get(channel_id)
        if times is None:
            self.times[channel_id] = [t]
        else:
            times.append(t)

    def inventory(self, channels: dict[int, Channel], used: dict[int, str]) -> list[dict[str, Any]]:
        """One row per topic (sorted by topic): see the module docstring.

        Args:
            channels: the log's channels.
            used: channel id -> what Longtail used it for ("camera", "signals: speed, ...").
        """
        rows = []
        for cid, ch in channels.items():
            t = np.array(self.times.get(cid, []), dtype=np.int64)
            gaps = np.diff(t)
            forward = gaps[gaps > 0]
            rows.append({
                "topic": ch.topic, "schema": ch.schema_name, "encoding": ch.message_encoding,
                "kind": topic_kind(ch), "messages": len(t),
                "start_ns": int(t.min()) if len(t) else None, "end_ns": int(t.max()) if len(t) else None,
                "span_s": round(float(t.max() - t.min()) / 1e9, 3) if len(t) else 0.0,
                "median_hz": round(1e9 / float(np.median(forward)), 3) if len(forward) else None,
                "largest_gap_s": round(float(forward.max()) / 1e9, 3) if len(forward) else None,
                "backwards": int((gaps < 0).sum()),
                "used": used.get(cid, ""),
            })
        return sorted(rows, key=lambda r: (r["topic"], r["schema"]))


def inventory_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Notes on what was listed but not read: lidar, radar, raw images, other unused topics."""
    notes = []
    for kind, why in (("lidar", "Longtail does not decode lidar yet"), ("radar", "Longtail does not decode radar yet")):
        found = [r for r in rows if r["kind"] == kind and not r["used"]]
        if found:
            listed = ", ".join(f"{r['topic']} ({r['messages']} messages)" for r in found)
            notes.append(f"{kind} topic(s) listed and counted in the inventory, not decoded ({why}): {listed}")
    raw = [r for r in rows if r["schema"] in RAW_IMAGE_SCHEMAS]
    if raw:
        notes.append("raw (uncompressed) image topic(s) not ingested, Longtail stores compressed images only: "
                     + ", ".join(r["topic"] for r in raw))
    return notes
