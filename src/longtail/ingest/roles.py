"""Which channels of a drive log are its cameras and their calibrations; why a log has no camera.

A log may carry several cameras (front, rear, side, fisheye). Each camera gets a name, its slice
in the curated dataset: the name configured for its topic (``cameras``), else one made from the
topic's words (``/camera/rear_left/image`` -> ``rear_left``). One camera is the default: the one
named ``front``, else the configured first, else Longtail's own camera topic, else the first
topic in name order; a default camera whose topic names no position is called ``front``.
"""

from __future__ import annotations

import re

import numpy as np

from longtail.config import IngestConfig
from longtail.ingest.decode import ROLE_SCHEMAS, role_of
from longtail.ingest.scan import Channel
from longtail.schemas import PROFILE_TOPICS

ROLES = ("image", "calibration")
"""Channel roles besides signals (which `longtail.ingest.signals` binds)."""

POSITION_WORDS = ("front", "rear", "back", "left", "right", "center", "centre", "side", "fisheye", "wide", "narrow",
                  "surround", "top", "bottom", "inner", "outer", "cabin", "driver")
"""Topic words that say where a camera looks; they make its name (``CAM_FRONT_LEFT`` -> ``front_left``)."""
GENERIC_WORDS = frozenset({"camera", "cameras", "cam", "image", "images", "img", "compressed", "raw", "color",
                           "colour", "rgb", "mono", "jpeg", "jpg", "png", "rect", "data", "sensor", "sensors",
                           "video", "stream"})
"""Topic words that say nothing about which camera it is."""


def camera_name(topic: str) -> str:
    """A camera's name made from its topic: its position words, else its first specific word, else "".

    ``/camera/front/image`` -> ``front``; ``/CAM_FRONT_LEFT/compressed`` -> ``front_left``;
    ``/cam3/image/compressed`` -> ``cam3``; ``/image_raw/compressed`` -> "" (nothing specific).
    """
    words = [w for w in re.split(r"[^a-z0-9]+", topic.lower()) if w]
    position = [w for w in words if w in POSITION_WORDS]
    if position:
        return "_".join(dict.fromkeys(position))
    specific = [w for w in words if w not in GENERIC_WORDS]
    return specific[0][:40] if specific else ""


def _prefix_len(a: str, b: str) -> int:
    """How many leading topic levels two topics share."""
    n = 0
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/"), strict=False):
        if x != y:
            break
        n += 1
    return n


class Roles:
    """Which channels are cameras and which calibrations; a configured topic wins, else the schema.

    ``cameras`` holds name -> camera channel, the default camera first; ``channel["image"]`` is
    the default camera and ``channel["calibration"]`` its calibration when one is configured.
    A configured camera topic that is not a compressed image is not taken (and said so).
    """

    def __init__(self, cfg: IngestConfig) -> None:
        self.configured = {"image": cfg.image_topic, "calibration": cfg.calibration_topic}
        self.named = dict(cfg.cameras)
        self.defaults = {role: {getattr(t, role) for t in PROFILE_TOPICS.values()} for role in ROLES}
        self.by_id: dict[int, str] = {}
        self.channel: dict[str, Channel] = {}
        self.cameras: dict[str, Channel] = {}
        self.calibrations: list[Channel] = []
        self.not_an_image: Channel | None = None
        self._started = False

    def consider(self, channels: dict[int, Channel]) -> None:
        """Assign roles to channels not seen before (default topics before other matches).

        The default camera is settled once its first frame was read (`start`): a camera that
        appears later inside the data joins as another camera.
        """
        fresh = [ch for ch in channels.values() if ch.id not in self.by_id]
        fresh.sort(key=lambda ch: (0 if ch.topic in self.defaults.get(role_of(ch) or "", set()) else 1, ch.topic))
        for ch in fresh:
            self.by_id[ch.id] = ""
            role = self._role(ch)
            if role == "image":
                self.cameras[self._unique(self._name(ch))] = ch
                self.by_id[ch.id] = "image"
            elif role == "calibration":
                self.calibrations.append(ch)
                self.by_id[ch.id] = "calibration"
        if self.cameras and not self._started:
            default = self._default()
            self.cameras = {default: self.cameras[default], **self.cameras}
        if self.cameras:
            self.channel["image"] = next(iter(self.cameras.values()))
        configured = [ch for ch in self.calibrations if ch.topic == self.configured["calibration"]]
        if configured:
            self.channel["calibration"] = configured[0]

    def start(self) -> None:
        """The default camera's first frame was read: it stays the default."""
        self._started = True

    def _role(self, ch: Channel) -> str:
        calibration = self.configured["calibration"]
        if (calibration is not None and ch.topic == calibration) or (calibration is None and role_of(ch) == "calibration"):
            return "calibration"
        wanted = set(self.named.values()) or ({self.configured["image"]} - {None})
        if wanted and ch.topic not in wanted:
            return ""
        if role_of(ch) != "image":
            if wanted:
                self.not_an_image = self.not_an_image or ch
            return ""
        if not self.named and self.configured["image"] is not None and self.cameras:
            return ""
        return "image"

    def _name(self, ch: Channel) -> str:
        for name, topic in self.named.items():
            if topic == ch.topic:
                return name
        return camera_name(ch.topic) or "camera"

    def _unique(self, name: str) -> str:
        out, k = name, 2
        while out in self.cameras:
            out, k = f"{name}_{k}", k + 1
        return out

    def _default(self) -> str:
        names = list(self.cameras)
        if "front" in names:
            return "front"
        if self.named:
            return next(n for n in self.named if n in self.cameras)
        own = [n for n in names if self.cameras[n].topic in self.defaults["image"]]
        first = own[0] if own else min(names, key=lambda n: self.cameras[n].topic)
        if not any(w in POSITION_WORDS for w in first.split("_")):
            # The main camera of a log whose topic names no position is its front camera.
            self.cameras = {("front" if n == first else n): c for n, c in self.cameras.items()}
            return "front"
        return first

    def claimed(self) -> set[int]:
        """Channels with a role (not read for signals)."""
        return {ch.id for ch in self.cameras.values()} | {ch.id for ch in self.calibrations}

    def calibration_of(self) -> dict[str, Channel]:
        """camera name -> its calibration channel: the configured one for the default camera, else
        the calibration topic sharing the most leading levels with the camera's topic."""
        out: dict[str, Channel] = {}
        if "calibration" in self.channel and self.cameras:
            out[next(iter(self.cameras))] = self.channel["calibration"]
        free = [c for c in self.calibrations if c not in out.values()]
        for name, cam in self.cameras.items():
            if name in out or not free:
                continue
            best = max(free, key=lambda c: (_prefix_len(c.topic, cam.topic), -abs(len(c.topic) - len(cam.topic))))
            if _prefix_len(best.topic, cam.topic) > 0 or len(self.cameras) == 1:
                out[name] = best
                free.remove(best)
        return out

    def missing(self, channels: list[Channel]) -> list[str]:
        """Configured camera topics that are not topics of the log, as ``name (topic)``."""
        topics = {ch.topic for ch in channels}
        return [f"{name} ({topic})" for name, topic in self.named.items() if topic not in topics]


