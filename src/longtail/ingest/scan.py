"""A fast, damage-tolerant, zero-copy scanner for MCAP drive logs.

The file is memory-mapped and its records are parsed in place with ``struct`` (the MCAP
format: https://mcap.dev/spec). Compared with mcap's general reader this avoids a copy of every
byte and a Python call per field, which is what lets ingest keep up with the disk.

Robustness:
- every chunk's CRC is checked; a chunk that fails (or does not decompress) is skipped and
  reported, and scanning goes on with the next record;
- a record whose length runs past the end of the file means the file was cut short: everything
  before it is kept;
- a corrupted record header is skipped over using the summary's chunk index, when the summary
  is readable.

The sha256 of the whole file (the log's id) is computed by a helper thread over the mapping
while the scan runs (hashlib releases the GIL).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from longtail.errors import InputError

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_CHUNK_INDEX, OP_METADATA, OP_DATA_END = 0x08, 0x0C, 0x0F

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_REC = struct.Struct("<BQ")
_MSG = struct.Struct("<HIQQ")
_CHUNK = struct.Struct("<QQQI")
_HASH_BLOCK = 8 << 20
_HASH_AHEAD = 64 << 20
_RELEASE_STEP = 32 << 20


class ScanError(InputError):
    """The file cannot be scanned at all (empty, not MCAP)."""


class Message(NamedTuple):
    """A message as stored: channel id, log time (ns since epoch), payload (a zero-copy view)."""

    channel_id: int
    log_time: int
    data: memoryview


@dataclass
class Channel:
    """A channel and its schema."""

    id: int
    topic: str
    message_encoding: str
    schema_name: str = ""
    schema_encoding: str = ""
    schema_data: bytes = b""


@dataclass
class ChunkInfo:
    """Where a chunk is, what time it spans, and whether it could be read."""

    offset: int
    start_ns: int
    end_ns: int
    ok: bool = True


@dataclass
class Scan:
    """State of one scan: what the log declares and what was wrong with it."""

    path: str
    size: int
    profile: str = ""
    channels: dict[int, Channel] = field(default_factory=dict)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    chunks: list[ChunkInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    has_summary: bool = False
    unchunked_messages: int = 0


def _str(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    return bytes(buf[pos:pos + n]).decode("utf-8"), pos + n


def _map(buf: memoryview, pos: int) -> tuple[dict[str, str], int]:
    (n,) = _U32.unpack_from(buf, pos)
    end = pos + 4 + n
    pos += 4
    out = {}
    while pos < end:
        k, pos = _str(buf, pos)
        v, pos = _str(buf, pos)
        out[k] = v
    return out, end


class LogScanner:
    """Open a drive log for scanning; iterate `messages`, then read `sha256`.

    Args:
        path: the MCAP file.

    Raises:
        ScanError: for an empty file or one that is not MCAP.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.size = os.path.getsize(self.path)
        if self.size == 0:
            raise ScanError(f"{self.path}: the file is empty (0 bytes): nothing was recorded")
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self.buf = memoryview(self._mm)
        if bytes(self.buf[:8]) != MAGIC:
            head = bytes(self.buf[:8])
            self.close()
            raise ScanError(f"{self.path}: not an MCAP file (starts with {head!r}, expected the MCAP magic {MAGIC!r})")
        self.scan = Scan(self.path, self.size)
        self._chunk_index: dict[int, set[int]] = {}
        self._chunk_starts: list[int] = []
        self._schemas: dict[int, tuple[str, str, bytes]] = {}
        self._sha = hashlib.sha256()
        self._cond = threading.Condition()
        self._scan_pos = 0
        self._hashed = 0
        self._released = 0
        self._hasher = threading.Thread(target=self._hash, daemon=True)
        self._hasher.start()
        self._read_summary()

    # ------------------------------------------------------------------ lifecycle
    def _hash(self) -> None:
        """Hash the file, at most `_HASH_AHEAD` bytes ahead of the scan (so pages are read once
        while they are mapped, and released once both have passed them)."""
        pos = 0
        while pos < self.size:
            with self._cond:
                while pos >= self._scan_pos + _HASH_AHEAD:
                    self._cond.wait()
            block = self.buf[pos:pos + _HASH_BLOCK]
            self._sha.update(block)
            pos += len(block)
            block.release()
            with self._cond:
                self._hashed = pos
            self._release()

    def _advance(self, pos: int, final: bool = False) -> None:
        """The scan has passed byte ``pos``: let the hasher go on, release what both have read."""
        if final or pos - self._scan_pos >= _HASH_BLOCK:
            with self._cond:
                self._scan_pos = self.size if final else pos
                self._cond.notify_all()
            self._release()

    def _release(self) -> None:
        """Drop mapped pages both the scan and the hasher have passed from this process's memory
        (they stay in the page cache): memory does not grow with the size of the log."""
        with self._cond:
            end = min(self._scan_pos, self._hashed) // mmap.PAGESIZE * mmap.PAGESIZE
            if end - self._released < _RELEASE_STEP and end < self.size // mmap.PAGESIZE * mmap.PAGESIZE:
                return
            start, self._released = self._released, max(self._released, end)
        if end > start:
            self._mm.madvise(mmap.MADV_DONTNEED, start, end - start)

    def sha256(self) -> str:
        """The file's sha256 (waits for the hashing thread)."""
        self._advance(self.size, final=True)
        self._hasher.join()
        return self._sha.hexdigest()

    def close(self) -> None:
        """Release the mapping and the file."""
        if hasattr(self, "_hasher") and self._hasher.is_alive():
            self._advance(self.size, final=True)
            self._hasher.join()
        try:
            self.buf.release()
            self._mm.close()
        except BufferError:
            pass  # a caller still holds a view of a message; the mapping goes with the last one
        self._file.close()

    def __enter__(self) -> LogScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ summary
    def _read_summary(self) -> None:
        """Read the footer and the summary's chunk index (for skipping and for recovery)."""
        buf, size = self.buf, self.size
        try:
            if size < 8 + 9 + 20 + 8 or bytes(buf[size - 8:]) != MAGIC:
                raise ValueError("no MCAP magic at the end of the file")
            op, length = _REC.unpack_from(buf, size - 8 - 29)
            if op != OP_FOOTER or length != 20:
                raise ValueError("no footer record before the closing magic")
            (summary_start,) = _U64.unpack_from(buf, size - 8 - 20)
            if summary_start == 0:
                return
            pos = summary_start
            end = size - 8 - 29
            while pos + 9 <= end:
                op, length = _REC.unpack_from(buf, pos)
                body = pos + 9
                if body + length > end:
                    raise ValueError(f"summary record at byte {pos} runs past the footer")
                if op == OP_CHUNK_INDEX:
                    (chunk_offset,) = _U64.unpack_from(buf, body + 16)
                    (map_len,) = _U32.unpack_from(buf, body + 32)
                    ids = {_U16.unpack_from(buf, body + 36 + 10 * k)[0] for k in range(map_len // 10)}
                    self._chunk_index[chunk_offset] = ids
                elif op in (OP_SCHEMA, OP_CHANNEL):
                    self._declare(op, body, length)
                pos = body + length
            self.scan.has_summary = True
            self._chunk_starts = sorted(self._chunk_index)
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            self._chunk_index.clear()
            self.scan.problems.append(
                f"no readable summary or footer ({exc}); the file was probably cut short, so it was read from the "
                "start and kept up to the damage")

    # ------------------------------------------------------------------ records
    def _declare(self, op: int, body: int, length: int) -> None:
        buf = self.buf
        if op == OP_SCHEMA:
            (sid,) = _U16.unpack_from(buf, body)
            name, pos = _str(buf, body + 2)
            encoding, pos = _str(buf, pos)
            (n,) = _U32.unpack_from(buf, pos)
            self._schemas[sid] = (name, encoding, bytes(buf[pos + 4:pos + 4 + n]))
        elif op == OP_CHANNEL:
            cid, sid = struct.unpack_from("<HH", buf, body)
            topic, pos = _str(buf, body + 4)
            encoding, pos = _str(buf, pos)
            if cid not in self.scan.channels:
                name, senc, sdata = self._schemas.get(sid, ("", "", b""))
                self.scan.channels[cid] = Channel(cid, topic, encoding, name, senc, sdata)
        elif op == OP_METADATA:
            name, pos = _str(buf, body)
            values, _ = _map(buf, pos)
            self.scan.metadata[name] = values
        elif op == OP_HEADER:
            self.scan.profile, _ = _str(buf, body)

    def chunk_messages(self, chunk: ChunkInfo, wanted: set[int] | None) -> Iterator[Message]:
        """Messages of one chunk (re-reading it; for chunks scanned before)."""
        yield from self._inner(self._open_chunk(chunk.offset + 9), wanted)

    def _open_chunk(self, body: int) -> memoryview:
        """The decompressed, CRC-checked records of the chunk whose body starts at ``body``."""
        buf = self.buf
        _start, _end, usize, crc = _CHUNK.unpack_from(buf, body)
        compression, pos = _str(buf, body + 28)
        (clen,) = _U64.unpack_from(buf, pos)
        pos += 8
        data = buf[pos:pos + clen]
        if compression == "":
            raw: bytes | memoryview = data
        elif compression == "zstd":
            import zstandard

            raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=usize)
        elif compression == "lz4":
            import lz4.frame

            raw = lz4.frame.decompress(bytes(data))
        else:
            raise ValueError(f"unsupported chunk compression {compression!r}")
        if len(raw) != usize:
            raise ValueError(f"decompressed to {len(raw)} bytes, the chunk declares {usize}")
        if crc and zlib.crc32(raw) != crc:
            raise ValueError("CRC mismatch")
        return memoryview(raw)

    def _inner(self, records: memoryview, wanted: set[int] | None) -> Iterator[Message]:
        pos, end = 0, len(records)
        while pos + 9 <= end:
            op, length = _REC.unpack_from(records, pos)
            body = pos + 9
            if body + length > end:
                raise ValueError(f"record at byte {pos} of the chunk runs past its end")
            if op == OP_MESSAGE:
                cid, _seq, log_time, _pub = _MSG.unpack_from(records, body)
                if wanted is None or cid in wanted:
                    yield Message(cid, log_time, records[body + 22:body + length])
            elif op in (OP_SCHEMA, OP_CHANNEL):
                self._declare_from(records, op, body, length)
            pos = body + length

    def _declare_from(self, records: memoryview, op: int, body: int, length: int) -> None:
        saved = self.buf
        self.buf = records
        try:
            self._declare(op, body, length)
        finally:
            self.buf = saved

    def messages(self, wanted: set[int] | None = None) -> Iterator[Message]:
        """Every readable message of the wanted channels, in file order; records chunk positions.

        ``wanted`` may grow while iterating (channels are declared inside chunks).
        """
        buf, size, scan = self.buf, self.size, self.scan
        pos = 8
        while pos < size:
            if pos + 9 > size:
                scan.problems.append(f"the file ends inside a record header at byte {pos}: it was cut short; "
                                     "everything before was kept")
                return
            op, length = _REC.unpack_from(buf, pos)
            body = pos + 9
            if op == 0 or body + length > size:
                reason = (f"a corrupted record header at byte {pos}" if op == 0 else
                          f"the record at byte {pos} runs past the end of the file ({size} bytes)")
                # With the summary's chunk index we can step over the damage; without it (a file cut
                # short) this is where the readable part ends.
                resume = next((s for s in self._chunk_starts if s > pos), None)
                if resume is None:
                    scan.problems.append(f"{reason}: the file was cut short or damaged there; everything before it "
                                         "was kept")
                    return
                scan.problems.append(f"{reason}; resumed at the next indexed chunk (byte {resume})")
                pos = resume
                continue
            if op == OP_CHUNK:
                start, end = struct.unpack_from("<QQ", buf, body)
                info = ChunkInfo(pos, start, end)
                scan.chunks.append(info)
                ids = self._chunk_index.get(pos)
                if wanted is not None and ids is not None and not (ids & wanted):
                    pos = body + length
                    continue
                try:
                    yield from self._inner(self._open_chunk(body), wanted)
                except Exception as exc:  # damaged bytes can make zstd, lz4 or struct raise anything
                    info.ok = False
                    scan.problems.append(
                        f"chunk at byte {pos} (log time {start}..{end} ns) is corrupted ({type(exc).__name__}: {exc}); "
                        "its messages were skipped")
            elif op == OP_MESSAGE:
                cid, _seq, log_time, _pub = _MSG.unpack_from(buf, body)
                scan.unchunked_messages += 1
                if wanted is None or cid in wanted:
                    yield Message(cid, log_time, buf[body + 22:body + length])
            elif op in (OP_SCHEMA, OP_CHANNEL, OP_METADATA, OP_HEADER):
                try:
                    self._declare(op, body, length)
                except (ValueError, struct.error, UnicodeDecodeError) as exc:
                    scan.problems.append(f"record at byte {pos} does not parse ({exc}); skipped")
            elif op in (OP_DATA_END, OP_FOOTER):
                self._advance(self.size, final=True)
                return
            pos = body + length
            self._advance(pos)
        self._advance(self.size, final=True)
