"""Read one drive log: its signals, its cameras' keyframes and trigger-window frames, into the frame store.

1. One pass over the whole memory-mapped file (sha256 computed alongside by a helper thread):
   every topic is inventoried (counts, rates, gaps); vehicle signals and GNSS are collected from
   the topics a signal map binds (`longtail.ingest.signals`); camera frames on the keyframe grid
   are decoded from their messages (the JPEG bytes are never decoded) and stored as they come.
2. Missing signals are derived where physics allows; triggers are detected over the whole
   log's signals (vectorized), and those whose signals the log lacks are "not evaluated".
3. Only the chunks that overlap a trigger window are read again, and every frame in a window
   is stored too.
4. The other cameras' frames nearest every kept time step of the default camera are stored.

What was read becomes the log's index rows (`longtail.ingest.rows`) and manifest
(`longtail.ingest.manifest`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from longtail.config import IngestConfig
from longtail.ingest.decode import Decoders
from longtail.ingest.faults import FAULTS
from longtail.ingest.inventory import TopicTimes, inventory_notes
from longtail.ingest.jpeg import ImageFormatError, image_size
from longtail.ingest.roles import Roles, camera_notes, match_time_steps
from longtail.ingest.scan import Channel, LogScanner
from longtail.ingest.series import SignalCollector, Signals
from longtail.ingest.store import FrameStore
from longtail.ingest.triggers import TriggerEvent, detect_triggers

FRAME_WRITERS = 2
"""Threads creating frame files behind the scan (file creation is system-call time)."""


class LogReader:
    """The work on one scanned log (see the module docstring): what it holds, and the frames it stored.

    Args:
        scanner: the open log.
        root: the data root (its frame store takes the frames).
        cfg: ingest configuration.
    """

    def __init__(self, scanner: LogScanner, root: str | os.PathLike[str], cfg: IngestConfig) -> None:
        self.scanner = scanner
        self.cfg = cfg
        self.store = FrameStore(root, writers=FRAME_WRITERS)
        self.decoders = Decoders()
        self.roles = Roles(cfg)
        self.collector = SignalCollector(cfg)
        self.times = TopicTimes()
        self.signals = Signals({}, {}, [])
        self.counts: dict[str, int] = {}
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.inventory: list[dict[str, Any]] = []
        self.not_evaluated: dict[str, str] = {}
        self.calibrations: dict[int, dict[str, Any]] = {}
        self.image_t: list[int] = []
        self.other_t: dict[int, list[int]] = {}
        self.other_rows: dict[int, dict[int, dict[str, Any]]] = {}
        self.rows: dict[int, dict[str, Any]] = {}
        self.events: list[TriggerEvent] = []
        self.keyframes = 0
        self.backwards = 0
        self.bad_frames: list[str] = []
        self.failed: set[int] = set()
        self.bad_messages: list[str] = []

    def run(self) -> LogReader:
        """Read the log (steps 1-4 of the module docstring); the frame files are all written on return."""
        try:
            return self._run()
        finally:
            self.store.close()  # idempotent: also stops the writer threads when the scan fails

    def _consider(self) -> None:
        channels = self.scanner.scan.channels
        self.roles.consider(channels)
        self.collector.bind(list(channels.values()), self.roles.claimed())

    def _run(self) -> LogReader:
        scan = self.scanner.scan
        self._consider()
        key_period = int(1e9 / self.cfg.keyframe_hz)
        # Keyframes sit on a grid anchored at the log's first frame, so damage or a bad frame
        # does not shift the keyframes after it.
        anchor: int | None = None
        slot = -1
        last_image = -(10**19)
        # 1. One pass over every message (the whole file is read, so all damage is found): the
        # topic inventory, signals, calibration, and keyframes.
        by_id, collector, times = self.roles.by_id, self.collector, self.times
        for msg in self.scanner.messages(None):
            cid = msg.channel_id
            t = msg.log_time
            times.add(cid, t)
            role = by_id.get(cid)
            if role is None:  # a channel declared inside the data (no summary)
                self._consider()
                role = by_id.get(cid, "")
            try:
                if role == "image" and cid != self.roles.channel["image"].id:
                    # Another camera: its frames are taken at the default camera's kept time steps (step 4).
                    times_of = self.other_t.setdefault(cid, [])
                    if times_of and t <= times_of[-1]:
                        self.backwards += 1
                        continue
                    times_of.append(t)
                elif role == "image":
                    self.roles.start()
                    if t <= last_image:
                        self.backwards += 1
                        continue
                    last_image = t
                    self.image_t.append(t)
                    if anchor is None:
                        anchor = t
                    # The frame nearest each grid point (within a tenth of a period early) is the keyframe.
                    k = (t - anchor + key_period // 10) // key_period
                    if k > slot and self._keep(self.roles.channel[role], t, msg.data, keyframe=True):
                        slot = k
                elif role == "calibration":
                    if cid not in self.calibrations:
                        self.calibrations[cid] = self.decoders.calibration(scan.channels[cid], msg.data)
                elif collector.wants(cid):
                    channel = scan.channels[cid]
                    collector.add(channel, t, self.decoders.decode(channel, msg.data))
            except Exception as exc:  # an undecodable message is damage: skip it, keep the rest
                topic = scan.channels[cid].topic
                self.bad_messages.append(f"{topic} at {t} ns ({type(exc).__name__}: {exc})"
                                         if len(self.bad_messages) < 3 else "")
        self.signals = collector.finish(self.cfg.triggers.smooth_s)
        used = {ch.id: "camera" if len(self.roles.cameras) == 1 else f"camera: {name}"
                for name, ch in self.roles.cameras.items()}
        used.update({ch.id: "calibration" if len(self.roles.cameras) <= 1 else f"calibration: {name}"
                     for name, ch in self.roles.calibration_of().items()})
        for cid in {b.channel_id for b in collector.bound.values()}:
            used[cid] = "signals: " + " ".join(s for s, b in collector.bound.items() if b.channel_id == cid)
        self.counts = {scan.channels[cid].topic: len(times.times.get(cid, [])) for cid in used}
        self.inventory = times.inventory(scan.channels, used)
        # 2. Triggers over the whole log's signals, each on its own sample times.
        self.events, self.not_evaluated = detect_triggers(self.signals.series, self.cfg.triggers)
        # 3. Frames inside trigger windows: read again only the chunks that overlap one.
        if self.cfg.keep_trigger_frames and self.events and "image" in self.roles.channel:
            self._trigger_frames()
        # 4. The other cameras' frames at every kept time step, so a time step keeps all its cameras.
        if self.other_t and self.rows:
            self._other_cameras()
        # Every frame file is in place before the index that lists it is written.
        self.store.close()
        self._report()
        return self

    def _keep(self, channel: Channel, t: int, data: memoryview, keyframe: bool, step: int | None = None) -> bool:
        """Store one camera frame: the default camera's (``step`` None) or another's at time step ``step``."""
        default = step is None
        if default and t in self.failed:
            return False
        try:
            fmt, image = self.decoders.image(channel, data)
            width, height = image_size(image, fmt)
        except (ImageFormatError, ValueError, KeyError, AttributeError, TypeError) as exc:
            where = "" if default else f" on {channel.topic}"
            self.bad_frames.append(f"frame at {t} ns{where}: {exc}" if len(self.bad_frames) < 3 else "")
            if default:
                self.failed.add(t)
            return False
        sha, rel = self.store.put(image, fmt)
        row = {"sha": sha, "rel": rel, "fmt": "jpeg" if fmt == "jpg" else fmt, "width": width,
               "height": height, "bytes": len(image), "keyframe": keyframe, "step": t if default else step}
        if default:
            self.rows[t] = row
            self.keyframes += keyframe
        else:
            self.other_rows.setdefault(channel.id, {})[t] = row
        FAULTS.hit("ingest.frame")
        return True

    def _other_cameras(self) -> None:
        """Store each other camera's frame nearest every kept time step of the default camera.

        A frame belongs to a time step when it is within half the default camera's frame period
        of it (cameras of one rig are triggered together or run at similar rates), and to the
        nearest time step only, so no frame is in two groups.
        """
        steps = np.array(sorted(self.rows), dtype=np.int64)
        period = float(np.median(np.diff(self.image_t))) if len(self.image_t) > 1 else 1e8
        tolerance = max(period / 2, 1e6)
        wanted = {cid: {ts: (step, self.rows[step]["keyframe"])
                        for ts, step in match_time_steps(steps, np.array(times_of, np.int64), tolerance).items()}
                  for cid, times_of in self.other_t.items()}
        scan = self.scanner.scan
        every = np.array(sorted({ts for w in wanted.values() for ts in w}), dtype=np.int64)
        if scan.chunks:
            chunks = [c for c in scan.chunks if c.ok and np.searchsorted(every, c.start_ns) <
                      np.searchsorted(every, c.end_ns, side="right")]
            sources: Iterable[Iterator[Any]] = (self.scanner.chunk_messages(c, set(wanted)) for c in chunks)
        else:
            sources = [self.scanner.messages(set(wanted))]
        for source in sources:
            for msg in source:
                hit = wanted.get(msg.channel_id, {}).get(msg.log_time)
                if hit is not None and msg.log_time not in self.other_rows.get(msg.channel_id, {}):
                    self._keep(scan.channels[msg.channel_id], msg.log_time, msg.data, keyframe=hit[1], step=hit[0])

    def _trigger_frames(self) -> None:
        windows = sorted(e.window(self.cfg.triggers) for e in self.events)
        images = np.array(self.image_t, dtype=np.int64)
        channel = self.roles.channel["image"]
        wanted_t: set[int] = set()
        for a, b in windows:
            lo, hi = np.searchsorted(images, a, side="left"), np.searchsorted(images, b, side="right")
            wanted_t.update(int(x) for x in images[lo:hi] if int(x) not in self.rows)
        if not wanted_t:
            return
        scan = self.scanner.scan
        if scan.chunks:
            chunks = [c for c in scan.chunks if c.ok and any(c.start_ns <= b and a <= c.end_ns for a, b in windows)]
            sources: Iterable[Iterator[Any]] = (self.scanner.chunk_messages(c, {channel.id}) for c in chunks)
        else:
            sources = [self.scanner.messages({channel.id})]
        for source in sources:
            for msg in source:
                if msg.channel_id == channel.id and msg.log_time in wanted_t and msg.log_time not in self.rows:
                    self._keep(channel, msg.log_time, msg.data, keyframe=False)

    def _report(self) -> None:
        """Problems (damage: something was lost) and notes (what the log lacks or Longtail left unread)."""
        backwards = self.backwards + self.signals.backwards
        if backwards:
            self.problems.append(f"{backwards} message(s) with timestamps going backwards were dropped "
                                 "(the monotonic part was kept)")
        if self.bad_frames:
            shown = "; ".join(b for b in self.bad_frames if b)
            self.problems.append(f"{len(self.bad_frames)} camera frame(s) are not decodable images and were "
                                 f"skipped: {shown}")
        if self.bad_messages:
            shown = "; ".join(b for b in self.bad_messages if b)
            self.problems.append(f"{len(self.bad_messages)} message(s) do not decode and were skipped: {shown}")
        channels = list(self.scanner.scan.channels.values())
        self.notes += camera_notes(self.cfg, self.roles.channel.get("image"), self.roles.not_an_image, channels,
                                   self.roles.missing(channels))
        self.notes += self.signals.notes
        if not self.signals.has_vehicle_signals():
            self.notes.append("no vehicle signals: " + ("frames were kept without signal features; " if self.rows
                              else "") + "no trigger was evaluated (map the log's topics with a signal map, "
                              "--signal-map FILE, if it has signals under other names)")
        elif self.not_evaluated:
            self.notes.append("trigger(s) not evaluated (not the same as 'did not fire'): " + "; ".join(
                f"{k}: {v}" for k, v in self.not_evaluated.items()))
        self.notes += inventory_notes(self.inventory)
