"""``longtail curate``, ``select``, ``app`` and ``db``: the curated dataset and its labeling batches."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from pydantic import ValidationError

from longtail.cli.common import _pairs, config_error
from longtail.errors import ConfigError

log = logging.getLogger("longtail")


# ------------------------------------------------------------------------------------ curate
def _add_curate(sub: Any) -> None:
    p = sub.add_parser(
        "curate",
        help="build the FiftyOne dataset from the frame index; mine failure modes",
        description=(
            "Bring DATA's persistent FiftyOne dataset up to date with the frame index: only new frames are added, "
            "with drive log, vehicle, signals, triggers, image statistics and scenario tags (night, fog, rain, "
            "glare from the image; trigger:<name> from the signals). Then FiftyOne Brain computes uniqueness, a "
            "similarity index and a 2-D map from the frames' embeddings (a documented GIST-like descriptor before "
            "the first model), and the failure-mode queries run: each new match is recorded in "
            "DATA/curate/failure_modes.json and saved as a view. Re-running with no new frames changes nothing. "
            "The database is a MongoDB per data root in DATA/fiftyone (or FIFTYONE_DATABASE_URI when set)."
        ),
        epilog=(
            "Example: longtail curate --root data; add a failure mode with "
            "--add-failure-mode night_trucks '{\"tags_all\": [\"night\"], \"vehicle_type\": \"truck\"}'"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    p.add_argument("--workers", type=int, default=1, help="processes computing image descriptors")
    p.add_argument("--add-failure-mode", nargs=2, metavar=("NAME", "QUERY"),
                   help="register a failure mode: a name and a JSON query (fields of "
                        "longtail.catalog.failure_modes.FailureModeQuery)")
    p.add_argument("--json", action="store_true", help="print the curate manifest as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_curate)


def cmd_curate(args: argparse.Namespace) -> int:
    """Run ``longtail curate``."""
    from longtail.catalog.failure_modes import register_failure_mode
    from longtail.curate.run import CurateConfig, run_curate

    try:
        cfg = CurateConfig(dataset=args.dataset, workers=args.workers)
    except ValidationError as exc:
        raise config_error("curate", exc) from None
    if args.add_failure_mode:
        name, raw = args.add_failure_mode
        try:
            query = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"longtail curate --add-failure-mode {name}: QUERY is not JSON ({exc})") from None
        if not isinstance(query, dict):
            raise ConfigError(f"longtail curate --add-failure-mode {name}: QUERY must be a JSON object")
        register_failure_mode(args.root, name, query, by="longtail curate --add-failure-mode")
    manifest = run_curate(args.root, cfg, progress=not args.no_progress)
    if args.json:
        json.dump(manifest, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(f"dataset {manifest['dataset']}: {manifest['samples']} frame(s), {manifest['added']} added\n")
    for name, fm in manifest["failure_modes"].items():
        sys.stdout.write(f"  {name:24s} {fm['status']:8s} {fm['count']:6d} frame(s)\n")
    return 0


# ------------------------------------------------------------------------------------ select
def _add_select(sub: Any) -> None:
    from longtail.curate.select import SelectConfig

    d = SelectConfig(budget=1)
    p = sub.add_parser(
        "select",
        help="choose frames to label within a budget: a labeling batch",
        description=(
            "Choose --budget frames to label from the curated dataset (frames not labeled and not in an earlier "
            "batch). The longtail selector scores trigger priority, model uncertainty, similarity to open failure "
            "modes and k-center diversity on the embeddings, meets per-scenario quotas, and never picks "
            "near-duplicates of one drive twice. random and uniqueness are baselines. Writes "
            "DATA/batches/<batch_id>/frames.parquet (each frame with its scores and why it was chosen) and "
            "manifest.json last; the same pool and config give the same batch."
        ),
        epilog="Example: longtail select --root data --budget 200 --quota night=0.2 --failure-mode cut_ins",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--budget", type=int, required=True, help="frames to label")
    p.add_argument("--selector", choices=["longtail", "random", "uniqueness"], default=d.selector,
                   help="selection method")
    p.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    p.add_argument("--quota", action="append", metavar="TAG=SHARE",
                   help=f"minimum share of the batch for a scenario tag (repeatable; default {d.quotas})")
    p.add_argument("--failure-mode", action="append", metavar="NAME",
                   help="favour frames like this failure mode (repeatable; default: every open one)")
    p.add_argument("--min-gap", type=float, default=d.min_gap_s, help="near-duplicate gap within a drive, s")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the random selector")
    p.add_argument("--slices", default=",".join(d.slices), metavar="CAMERA,...",
                   help="cameras (slices of a dataset of logs with several cameras) to choose frames from, e.g. "
                        "front,rear")
    p.add_argument("--json", action="store_true", help="print the batch manifest as JSON")
    p.set_defaults(func=cmd_select)


def cmd_select(args: argparse.Namespace) -> int:
    """Run ``longtail select``."""
    from longtail.curate.run import run_select
    from longtail.curate.select import SelectConfig

    kw: dict[str, Any] = {"budget": args.budget, "selector": args.selector, "min_gap_s": args.min_gap,
                          "seed": args.seed}
    if args.quota:
        kw["quotas"] = _pairs("--quota", args.quota)
    kw["slices"] = tuple(s.strip() for s in getattr(args, "slices", "front").split(",") if s.strip())
    try:
        cfg = SelectConfig(**kw)
    except ValidationError as exc:
        raise config_error("select", exc) from None
    manifest = run_select(args.root, cfg, args.dataset, failure_modes=args.failure_mode)
    if args.json:
        json.dump(manifest, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{manifest['batch_id']}: {len(manifest['frames'])} frame(s) of "
                         f"{manifest['pool']['frames']} candidates -> {args.root}/batches/{manifest['batch_id']}/\n")
    return 0


# ------------------------------------------------------------------------------------ app
def _add_app(sub: Any) -> None:
    p = sub.add_parser(
        "app",
        help="open the FiftyOne App on the curated dataset",
        description=(
            "Serve the FiftyOne App on DATA's dataset, with the failure-mode views saved, and keep serving until "
            "interrupted. Headless: open http://ADDRESS:PORT in a browser (from another machine, use --address "
            "0.0.0.0 or an SSH tunnel)."
        ),
        epilog="Example: longtail app --root data --port 5151 --failure-mode cut_ins",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    p.add_argument("--address", default="127.0.0.1", help="address to serve on")
    p.add_argument("--port", type=int, default=5151, help="port to serve on")
    p.add_argument("--failure-mode", help="open on this failure mode's saved view")
    p.set_defaults(func=cmd_app)


def cmd_app(args: argparse.Namespace) -> int:
    """Run ``longtail app``."""
    from longtail.curate.app import launch_app

    launch_app(args.root, args.dataset, address=args.address, port=args.port, failure_mode=args.failure_mode)
    return 0


# ------------------------------------------------------------------------------------ db
def _add_db(sub: Any) -> None:
    p = sub.add_parser(
        "db",
        help="start or stop the FiftyOne database of a data root",
        description=("Longtail runs one MongoDB (the one FiftyOne ships) per data root, started on demand by any "
                     "command that needs it and left running for the notebooks and the App. Its files are in "
                     "DATA/fiftyone/db and its address in DATA/fiftyone/mongod.json. 'start' prints its URI, "
                     "'status' prints the URI or 'not running', 'stop' shuts it down cleanly (make clean does too). "
                     "To use your own MongoDB instead, set FIFTYONE_DATABASE_URI."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("action", choices=["start", "stop", "status"], help="what to do")
    p.add_argument("--root", required=True, help="the data root")
    p.set_defaults(func=cmd_db)


def cmd_db(args: argparse.Namespace) -> int:
    """Run ``longtail db``."""
    from longtail.catalog import db

    if args.action == "start":
        sys.stdout.write(db.start_database(args.root) + "\n")
    elif args.action == "stop":
        sys.stdout.write("stopped\n" if db.stop_database(args.root) else "not running\n")
    else:
        uri = db.running_uri(args.root)
        sys.stdout.write((uri or "not running") + "\n")
    return 0


