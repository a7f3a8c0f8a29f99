"""What a training epoch draws: shuffled frames, repeat factors (rare classes) and mined failure-mode frames."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from longtail.train.config import TrainConfig
from longtail.train.data import VersionDataset, collate, epoch_indices, repeat_factors

log = logging.getLogger(__name__)


def make_loader(dataset: VersionDataset, config: TrainConfig, shuffle: bool, epoch: int,
                factors: np.ndarray | None = None) -> DataLoader[Any]:
    """A DataLoader over ``dataset``: shuffled (seeded by ``config.seed`` and ``epoch``) when ``shuffle``,
    drawing each frame ``factors[i]`` times in expectation when any factor exceeds 1 (`sampling_factors`)."""
    # Shuffling is seeded per epoch, so a resumed run draws the same order as an uninterrupted one.
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    if shuffle and factors is not None and (factors > 1).any():  # repeat-factor sampling
        order = epoch_indices(factors, generator)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=order, collate_fn=collate,
                          num_workers=config.num_workers, drop_last=False, persistent_workers=False)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=shuffle, collate_fn=collate,
                      num_workers=config.num_workers, generator=generator, drop_last=False,
                      persistent_workers=False)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, then restore the previous number."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def mined_mask(frames: pd.DataFrame) -> np.ndarray:
    """Which frames their labeling batch mined for a failure mode: the selection recorded the failure
    mode a frame resembled (``fm_name``, `longtail.catalog.versions.VERSION_LABELS_SCHEMA`), "" for none.

    Returns:
        bool, one per row; all False for a table without ``fm_name`` (a version built before it).
    """
    if "fm_name" not in frames:
        return np.zeros(len(frames), dtype=bool)
    return frames["fm_name"].fillna("").astype(str).str.len().to_numpy() > 0


def sampling_factors(dataset: VersionDataset, config: TrainConfig) -> tuple[np.ndarray, int]:
    """Each training frame's expected draws per epoch: its repeat factor (rare classes,
    ``config.repeat_factor_threshold``) times ``config.mined_oversample`` for a mined frame (`mined_mask`).

    Returns:
        (float64 factors, one per frame, each >= 1; the number of mined frames).
    """
    factors = repeat_factors([t["labels"] for t in dataset.targets], config.repeat_factor_threshold)
    if (factors > 1).any():
        log.info("repeat-factor sampling (t=%.2f): %d of %d training frames repeated, %.0f frames per epoch",
                 config.repeat_factor_threshold, int((factors > 1).sum()), len(factors), factors.sum())
    mined = mined_mask(dataset.frames)
    if config.mined_oversample > 1 and mined.any():
        factors = np.where(mined, factors * config.mined_oversample, factors)
        log.info("mined-frame oversampling (x%.2f): %d of %d training frames mined for a failure mode, %.0f frames "
                 "per epoch", config.mined_oversample, int(mined.sum()), len(factors), factors.sum())
    elif config.mined_oversample > 1:
        log.warning("mined_oversample=%.2f, but no training frame was mined for a failure mode (fm_name): plain "
                    "sampling", config.mined_oversample)
    return factors, int(mined.sum())

