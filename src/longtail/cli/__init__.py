"""The ``longtail`` command line: one subcommand per stage of the loop.

Each subcommand validates its arguments before any work starts and calls the same library
function a notebook calls. Errors print one line naming the argument and the fix, and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from longtail import __version__
from longtail._runtime import configure_logging
from longtail.cli.collect import _add_import, _add_ingest, _add_preview, _add_sim, ingest_table, sim_config_from_args
from longtail.cli.common import config_error
from longtail.cli.curate import _add_app, _add_curate, _add_db, _add_select
from longtail.cli.deploy import _add_deploy
from longtail.cli.fleet_test import _add_fleet_test
from longtail.cli.label import _add_label
from longtail.cli.models import _add_evaluate, _add_promote, _add_rollback
from longtail.cli.monitor import _add_monitor
from longtail.cli.run import _add_run, servers_left_running
from longtail.cli.train import _add_sweep, _add_train, _parse_grid
from longtail.errors import LongtailError

__all__ = [
    "_parse_grid",
    "build_parser",
    "config_error",
    "ingest_table",
    "main",
    "servers_left_running",
    "sim_config_from_args",
]

log = logging.getLogger("longtail")


# ------------------------------------------------------------------------------------ main
COMMANDS: list[Callable[[Any], None]] = [
    _add_sim, _add_preview, _add_ingest, _add_import, _add_curate, _add_select, _add_app, _add_db, _add_label,
    _add_train, _add_sweep, _add_evaluate, _add_promote, _add_rollback, _add_deploy, _add_monitor, _add_run,
    _add_fleet_test,
]

# Audit: lineage and the evidence pack (longtail.audit).
from longtail.cli.audit import _add_evidence, _add_lineage  # noqa: E402

COMMANDS += [_add_lineage, _add_evidence]


def build_parser() -> argparse.ArgumentParser:
    """The ``longtail`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="longtail",
        description=(
            "Longtail, a data engine for ADAS perception: turn a fleet's drive logs into safer models "
            "(collect, curate, label, train, evaluate, deploy, monitor, retrain). Run 'longtail COMMAND --help' "
            "for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"longtail {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def error_line(message: str) -> str:
    """The line an error prints: ``longtail: error: MESSAGE``, with "longtail" said once when the
    message names its command already (``longtail select: --budget ...`` prints
    ``longtail: error: select: --budget ...``)."""
    return f"longtail: error: {message.removeprefix('longtail ')}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``longtail`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except LongtailError as exc:
        sys.stderr.write(error_line(str(exc)))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("longtail: interrupted; finished files are kept, partial ones were discarded\n")
        return 130
