"""Benchmark the detector presets on CPU: training images/s and inference frames/s, per core.

For each preset in `longtail.train.presets.PRESETS`, on 1 and on 2 torch threads:

1. Training: images/s of `train_one_epoch` one batch at a time (forward with the FCOS losses,
   backward, gradient clipping at 10, AdamW from `make_optimizer` with the training defaults),
   in float32 and, where the CPU runs it natively (`TrainConfig.precision` "auto"), under
   bfloat16 autocast ("train bf16" rows; their baseline runs under the same autocast).
2. Inference: frames/s of `predict` (eval mode: resize, backbone, head, box decoding, NMS) at
   batch 1 and at batch 8.

Each is measured after warm-up calls, for at least ``--seconds`` and ``--min-calls`` calls.

Baseline, measured in the same run on the same threads, inputs and batch: the preset's own
backbone with its FPN alone (``model.backbone``), on the tensor the detector's transform makes
(resized, normalised, padded). Training: its forward, a stand-in loss (the mean of every feature
map), backward and an AdamW step over its parameters; inference: its forward. The convolutions of
the backbone are the cost a detector cannot avoid, so detector / backbone is the share of the
backbone's speed the whole detector keeps, and 1 - ratio is what the FCOS head, the target
assignment and losses, and the post-processing cost on top of it.

Inputs are synthetic road frames (sky, road with lane marks, 2-6 vehicles, pedestrians or
cyclists whose boxes are the targets), JPEG-encoded and decoded with `longtail.train.data.load_image`,
at each preset's own input size: 320x192 (the simulated fleet's camera) for ``fcos-small`` and
``fcos-small-p2``, and 640x384 for ``fcos-resnet50``, so the detector's resize is the identity. Decoding is not part of
the timed steps; its rate on one core is reported beside them. Weights are freshly initialised
(``--checkpoint`` loads trained ones for its preset). An untrained FCOS scores every location
sqrt(0.01 prior x 0.5 centerness) ~ 0.07, above the 0.05 score threshold, so its post-processing
runs at its caps (1,000 candidates per level into NMS, 100 detections kept): the worst case. The
report gives the detections per frame.

Target (issue 6): record training images/s and inference frames/s per core for each preset.

Usage:
    python bench/train.py [--presets fcos-small,fcos-small-p2,fcos-resnet50] [--threads 1,2] [--seconds 8]
                          [--min-calls N] [--checkpoint run/checkpoint-N.pt] [--out results.json]
                          [--record bench/RESULTS.md]
    python bench/train.py --quick    # fcos-small on 1 thread, one timed call each: checks it still runs
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import io
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch.set_num_threads below sets each measurement's threads

import numpy as np
import torch
from PIL import Image
from torch import nn

from _results import append_section, parse_args
from longtail.detector.predict import load_image, predict
from longtail.detector.presets import PRESETS, build_model, count_parameters, get_preset
from longtail.schemas import CATEGORIES
from longtail.train.config import TrainConfig
from longtail.train.data import CLASS_INDEX, Target
from longtail.train.engine import train_one_epoch
from longtail.train.run import bf16_supported, load_checkpoint, make_optimizer

log = logging.getLogger("bench.train")


@dataclass(frozen=True)
class Plan:
    """How one preset is measured: its training batch and warm-up calls (fewer for slow presets)."""

    train_batch: int
    warmup_calls: int
    min_calls: int  # least timed calls per measurement, unless --min-calls says otherwise


PLANS: dict[str, Plan] = {
    # batch 16 is the training default (TrainConfig.batch_size).
    "fcos-small": Plan(train_batch=16, warmup_calls=2, min_calls=3),
    "fcos-small-p2": Plan(train_batch=16, warmup_calls=2, min_calls=3),
    # ~30 s per training step of batch 8 on one core: one warm-up call, then timed calls for at
    # least --seconds (a single training step is already longer).
    "fcos-resnet50": Plan(train_batch=8, warmup_calls=1, min_calls=1),
}
INFER_BATCHES = (1, 8)
POOL = 16  # distinct frames per preset; batches cycle through them


# ---------------------------------------------------------------------------------------------
# Synthetic frames


def render_frame(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A road-like RGB frame (uint8 [H, W, 3]) and its boxes (pixel edges, x2/y2 exclusive).

    Objects stand on the road; their size grows with the distance of their foot below the horizon,
    as in a forward camera.
    """
    horizon = int(height * rng.uniform(0.38, 0.48))
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    sky = np.array([150, 180, 215], np.float32) * (0.75 + 0.25 * rows / max(horizon, 1))
    ground = np.array([95, 95, 100], np.float32) * (0.8 + 0.2 * rows / height)
    image = np.where(rows < horizon, sky, ground) * np.ones((1, width, 1), np.float32)
    image[horizon:, : width // 8] = [70, 110, 60]  # verges
    image[horizon:, -width // 8:] = [70, 110, 60]
    for lane in (-1.0, 0.0, 1.0):  # dashed lane marks converging on the vanishing point
        for y in range(horizon + 2, height, 6):
            if (y // 6) % 2:
                depth = (y - horizon) / (height - horizon)
                x = int(width / 2 + lane * depth * width * 0.35)
                half = max(1, int(2 * depth))
                image[y:y + 3, max(0, x - half):x + half] = 230
    boxes: list[dict[str, Any]] = []
    shapes = {"car": (1.6, 0.12), "truck": (1.3, 0.22), "pedestrian": (0.4, 0.14), "cyclist": (0.6, 0.14)}
    for _ in range(int(rng.integers(2, 7))):
        category = str(rng.choice(CATEGORIES))
        aspect, scale = shapes[category]  # width / height; height per pixel below the horizon / 0.4
        foot = rng.uniform(horizon + 0.1 * (height - horizon), height)
        h = max(6.0, scale * (foot - horizon) / 0.4 * rng.uniform(0.8, 1.2))
        w = max(4.0, aspect * h)
        x1 = rng.uniform(0, max(1.0, width - w))
        box = [x1, max(0.0, foot - h), min(float(width), x1 + w), min(float(height), foot)]
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        colour = rng.integers(20, 235, 3)
        xa, ya, xb, yb = (round(v) for v in box)
        image[ya:yb, xa:xb] = colour
        image[ya + (yb - ya) * 2 // 3:yb, xa:xb] *= 0.45  # a darker lower third: wheels, legs
        boxes.append({"category": category, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]})
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), boxes


def make_frames(width: int, height: int, n: int, folder: Path, seed: int
                ) -> tuple[list[torch.Tensor], list[Target], float]:
    """``n`` synthetic frames written as JPEGs (quality 90) and decoded with `load_image`.

    Returns:
        (images, float32 [3, H, W] in 0..1; targets, ``boxes`` and ``labels``; decoded frames/s,
        on the current torch threads, PIL decode and conversion, files in the page cache).
    """
    rng = np.random.default_rng(seed)
    paths, targets = [], []
    for i in range(n):
        pixels, boxes = render_frame(rng, width, height)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        path = folder / f"frame_{width}x{height}_{i:03d}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(path)
        targets.append({"boxes": torch.tensor([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in boxes],
                                              dtype=torch.float32).reshape(-1, 4),
                        "labels": torch.tensor([CLASS_INDEX[b["category"]] for b in boxes], dtype=torch.int64)})
    images = [load_image(p) for p in paths]  # warm the page cache and the decoder
    repeats = max(1, 256 // n)
    start = time.perf_counter()
    for _ in range(repeats):
        images = [load_image(p) for p in paths]
    decode_per_s = repeats * n / (time.perf_counter() - start)
    return images, targets, decode_per_s


# ---------------------------------------------------------------------------------------------
# Timing


def measure(call: Callable[[], int], warmup_calls: int, min_calls: int, min_seconds: float) -> dict[str, float]:
    """Time ``call`` (which returns the images it handled) after ``warmup_calls`` untimed calls, for at
    least ``min_calls`` calls and ``min_seconds`` seconds.

    Returns:
        ``images``, ``calls``, ``wall_s``, ``cpu_s`` (this process, every thread).
    """
    for _ in range(warmup_calls):
        call()
    images = calls = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while calls < min_calls or time.perf_counter() - wall0 < min_seconds:
        images += call()
        calls += 1
    return {"images": images, "calls": calls, "wall_s": time.perf_counter() - wall0,
            "cpu_s": time.process_time() - cpu0}


def cycle_batches(images: list[torch.Tensor], targets: list[Target], batch: int
                  ) -> Callable[[], tuple[list[torch.Tensor], list[Target]]]:
    """A function returning the next ``batch`` frames of the pool, round and round."""
    state = {"at": 0}

    def next_batch() -> tuple[list[torch.Tensor], list[Target]]:
        idx = [(state["at"] + k) % len(images) for k in range(batch)]
        state["at"] = (state["at"] + batch) % len(images)
        return [images[i] for i in idx], [targets[i] for i in idx]

    return next_batch


def train_modes(bf16: bool) -> list[tuple[str, bool]]:
    """(measure name, under bfloat16 autocast) of the training measurements: float32, and bf16 too with ``bf16``."""
    return [("train", False), ("train bf16", True)] if bf16 else [("train", False)]


def detector_calls(model: nn.Module, images: list[torch.Tensor], targets: list[Target], train_batch: int,
                   bf16: bool) -> tuple[dict[str, Callable[[], int]], list[int]]:
    """The detector's timed calls (one training step, in float32 and with ``bf16`` under bfloat16
    autocast; `predict` at each inference batch) and the list that inference fills with the
    detections of each frame."""
    config = TrainConfig(batch_size=train_batch, schedule="constant", warmup_fraction=0.0)
    optimizer, _ = make_optimizer(model, config, total_steps=1)
    next_train = cycle_batches(images, targets, train_batch)
    detections: list[int] = []
    calls: dict[str, Callable[[], int]] = {}
    for name, lowered in train_modes(bf16):
        def train_step(lowered: bool = lowered) -> int:
            batch = next_train()
            train_one_epoch(model, [batch], optimizer, None, epoch=1, progress=False,
                            clip_grad_norm=config.clip_grad_norm, bf16=lowered)
            return len(batch[0])

        calls[f"{name}, batch {train_batch}"] = train_step
    for b in INFER_BATCHES:
        next_infer = cycle_batches(images, targets, b)

        def infer(next_infer: Callable[[], tuple[list[torch.Tensor], list[Target]]] = next_infer) -> int:
            frames, _ = next_infer()
            found = predict(model, frames, score_threshold=config.eval_score_threshold)
            detections.extend(len(f) for f in found)
            return len(frames)

        calls[f"inference, batch {b}"] = infer
    return calls, detections


def backbone_calls(model: nn.Module, images: list[torch.Tensor], train_batch: int, bf16: bool
                   ) -> dict[str, Callable[[], int]]:
    """The baseline's timed calls: a copy of ``model.backbone`` (with its FPN) alone, on transformed inputs.

    A copy, so that its stand-in loss never changes the detector's weights.
    """
    backbone = copy.deepcopy(model.backbone)
    model.eval()
    with torch.inference_mode():
        pool = [t.clone() for t in model.transform(list(images))[0].tensors]  # resized, normalised, padded
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=2e-3, weight_decay=1e-4)
    at = {"i": 0}

    def take(batch: int) -> torch.Tensor:
        idx = [(at["i"] + k) % len(pool) for k in range(batch)]
        at["i"] = (at["i"] + batch) % len(pool)
        return torch.stack([pool[i] for i in idx])

    calls: dict[str, Callable[[], int]] = {}
    for name, lowered in train_modes(bf16):
        def train_step(lowered: bool = lowered) -> int:
            backbone.train()
            x = take(train_batch)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=lowered):
                loss = torch.stack([f.float().mean() for f in backbone(x).values()]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return train_batch

        calls[f"{name}, batch {train_batch}"] = train_step
    for b in INFER_BATCHES:
        def infer(b: int = b) -> int:
            backbone.eval()
            with torch.inference_mode():
                backbone(take(b))
            return b

        calls[f"inference, batch {b}"] = infer
    return calls


def bench_preset(name: str, args: argparse.Namespace, folder: Path, threads: list[int]) -> dict[str, Any]:
    """Every measurement of one preset, detector and baseline, on each thread count."""
    spec = get_preset(name)
    plan = PLANS.get(name, Plan(train_batch=8, warmup_calls=1, min_calls=1))
    width, height = spec.max_size, spec.min_size
    torch.set_num_threads(1)
    images, targets, decode_per_s = make_frames(width, height, POOL, folder, args.seed)
    log.info("%s: %d synthetic %dx%d frames, %.1f boxes each; load_image decodes %.0f frames/s on 1 thread",
             name, len(images), width, height, np.mean([len(t["labels"]) for t in targets]), decode_per_s)
    torch.manual_seed(args.seed)
    model = build_model(name, num_classes=len(CATEGORIES))
    weights = "fresh"
    if args.checkpoint:
        state = load_checkpoint(args.checkpoint)
        if state["config"].get("preset") == name:
            model.load_state_dict(state["model"])
            weights = f"trained ({Path(args.checkpoint).name}, epoch {state['epoch']})"
    # Inference always runs on these weights, not on those the timed training steps left behind.
    built = {k: v.clone() for k, v in model.state_dict().items()}
    bf16 = bf16_supported(torch.device("cpu"))
    baseline = backbone_calls(model, images, plan.train_batch, bf16)
    calls, detections = detector_calls(model, images, targets, plan.train_batch, bf16)
    min_calls = plan.min_calls if args.min_calls is None else args.min_calls
    rows = []
    for n in threads:
        torch.set_num_threads(n)
        for measure_name in baseline:
            row: dict[str, Any] = {"preset": name, "measure": measure_name, "threads": n}
            for who, table in (("detector", calls), ("backbone", baseline)):
                if measure_name.startswith("inference"):
                    model.load_state_dict(built)
                m = measure(table[measure_name], plan.warmup_calls, min_calls, args.seconds)
                m["per_s"] = m["images"] / m["wall_s"]
                row[who] = m
                log.info("%s %s, %d thread(s), %s: %d images in %.1f s (%.2f/s, CPU %.1f s)", name, measure_name, n,
                         who, m["images"], m["wall_s"], m["per_s"], m["cpu_s"])
            row["load"] = os.getloadavg()[0]
            rows.append(row)
    torch.set_num_threads(1)
    return {"preset": name, "input": f"{width}x{height}", "parameters": count_parameters(model),
            "backbone_parameters": count_parameters(model.backbone), "weights": weights,
            "train_batch": plan.train_batch, "decode_per_s": decode_per_s,
            "boxes_per_frame": float(np.mean([len(t["labels"]) for t in targets])),
            "detections_per_frame": float(np.mean(detections)) if detections else 0.0, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Report


def render(args: argparse.Namespace, res: dict[str, Any]) -> str:
    """The markdown section for bench/RESULTS.md."""
    cmd = "python bench/train.py " + shlex.join(sys.argv[1:])
    load = res["load_average"]
    calls = args.min_calls if args.min_calls is not None else ", ".join(
        f"{PLANS[p['preset']].min_calls} ({p['preset']})" for p in res["presets"] if p["preset"] in PLANS)
    lines = [
        f"## Train (bench/train.py), {res['date']} ({res['machine']}, Python {platform.python_version()}, "
        f"torch {torch.__version__})",
        "",
        f"Command: `{cmd.strip()}` (synthetic road frames at each preset's input size, JPEG-decoded before "
        f"timing; each measurement at least {args.seconds:g} s and {calls} call(s) after warm-up. Whole "
        f"run {res['total_s'] / 60:.1f} min; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at "
        "the end)",
        "",
    ]
    for p in res["presets"]:
        lines.append(
            f"- `{p['preset']}`: {p['input']} input, {p['parameters'] / 1e6:.2f}M parameters "
            f"({p['backbone_parameters'] / 1e6:.2f}M in backbone + FPN), {p['weights']} weights, "
            f"{p['boxes_per_frame']:.1f} boxes per frame, {p['detections_per_frame']:.1f} detections per frame "
            f"kept at score >= 0.05; `load_image` decodes {p['decode_per_s']:.0f} frames/s on one core.")
    lines += [
        "",
        "Baseline: the preset's backbone + FPN alone on the same threads, batch and input (training: forward, "
        "mean-of-features loss, backward, AdamW step). Images/s per core = images/s / threads; "
        "CPU/wall near the thread count means the process had its cores. \"train bf16\" rows train under "
        "bfloat16 autocast (`TrainConfig.precision`), their baseline too; bf16 / fp32 is their speed over the "
        "float32 row's.",
        "",
        "| preset | measure | threads | images/s | **per core** | CPU s / wall s | baseline: backbone + FPN, "
        "images/s | detector / baseline | 2 threads / 1 thread | bf16 / fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in res["presets"]:
        one = {r["measure"]: r["detector"]["per_s"] for r in p["rows"] if r["threads"] == 1}
        same_threads = {(r["measure"], r["threads"]): r["detector"]["per_s"] for r in p["rows"]}
        for r in p["rows"]:
            d, b, n = r["detector"], r["backbone"], r["threads"]
            scaling = f"{d['per_s'] / one[r['measure']]:.2f}x" if n != 1 and r["measure"] in one else "-"
            fp32 = same_threads.get((r["measure"].replace("train bf16", "train"), n))
            lowered = f"{d['per_s'] / fp32:.2f}x" if r["measure"].startswith("train bf16") and fp32 else "-"
            lines.append(
                f"| {p['preset']} | {r['measure']} | {n} | {d['per_s']:.2f} | **{d['per_s'] / n:.2f}** | "
                f"{d['cpu_s'] / d['wall_s']:.2f} | {b['per_s']:.2f} | {d['per_s'] / b['per_s']:.2f}x | {scaling} | "
                f"{lowered} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--seconds", type=float, default=8.0, help="least seconds timed per measurement")
    parser.add_argument("--min-calls", type=int, default=None,
                        help="least timed calls per measurement (default: 3 for fcos-small and fcos-small-p2, "
                             "1 for fcos-resnet50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the frames and the weights")
    parser.add_argument("--checkpoint", default="", help="a longtail.train checkpoint: its preset uses its weights")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    parser.add_argument("--record", default="bench/RESULTS.md", help="append a results section here ('' to skip)")
    args = parse_args(parser, {"presets": "fcos-small", "threads": "1", "seconds": 0.0, "min_calls": 1, "out": "",
                               "record": ""})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for name in presets:
        get_preset(name)  # raises ConfigError listing the valid names before any work
    threads = sorted({int(t) for t in args.threads.split(",")})

    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    results: dict[str, Any] = {"args": vars(args), "date": dt.date.today().isoformat(),
                               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "presets": []}
    with tempfile.TemporaryDirectory(prefix="longtail-bench-train-") as tmp:
        for name in presets:
            results["presets"].append(bench_preset(name, args, Path(tmp), threads))
    results["total_s"] = time.perf_counter() - t0
    results["load_average"] = [load_start, os.getloadavg()[0]]
    text = render(args, results)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.record:
        append_section(args.record, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
