"""Frames per second of the deployed exports (TorchScript, onnxruntime) against eager PyTorch.

In one process, on the same frames, one frame per call (as the fleet test calls a deployed model):

- eager PyTorch: `longtail.detector.predict.predict` on the frame's tensor (the model resizes it);
- TorchScript and onnxruntime: `longtail.detector.export.DeployedDetector.predict` (the same resize
  outside the traced graph, boxes mapped back, thresholds applied);
- and eager PyTorch on batches of ``--batch`` frames in one call, to see what batching buys.

The model: the champion of ``--root`` when given (its dataset version's test frames), else the default
preset untrained, in two versions that bound the post-processing cost: a classification bias of -10
(every score under the 0.05 floor: no box reaches NMS, as on an empty road) and of 0 (scores near 0.5:
100 boxes per frame through NMS, the detector's cap). A trained model on road frames lies between.
Their frames are drawn with PIL (320x192, coloured rectangles on grey).

Usage:
    python bench/deploy.py [--threads 2] [--frames 48] [--root DATA] [--record bench/RESULTS.md]
    python bench/deploy.py --quick    # 4 frames, one pass, 1 thread: checks it still runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from _results import append_section, parse_args
from longtail.detector.export import DeployedDetector, export_detector, frame_tensor
from longtail.detector.predict import predict
from longtail.detector.presets import DEFAULT_PRESET, build_model
from longtail.schemas import CATEGORIES


def synthetic_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        image = Image.new("RGB", (320, 192), tuple(int(v) for v in rng.integers(70, 140, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 6))):
            x, y, w, h = (int(v) for v in (rng.integers(0, 290), rng.integers(40, 170), rng.integers(6, 60),
                                           rng.integers(8, 40)))
            draw.rectangle([x, y, x + w, y + h], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        frames.append(np.asarray(image))
    return frames


def models(root: str | None, frames: int) -> list[tuple[str, Any, dict[str, Any], list[np.ndarray]]]:
    """(name, model, meta, frames) of each model to measure."""
    if root:
        from longtail.deploy.parity import load_parity_frames
        from longtail.detector.registry import load_champion

        found = load_champion(root)
        if found is None:
            sys.exit(f"{root}: no champion to measure; run without --root for untrained models")
        model, meta = found
        _, images, _ = load_parity_frames(root, meta["dataset_version"], frames)
        return [(f"champion {meta['model_uri']}", model.eval(), meta, images)]
    out = []
    images = synthetic_frames(frames)
    meta = {"preset": DEFAULT_PRESET, "classes": list(CATEGORIES), "min_size": 192, "max_size": 320}
    for name, bias in (("untrained, classification bias -10", -10.0), ("untrained, classification bias 0", 0.0)):
        torch.manual_seed(0)
        model = build_model(DEFAULT_PRESET, len(CATEGORIES)).eval()
        torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, bias)
        out.append((name, model, meta, images))
    return out


def fps(paths: dict[str, Callable[[], Any]], n_frames: int, repeats: int) -> dict[str, float]:
    """Median frames per second of each path over ``repeats`` passes, after one untimed pass each
    (TorchScript's profiling executor optimises on its first calls). The paths take turns within each
    repeat, so a change of load on a shared machine hits them alike."""
    for fn in paths.values():
        fn()
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            rates[name].append(n_frames / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def measure(model: Any, meta: dict[str, Any], images: list[np.ndarray], threads: int, batch: int,
            repeats: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        export_detector(model, meta, tmp)
        ts = DeployedDetector(Path(tmp) / "model.ts", meta, dict.fromkeys(CATEGORIES, 0.0), "torchscript")
        ort = DeployedDetector(Path(tmp) / "model.onnx", meta, dict.fromkeys(CATEGORIES, 0.0), "onnx", threads=threads)
        tensors = [frame_tensor(f) for f in images]
        with torch.inference_mode():
            boxes = sum(len(b) for t in tensors[:8] for b in predict(model, [t]))
            rates = fps({
                "eager": lambda: [predict(model, [frame_tensor(f)]) for f in images],
                "torchscript": lambda: [ts.predict([f]) for f in images],
                "onnx": lambda: [ort.predict([f]) for f in images],
                f"eager, {batch} frames per call": lambda: [predict(model, [frame_tensor(f) for f in images[k:k + batch]])
                                                            for k in range(0, len(images), batch)],
            }, len(images), repeats)
    return {"rates": rates, "boxes_per_frame": boxes / 8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--frames", type=int, default=48, help="frames per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (the median is kept)")
    parser.add_argument("--batch", type=int, default=4, help="frames per call of the batched eager row")
    parser.add_argument("--root", help="measure this data root's champion on its test frames")
    parser.add_argument("--record", help="append the results to this Markdown file")
    args = parse_args(parser, {"threads": 1, "frames": 4, "repeats": 1, "batch": 2, "record": None})
    load_before = os.getloadavg()[0]
    sections = []
    for name, model, meta, images in models(args.root, args.frames):
        result = measure(model, meta, images, args.threads, args.batch, args.repeats)
        eager = result["rates"]["eager"]
        rows = [f"| {path} | {rate:.1f} | {rate / eager:.2f}x |" for path, rate in result["rates"].items()]
        sections.append(f"**{name}**, {result['boxes_per_frame']:.0f} boxes per frame above the 0.05 floor:\n\n"
                        "| path | frames/s | vs eager |\n|---|---|---|\n" + "\n".join(rows))
        print(sections[-1] + "\n")
    if args.record:
        cmd = "python bench/deploy.py " + " ".join(sys.argv[1:])
        text = (f"## Deployed exports vs eager PyTorch (bench/deploy.py), {dt.date.today()} ({platform.machine()}, "
                f"{os.cpu_count()} cores, {args.threads} thread(s), Python {platform.python_version()}, torch "
                f"{torch.__version__})\n\n"
                f"Command: `{cmd}` ({args.frames} frames of 320x192 per pass, one frame per call unless said, median "
                f"of {args.repeats} passes after a warm-up pass, the paths taking turns; load average "
                f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after: the machine was shared)\n\n"
                + "\n\n".join(sections) + "\n")
        append_section(args.record, text)


if __name__ == "__main__":
    main()
