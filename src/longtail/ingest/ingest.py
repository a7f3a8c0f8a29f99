"""Ingest drive logs: keyframes and trigger windows into the frame store, one index per log.

Per log:

1. One pass over the whole memory-mapped file (sha256 computed alongside by a helper thread):
   every topic is inventoried (counts, rates, gaps); vehicle signals and GNSS are collected from
   the topics a signal map binds (`longtail.ingest.signals`); camera frames on the keyframe grid
   are decoded from their messages (the JPEG bytes are never decoded) and stored as they come.
2. Missing signals are derived where physics allows; triggers are detected over the whole
   log's signals (vectorized), and those whose signals the log lacks are "not evaluated".
3. Only the chunks that overlap a trigger window are read again, and every frame in a window
   is stored too.
4. Signal features are aligned to the kept frames; the index is written, the manifest last.

Statuses mean one thing each: ``ingested`` (all read; notes say what the log lacks, e.g. a
camera: then it is a signals-only drive), ``partial`` (damage: something was lost, the reasons
say what; everything readable is kept), ``quarantined`` (nothing usable). Re-ingesting an
unchanged file with the same config reads nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from longtail import __version__
from longtail.catalog.frames import load_manifest
from longtail.config import IngestConfig
from longtail.errors import InputError
from longtail.ingest.decode import STATE_FLAGS, STATE_LABELS, Decoders
from longtail.ingest.features import FEATURES, frame_features
from longtail.ingest.inventory import TopicTimes, inventory_notes
from longtail.ingest.jpeg import ImageFormatError, image_size
from longtail.ingest.roles import Roles, camera_notes, match_time_steps
from longtail.ingest.scan import Channel, LogScanner, ScanError
from longtail.ingest.series import SignalCollector, Signals, distance_km, on_base, signal_table
from longtail.ingest.store import FrameStore, write_index, write_manifest, write_signals
from longtail.ingest.triggers import TriggerEvent, detect_triggers, frames_in_windows
from longtail.schemas import FRAME_INDEX_SCHEMA
from longtail.storage import atomic_write_json, sha256_file

log = logging.getLogger(__name__)

FAULT_ENV = "LONGTAIL_FAULT"
"""Fault injection for crash tests: ``ingest.frame:N`` (after the N-th stored frame of a run),
``ingest.index`` (after a log's index, before its manifest) or ``ingest.log:N`` (after N logs):
the process kills itself with SIGKILL there."""
FRAME_WRITERS = 2
"""Threads creating frame files behind the scan (file creation is system-call time)."""


@dataclass
class LogResult:
    """What happened to one log (a row of ``longtail ingest --json``)."""

    path: str
    log_id: str
    status: str
    frames_kept: int = 0
    keyframes: int = 0
    messages_read: int = 0
    triggers_found: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0
    store_seconds: float = 0.0
    write_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    triggers_not_evaluated: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class _Faults:
    def __init__(self) -> None:
        spec = os.environ.get(FAULT_ENV, "")
        self.point, _, count = spec.partition(":")
        self.count = int(count) if count else 0
        self.seen = 0

    def hit(self, point: str) -> None:
        if point == self.point:
            self.seen += 1
            if self.seen >= self.count:
                os.kill(os.getpid(), signal.SIGKILL)


_FAULTS = _Faults()


def frame_id(log_id: str, camera: str, t_ns: int) -> str:
    """Stable id of a frame: sha256 of its log, camera and timestamp (32 hex chars)."""
    return hashlib.sha256(f"{log_id}|{camera}|{t_ns}".encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------ path cache
def _path_key(path: str) -> tuple[Path, dict[str, int]]:
    st = os.stat(path)
    return Path(os.path.abspath(path)), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _cache_file(root: str | os.PathLike[str], abspath: Path) -> Path:
    return Path(root) / "index" / "paths" / f"{hashlib.sha256(str(abspath).encode()).hexdigest()[:32]}.json"


def _cached_log_id(root: str | os.PathLike[str], path: str) -> str | None:
    """The sha256 of ``path`` from an earlier ingest, if the file has not changed since (stat)."""
    abspath, stat = _path_key(path)
    cache = _cache_file(root, abspath)
    if not cache.exists():
        return None
    try:
        entry = json.loads(cache.read_text())
    except json.JSONDecodeError:
        return None
    return str(entry["log_id"]) if entry.get("stat") == stat and entry.get("path") == str(abspath) else None


def _remember_log_id(root: str | os.PathLike[str], path: str, log_id: str) -> None:
    abspath, stat = _path_key(path)
    # A cache: losing it to a power cut only costs a re-read, so no fsync.
    atomic_write_json(_cache_file(root, abspath), {"path": str(abspath), "stat": stat, "log_id": log_id}, durable=False)


# ------------------------------------------------------------------------------------ one log
def ingest_log(path: str | os.PathLike[str], root: str | os.PathLike[str], cfg: IngestConfig) -> LogResult:
    """Ingest one drive log into the frame store and write its index and manifest.

    A log without a camera is ingested as a signals-only drive (its signals, triggers and GNSS
    track; a note says so); one with neither frames nor signals is quarantined.

    Args:
        path: the MCAP file.
        root: the data root.
        cfg: ingest configuration.

    Returns:
        The log's result; its status is ingested, partial, quarantined or skipped.
    """
    start = time.perf_counter()
    path = str(path)
    size = os.path.getsize(path)
    cached = _cached_log_id(root, path)
    if cached is not None:
        previous = load_manifest(root, cached)
        if previous is not None and previous.get("config_digest") == cfg.digest():
            return _skipped(path, cached, previous, start, size)
    manifest: dict[str, Any] = {
        "format": "longtail.ingest/2", "path": os.path.abspath(path), "bytes": size,
        "longtail_version": __version__, "config": cfg.model_dump(mode="json"), "config_digest": cfg.digest(),
    }
    try:
        scanner = LogScanner(path)
    except ScanError as exc:
        log_id = sha256_file(path)
        manifest.update(log_id=log_id, status="quarantined", reasons=[str(exc)], notes=[], frames_kept=0, keyframes=0)
        write_manifest(root, log_id, manifest)
        _remember_log_id(root, path, log_id)
        return LogResult(path, log_id, "quarantined", reasons=[str(exc)], seconds=time.perf_counter() - start,
                         bytes=size)
    with scanner:
        outcome = _Ingest(scanner, root, cfg).run()
        log_id = scanner.sha256()
    previous = load_manifest(root, log_id)
    if previous is not None and previous.get("config_digest") == cfg.digest():
        _remember_log_id(root, path, log_id)
        return _skipped(path, log_id, previous, start, size, same_content=True)
    table = outcome.table(log_id)
    reasons = scanner.scan.problems + outcome.problems
    notes = outcome.notes
    if "image" in outcome.roles.channel and table.num_rows == 0:
        reasons.append(f"no readable camera frame on {outcome.roles.channel['image'].topic}")
    samples = outcome.signals.samples()
    if table.num_rows == 0 and samples == 0:
        status = "quarantined"
        reasons.append("nothing usable: no camera frame and no vehicle signal could be read")
    else:
        status = "partial" if reasons else "ingested"
    signal_rows = outcome.signal_table(log_id)
    manifest.update(outcome.describe(log_id, table, signal_rows.num_rows))
    manifest.update(status=status, reasons=reasons, notes=notes, elapsed_s=round(time.perf_counter() - start, 3))
    if table.num_rows:
        write_index(root, log_id, table)
    if signal_rows.num_rows:
        write_signals(root, log_id, signal_rows)
    _FAULTS.hit("ingest.index")
    write_manifest(root, log_id, manifest)
    _remember_log_id(root, path, log_id)
    trig_counts: dict[str, int] = {}
    for e in outcome.events:
        trig_counts[e.name] = trig_counts.get(e.name, 0) + 1
    return LogResult(path, log_id, status, table.num_rows, outcome.keyframes, sum(outcome.counts.values()),
                     trig_counts, reasons, time.perf_counter() - start, size, outcome.store.seconds,
                     outcome.store.write_seconds, notes, outcome.not_evaluated)


def _skipped(path: str, log_id: str, previous: dict[str, Any], start: float, size: int,
             same_content: bool = False) -> LogResult:
    why = "the same content was" if same_content else "this file was"
    return LogResult(path, log_id, "skipped", int(previous.get("frames_kept", 0)), int(previous.get("keyframes", 0)),
                     0, {}, [f"{why} already ingested as {previous.get('status')} with the same config"],
                     time.perf_counter() - start, size)


class _Ingest:
    """The work on one scanned log (see the module docstring)."""

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

    def run(self) -> _Ingest:
        try:
            return self._run()
        finally:
            self.store.close()  # idempotent: also stops the writer threads when the scan fails

    def _consider(self) -> None:
        channels = self.scanner.scan.channels
        self.roles.consider(channels)
        self.collector.bind(list(channels.values()), self.roles.claimed())

    def _run(self) -> _Ingest:
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
        _FAULTS.hit("ingest.frame")
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

    def describe(self, log_id: str, table: pa.Table, signal_rows: int) -> dict[str, Any]:
        """The manifest fields of this log (everything but status, reasons and notes)."""
        scan = self.scanner.scan
        calibration_of = self.roles.calibration_of()
        used = {"image": self.roles.channel["image"].topic} if "image" in self.roles.channel else {}
        default = next(iter(self.roles.cameras), None)
        if default in calibration_of:
            used["calibration"] = calibration_of[default].topic
        used_ids = self.roles.claimed() | {b.channel_id for b in self.collector.bound.values()}
        calibrations = {name: self.calibrations.get(ch.id) for name, ch in calibration_of.items()}
        frames_of = {name: (len(self.rows) if ch.id == self.roles.channel["image"].id
                            else len(self.other_rows.get(ch.id, {}))) for name, ch in self.roles.cameras.items()}
        sig_t = [s.t for s in self.signals.series.values() if len(s.t)]
        span = (min(int(t[0]) for t in sig_t), max(int(t[-1]) for t in sig_t)) if sig_t else None
        frames_t = table.column("timestamp_ns") if table.num_rows else None
        distance = distance_km(self.signals)
        return {
            "log_id": log_id, "profile": scan.profile, "indexed": scan.has_summary,
            "vehicle": scan.metadata.get("vehicle", {}), "drive": scan.metadata.get("drive", {}),
            "camera": used.get("image"), "topics_used": used,
            "topics_ignored": sorted(f"{ch.topic} ({ch.schema_name or ch.message_encoding})"
                                     for ch in scan.channels.values() if ch.id not in used_ids),
            "inventory": self.inventory, "signals": self.signals.sources, "signal_samples": signal_rows,
            "messages_read": self.counts, "frames_kept": table.num_rows, "keyframes": self.keyframes,
            "trigger_frames": len(self.rows) - self.keyframes, "triggers": [e.to_json() for e in self.events],
            "triggers_not_evaluated": self.not_evaluated,
            "calibration": calibrations.get(default) if default is not None else None,
            "cameras": {name: {"topic": ch.topic, "frames_kept": frames_of[name],
                               "calibration": calibrations.get(name)} for name, ch in self.roles.cameras.items()},
            "default_camera": default,
            "time_range_ns": [int(pc.min(frames_t).as_py()), int(pc.max(frames_t).as_py())] if frames_t is not None
            else (list(span) if span else None),
            "duration_s": round((self.image_t[-1] - self.image_t[0]) / 1e9, 3) if len(self.image_t) > 1
            else (round((span[1] - span[0]) / 1e9, 3) if span else 0.0),
            "distance_km": None if distance is None else round(distance, 3),
            "store_s": round(self.store.seconds, 3), "frame_write_s": round(self.store.write_seconds, 3),
        }

    def signal_table(self, log_id: str) -> pa.Table:
        """The signal index rows of this log."""
        windows = [(*e.window(self.cfg.triggers), e.name) for e in self.events]
        return signal_table(log_id, self.signals, windows, self.cfg.triggers.smooth_s)

    def table(self, log_id: str) -> pa.Table:
        """The frame index rows of this log: the default camera's, then each other camera's."""
        if not self.rows:
            return FRAME_INDEX_SCHEMA.empty_table()
        scan = self.scanner.scan
        frames: list[tuple[str, str, int, dict[str, Any]]] = []  # camera name, topic, time, row
        for name, ch in self.roles.cameras.items():
            rows_of = self.rows if ch.id == self.roles.channel["image"].id else self.other_rows.get(ch.id, {})
            frames += [(name, ch.topic, x, rows_of[x]) for x in sorted(rows_of)]
        times = [f[2] for f in frames]
        t = np.array(times, dtype=np.int64)
        steps = np.array([f[3]["step"] for f in frames], dtype=np.int64)
        rows = [f[3] for f in frames]
        sig_t, values, flags, labels = on_base(self.signals)
        # Features and trigger windows want sorted times: compute in time order, then put back.
        order = np.argsort(t, kind="stable")
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        feats = {k: v[back] for k, v in frame_features(t[order], sig_t, values, flags, labels,
                                                        self.cfg.triggers.smooth_s).items()}
        by_step = np.argsort(steps, kind="stable")
        step_triggers = frames_in_windows(steps[by_step], self.events, self.cfg.triggers)
        triggers: list[list[str]] = [[] for _ in range(len(steps))]
        for i, names in zip(by_step.tolist(), step_triggers, strict=True):
            triggers[i] = names
        position = {}
        for name in ("latitude", "longitude"):
            s = self.signals.series.get(name)
            position[name] = np.interp(t, s.t, s.v) if s is not None and len(s.t) else np.full(len(t), np.nan)
        vehicle, drive = scan.metadata.get("vehicle", {}), scan.metadata.get("drive", {})
        n = len(rows)
        columns: dict[str, Any] = {
            "frame_id": [frame_id(log_id, topic, x) for _, topic, x, _ in frames],
            "log_id": [log_id] * n,
            "source": [drive.get("source", "fleet")] * n,
            "vehicle_id": [vehicle.get("vehicle_id", "")] * n,
            "vehicle_type": [vehicle.get("vehicle_type", "")] * n,
            "drive_id": [drive.get("drive_id", Path(scan.path).stem)] * n,
            "camera": [topic for _, topic, _, _ in frames],
            "timestamp_ns": t,
            "width": [r["width"] for r in rows],
            "height": [r["height"] for r in rows],
            "image_format": [r["fmt"] for r in rows],
            "image_sha256": [r["sha"] for r in rows],
            "store_path": [r["rel"] for r in rows],
            "image_bytes": [r["bytes"] for r in rows],
            "keyframe": [r["keyframe"] for r in rows],
            **{name: feats[name].astype(np.float32) for name in FEATURES},
            **{name: feats[name] for name in STATE_FLAGS},
            **{name: feats[name].tolist() for name in STATE_LABELS},
            "latitude": position["latitude"],
            "longitude": position["longitude"],
            # A time step is in a trigger window or not as a whole, every camera of it alike.
            "triggers": triggers,
            "labels": [[] for _ in range(n)],
            "camera_slice": [name for name, _, _, _ in frames],
            "time_step_ns": steps,
        }
        return pa.Table.from_pydict(columns, schema=FRAME_INDEX_SCHEMA)


# ------------------------------------------------------------------------------------ batches
def expand_sources(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """MCAP files named directly or found (recursively, *.mcap) in folders, in a stable order.

    Raises:
        InputError: for a source that does not exist.
    """
    files: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*.mcap") if q.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder; give MCAP files or folders that contain them")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{root}: another ingest is running on this data root; wait for it to finish") from None
        yield


def _worker(path: str, root: str, cfg_json: str) -> LogResult:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return ingest_log(path, root, IngestConfig.model_validate_json(cfg_json))


def ingest(sources: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str], cfg: IngestConfig | None = None,
           workers: int = 1, progress: bool = True) -> list[LogResult]:
    """Ingest every drive log under ``sources`` into ``root``; logs run in parallel on ``workers``.

    A bad log never stops the batch: it is reported partial or quarantined with its reasons.

    Raises:
        InputError: for a missing source, or when another ingest holds the data root.
    """
    cfg = cfg or IngestConfig()
    files = expand_sources(sources)
    root = Path(root)
    with _locked(root):
        removed = FrameStore(root).remove_stale_temporaries()
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted ingest", removed)
        results: list[LogResult] = []
        bar = tqdm(total=len(files), unit="log", desc="ingesting", disable=not progress or not files)
        if workers <= 1 or len(files) <= 1:
            for f in files:
                results.append(ingest_log(f, root, cfg))
                bar.update(1)
                _FAULTS.hit("ingest.log")
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_worker, str(f), str(root), cfg.model_dump_json()): f for f in files}
                done: dict[Path, LogResult] = {}
                for fut in as_completed(futures):
                    done[futures[fut]] = fut.result()
                    bar.update(1)
                    _FAULTS.hit("ingest.log")
                results = [done[f] for f in files]
        bar.close()
    return results
