"""Checkpoints of a training run: written atomically, read with ``weights_only=True``, with RNG states.

DATA/runs/<run_id>/checkpoint-<epoch>.pt holds the model, optimizer, scheduler, epoch, config,
RNG states and, for a fine-tuned run, its parent model (`longtail.train.warmstart`).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longtail.errors import InputError
from longtail.storage import atomic_writer
from longtail.train.config import FIELDS_ADDED_OFF

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)\.pt$")


def _rng_state() -> dict[str, Any]:
    state = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"name": state[0], "keys": [int(k) for k in state[1]], "pos": int(state[2]),  # type: ignore[index]
                      "has_gauss": int(state[3]), "cached_gaussian": float(state[4])}}  # type: ignore[index]


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a crash leaves the previous one intact)."""
    with atomic_writer(path) as handle:
        torch.save(state, handle)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (tensors and plain data only, no code).

    Config fields the checkpoint predates get the value in force when it was saved
    (`FIELDS_ADDED_OFF`), not today's default, so a resumed older run continues unchanged.

    Raises:
        InputError: missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint missing; resume from a DATA/runs/<run_id>/checkpoint-<epoch>.pt")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from None
    missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "config", "run_id") if k not in state]
    if missing:
        raise InputError(f"{path}: checkpoint lacks {missing}; it was not written by longtail.train")
    if isinstance(state["config"], dict):
        state["config"] = {**FIELDS_ADDED_OFF, **state["config"]}
    return state


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint of the highest epoch in a run folder, or None."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("checkpoint-*.pt") if (m := CHECKPOINT_RE.match(p.name))]
    return max(found)[1] if found else None


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    found = sorted((int(m.group(1)), p) for p in run_dir.glob("checkpoint-*.pt") if (m := CHECKPOINT_RE.match(p.name)))
    for _, path in found[:-keep]:
        path.unlink(missing_ok=True)
