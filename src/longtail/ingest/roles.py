"""Which channel of a drive log is the camera and which its calibration; why a log has no camera."""

from __future__ import annotations

from longtail.config import IngestConfig
from longtail.ingest.decode import ROLE_SCHEMAS, role_of
from longtail.ingest.scan import Channel
from longtail.schemas import PROFILE_TOPICS

ROLES = ("image", "calibration")
"""Channel roles besides signals (which `longtail.ingest.signals` binds)."""


class Roles:
    """Which channel is the camera and which the calibration; a configured topic wins, else the schema.

    A configured camera topic that is not a compressed image is not taken (and said so).
    """

    def __init__(self, cfg: IngestConfig) -> None:
        self.configured = {"image": cfg.image_topic, "calibration": cfg.calibration_topic}
        self.defaults = {role: {getattr(t, role) for t in PROFILE_TOPICS.values()} for role in ROLES}
        self.by_id: dict[int, str] = {}
        self.channel: dict[str, Channel] = {}
        self.not_an_image: Channel | None = None

    def consider(self, channels: dict[int, Channel]) -> None:
        """Assign roles to channels not seen before (default topics before other matches)."""
        fresh = [ch for ch in channels.values() if ch.id not in self.by_id]
        fresh.sort(key=lambda ch: 0 if ch.topic in self.defaults.get(role_of(ch) or "", set()) else 1)
        for ch in fresh:
            self.by_id[ch.id] = ""
            for role, topic in self.configured.items():
                if role in self.channel:
                    continue
                if role == "image" and ch.topic == topic and role_of(ch) != "image":
                    self.not_an_image = ch
                    continue
                if (topic is not None and ch.topic == topic) or (topic is None and role_of(ch) == role):
                    self.channel[role] = ch
                    self.by_id[ch.id] = role
                    break

    def claimed(self) -> set[int]:
        """Channels with a role (not read for signals)."""
        return {ch.id for ch in self.channel.values()}


def camera_notes(cfg: IngestConfig, camera: Channel | None, not_an_image: Channel | None,
                 channels: list[Channel]) -> list[str]:
    """Why a log has no camera, naming the configured topic and the log's topics; [] with a camera."""
    if camera is not None:
        return []
    topics = sorted(ch.topic for ch in channels)
    images = sorted(ch.topic for ch in channels if role_of(ch) == "image")
    schemas = " or ".join(ROLE_SCHEMAS["image"])
    if not_an_image is not None:
        return [f"no camera: image_topic (--image-topic) {not_an_image.topic} carries "
                f"{not_an_image.schema_name or not_an_image.message_encoding}, not a compressed image ({schemas}); "
                f"compressed-image topics in the log: {images or 'none'}; ingested as a signals-only drive"]
    if cfg.image_topic is not None:
        return [f"no camera: image_topic (--image-topic) {cfg.image_topic} is not a topic of this log (its topics: "
                f"{topics}); ingested as a signals-only drive"]
    return [f"no camera: no topic carries {schemas} (topics in the log: {topics}); ingested as a signals-only "
            "drive (signals, triggers, GNSS track); set image_topic (--image-topic) if a camera is recorded under "
            "another schema"]
