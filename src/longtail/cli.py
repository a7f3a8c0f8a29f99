"""The ``longtail`` command line: one subcommand per stage of the loop.

Each subcommand validates its arguments before any work starts and calls the same library
function a notebook calls. Errors print one line naming the argument and the fix, and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from longtail import __version__
from longtail._runtime import configure_logging
from longtail.config import DEFAULT_SCENARIO_RATES, SCENARIO_ELIGIBILITY, SimConfig
from longtail.errors import ConfigError, LongtailError

log = logging.getLogger("longtail")

FIELD_FLAGS = {
    "scenario_rates": "--rate",
    "time_of_day": "--time-of-day",
    "weather": "--weather",
}


def _flag(field: str) -> str:
    return FIELD_FLAGS.get(field, "--" + field.replace("_", "-"))


def config_error(command: str, exc: ValidationError) -> ConfigError:
    """Turn a pydantic validation error into one message naming the command-line flags."""
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ("",)
        field = str(loc[0])
        value = err.get("input")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        flag = _flag(field) if field else "arguments"
        shown = f" (got {value!r})" if field and not isinstance(value, dict) else ""
        parts.append(f"{flag}: {msg}{shown}")
    return ConfigError(f"longtail {command}: " + "; ".join(parts))


def _pairs(flag: str, values: Sequence[str] | None) -> dict[str, float]:
    """Parse repeated or comma-separated ``NAME=NUMBER`` arguments."""
    out: dict[str, float] = {}
    for raw in values or []:
        for item in raw.split(","):
            if not item.strip():
                continue
            name, sep, num = item.partition("=")
            if not sep:
                raise ConfigError(f"{flag} {item!r}: expected NAME=NUMBER, e.g. {flag} cut_in=0.01")
            try:
                out[name.strip()] = float(num)
            except ValueError:
                raise ConfigError(f"{flag} {item!r}: {num!r} is not a number; e.g. {flag} {name.strip()}=0.01") from None
    return out


# ------------------------------------------------------------------------------------ sim
def _add_sim(sub: Any) -> None:
    rates = ", ".join(f"{k}={v} ({SCENARIO_ELIGIBILITY[k]})" for k, v in DEFAULT_SCENARIO_RATES.items())
    p = sub.add_parser(
        "sim",
        help="simulate a fleet that records MCAP drive logs",
        description=(
            "Simulate a fleet of cars and trucks. Each drive is recorded as one MCAP file (front camera "
            "JPEG frames, camera calibration, GPS, vehicle signals) plus a ground-truth sidecar in "
            "OUT/ground_truth/ that stands in for human labels. A table of each drive's scenario and "
            "condition mix is printed at the end. Same seed, same bytes."
        ),
        epilog=(
            f"Critical scenario rates are shares of eligible frames; defaults: {rates}. "
            "Example: longtail sim --out fleet --vehicles 2 --drives-per-vehicle 1 --minutes 1 --seed 7"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder for the drive logs (created if missing)")
    p.add_argument("--vehicles", type=int, default=2, help="vehicles in the fleet")
    p.add_argument("--drives-per-vehicle", type=int, default=1, help="drives recorded by each vehicle")
    p.add_argument("--minutes", type=float, default=1.0, help="length of each drive, minutes")
    p.add_argument("--seed", type=int, default=0, help="fleet seed")
    p.add_argument("--profile", choices=["foxglove", "ros2"], default="foxglove",
                   help="message encoding: Foxglove protobuf + JSON, or ROS 2 CDR")
    p.add_argument("--width", type=int, default=640, help="camera image width, px")
    p.add_argument("--height", type=int, default=384, help="camera image height, px")
    p.add_argument("--fps", type=float, default=10.0, help="camera frame rate, Hz")
    p.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality of camera frames")
    p.add_argument("--truck-share", type=float, default=0.3, help="share of the fleet that are trucks")
    p.add_argument("--rate", action="append", metavar="SCENARIO=SHARE",
                   help="rate of a critical scenario as a share of eligible frames (repeatable)")
    p.add_argument("--time-of-day", action="append", metavar="NAME=WEIGHT",
                   help="weights of day, dusk, night (e.g. night=1 for night drives only)")
    p.add_argument("--weather", action="append", metavar="NAME=WEIGHT", help="weights of clear, rain, fog")
    p.add_argument("--workers", type=int, default=1, help="drives simulated in parallel (one process each)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead of the table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_sim)


def sim_config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build and validate the `SimConfig` of ``longtail sim``'s arguments."""
    fields: dict[str, Any] = {
        "vehicles": args.vehicles,
        "drives_per_vehicle": args.drives_per_vehicle,
        "minutes": args.minutes,
        "seed": args.seed,
        "profile": args.profile,
        "width": args.width,
        "height": args.height,
        "fps": args.fps,
        "jpeg_quality": args.jpeg_quality,
        "truck_share": args.truck_share,
    }
    if args.rate:
        fields["scenario_rates"] = _pairs("--rate", args.rate)
    if args.time_of_day:
        fields["time_of_day"] = _pairs("--time-of-day", args.time_of_day)
    if args.weather:
        fields["weather"] = _pairs("--weather", args.weather)
    try:
        return SimConfig(**fields)
    except ValidationError as exc:
        raise config_error("sim", exc) from None


