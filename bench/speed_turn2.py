"""Where turn 2 of the loop spends its time, before and after the changes of the "Speed of turn 2"
section of bench/RESULTS.md, on a data root with a champion and a deployment (e.g. one built by
`longtail run --target ci --root R`).

1. Curate with a new champion: frames/s of the old two passes (backbone embedding, then
   prediction) and of the one pass that gives both (`longtail.detector.embed.predict_and_embed`).
2. Privacy blur: seconds per simulated frame and frames where the cascades found a region.
3. Fleet test: wall time of the truth arm, of the same arm restored from the cache, and of the
   deployed model's arm, with the share of it spent in perception.

Example:
    python bench/speed_turn2.py --root /tmp/speed-ci --frames 96 --threads 1

``--quick`` (with no ``--root``) builds a temporary data root, to check that this script still runs (`make
bench-quick`): a simulated drive of 12 s at 160x96 ingested, a model trained for one epoch on a tiny
synthetic version, registered, promoted to champion and deployed; then 8 frames and one fleet-test drive of 3 s:
    python bench/speed_turn2.py --quick
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from longtail.catalog.deployments import load_deployment
from longtail.detector.embed import BackboneEmbedder, predict_and_embed
from longtail.detector.predict import load_image, predict_frames
from longtail.detector.registry import load_champion
from longtail.privacy import PrivacyConfig, make_detector, read_image
from longtail.sim.fleet_test import FleetTestConfig, load_perception, run_fleet_test

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import parse_args, quick_requested


def make_quick_root(folder: Path) -> Path:
    """A data root under ``folder`` with ingested frames, a champion and a deployment of it (module docstring)."""
    from _tiny_version import ingest_tiny_drive, train_tiny_model, write_tiny_version
    from longtail.catalog.root import DataRoot
    from longtail.deploy.run import DeployConfig, run_deploy
    from longtail.detector.registry import REGISTERED_MODEL, promote, tracking_uri_for

    root = DataRoot.of(folder / "data")
    ingest_tiny_drive(folder / "fleet", root.path)
    _, version_id = write_tiny_version(root.path)
    _, model_version = train_tiny_model(root.path, version_id, registered_model=REGISTERED_MODEL)
    if model_version is None:
        raise RuntimeError(f"training registered no version of {REGISTERED_MODEL} in {root.path}")
    promote(tracking_uri_for(root.path), model_version, lock_dir=root.mlflow, expected_champion=None,
            reason="bench/speed_turn2.py --quick")
    run_deploy(root.path, DeployConfig(parity_frames=2))
    return root.path


def curate_rates(root: Path, n: int) -> None:
    champion = load_champion(root)
    assert champion is not None, f"{root}: no champion in the registry"
    model, meta = champion
    files = sorted(glob.glob(str(root / "frames/*/*.jpg")))[:n]
    embedder = BackboneEmbedder(model, meta["key"])
    t0 = time.perf_counter()
    embedder.embed([Path(f).read_bytes() for f in files], files)
    predict_frames(model, "/", pd.DataFrame({"frame_id": files, "image_path": files}), score_threshold=0.1)
    old = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, len(files), 16):
        predict_and_embed(model, [load_image(f) for f in files[s:s + 16]], 0.1)
    new = time.perf_counter() - t0
    print(f"curate, {len(files)} frames: embed then predict {len(files) / old:.1f} frames/s; one pass "
          f"{len(files) / new:.1f} frames/s ({old / new:.2f}x)")


def blur_rate(root: Path, n: int) -> None:
    files = sorted(glob.glob(str(root / "frames/*/*.jpg")))[:n]
    detector = make_detector(PrivacyConfig())
    t0, c0 = time.perf_counter(), time.process_time()
    hits = sum(bool(detector.detect(read_image(f))) for f in files)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"blur, {len(files)} frames: {wall / len(files):.3f} s/frame wall, {cpu / len(files):.3f} s/frame CPU; "
          f"frames with a region: {hits}")


def fleet_times(root: Path, minutes: float, drives: int) -> None:
    cfg = FleetTestConfig(minutes=minutes, max_drives=drives, n_boot=100)
    perceive, _ = load_perception(load_deployment(root, "current")["path"])
    spent = [0.0, 0]

    def timed(frames):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = perceive(frames)
        spent[0] += time.perf_counter() - t
        spent[1] += len(frames)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        run_fleet_test(cfg, {}, Path(tmp) / "a", progress=False, cache=cache)
        truth = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_fleet_test(cfg, {"deployed": timed}, Path(tmp) / "b", progress=False, cache=cache)
        second = time.perf_counter() - t0
    print(f"fleet test, {drives} drives of {minutes} min: truth arm driven {truth:.1f} s; second fleet test "
          f"(truth from the cache + deployed arm) {second:.1f} s, of which perception {spent[0]:.1f} s for "
          f"{spent[1]} frames ({1000 * spent[0] / max(spent[1], 1):.1f} ms/frame)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = quick_requested()
    parser.add_argument("--root", required=not quick, help="a data root with a champion and a deployment")
    parser.add_argument("--frames", type=int, default=96, help="frames of the store timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--minutes", type=float, default=0.5, help="minutes per fleet-test drive")
    parser.add_argument("--drives", type=int, default=4, help="fleet-test drives")
    args = parse_args(parser, {"frames": 8, "minutes": 0.05, "drives": 1})
    torch.set_num_threads(args.threads)
    if args.quick and not args.root:
        with tempfile.TemporaryDirectory(prefix="longtail-bench-speed-turn2-") as tmp:
            return measure(args, make_quick_root(Path(tmp)))
    return measure(args, Path(args.root))


def measure(args: argparse.Namespace, root: Path) -> int:
    """Print the three measurements on ``root``, with the load average before and after."""
    print(f"load before: {os.getloadavg()[0]:.1f}")
    curate_rates(root, args.frames)
    blur_rate(root, args.frames)
    fleet_times(root, args.minutes, args.drives)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
