"""kill -9 during ingest at several points, then run again: the result equals a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from longtail.catalog.frames import load_frame_index
from longtail.ingest.faults import FAULT_ENV
from longtail.ingest.ingest import ingest


def _cli(sources: list[Path], root: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "longtail", "ingest", *map(str, sources), "--root", str(root),
                             "--no-progress", *extra], env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _files(root: Path) -> dict[str, object]:
    """Every frame and index file with its bytes, and every manifest without its run times."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.parts[len(root.parts)] not in ("frames", "index") or "paths" in p.parts:
            continue
        if p.parent.name == "logs":
            manifest = json.loads(p.read_text())
            manifest.pop("elapsed_s")
            manifest.pop("store_s", None)
            manifest.pop("frame_write_s", None)
            out[str(p.relative_to(root))] = manifest
        else:
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def batch(sim_logs: dict[str, Path]) -> list[Path]:
    return [sim_logs["foxglove"], sim_logs["town"], sim_logs["ros2"]]


@pytest.fixture(scope="module")
def reference(batch: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict[str, object]]:
    root = tmp_path_factory.mktemp("reference")
    ingest(batch, root, progress=False)
    return load_frame_index(root), _files(root)


@pytest.mark.parametrize("fault", ["ingest.frame:1", "ingest.frame:60", "ingest.frame:190", "ingest.index:1",
                                   "ingest.index:2", "ingest.log:1"])
def test_kill_at_a_fault_point_then_rerun_equals_a_clean_run(batch, reference, tmp_path, fault: str) -> None:
    crashed = _cli(batch, tmp_path, env={FAULT_ENV: fault})
    crashed.wait(timeout=300)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.read().decode()[-2000:]
    finished = _cli(batch, tmp_path)
    assert finished.wait(timeout=300) == 0, finished.stderr.read().decode()[-2000:]
    index, files = reference
    pd.testing.assert_frame_equal(load_frame_index(tmp_path), index)
    assert _files(tmp_path) == files
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"


@pytest.mark.slow
def test_kill_the_whole_process_group_mid_write_with_two_workers(batch, reference, tmp_path) -> None:
    proc = _cli(batch, tmp_path, "--workers", "2")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "frames").rglob("*.jpg"))) < 40:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(list((tmp_path / "index" / "logs").glob("*.json"))) < len(batch), "the kill came mid-batch"
    finished = _cli(batch, tmp_path, "--workers", "2")
    assert finished.wait(timeout=300) == 0, finished.stderr.read().decode()[-2000:]
    index, files = reference
    pd.testing.assert_frame_equal(load_frame_index(tmp_path), index)
    assert _files(tmp_path) == files
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"


def test_stale_temporaries_of_every_kind_are_removed(batch, reference, tmp_path) -> None:
    """What a kill leaves mid-write anywhere (frame, index, manifest, path cache) is cleaned up."""
    ingest(batch[:1], tmp_path, progress=False)
    planted = [tmp_path / "frames" / "ab" / ".abcd.jpg.1.2.tmp", tmp_path / "index" / "frames" / ".x.parquet.q1.tmp",
               tmp_path / "index" / "logs" / ".y.json.ai6n417b.tmp", tmp_path / "index" / "paths" / ".z.json.9.tmp"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")
    ingest(batch, tmp_path, progress=False)
    assert not [p for p in planted if p.exists()]
    index, files = reference
    pd.testing.assert_frame_equal(load_frame_index(tmp_path), index)
    assert _files(tmp_path) == files
