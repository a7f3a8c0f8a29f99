"""Shared fixtures. Tests use one thread per process: CI has 2 shared cores."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from longtail.config import NO_SCENARIO_RATES, SimConfig


@pytest.fixture
def small_cfg() -> SimConfig:
    """A short, small-image drive configuration with no random scenarios."""
    return SimConfig(minutes=0.2, width=320, height=192, scenario_rates=NO_SCENARIO_RATES)
