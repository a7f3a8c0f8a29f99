"""Fixtures of the train tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from train_helpers import write_version


@pytest.fixture
def tiny_version(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """(data root, version folder, manifest) of a 16-frame version: 12 train, 4 val."""
    root = tmp_path / "data"
    folder, manifest = write_version(root)
    return root, folder, manifest
