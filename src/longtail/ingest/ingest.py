"""Ingest drive logs: keyframes and trigger windows into the frame store, one index per log.

Per log:

1. One pass over the memory-mapped file (sha256 computed alongside by a helper thread):
   vehicle signals and GPS are collected; camera frames on the keyframe grid are decoded from
   their messages (the JPEG bytes are never decoded) and stored as they come.
2. Triggers are detected over the whole log's signals (vectorized).
3. Only the chunks that overlap a trigger window are read again, and every frame in a window
   is stored too.
4. Signal features are aligned to the kept frames; the index is written, the manifest last.

A damaged log keeps everything readable and is marked partial with reasons; one with nothing
usable is quarantined. Re-ingesting an unchanged file with the same config reads nothing.
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
import orjson
import pyarrow as pa
from tqdm import tqdm

from longtail import __version__
from longtail.config import IngestConfig
from longtail.errors import InputError
from longtail.ingest.decode import (
    _GET_FIELDS,
    _GET_FLAGS,
    _GET_LABELS,
    STATE_FIELDS,
    STATE_FLAGS,
    STATE_LABELS,
    Decoders,
    role_of,
)
from longtail.ingest.features import FEATURES, frame_features
from longtail.ingest.jpeg import ImageFormatError, image_size
from longtail.ingest.scan import Channel, LogScanner, ScanError
from longtail.ingest.store import FrameStore, load_manifest, write_index, write_manifest
from longtail.ingest.triggers import Series, TriggerEvent, detect_triggers, frames_in_windows
from longtail.schemas import FRAME_INDEX_SCHEMA, PROFILE_TOPICS
from longtail.storage import atomic_write_json, sha256_file

log = logging.getLogger(__name__)

FAULT_ENV = "LONGTAIL_FAULT"
"""Fault injection for crash tests: ``ingest.frame:N`` (after the N-th stored frame of a run),
``ingest.index`` (after a log's index, before its manifest) or ``ingest.log:N`` (after N logs):
the process kills itself with SIGKILL there."""
ROLES = ("image", "vehicle_state", "gps", "calibration")
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
class _Roles:
    """Which channel plays which role; configured topics win, else the schema decides."""

    def __init__(self, cfg: IngestConfig) -> None:
        self.configured = {"image": cfg.image_topic, "vehicle_state": cfg.vehicle_state_topic,
                           "gps": cfg.gps_topic, "calibration": cfg.calibration_topic}
        self.defaults = {role: {getattr(t, role) for t in PROFILE_TOPICS.values()} for role in ROLES}
        self.by_id: dict[int, str] = {}
        self.channel: dict[str, Channel] = {}
        self.wanted: set[int] = set()

    def consider(self, channels: dict[int, Channel]) -> None:
        """Assign roles to channels not seen before (default topics before other matches)."""
        fresh = [ch for ch in channels.values() if ch.id not in self.by_id]
        fresh.sort(key=lambda ch: 0 if ch.topic in self.defaults.get(role_of(ch) or "", set()) else 1)
        for ch in fresh:
            self.by_id[ch.id] = ""
            for role, topic in self.configured.items():
                if role in self.channel:
                    continue
                if (topic is not None and ch.topic == topic) or (topic is None and role_of(ch) == role):
                    self.channel[role] = ch
                    self.by_id[ch.id] = role
                    self.wanted.add(ch.id)
                    break


def ingest_log(path: str | os.PathLike[str], root: str | os.PathLike[str], cfg: IngestConfig) -> LogResult:
    """Ingest one drive log into the frame store and write its index and manifest.

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
        "format": "longtail.ingest/1", "path": os.path.abspath(path), "bytes": size,
        "longtail_version": __version__, "config": cfg.model_dump(mode="json"), "config_digest": cfg.digest(),
    }
    try:
        scanner = LogScanner(path)
    except ScanError as exc:
        log_id = sha256_file(path)
        manifest.update(log_id=log_id, status="quarantined", reasons=[str(exc)], frames_kept=0, keyframes=0)
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
    status = "quarantined" if table.num_rows == 0 else ("partial" if reasons else "ingested")
    if table.num_rows == 0:
        if "image" not in outcome.roles.channel:
            topics = sorted(ch.topic for ch in scanner.scan.channels.values())
            reasons.append(f"no camera topic found (topics in the log: {topics}); set image_topic (--image-topic) to "
                           "the topic carrying sensor_msgs/msg/CompressedImage or foxglove.CompressedImage")
        else:
            reasons.append("no readable camera frame in the log")
    used = {role: ch.topic for role, ch in outcome.roles.channel.items()}
    counts = outcome.counts
    manifest.update(
        log_id=log_id, status=status, reasons=reasons, profile=scanner.scan.profile,
        indexed=scanner.scan.has_summary, vehicle=scanner.scan.metadata.get("vehicle", {}),
        drive=scanner.scan.metadata.get("drive", {}), topics_used=used,
        topics_ignored=sorted(f"{ch.topic} ({ch.schema_name or ch.message_encoding})"
                              for ch in scanner.scan.channels.values() if ch.topic not in used.values()),
        messages_read=counts, frames_kept=table.num_rows, keyframes=outcome.keyframes,
        trigger_frames=table.num_rows - outcome.keyframes, triggers=[e.to_json() for e in outcome.events],
        calibration=outcome.calibration,
        time_range_ns=[int(table.column("timestamp_ns")[0].as_py()), int(table.column("timestamp_ns")[-1].as_py())]
        if table.num_rows else None,
        duration_s=round((outcome.image_t[-1] - outcome.image_t[0]) / 1e9, 3) if len(outcome.image_t) > 1 else 0.0,
        elapsed_s=round(time.perf_counter() - start, 3),
        store_s=round(outcome.store.seconds, 3),
        frame_write_s=round(outcome.store.write_seconds, 3),
    )
    if table.num_rows:
        write_index(root, log_id, table)
    _FAULTS.hit("ingest.index")
    write_manifest(root, log_id, manifest)
    _remember_log_id(root, path, log_id)
    trig_counts: dict[str, int] = {}
    for e in outcome.events:
        trig_counts[e.name] = trig_counts.get(e.name, 0) + 1
    return LogResult(path, log_id, status, table.num_rows, outcome.keyframes, sum(counts.values()), trig_counts,
                     reasons, time.perf_counter() - start, size, outcome.store.seconds, outcome.store.write_seconds)


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
        self.roles = _Roles(cfg)
        self.counts: dict[str, int] = {}
        self.problems: list[str] = []
        self.sig_t: list[int] = []
        self.sig_values: list[tuple[float, ...]] = []
        self.sig_flags: list[tuple[bool, ...]] = []
        self.sig_labels: list[tuple[str, ...]] = []
        self.gps_t: list[int] = []
        self.gps_ll: list[tuple[float, float]] = []
        self.calibration: dict[str, Any] | None = None
        self.image_t: list[int] = []
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

    def _run(self) -> _Ingest:
        scan = self.scanner.scan
        self.roles.consider(scan.channels)
        key_period = int(1e9 / self.cfg.keyframe_hz)
        # Keyframes sit on a grid anchored at the log's first frame, so damage or a bad frame
        # does not shift the keyframes after it.
        anchor: int | None = None
        slot = -1
        last_image = -(10**19)
        # 1. One pass: signals, GPS, calibration, and keyframes.
        by_id = self.roles.by_id
        counts: dict[int, int] = {}
        state_json = None
        # Without a summary, channels are declared inside the data: look at every message.
        wanted = self.roles.wanted if scan.has_summary else None
        for msg in self.scanner.messages(wanted):
            cid = msg.channel_id
            role = by_id.get(cid)
            if role is None:
                self.roles.consider(scan.channels)
                role = by_id.get(cid, "")
            if not role:
                continue
            counts[cid] = counts.get(cid, 0) + 1
            t = msg.log_time
            try:
                if role == "vehicle_state":
                    if self.sig_t and t <= self.sig_t[-1]:
                        self.backwards += 1
                        continue
                    if state_json is None:
                        state_json = self.roles.channel[role].message_encoding == "json"
                    if state_json:  # the hot path: 50 messages a second
                        m = orjson.loads(msg.data)
                        values, flags, labels = _GET_FIELDS(m), _GET_FLAGS(m), _GET_LABELS(m)
                    else:
                        values, flags, labels = self.decoders.vehicle_state(self.roles.channel[role], msg.data)
                    self.sig_t.append(t)
                    self.sig_values.append(values)
                    self.sig_flags.append(flags)
                    self.sig_labels.append(labels)
                elif role == "image":
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
                elif role == "gps":
                    if not self.gps_t or t > self.gps_t[-1]:
                        self.gps_ll.append(self.decoders.gps(self.roles.channel[role], msg.data))
                        self.gps_t.append(t)
                elif role == "calibration" and self.calibration is None:
                    self.calibration = self.decoders.calibration(self.roles.channel[role], msg.data)
            except Exception as exc:  # an undecodable message is damage: skip it, keep the rest
                topic = scan.channels[cid].topic
                self.bad_messages.append(f"{topic} at {t} ns ({type(exc).__name__}: {exc})"
                                         if len(self.bad_messages) < 3 else "")
        self.counts = {scan.channels[cid].topic: n for cid, n in counts.items()}
        # 2. Triggers over the whole log's signals.
        if self.sig_t:
            sig_t = np.array(self.sig_t, dtype=np.int64)
            values = np.array(self.sig_values)
            flags = np.array(self.sig_flags, dtype=bool)
            series = {"accel": Series(sig_t, values[:, 1]), "steering_angle": Series(sig_t, values[:, 3]),
                      "adas_engaged": Series(sig_t, flags[:, 0]), "driver_override": Series(sig_t, flags[:, 1]),
                      "adas_alert": Series(sig_t, np.array([lab[1] for lab in self.sig_labels], dtype=object))}
            self.events, _ = detect_triggers(series, self.cfg.triggers)
        # 3. Frames inside trigger windows: read again only the chunks that overlap one.
        if self.cfg.keep_trigger_frames and self.events and "image" in self.roles.channel:
            self._trigger_frames()
        # Every frame file is in place before the index that lists it is written.
        self.store.close()
        self._report()
        return self

    def _keep(self, channel: Channel, t: int, data: memoryview, keyframe: bool) -> bool:
        if t in self.failed:
            return False
        try:
            fmt, image = self.decoders.image(channel, data)
            width, height = image_size(image, fmt)
        except (ImageFormatError, ValueError, KeyError, AttributeError, TypeError) as exc:
            self.bad_frames.append(f"frame at {t} ns: {exc}" if len(self.bad_frames) < 3 else "")
            self.failed.add(t)
            return False
        sha, rel = self.store.put(image, fmt)
        self.rows[t] = {"sha": sha, "rel": rel, "fmt": "jpeg" if fmt == "jpg" else fmt, "width": width,
                        "height": height, "bytes": len(image), "keyframe": keyframe}
        self.keyframes += keyframe
        _FAULTS.hit("ingest.frame")
        return True

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
        roles = self.roles.channel
        if self.backwards:
            self.problems.append(f"{self.backwards} message(s) with timestamps going backwards were dropped "
                                 "(the monotonic part was kept)")
        if self.bad_frames:
            shown = "; ".join(b for b in self.bad_frames if b)
            self.problems.append(f"{len(self.bad_frames)} camera frame(s) are not decodable images and were "
                                 f"skipped: {shown}")
        if self.bad_messages:
            shown = "; ".join(b for b in self.bad_messages if b)
            self.problems.append(f"{len(self.bad_messages)} message(s) do not decode and were skipped: {shown}")
        if "image" in roles and "vehicle_state" not in roles:
            self.problems.append("no vehicle-state topic: frames were kept without signal features or triggers "
                                 "(set vehicle_state_topic if the log has one under another name)")
        elif "vehicle_state" in roles and not self.sig_t:
            self.problems.append(f"no readable messages on {roles['vehicle_state'].topic}: frames have no signal "
                                 "features and no triggers")

    def table(self, log_id: str) -> pa.Table:
        """The frame index rows of this log."""
        if not self.rows:
            return FRAME_INDEX_SCHEMA.empty_table()
        scan = self.scanner.scan
        times = sorted(self.rows)
        t = np.array(times, dtype=np.int64)
        rows = [self.rows[x] for x in times]
        sig_t = np.array(self.sig_t, dtype=np.int64)
        values = np.array(self.sig_values, dtype=np.float64).reshape(len(self.sig_t), len(STATE_FIELDS))
        flags = np.array(self.sig_flags, dtype=bool).reshape(len(self.sig_t), len(STATE_FLAGS))
        feats = frame_features(t, sig_t, values, flags, self.sig_labels, self.cfg.triggers.smooth_s)
        if self.gps_t:
            gt, ll = np.array(self.gps_t, dtype=np.int64), np.array(self.gps_ll)
            lat, lon = np.interp(t, gt, ll[:, 0]), np.interp(t, gt, ll[:, 1])
        else:
            lat = lon = np.full(len(t), np.nan)
        camera = self.roles.channel["image"].topic
        vehicle, drive = scan.metadata.get("vehicle", {}), scan.metadata.get("drive", {})
        n = len(rows)
        columns: dict[str, Any] = {
            "frame_id": [frame_id(log_id, camera, x) for x in times],
            "log_id": [log_id] * n,
            "source": [drive.get("source", "fleet")] * n,
            "vehicle_id": [vehicle.get("vehicle_id", "")] * n,
            "vehicle_type": [vehicle.get("vehicle_type", "")] * n,
            "drive_id": [drive.get("drive_id", Path(scan.path).stem)] * n,
            "camera": [camera] * n,
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
            "latitude": lat,
            "longitude": lon,
            "triggers": frames_in_windows(t, self.events, self.cfg.triggers),
            "labels": [[] for _ in range(n)],
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