def match_time_steps(steps: np.ndarray, times: np.ndarray, tolerance_ns: float) -> dict[int, int]:
    """Which frame of another camera belongs to which time step of the default camera.

    Each time step takes the camera's frame nearest to it when that is within ``tolerance_ns``;
    a frame nearest to two time steps goes to the closer one (the earlier on a tie), so no
    frame is in two groups.

    Args:
        steps: the kept time steps, ns (sorted).
        times: the other camera's frame times, ns (sorted).
        tolerance_ns: how far a frame may be from its time step, ns.

    Returns:
        frame time -> time step, ns.
    """
    if len(times) == 0 or len(steps) == 0:
        return {}
    hi = np.clip(np.searchsorted(times, steps), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(steps), int)
    lo = np.maximum(hi - 1, 0)
    pick = np.where(np.abs(times[lo] - steps) <= np.abs(times[hi] - steps), lo, hi)
    best: dict[int, tuple[int, int]] = {}  # frame time -> (distance, time step)
    for step, k in zip(steps.tolist(), pick.tolist(), strict=True):
        t = int(times[k])
        d = abs(t - step)
        if d <= tolerance_ns and (t not in best or d < best[t][0]):
            best[t] = (d, step)
    return {t: step for t, (_, step) in best.items()}


def camera_notes(cfg: IngestConfig, camera: Channel | None, not_an_image: Channel | None,
                 channels: list[Channel], missing: list[str] | None = None) -> list[str]:
    """Why a log has no camera, or lacks a configured one, naming the topics; [] when all are there."""
    topics = sorted(ch.topic for ch in channels)
    if camera is not None:
        return [f"camera(s) {', '.join(missing)} named in cameras (--image-topic NAME=TOPIC) are not topics of this "
                f"log (its topics: {topics}); the other cameras were ingested"] if missing else []
    images = sorted(ch.topic for ch in channels if role_of(ch) == "image")
    schemas = " or ".join(ROLE_SCHEMAS["image"])
    if not_an_image is not None:
        return [f"no camera: image_topic (--image-topic) {not_an_image.topic} carries "
                f"{not_an_image.schema_name or not_an_image.message_encoding}, not a compressed image ({schemas}); "
                f"compressed-image topics in the log: {images or 'none'}; ingested as a signals-only drive"]
    if cfg.cameras:
        return [f"no camera: camera(s) {', '.join(missing or [])} named in cameras (--image-topic NAME=TOPIC) are "
                f"not topics of this log (its topics: {topics}); ingested as a signals-only drive"]
    if cfg.image_topic is not None:
        return [f"no camera: image_topic (--image-topic) {cfg.image_topic} is not a topic of this log (its topics: "
                f"{topics}); ingested as a signals-only drive"]
    return [f"no camera: no topic carries {schemas} (topics in the log: {topics}); ingested as a signals-only "
            "drive (signals, triggers, GNSS track); set image_topic (--image-topic) if a camera is recorded under "
            "another schema"]
