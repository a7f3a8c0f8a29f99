"""``longtail sim``, ``sim-preview``, ``ingest`` and ``import``: where drive logs come from."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from longtail.cli.common import _pairs, config_error
from longtail.config import DEFAULT_SCENARIO_RATES, SCENARIO_ELIGIBILITY, SimConfig
from longtail.errors import ConfigError

log = logging.getLogger("longtail")


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
    p.add_argument("--cameras", default="front", metavar="NAME,...",
                   help="cameras recorded, each on its own topic: front, or front,wide (a 100 degree front camera)")
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
    if getattr(args, "cameras", "front") != "front":
        fields["cameras"] = tuple(c.strip() for c in args.cameras.split(",") if c.strip())
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
    p.add_argument("--image-topic", action="append", metavar="[NAME=]TOPIC", default=argparse.SUPPRESS,
                   help="camera topic; repeat it for several cameras, as NAME=TOPIC (NAME: the camera's slice in the "
                        "curated dataset, e.g. front, rear; 'front' is the default one). Without it, every topic "
                        "carrying compressed images is a camera, named from its topic")
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
        image_topic, cameras = _camera_topics(getattr(args, "image_topic", []))
        cfg = IngestConfig(
            keyframe_hz=args.keyframe_hz, image_topic=image_topic, cameras=cameras,
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


def _camera_topics(values: list[str]) -> tuple[str | None, dict[str, str]]:
    """``--image-topic`` values as (image_topic, cameras): one plain topic is the one camera; several,
    or NAME=TOPIC, name the cameras (a name left out is made from the topic)."""
    from longtail.ingest.roles import camera_name

    if len(values) == 1 and "=" not in values[0]:
        return values[0], {}
    cameras: dict[str, str] = {}
    for k, value in enumerate(values):
        name, sep, topic = value.partition("=")
        if not sep:
            name, topic = camera_name(value) or ("front" if k == 0 else f"camera{k}"), value
        if name in cameras:
            raise ConfigError(f"longtail ingest --image-topic: camera {name!r} is named twice ({cameras[name]} and "
                              f"{topic}); give each camera its own name, as NAME=TOPIC")
        cameras[name.strip()] = topic.strip()
    return None, cameras


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


