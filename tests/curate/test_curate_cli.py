"""The curate commands as a user runs them: no FIFTYONE_DATABASE_URI, so each data root gets
its own MongoDB (started on demand, stopped by `longtail db stop`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longtail.catalog.db import running_uri


def _longtail(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_DATABASE_URI", "LONGTAIL_FIFTYONE_URI_FROM")}
    out = subprocess.run([sys.executable, "-m", "longtail", *args], capture_output=True, text=True, env=env,
                         timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(f"longtail {' '.join(args)} -> {out.returncode}\n{out.stderr[-3000:]}")
    return out


@pytest.fixture(scope="module")
def root(curate_fleet: dict, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Two of the fleet's drives ingested into a fresh root; its database stopped at the end."""
    data = tmp_path_factory.mktemp("cli") / "data"
    logs = [str(p) for p in curate_fleet["logs"][:2]]
    _longtail("ingest", *logs, "--root", str(data), "--no-progress")
    yield data
    _longtail("db", "stop", "--root", str(data), check=False)


def test_curate_select_and_the_database_lifecycle(root: Path) -> None:
    assert _longtail("db", "status", "--root", str(root)).stdout.strip() == "not running"
    manifest = json.loads(_longtail("curate", "--root", str(root), "--json", "--no-progress").stdout)
    assert manifest["samples"] == manifest["added"] > 0
    uri = running_uri(root)
    assert uri is not None and (root / "fiftyone" / "db").is_dir()  # the root's own database, left running
    assert _longtail("db", "status", "--root", str(root)).stdout.strip() == uri

    again = json.loads(_longtail("curate", "--root", str(root), "--json", "--no-progress").stdout)
    assert again["added"] == 0 and again["samples"] == manifest["samples"]

    batch = json.loads(_longtail("select", "--root", str(root), "--budget", "12", "--json").stdout)
    assert len(batch["frames"]) == 12 and (root / "batches" / batch["batch_id"] / "manifest.json").is_file()

    assert _longtail("db", "stop", "--root", str(root)).stdout.strip() == "stopped"
    assert running_uri(root) is None
    # The next command starts it again, on the same files: nothing was lost.
    listed = json.loads(_longtail("curate", "--root", str(root), "--json", "--no-progress").stdout)
    assert listed["samples"] == manifest["samples"] and listed["added"] == 0


@pytest.mark.parametrize(("args", "says"), [
    (["--budget", "0"], "--budget"),
    (["--budget", "100000"], "lower --budget to at most"),
    (["--budget", "5", "--failure-mode", "night_unicorns"], "night_unicorns"),
    (["--budget", "5", "--quota", "night=1.5"], "night"),
])
def test_select_refuses_bad_requests_and_writes_nothing(root: Path, args: list[str], says: str) -> None:
    _longtail("curate", "--root", str(root), "--no-progress")
    before = sorted(p.name for p in (root / "batches").glob("*")) if (root / "batches").exists() else []
    out = _longtail("select", "--root", str(root), *args, check=False)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    after = sorted(p.name for p in (root / "batches").glob("*")) if (root / "batches").exists() else []
    assert after == before


def test_help_explains_each_command() -> None:
    for cmd in ("curate", "select", "app", "db"):
        out = _longtail(cmd, "--help")
        assert "--root" in out.stdout and len(out.stdout) > 400, cmd
