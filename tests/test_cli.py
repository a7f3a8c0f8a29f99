"""The ``longtail`` command line: the README's sim example, idempotent reruns, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from longtail.cli import main
from longtail.logs import iter_messages
from longtail.schemas import PROFILE_TOPICS
from longtail.storage import sha256_file


def _sim(out: Path, *extra: str) -> list[str]:
    return ["sim", "--out", str(out), "--no-progress", *extra]


@pytest.mark.slow
def test_readme_sim_example_writes_two_complete_logs_deterministically(tmp_path: Path, capsys) -> None:
    args = ["--vehicles", "2", "--drives-per-vehicle", "1", "--minutes", "1", "--seed", "7"]
    assert main(_sim(tmp_path / "fleet", *args)) == 0
    table = capsys.readouterr().out
    logs = sorted((tmp_path / "fleet").glob("*.mcap"))
    assert len(logs) == 2
    assert "fleet (2 drives)" in table and "cut-in" in table
    topics = PROFILE_TOPICS["foxglove"]
    for log in logs:
        seen: dict[str, int] = {}
        for msg in iter_messages(log):  # reads and decodes every message
            seen[msg.topic] = seen.get(msg.topic, 0) + 1
        assert seen[topics.image] == 600 and seen[topics.vehicle_state] == 3000
        assert set(seen) == {topics.image, topics.calibration, topics.gps, topics.vehicle_state}
        assert (tmp_path / "fleet" / "ground_truth" / f"{log.stem}.parquet").exists()
    manifest = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    assert [d["sha256"] for d in manifest["drives"]] == [sha256_file(p) for p in logs]

    # Rerunning does nothing and leaves the files as they were.
    before = {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in logs}
    assert main(_sim(tmp_path / "fleet", *args, "--json")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == 2
    assert {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in logs} == before

    # The same seed elsewhere gives byte-identical logs.
    assert main(_sim(tmp_path / "again", *args, "--json")) == 0
    capsys.readouterr()
    assert [sha256_file(p) for p in sorted((tmp_path / "again").glob("*.mcap"))] == [before[p][1] for p in logs]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vehicles", "0"], "--vehicles: Input should be greater than or equal to 1 (got 0)"),
        (["--minutes", "-1"], "--minutes: Input should be greater than 0 (got -1.0)"),
        (["--width", "641"], "width and height must be even"),
        (["--rate", "pileup=0.1"], "unknown scenario(s) ['pileup']; valid scenarios are"),
        (["--rate", "cut_in=often"], "--rate 'cut_in=often': 'often' is not a number"),
        (["--rate", "cut_in"], "--rate 'cut_in': expected NAME=NUMBER"),
        (["--rate", "cut_in=0.7"], "rate of cut_in must be within 0..0.5"),
        (["--time-of-day", "midnight=1"], "--time-of-day: time_of_day: unknown key(s) ['midnight']"),
        (["--workers", "0"], "--workers: must be >= 1"),
    ],
)
def test_bad_arguments_name_the_flag_and_the_fix(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    assert main(_sim(tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("longtail: error: ") and message in err
    assert not (tmp_path / "out").exists(), "nothing is written when the arguments are bad"


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert main(_sim(target, "--minutes", "0.05")) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_out_holding_another_fleet_is_refused_and_left_unchanged(tmp_path: Path, capsys) -> None:
    out = tmp_path / "fleet"
    small = ["--vehicles", "1", "--minutes", "0.05", "--width", "160", "--height", "96"]
    assert main(_sim(out, *small, "--seed", "1")) == 0
    capsys.readouterr()
    before = {p.name: sha256_file(p) for p in out.rglob("*") if p.is_file()}
    assert main(_sim(out, *small, "--seed", "2")) == 2
    assert "holds a fleet simulated with another configuration" in capsys.readouterr().err
    assert {p.name: sha256_file(p) for p in out.rglob("*") if p.is_file()} == before


def test_help_explains_the_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "longtail", "sim", "--help"], capture_output=True, text=True,
                         check=True).stdout
    out = " ".join(out.split())  # argparse wraps lines to the terminal width
    assert "--drives-per-vehicle" in out and "share of eligible frames" in out and "Same seed, same bytes" in out
    top = subprocess.run([sys.executable, "-m", "longtail", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for command in ("sim", "sim-preview", "run"):
        assert command in top


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "longtail"
    assert script.exists(), "pip install -e . installs the 'longtail' console script"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("longtail ")


def test_run_summary_names_the_servers_left_running_and_how_to_stop_them(tmp_path: Path) -> None:
    from longtail.catalog.db import start_database, stop_database
    from longtail.cli import servers_left_running

    root = str(tmp_path)
    assert servers_left_running(root) == ""
    start_database(root)
    try:
        line = servers_left_running(root)
    finally:
        stop_database(root)
    assert line == (f"Still running, for the App, the notebooks and labeling: FiftyOne's MongoDB "
                    f"(stop it with longtail db stop --root {root})\n")
    assert servers_left_running(root) == ""
