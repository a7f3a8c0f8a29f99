"""Frame embeddings and image statistics, computed in batches and cached by frame content.

The cache lives in DATA/embeddings/<key>/, one Parquet part per batch of newly computed frames
(written atomically), keyed by the image's sha256 and the embedder's key (the descriptor's
name and version, or the champion model's name and version). A frame is never computed twice
for the same key; a crash loses at most the batch in flight.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from longtail.catalog.root import DataRoot
from longtail.curate.descriptor import DESCRIPTOR_KEY, DIM, STAT_NAMES, describe_image
from longtail.errors import LongtailError
from longtail.storage import atomic_writer, sha256_bytes

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class MissingFrameError(LongtailError):
    """A frame the index points at is not in the frame store."""


class Embedder(Protocol):
    """Turns encoded images into unit-length vectors. ``key`` names the model and its version."""

    key: str
    dim: int

    def embed(self, images: Sequence[bytes], sources: Sequence[str]) -> np.ndarray:
        """float32 (len(images), dim) unit-length vectors."""
        ...


def _describe_batch(items: list[tuple[bytes, str]]) -> tuple[np.ndarray, np.ndarray]:
    feats = [describe_image(data, src) for data, src in items]
    return (np.stack([f.descriptor for f in feats]) if feats else np.zeros((0, DIM), np.float32),
            np.stack([f.stats for f in feats]) if feats else np.zeros((0, len(STAT_NAMES)), np.float32))


class DescriptorEmbedder:
    """The hand-built GIST-like descriptor of `longtail.curate.descriptor` (before any model)."""

    key = DESCRIPTOR_KEY
    dim = DIM

    def embed(self, images: Sequence[bytes], sources: Sequence[str]) -> np.ndarray:
        return _describe_batch(list(zip(images, sources, strict=True)))[0]


class FeatureCache:
    """Embeddings (and, for the descriptor, image statistics) of frames, by image sha256.

    Args:
        root: the data root.
        key: the embedder's key (`Embedder.key`).
        dim: the vectors' length.
        with_stats: also cache the image statistics of `STAT_NAMES`.
    """

    def __init__(self, root: str | os.PathLike[str], key: str, dim: int, with_stats: bool = False) -> None:
        if not _KEY_RE.match(key):
            raise LongtailError(f"embedding key {key!r} is not a safe folder name; use letters, digits and ._@+-")
        self.folder = DataRoot.of(root).embeddings(key)
        self.key, self.dim, self.with_stats = key, dim, with_stats
        self._index: dict[str, int] = {}
        self._vectors: list[np.ndarray] = []
        self._stats: list[np.ndarray] = []
        self._load()

    def _load(self) -> None:
        if not self.folder.exists():
            return
        n = 0
        for part in sorted(self.folder.glob("part-*.parquet")):
            table = pq.read_table(part)
            shas = table.column("image_sha256").to_pylist()
            vec = np.asarray(table.column("vector").combine_chunks().flatten().to_numpy(), np.float32)
            if vec.size != len(shas) * self.dim:
                raise LongtailError(f"{part}: vectors of length {vec.size // max(len(shas), 1)}, expected "
                                    f"{self.dim} for key {self.key}; delete the folder {self.folder} to recompute")
            self._vectors.append(vec.reshape(len(shas), self.dim))
            if self.with_stats:
                self._stats.append(np.stack([table.column(s).to_numpy() for s in STAT_NAMES], axis=1)
                                   .astype(np.float32))
            for i, sha in enumerate(shas):
                self._index.setdefault(sha, n + i)
            n += len(shas)
        if self._vectors:
            self._vectors = [np.concatenate(self._vectors)]
            if self.with_stats:
                self._stats = [np.concatenate(self._stats)]

    def __contains__(self, sha: object) -> bool:
        return sha in self._index

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, shas: Iterable[str]) -> list[str]:
        """The shas not cached yet, in order, without repeats."""
        seen: set[str] = set()
        out = []
        for sha in shas:
            if sha not in self._index and sha not in seen:
                seen.add(sha)
                out.append(sha)
        return out

    def add(self, shas: Sequence[str], vectors: np.ndarray, stats: np.ndarray | None = None) -> None:
        """Store a computed batch as one new part (atomic)."""
        if not len(shas):
            return
        vectors = np.ascontiguousarray(vectors, np.float32)
        if vectors.shape != (len(shas), self.dim):
            raise ValueError(f"vectors of shape {vectors.shape}, expected ({len(shas)}, {self.dim})")
        cols: dict[str, pa.Array] = {
            "image_sha256": pa.array(list(shas), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), self.dim),
        }
        if self.with_stats:
            if stats is None:
                raise ValueError("this cache keeps image statistics: pass stats")
            for i, name in enumerate(STAT_NAMES):
                cols[name] = pa.array(stats[:, i].astype(np.float32))
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = sha256_bytes("".join(shas).encode())[:16]
        with atomic_writer(self.folder / f"part-{len(self._index):09d}-{digest}.parquet") as fh:
            pq.write_table(pa.table(cols), fh)
        base = sum(len(v) for v in self._vectors)
        self._vectors.append(vectors)
        if self.with_stats and stats is not None:
            self._stats.append(np.asarray(stats, np.float32))
        for i, sha in enumerate(shas):
            self._index.setdefault(sha, base + i)

    def _rows(self, shas: Sequence[str]) -> np.ndarray:
        try:
            return np.fromiter((self._index[s] for s in shas), np.int64, count=len(shas))
        except KeyError as exc:
            raise LongtailError(f"frame {exc.args[0]} has no cached embedding for {self.key}; "
                                "run `longtail curate` to compute it") from None

    def vectors(self, shas: Sequence[str]) -> np.ndarray:
        """float32 (len(shas), dim), in the order given."""
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        rows = self._rows(shas)
        return self._vectors[0][rows] if self._vectors else np.zeros((0, self.dim), np.float32)

    def stats(self, shas: Sequence[str]) -> np.ndarray:
        """float32 (len(shas), len(STAT_NAMES)), in the order given."""
        if not self.with_stats:
            raise ValueError("this cache does not keep image statistics")
        if len(self._stats) > 1:
            self._stats = [np.concatenate(self._stats)]
        rows = self._rows(shas)
        return self._stats[0][rows] if self._stats else np.zeros((0, len(STAT_NAMES)), np.float32)


def compute_descriptors(root: str | os.PathLike[str], shas: Sequence[str], paths: Sequence[str],
                        batch_size: int = 512, workers: int = 1,
                        progress: Callable[[int], None] | None = None) -> FeatureCache:
    """Compute and cache the descriptor and image statistics of every frame not cached yet.

    Args:
        root: the data root (frames are read from ``root / path``).
        shas: image sha256 of each frame.
        paths: the frame's store path, relative to the root.
        batch_size: frames per cached part.
        workers: processes decoding in parallel (1 = in this process).
        progress: called with the number of frames done after each batch.

    Raises:
        MissingFrameError: naming the first frame file that does not exist (nothing is computed).
    """
    cache = FeatureCache(root, DESCRIPTOR_KEY, DIM, with_stats=True)
    path_of = dict(zip(shas, paths, strict=True))
    todo = cache.missing(shas)
    root = Path(root)
    for sha in todo:
        if not (root / path_of[sha]).is_file():
            raise MissingFrameError(f"{root / path_of[sha]}: frame {sha} is in the frame index but not in the "
                                    "frame store; re-ingest its drive log (`longtail ingest`) or restore the file")
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]

    def load(batch: list[str]) -> list[tuple[bytes, str]]:
        return [((root / path_of[s]).read_bytes(), str(root / path_of[s])) for s in batch]

    if workers > 1 and len(batches) > 1:
        # forkserver, not fork: a fork after OpenCV started its thread pool deadlocks the child.
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, initializer=_one_thread, mp_context=ctx) as pool:
            futures = [(b, pool.submit(_describe_batch, load(b))) for b in batches[:workers * 2]]
            nxt = len(futures)
            while futures:
                batch, fut = futures.pop(0)
                vec, st = fut.result()
                cache.add(batch, vec, st)
                if progress:
                    progress(len(batch))
                if nxt < len(batches):
                    futures.append((batches[nxt], pool.submit(_describe_batch, load(batches[nxt]))))
                    nxt += 1
    else:
        for batch in batches:
            vec, st = _describe_batch(load(batch))
            cache.add(batch, vec, st)
            if progress:
                progress(len(batch))
    if todo:
        log.info("described %d new frame(s) (%s); %d cached", len(todo), DESCRIPTOR_KEY, len(cache))
    return cache


def _one_thread() -> None:
    import cv2

    cv2.setNumThreads(1)


def compute_embeddings(root: str | os.PathLike[str], embedder: Embedder, shas: Sequence[str], paths: Sequence[str],
                       batch_size: int = 256, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embeddings of frames by any embedder, computing and caching the missing ones.

    Returns:
        float32 (len(shas), embedder.dim), in the order given.
    """
    if embedder.key == DESCRIPTOR_KEY:
        return compute_descriptors(root, shas, paths, progress=progress).vectors(shas)
    cache = FeatureCache(root, embedder.key, embedder.dim)
    path_of = dict(zip(shas, paths, strict=True))
    todo = cache.missing(shas)
    root = Path(root)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        files = [root / path_of[s] for s in batch]
        for f, s in zip(files, batch, strict=True):
            if not f.is_file():
                raise MissingFrameError(f"{f}: frame {s} is in the frame index but not in the frame store; "
                                        "re-ingest its drive log (`longtail ingest`)")
        cache.add(batch, embedder.embed([f.read_bytes() for f in files], [str(f) for f in files]))
        if progress:
            progress(len(batch))
    return cache.vectors(shas)
