"""bench/_results.py's ``--quick``: tiny defaults through a benchmark's own options, explicit options
still win, and a quick run refuses to write where results go."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _results import parse_args, quick_requested  # bench/ is not a package

QUICK = {"drives": 1, "minutes": 0.1, "record": ""}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--drives", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--record", default="bench/RESULTS.md")
    return parser


def test_quick_sets_the_benchmarks_own_options_to_tiny_values() -> None:
    args = parse_args(_parser(), QUICK, ["--quick"])
    assert (args.quick, args.drives, args.minutes, args.record) == (True, 1, 0.1, "")


def test_without_quick_the_full_defaults_stay() -> None:
    args = parse_args(_parser(), QUICK, [])
    assert (args.quick, args.drives, args.minutes, args.record) == (False, 8, 2.0, "bench/RESULTS.md")


def test_an_option_given_with_quick_wins_over_the_quick_value() -> None:
    args = parse_args(_parser(), QUICK, ["--drives", "3", "--quick"])
    assert (args.drives, args.minutes) == (3, 0.1)


def test_quick_refuses_to_record_its_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(_parser(), QUICK, ["--quick", "--record", "bench/RESULTS.md"])
    assert "--quick writes no results: drop --record" in capsys.readouterr().err


def test_quick_requested_reads_the_arguments_before_parsing() -> None:
    assert quick_requested(["--root", "x", "--quick"]) and not quick_requested(["--root", "x"])
