"""What every benchmark in bench/ shares: appending its section to bench/RESULTS.md (``--record``), and
``--quick``, the same code path on tiny inputs that `make bench-quick` (and so `make test`) runs to check
that each benchmark still runs. Quick numbers are not results: a quick run records nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HEADER = "# Benchmark results\n\nEach section is one run; the command that produced it is in the section.\n"

QUICK_HELP = ("run the same code on tiny inputs, to check the benchmark still runs (make bench-quick); "
              "options given explicitly still win; prints only, records nothing")


def append_section(path: str | Path, text: str) -> None:
    """Append one run's section to the results file, creating it with its header when missing."""
    target = Path(path)
    existing = target.read_text() if target.exists() else HEADER
    target.write_text(existing.rstrip("\n") + "\n\n" + text)


def quick_requested(argv: Sequence[str] | None = None) -> bool:
    """Whether ``--quick`` is among the arguments (default: ``sys.argv[1:]``), before they are parsed: a
    benchmark whose inputs are required makes them optional under ``--quick``, which builds tiny ones."""
    return "--quick" in (sys.argv[1:] if argv is None else argv)


def parse_args(parser: argparse.ArgumentParser, quick: dict[str, Any],
               argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Add ``--quick`` to ``parser`` and parse; with ``--quick``, ``quick``'s values become the defaults.

    Args:
        parser: the benchmark's parser, with its size options.
        quick: option destination -> its value in a quick run (tiny sizes; ``record`` and ``out``, where
            the benchmark has them, empty or in a temporary folder).
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The parsed arguments, with ``quick`` set.

    Raises:
        SystemExit: (``parser.error``) ``--quick`` given with ``--record`` or ``--out``: quick numbers
            are not results, so they may not go where results go.
    """
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args_list = list(sys.argv[1:] if argv is None else argv)
    if quick_requested(args_list):
        parser.set_defaults(**quick)
    args = parser.parse_args(args_list)
    if args.quick:
        kept = [f"--{name}" for name in ("record", "out") if name in quick and getattr(args, name) != quick[name]]
        if kept:
            parser.error(f"--quick writes no results: drop {' and '.join(kept)} (quick numbers are not results)")
    return args
