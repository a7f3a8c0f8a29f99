"""The stage-layering contracts of pyproject.toml hold, and they would catch a stage importing a stage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the package under ``src`` with the repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), str(REPO / "pyproject.toml"), "--no-cache"], cwd=src,
                          env=env, capture_output=True, text=True, timeout=300)


def test_contracts_hold_on_the_library() -> None:
    result = _lint(REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stages are independent" in result.stdout
    assert "2 kept, 0 broken" in result.stdout


def test_a_stage_importing_a_stage_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "longtail", tmp_path / "longtail", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "longtail" / "train" / "shortcut.py").write_text(
        '"""A shortcut: train reaching into curate instead of the shared floor."""\n\n'
        "from longtail.curate.run import current_embedder  # noqa: F401\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Stages are independent: no stage package imports another BROKEN" in result.stdout
    assert "0 broken" not in result.stdout
    assert "longtail.train.shortcut -> longtail.curate.run" in result.stdout
