"""Test-session setup. Tests use one thread per process: CI has 2 shared cores."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import longtail

# The cached environment is shared between checkouts; its editable install points at one of them.
_SRC = Path(__file__).resolve().parents[1] / "src"
if not Path(longtail.__file__).resolve().is_relative_to(_SRC):
    raise RuntimeError(
        f"the tests import longtail from {Path(longtail.__file__).parent}, not from {_SRC}: "
        "run 'make test' (or env/setup-venv.sh) in this checkout first"
    )
