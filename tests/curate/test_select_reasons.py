"""Selection reasons on logs without triggers, and quotas the pool cannot meet (issue 22)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from longtail.curate.select import SelectConfig, select_frames


def _pool(n: int, tags: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame({
        "frame_id": [f"f{i}" for i in range(n)], "drive_id": "d0",
        "timestamp_ns": (np.arange(n) * 1e9).astype(np.int64),
        "triggers": [[] for _ in range(n)], "tags": tags,
    })


def _spread(n: int) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, 16))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_reasons_without_triggers_say_how_far_each_frame_is(caplog: pytest.LogCaptureFixture) -> None:
    pool = _pool(30, [["day", "highway"]] * 27 + [["night", "highway"]] * 3)
    with caplog.at_level(logging.WARNING, logger="longtail.curate.select"):
        picks = select_frames(pool, _spread(30), SelectConfig(budget=6, quotas={"night": 0.5, "fog": 0.2}))
    reasons = picks.reason.tolist()
    assert not any("diversity 1.00" in r for r in reasons)
    assert reasons[0].startswith("quota for night") or "unlike anything covered yet" in reasons[0]
    assert any("cosine distance" in r for r in reasons) and any("(day, highway)" in r for r in reasons)
    # 3 night frames for a quota of 3, none of fog for a quota of 2: the fog quota is said to be unmet.
    assert set(picks.attrs["unmet_quotas"]) == {"fog"}
    assert "asked for 2 frame(s) tagged fog, the pool has 0" in caplog.text
