"""``longtail fleet-test``: a fixed, seeded test fleet drives with a perception, and its ADAS outcomes
(disengagements, FCW/AEB alerts, phantom braking, missed hazards, collisions, near misses) are
reported per 100 km and per scenario, beside the simulator's truth perception."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from pydantic import ValidationError

from longtail.cli.common import config_error
from longtail.errors import ConfigError

log = logging.getLogger("longtail")


def _add_fleet_test(sub: Any) -> None:
    p = sub.add_parser(
        "fleet-test",
        help="drive a fixed test fleet with a deployed model and count ADAS outcomes per 100 km",
        description=(
            "Drive a fixed, seeded, scenario-dense test fleet (every critical scenario, car and truck, every "
            "time of day and weather) once with the simulator's truth perception (the reference) and once "
            "per --perception, on the same seeds. The ADAS (ACC, FCW, AEB) acts on the model's boxes; the "
            "driver takes over as the road demands. Writes OUT/<arm>/*.mcap (detections on "
            "/camera/front/detections) and OUT/fleet_test.json, and prints the rates with paired intervals."
        ),
        epilog="Example: longtail fleet-test --out DATA/fleet_test --perception champion=DATA/deployments/current "
               "--minutes 0.5 --max-drives 6",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--perception", action="append", default=[], metavar="NAME=FOLDER",
                   help="an arm: a deployment folder (deployment.json) or a saved model folder (model.pt); repeatable")
    p.add_argument("--shadow", metavar="FOLDER", help="a challenger run in shadow beside the first --perception")
    p.add_argument("--seed", type=int, default=0, help="fleet-test seed")
    p.add_argument("--minutes", type=float, default=1.0, help="length of each drive, minutes")
    p.add_argument("--max-drives", type=int, default=None, help="only the first N of the 36 drives")
    p.add_argument("--perception-hz", type=float, default=5.0, help="perception rate, Hz (divides the 10 Hz camera)")
    p.add_argument("--profile", choices=["foxglove", "ros2"], default="foxglove", help="recording profile")
    p.add_argument("--batch-size", type=int, default=16, help="frames per perception call, across drives")
    p.add_argument("--ttc", type=float, default=1.5, help="near-miss threshold on time to collision, s")
    p.add_argument("--score-threshold", type=float, default=0.5, help="box threshold of a saved model (not a deployment)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the model")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=cmd_fleet_test)


def cmd_fleet_test(args: argparse.Namespace) -> int:
    """Run `longtail.sim.fleet_test.run_fleet_test` from the command line."""
    import torch

    from longtail.sim.fleet_report import format_fleet_test_table
    from longtail.sim.fleet_test import FleetTestConfig, load_perception, run_fleet_test

    try:
        cfg = FleetTestConfig(seed=args.seed, minutes=args.minutes, max_drives=args.max_drives,
                              perception_hz=args.perception_hz, profile=args.profile, batch_size=args.batch_size,
                              ttc_s=args.ttc)
        cfg.perceive_every()
    except ValidationError as exc:
        raise config_error("fleet-test", exc) from None
    arms: dict[str, Any] = {}
    descriptions: dict[str, str] = {}
    for item in args.perception:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"fleet-test: --perception {item!r} must be NAME=FOLDER (e.g. champion=DATA/deployments/current)")
        if name == "truth" or name in arms:
            raise ConfigError(f"fleet-test: --perception name {name!r} is taken; 'truth' is the reference arm")
        arms[name], descriptions[name] = load_perception(folder, args.score_threshold)
    challenger = None
    if args.shadow:
        if not arms:
            raise ConfigError("fleet-test: --shadow needs a --perception to run beside")
        challenger, descriptions["shadow"] = load_perception(args.shadow, args.score_threshold)
    torch.set_num_threads(args.threads)
    results = run_fleet_test(cfg, arms, args.out, challenger=challenger, descriptions=descriptions,
                             progress=not args.no_progress)
    if args.json:
        json.dump({k: results[k] for k in ("reference", "arms", "rates", "paired")}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_fleet_test_table(results))
    return 0