def cmd_sim(args: argparse.Namespace) -> int:
    """Run ``longtail sim``."""
    from longtail.sim.fleet import format_table, simulate_fleet

    cfg = sim_config_from_args(args)
    if args.workers < 1:
        raise ConfigError(f"longtail sim --workers: must be >= 1 (got {args.workers})")
    log.info("simulating %d vehicle(s) x %d drive(s) x %g min into %s", cfg.vehicles, cfg.drives_per_vehicle,
             cfg.minutes, args.out)
    result = simulate_fleet(cfg, args.out, workers=args.workers, progress=not args.no_progress)
    if args.json:
        json.dump({"out": str(result.out), "manifest": str(result.manifest), "skipped": result.skipped,
                   "drives": [d.to_json() for d in result.drives]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(result.drives) + "\n")
        sys.stdout.write(
            f"\n{len(result.drives)} drive log(s) in {result.out}/ (manifest {result.manifest.name}, "
            f"ground truth in {result.out}/ground_truth/).\n"
            "Open a log in Foxglove (File > Open local file), or inspect it with:\n"
            f"  python -c \"from mcap.reader import make_reader; r = make_reader(open('{result.out}/"
            f"{result.drives[0].log}', 'rb')); print(r.get_summary().statistics)\"\n"
        )
    return 0


# ------------------------------------------------------------------------------------ sim-preview
def _add_preview(sub: Any) -> None:
    p = sub.add_parser(
        "sim-preview",
        help="render a gallery of what the simulated fleet sees (day, night, rain, critical scenarios)",
        description=(
            "Render one frame of each condition and critical scenario (day, dusk, night, rain, fog, a cut-in, "
            "an occluded pedestrian, a night-time VRU, emergency braking, an emergency lane change, a truck's "
            "view) with their ground-truth boxes, and a contact sheet of all of them."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder for the JPEG frames and gallery.jpg")
    p.add_argument("--seed", type=int, default=7, help="seed of the scenes")
    p.add_argument("--no-boxes", action="store_true", help="save frames without ground-truth boxes")
    p.set_defaults(func=cmd_preview)


def cmd_preview(args: argparse.Namespace) -> int:
    """Run ``longtail sim-preview``."""
    from longtail.sim.preview import render_gallery

    paths = render_gallery(args.out, seed=args.seed, boxes=not args.no_boxes)
    for path in paths:
        sys.stdout.write(f"{path}\n")
    return 0


# ------------------------------------------------------------------------------------ ingest
def _add_ingest(sub: Any) -> None:
    from longtail.config import IngestConfig, TriggerConfig

    trig = TriggerConfig()
    p = sub.add_parser(
        "ingest",
        help="ingest drive logs into the frame store and the frame index",
        description=(
            "Ingest MCAP drive logs (Foxglove protobuf or ROS 2) into DATA: camera frames at the keyframe rate and "
            "every frame inside a trigger window are stored untouched under their sha256 in DATA/frames/, and each "
            "log gets a frame index (DATA/index/frames/<log sha256>.parquet: signal features, triggers) and a "
            "manifest written last (DATA/index/logs/: every topic inventoried, the signals used). Vehicle signals "
            "come from Longtail's schemas, common ROS 2 messages, or a --signal-map; a log without a camera is a "
            "signals-only drive (DATA/index/signals/). Statuses: ingested (all read; notes say what the log lacks), "
            "partial (damage: what was readable is kept), quarantined (nothing usable); the batch goes on. "
            "Re-running does nothing for logs already ingested with the same config; a run killed at any point is "
            "completed by the next one."
        ),
        epilog=(
            f"Triggers: hard_braking (deceleration >= {trig.hard_brake_mps2} m/s^2 for {trig.hard_brake_min_s} s), "
            f"harsh_steering (steering-wheel rate >= {trig.harsh_steer_dps} deg/s for {trig.harsh_steer_min_s} s), "
            f"disengagement (driver override or ADAS off), adas_alert ({', '.join(trig.alerts)}); each keeps the "
            f"frames from {trig.pre_s} s before to {trig.post_s} s after. Example: longtail ingest fleet/ --root data"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="MCAP files, or folders searched for *.mcap")
    p.add_argument("--root", required=True, default=argparse.SUPPRESS, help="the data root (frame store and index)")
    p.add_argument("--workers", type=int, default=1, help="logs ingested in parallel (one process each)")
    p.add_argument("--keyframe-hz", type=float, default=IngestConfig().keyframe_hz, help="keyframes per second")
    p.add_argument("--image-topic", default=argparse.SUPPRESS,
                   help="camera topic; without it, the topic carrying compressed images")
    p.add_argument("--vehicle-state-topic", default=argparse.SUPPRESS,
                   help="topic carrying Longtail's VehicleState fields; without it, found by schema")
    p.add_argument("--signal-map", metavar="FILE", default=argparse.SUPPRESS,
                   help="YAML file saying which topic and field gives each signal (speed, accel, yaw_rate, ...), "
                        "with units; see README, 'Bring your own logs'")
    p.add_argument("--hard-brake", type=float, default=trig.hard_brake_mps2, help="hard-braking threshold, m/s^2")
    p.add_argument("--harsh-steer", type=float, default=trig.harsh_steer_dps, help="harsh-steering threshold, deg/s")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary, one entry per log")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run ``longtail ingest``."""
    from longtail.config import IngestConfig
    from longtail.ingest.ingest import ingest

    if args.workers < 1:
        raise ConfigError(f"longtail ingest --workers: must be >= 1 (got {args.workers})")
    signal_map = {}
    if hasattr(args, "signal_map"):
        from longtail.ingest.signals import load_signal_map

        signal_map = load_signal_map(args.signal_map)
    try:
        cfg = IngestConfig(
            keyframe_hz=args.keyframe_hz, image_topic=getattr(args, "image_topic", None),
            vehicle_state_topic=getattr(args, "vehicle_state_topic", None), signal_map=signal_map,
            triggers={"hard_brake_mps2": args.hard_brake, "harsh_steer_dps": args.harsh_steer},
        )
    except ValidationError as exc:
        raise config_error("ingest", exc) from None
    results = ingest(args.sources, args.root, cfg, workers=args.workers, progress=not args.no_progress)
    if args.json:
        json.dump({"root": str(args.root), "logs": [r.to_json() for r in results]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(ingest_table(results))
    counts = {s: sum(r.status == s for r in results) for s in ("ingested", "partial", "quarantined", "skipped")}
    log.info("%d log(s): %d ingested (%d with notes), %d partial, %d quarantined, %d skipped; index in %s/index",
             len(results), counts["ingested"], sum(r.status == "ingested" and bool(r.notes) for r in results),
             counts["partial"], counts["quarantined"], counts["skipped"], args.root)
    return 0


def ingest_table(results: Sequence[Any]) -> str:
    """The text table of an ingest: one row per log, then every reason (damage) and note under it."""
    width = max((len(str(r.path)) for r in results), default=4)
    lines = [f"{'log'.ljust(width)}  {'status':11s}  {'frames':>6s}  triggers"]
    for r in results:
        triggers = ", ".join(f"{k} {v}" for k, v in sorted(r.triggers_found.items())) or "-"
        lines.append(f"{str(r.path).ljust(width)}  {r.status:11s}  {r.frames_kept:6d}  {triggers}")
        lines += [f"    reason: {text}" for text in r.reasons]
        lines += [f"    note: {text}" for text in getattr(r, "notes", [])]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ import
def _add_import(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import a labelled dataset (KITTI, nuScenes 2D) into the frame index",
        description=(
            "Import frames of an existing labelled dataset into DATA, beside the fleet's frames: images are stored "
            "untouched under their sha256 and indexed with their boxes (converted to Longtail's box convention and "
            "categories; the source class is kept). KITTI: a folder with training/image_2 and training/label_2. "
            "nuScenes: a folder with annotations_2d.json (COCO) and samples/."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("format", choices=["kitti", "nuscenes"], help="dataset layout")
    p.add_argument("source", help="the dataset folder")
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    """Run ``longtail import``."""
    from longtail.ingest.external import import_dataset

    result = import_dataset(args.format, args.source, args.root)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{result.status}: {result.frames_kept} frame(s) from {args.source} ({result.log_id[:12]})\n")
    return 0


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


# ------------------------------------------------------------------------------------ label
def _add_label(sub: Any) -> None:
    p = sub.add_parser(
        "label",
        help="label a batch in Label Studio (serve, push, pull), check it, version the dataset",
        description=(
            "Human labeling of a labeling batch in a real Label Studio. 'serve' starts the data root's own Label "
            "Studio (its own environment, sqlite and uploads in DATA/labelstudio, an account and API token the "
            "project keeps in DATA/labelstudio/credentials.json); 'push BATCH' creates a project with the batch's "
            "frames and pre-labels through FiftyOne's labelstudio backend; people correct the boxes in the browser; "
            "'pull BATCH' brings the finished tasks back, runs label QA and writes DATA/labels/BATCH/ (labels, QA "
            "report, manifest last). 'pull --oracle' first plays the human on simulated drives from the simulator's "
            "ground truth, through the same REST calls a person's Submit makes, and counts their work. "
            "'version' turns accepted labels into an immutable dataset version tracked with DVC."
        ),
        epilog=("Example: longtail label serve --root data; longtail label push batch-0123abcd --root data; "
                "longtail label pull batch-0123abcd --root data --oracle"),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--root", required=True, help="the data root")

    q = actions.add_parser("serve", help="start the data root's Label Studio (in the background) and print its URL",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common(q)
    q.add_argument("--port", type=int, help="port (default: a free one)")
    q.set_defaults(func=cmd_label)
    for name, text in (("stop", "stop the data root's Label Studio"), ("status", "print its URL or 'not running'")):
        q = actions.add_parser(name, help=text)
        common(q)
        q.set_defaults(func=cmd_label)
    q = actions.add_parser("push", help="create a Label Studio project with a batch and its pre-labels")
    q.add_argument("batch", help="batch id (DATA/batches/<batch id>)")
    common(q)
    q.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    q.add_argument("--force", action="store_true", help="push again even when the batch was pushed")
    q.add_argument("--model", help="MLflow model URI for pre-labels (default: the registry's champion, else the "
                                   "newest trained model, else none)")
    q.add_argument("--no-prelabels", action="store_true", help="push without pre-labels")
    q.add_argument("--prelabel-threshold", type=float, default=0.3, help="lowest score shown as a pre-label")
    q.set_defaults(func=cmd_label)
    q = actions.add_parser("pull", help="bring a batch's finished annotations back, run QA, write its label set")
    q.add_argument("batch", help="batch id")
    common(q)
    q.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    q.add_argument("--oracle", action="store_true",
                   help="simulated drives only: label the unfinished tasks from the simulator's ground truth first")
    q.add_argument("--partial", action="store_true", help="take the finished tasks even when others are not")
    q.add_argument("--json", action="store_true", help="print the label set manifest as JSON")
    q.set_defaults(func=cmd_label)
    q = actions.add_parser(
        "version", help="make an immutable dataset version of the accepted labels and track it with DVC",
        description=("Accepted labels of every pulled batch (or those named) become DATA/datasets/<version id>/: "
                     "labels with a split per drive log (train / val / test; test logs are never trained on, and "
                     "split into the long-tail and common-case suites), the images, and a manifest of the batches "
                     "and drive logs it came from. The id is content-addressed: the same labels give the same "
                     "version. It is tracked with DVC in DATA and pushed to the remote (default: DATA.dvc-remote "
                     "beside the data root, or $LONGTAIL_DVC_REMOTE)."))
    common(q)
    q.add_argument("--batch", action="append", help="only these batches (repeat); default: all pulled batches")
    q.add_argument("--remote", help="DVC remote (a folder or s3:// URL)")
    q.add_argument("--json", action="store_true", help="print the version manifest as JSON")
    q.set_defaults(func=cmd_label)
    q = actions.add_parser("restore", help="recreate a dataset version from its DVC record on a fresh checkout",
                           description="In a folder holding DATA's .dvc/ and datasets/<version>.dvc (e.g. a fresh "
                                       "checkout of the data root's metadata), pull the version from the remote and "
                                       "check every file against its record.")
    q.add_argument("version", help="version id (v-...)")
    common(q)
    q.add_argument("--remote", help="DVC remote (default: the one in .dvc/config)")
    q.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    """Run ``longtail label ACTION``."""
    from longtail.label import server

    if args.action == "serve":
        conn = server.start(args.root, port=args.port)
        sys.stdout.write(f"{conn.url}\n(log in with the account in {server.studio_dir(args.root)}/credentials.json; "
                         f"stop with `longtail label stop --root {args.root}`)\n")
    elif args.action == "stop":
        sys.stdout.write("stopped\n" if server.stop(args.root) else "not running\n")
    elif args.action == "status":
        found = server.running(args.root)
        sys.stdout.write(f"{found.url if found else 'not running'}\n")
    elif args.action == "push":
        from longtail.label.prelabel import current_model, prelabel_batch
        from longtail.label.studio import push_batch

        prelabels, model = None, None
        model_uri = None if args.no_prelabels else (args.model or current_model(args.root))
        if model_uri is not None:
            prelabels, model = prelabel_batch(args.root, args.batch, model_uri, threshold=args.prelabel_threshold)
        record = push_batch(args.root, args.batch, prelabels=prelabels, model=model, dataset_name=args.dataset,
                            force=args.force)
        url = f"{server.connect(args.root).url}/projects/{record['project_id']}"  # the port changes on restart
        sys.stdout.write(f"{args.batch}: {len(record['tasks'])} task(s), {record['prelabels']} pre-label(s) -> "
                         f"{url}\n")
    elif args.action == "pull":
        from longtail.label.studio import batch_truth, oracle_annotate, pull_batch, push_record

        cost = None
        if args.oracle:
            from tqdm import tqdm

            truth = batch_truth(args.root, args.batch)
            with tqdm(total=len(truth), unit="task", desc="simulated labeler", disable=not sys.stderr.isatty()) as bar:
                cost = oracle_annotate(args.root, args.batch, truth, progress=bar.update)
            if cost.frames != len(push_record(args.root, args.batch)["tasks"]):
                cost = None  # some tasks were done before: count the work from the submitted boxes
        manifest = pull_batch(args.root, args.batch, partial=args.partial, source="oracle" if args.oracle else
                              "labelstudio", cost=cost, dataset_name=args.dataset)
        if args.json:
            json.dump(manifest, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            c = manifest["cost"]
            sys.stdout.write(
                f"{args.batch}: {manifest['frames']} frame(s) labeled, {manifest['accepted']} accepted, "
                f"{manifest['held']} held by QA (see {args.root}/labels/{args.batch}/qa.json)\n"
                f"labeling work: {c['added']} drawn, {c['moved']} moved, {c['relabeled']} relabeled, "
                f"{c['deleted']} deleted, {c['accepted']} accepted as pre-labeled (~{c['seconds'] / 60:.1f} min)\n")
    elif args.action == "version":
        from longtail.label.version import build_version, track_version

        manifest = build_version(args.root, batch_ids=args.batch)
        tracked = track_version(args.root, manifest["version_id"], remote=args.remote)
        if args.json:
            json.dump({**manifest, "dvc": tracked}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
            sys.stdout.write(f"{manifest['version_id']}: {counts} -> {args.root}/datasets/{manifest['version_id']}/ "
                             f"(DVC record {tracked['dvc_file']}, remote {tracked['remote']})\n")
    elif args.action == "restore":
        from longtail.label.version import restore_version

        manifest = restore_version(args.root, args.version, remote=args.remote)
        sys.stdout.write(f"{args.version}: restored in {args.root}/datasets/{args.version}/\n")
    return 0


# ------------------------------------------------------------------------------------ train
def _latest_version(root: str) -> str:
    from longtail.catalog.versions import list_versions

    versions = list_versions(root)
    if not versions:
        raise LongtailError(f"no dataset version in {root}/datasets; make one with `longtail label version --root {root}`")
    return str(versions[-1]["version_id"])


def _add_train(sub: Any) -> None:
    from longtail.detector.presets import DEFAULT_PRESET, PRESETS

    p = sub.add_parser(
        "train",
        help="train a detector from scratch on a dataset version, tracked in MLflow",
        description=(
            "Train a torchvision detector from scratch (no weights are downloaded) on a dataset version's train "
            "split, validating on its val split; test suites are never used. Checkpoints go to DATA/runs/<run id>/ "
            "(resume with --resume); MLflow (sqlite:///DATA/mlflow/mlflow.db by default) records params, per-epoch "
            "metrics, the dataset version as an input with its digest, the git commit, the environment lock hash "
            "and the model (a state dict), registered as a new version of the registered model. "
            f"Presets: {', '.join(sorted(PRESETS))} (default {DEFAULT_PRESET}: learns the simulated fleet on 2 CPU "
            "cores in minutes; fcos-resnet50 is for GPUs)."
        ),
        epilog="Example: longtail train --root data --max-minutes 10",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version id (default: the newest)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="model preset")
    p.add_argument("--epochs", type=int, help="epochs (default: the config's)")
    p.add_argument("--max-minutes", type=float, help="stop after this much training time")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--threads", type=int, help="torch threads (2 for one job on a 2-core machine)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--copy-paste", type=int, metavar="N",
                   help="paste up to N pedestrians/cyclists from other training frames into each frame "
                        "(default: the config's, 4; 0: off)")
    p.add_argument("--haze", type=float, metavar="SHARE",
                   help="share of training frames faded toward a uniform haze, as fog fades distant objects "
                        "(default: the config's, 0.5; 0: off)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="training arithmetic (default: the config's, auto: bfloat16 autocast where the CPU or GPU "
                        "runs it natively, else float32)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--resume", help="a checkpoint (DATA/runs/<run id>/checkpoint-N.pt) to continue from")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``longtail train``."""
    from longtail.train.run import make_train_config, train

    values = {k: v for k, v in {"preset": args.preset, "epochs": args.epochs, "max_minutes": args.max_minutes,
                                "batch_size": args.batch_size, "lr": args.lr, "threads": args.threads,
                                "seed": args.seed, "copy_paste": args.copy_paste, "haze": args.haze,
                                "device": args.device,
                                "precision": args.precision, "tracking_uri": args.tracking_uri}.items()
              if v is not None}
    if args.resume:
        from longtail.train.run import load_checkpoint

        # A resumed run keeps its own config; only the budget and the machine may change.
        saved = load_checkpoint(args.resume)["config"]
        saved = json.loads(saved) if isinstance(saved, str) else dict(saved)
        values = {**saved, **{k: v for k, v in values.items() if k in ("max_minutes", "threads", "device")}}
    config = make_train_config("longtail train", **values)
    version = args.version or _latest_version(args.root)
    result = train(args.root, version, config, resume=args.resume, progress=not args.no_progress)
    out = {k: v for k, v in result.items() if k not in ("model", "config", "history")}
    if args.json:
        json.dump(out, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        val = result.get("val_map50")
        sys.stdout.write(f"run {result['run_id']} on {version}: {result['epochs_done']} epoch(s), val mAP@0.5 "
                         f"{'n/a' if val is None else f'{val:.3f}'}, {result.get('images_per_s') or 0:.1f} images/s; "
                         f"model {result['model_uri']} (registered {result.get('registered_model')} "
                         f"v{result.get('model_version')})\n")
    return 0


def _parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``FIELD=V1,V2`` items -> {field: [values]}; each value a number, boolean or string (`_grid_value`)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        field, sep, values = item.partition("=")
        if not sep or not field.strip() or not values.strip():
            raise LongtailError(f"--grid {item!r}: write FIELD=VALUE[,VALUE...], e.g. --grid lr=0.001,0.002")
        if field.strip() in grid:
            raise LongtailError(f"--grid {item!r}: field {field.strip()!r} given twice; list all its values in one --grid")
        grid[field.strip()] = [_grid_value(v.strip()) for v in values.split(",")]
    return grid


def _grid_value(text: str) -> Any:
    """A --grid value: a JSON number, boolean or null (``2e-3`` too, which YAML 1.1 reads as text), else YAML."""
    import yaml

    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


def _add_sweep(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="train a grid of presets and hyperparameters in parallel and compare the runs in one table",
        description=(
            "Train one run per point of a grid of training-config fields (any field of longtail.train.config."
            "TrainConfig: preset, lr, batch_size, epochs, ...) on a dataset version. The points run as parallel "
            "tasks of a Ploomber DAG (notebooks/04_train.py each, sharing --threads), every run is tracked in "
            "MLflow with the sweep's id, and a last task reads them back into one table, best validation "
            "mAP@0.5 first: DATA/sweeps/<sweep id>/table.csv. The same request is the same sweep: a re-run "
            "trains only the points not trained yet. A bad grid fails before anything trains."
        ),
        epilog="Example: longtail sweep --root data --grid lr=0.001,0.002,0.004 --grid batch_size=8,16 "
               "--max-minutes 5 --parallel 2",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version id (default: the newest)")
    p.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                   help="a swept field and its values; repeat for more fields (every combination runs)")
    p.add_argument("--preset", help="preset of the points (unless swept)")
    p.add_argument("--epochs", type=int, help="epochs of each point (unless swept)")
    p.add_argument("--max-minutes", type=float, help="time budget of each point")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the whole sweep, shared by the jobs")
    p.add_argument("--parallel", type=int, default=2, help="points trained at once")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--force", action="store_true", help="re-train points already trained")
    p.add_argument("--register", action="store_true",
                   help="register every point's model (off: `evaluate` and pre-labels use the newest registered model)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``longtail sweep``."""
    from longtail.train.run import make_train_config
    from longtail.train.sweep import sweep

    grid = _parse_grid(args.grid)
    values = {k: v for k, v in {"preset": args.preset, "epochs": args.epochs, "max_minutes": args.max_minutes,
                                "threads": args.threads, "tracking_uri": args.tracking_uri}.items() if v is not None}
    base = make_train_config("longtail sweep", **values)
    version = args.version or _latest_version(args.root)
    table = sweep(args.root, version, grid, base, progress=not args.json, parallel=args.parallel, force=args.force,
                  register=args.register)
    if args.json:
        json.dump(table.to_dict("records"), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table.to_string(index=False) + "\n")
    return 0


# ------------------------------------------------------------------------------------ evaluate
def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model on a dataset version's test suites and write the HTML report",
        description=(
            "Run a model (default: the newest registered version) on a dataset version's test frames: COCO mAP "
            "and per-class AP, metrics per slice (conditions, vehicle type, scenario, each failure mode), critical "
            "false positives and negatives at the operating threshold, the long-tail and common-case suites and "
            "each failure mode's regression suite, and, when the registry has a champion, every metric side by "
            "side with the critical-error KPI. Writes DATA/evaluations/<version>/<run>/evaluation.json and a "
            "self-contained HTML report in DATA/reports/ that opens with the promotion decision."
        ),
        epilog="Example: longtail evaluate --root data",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--version", help="dataset version id (default: the newest)")
    p.add_argument("--model", help="MLflow model URI (runs:/..., models:/name/N, models:/name@alias, or a run id)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--json", action="store_true", help="print the decision and paths as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``longtail evaluate``."""
    from longtail.evaluate.model import evaluate_model

    version = args.version or _latest_version(args.root)
    out = evaluate_model(args.root, version, model_uri=args.model, tracking_uri=args.tracking_uri)
    summary = {k: out[k] for k in ("model_uri", "run_id", "champion_uri", "decision", "evaluation_path", "report")}
    summary["map50"] = out["evaluation"]["overall"]["map50"]
    summary["suites"] = {r["name"]: r["status"] for r in out["evaluation"]["suites"]}
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        d = out["decision"] or {}
        sys.stdout.write(f"{out['model_uri']} on {version}: mAP@0.5 {summary['map50']:.3f}; "
                         f"{d.get('headline', '')}\nreport: {out['report']}\n")
    return 0


# ------------------------------------------------------------------------------------ promote, rollback
def _add_promote(sub: Any) -> None:
    p = sub.add_parser(
        "promote",
        help="make a model version the champion (the registry's `champion` alias)",
        description=(
            "Move the registry's `champion` alias to a model version: curation then embeds and mines with it, "
            "labeling is pre-labeled by it and evaluation judges challengers against it. The pipeline's evaluate "
            "task promotes through the same function when the gate passes; this command is for people (an "
            "override, with the reason recorded as a tag on the version). The move is atomic: the champion it "
            "replaces is recorded, so `longtail rollback` can undo it."),
        epilog="Example: longtail promote 3 --root data --reason 'fleet test passed'",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("version", help="model version number of the registered model")
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--reason", required=True, help="why, in words (recorded on the model version)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--name", default="longtail-detector", help="registered model")
    p.set_defaults(func=cmd_promote)


def cmd_promote(args: argparse.Namespace) -> int:
    """Run ``longtail promote``."""
    import getpass

    from longtail.catalog.root import DataRoot
    from longtail.detector.registry import promote, tracking_uri_for

    out = promote(tracking_uri_for(args.root, args.tracking_uri), args.version, lock_dir=DataRoot.of(args.root).mlflow,
                  name=args.name, reason=args.reason, actor=getpass.getuser())
    if out["changed"]:
        sys.stdout.write(f"{args.name}: champion is version {out['version']} (was {out['previous'] or 'none'})\n")
    else:
        sys.stdout.write(f"{args.name}: version {out['version']} is the champion already; nothing changed\n")
    return 0


def _add_rollback(sub: Any) -> None:
    p = sub.add_parser(
        "rollback",
        help="give the champion alias back to the version the current champion replaced",
        description=("Undo the last promotion: the `champion` alias moves back to the version the current champion "
                     "replaced, and the current one is tagged with when and why it was rolled back."),
        epilog="Example: longtail rollback --root data --reason 'phantom braking in the fleet test'",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, help="the data root")
    p.add_argument("--reason", required=True, help="why, in words (recorded on the rolled-back version)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite in DATA/mlflow)")
    p.add_argument("--name", default="longtail-detector", help="registered model")
    p.set_defaults(func=cmd_rollback)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Run ``longtail rollback``."""
    import getpass

    from longtail.catalog.root import DataRoot
    from longtail.detector.registry import rollback, tracking_uri_for

    out = rollback(tracking_uri_for(args.root, args.tracking_uri), lock_dir=DataRoot.of(args.root).mlflow,
                   name=args.name, reason=args.reason, actor=getpass.getuser())
    sys.stdout.write(f"{args.name}: champion is version {out['version']} again (version {out['rolled_back']} "
                     "rolled back)\n")
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


# ------------------------------------------------------------------------------------ run
def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run the pipeline (pipeline.yaml) on a target: the main job",
        description=(
            "Run Longtail's pipeline on a target from env/: 'local' (default: a simulated fleet, local data "
            "store, everything on this machine) or 'ci' (the same DAG, shrunken). Tasks whose inputs did not "
            "change are skipped; --force reruns everything."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--target", default="local", help="env/<target>.yaml to run with")
    p.add_argument("--root", help="override the data folder of the target")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="override one value of the target's env file, by its dotted name (repeatable), e.g. "
                        "--set curate.budget=3500 --set train.max_minutes=5; only the tasks that depend on it rerun")
    p.add_argument("--force", action="store_true", help="rerun every task")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``longtail run``."""
    from longtail.catalog.versions import list_versions
    from longtail.curate.run import list_batches, selected_batch
    from longtail.evaluate.summary import load_evaluation_record
    from longtail.pipeline import parse_settings, run
    from longtail.train.report import load_train_record

    overrides = {**({"root": args.root} if args.root else {}), **parse_settings(args.settings)}
    env = run(args.target, force=args.force, overrides=overrides or None)
    root = env["root"]
    fleet = f"{root}/fleet"
    dataset = env.get("curate", {}).get("dataset", "longtail")
    batches = sorted(list_batches(root), key=lambda m: m["created_at"])
    latest = f"{root}/batches/{batches[-1]['batch_id']}/ (latest of {len(batches)})" if batches else f"{root}/batches/"
    app = f"longtail app --root {root}" + (f" --dataset {dataset}" if dataset != "longtail" else "")
    try:
        labels = f"{root}/labels/{selected_batch(root)}/"
    except LongtailError:  # a target without the curate task's record
        labels = f"{root}/labels/<batch id>/"
    versions = list_versions(root)
    version = (f"{root}/datasets/{versions[-1]['version_id']}/ (latest of {len(versions)}; DVC record "
               f"{root}/datasets/{versions[-1]['version_id']}.dvc)") if versions else f"{root}/datasets/"
    mlflow_ui = f"mlflow ui --backend-store-uri sqlite:///{root}/mlflow/mlflow.db"
    try:
        trained = load_train_record(f"{root}/runs/latest.json")
        val = trained["val_map50"]
        model = (f"{trained['model_uri']} = {trained['registered_model']} version {trained['model_version']} "
                 f"(MLflow run {trained['run_id']}; val mAP@0.5 {'n/a' if val is None else f'{val:.3f}'}; "
                 f"checkpoints in {trained['run_dir']}/)")
    except LongtailError:  # a target without the train task
        model = f"none yet ({root}/runs/latest.json missing)"
    try:
        evaluated = load_evaluation_record(f"{root}/evaluations/latest.json")
        report = evaluated["published_report"] or evaluated["report"]
        decision = f"{evaluated['headline']} (every number: {evaluated['evaluation_path']})"
        from longtail.detector.registry import REGISTERED_MODEL, champion_version, tracking_uri_for

        current = champion_version(tracking_uri_for(root))
        decision += "\nChampion: " + ("none yet" if current is None else
                                      f"models:/{REGISTERED_MODEL}/{current} (the registry's champion alias)")
    except LongtailError:  # a target without the evaluate task
        report, decision = f"{root}/reports/evaluation.html (not written yet)", "none yet"
    sys.stdout.write(
        f"\nEvaluation report (open in a browser; the page for product managers): {report}\n"
        f"Decision: {decision}\n"
        f"Model: {model}\n"
        f"MLflow runs and model registry: {mlflow_ui} (then http://127.0.0.1:5000)\n"
        f"Drive logs: {fleet}/*.mcap (ground truth in {fleet}/ground_truth/, manifest {fleet}/fleet.json)\n"
        f"Frame store and index: {root}/frames/, {root}/index/ (read with "
        "longtail.catalog.frames.load_frame_index)\n"
        f"Curated dataset: FiftyOne dataset {dataset!r} (manifest {root}/curate/manifest.json, failure modes "
        f"{root}/curate/failure_modes.json)\n"
        f"Labeling batch: {latest} (frames.parquet, manifest.json; the one labeled: "
        f"{root}/curate/selected_batch.json)\n"
        f"Labels of the batch: {labels} (labels.parquet, qa.json, manifest.json)\n"
        f"Dataset version: {version}\n"
        f"Reports: {report}, then the notebooks {root}/reports/00_simulate.ipynb, {root}/reports/01_ingest.ipynb, "
        f"{root}/reports/02_curate.ipynb, {root}/reports/03_label.ipynb, {root}/reports/04_train.ipynb, "
        f"{root}/reports/05_evaluate.ipynb\n"
        "Open a log in Foxglove (File > Open local file) or read it in Python with longtail.logs.iter_messages.\n"
        f"Explore the dataset, its failure modes and the batch in the FiftyOne App: {app}\n"
        f"Look at the labeling project in Label Studio: longtail label serve --root {root} (prints its address; "
        f"login in {root}/labelstudio/credentials.json; stop it with longtail label stop --root {root})\n"
        f"{servers_left_running(root)}"
    )
    return 0


def servers_left_running(root: str) -> str:
    """A line naming the data root's servers that still run (with how to stop each), or ``""``.

    A run leaves FiftyOne's MongoDB and Label Studio up for the App, the notebooks and labeling.
    """
    from longtail.catalog import db
    from longtail.label import server

    running = []
    if db.running_uri(root):
        running.append(f"FiftyOne's MongoDB (stop it with longtail db stop --root {root})")
    if server.running(root):
        running.append(f"Label Studio (stop it with longtail label stop --root {root})")
    return f"Still running, for the App, the notebooks and labeling: {'; '.join(running)}\n" if running else ""


# ------------------------------------------------------------------------------------ main
COMMANDS: list[Callable[[Any], None]] = [
    _add_sim, _add_preview, _add_ingest, _add_import, _add_curate, _add_select, _add_app, _add_db, _add_label,
    _add_train, _add_sweep, _add_evaluate, _add_promote, _add_rollback, _add_run,
]


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
