"""Parity: the exports must answer as the PyTorch model does, on real test frames, before they ship.

1. Take up to ``n`` test frames of a dataset version (both test suites; evenly spaced in frame order,
   so the sample is the same on every run), or its validation frames when it has no test frames.
2. Run PyTorch (`longtail.detector.predict.predict`, the model's own resize), TorchScript and
   onnxruntime (`longtail.detector.export.DeployedDetector`) on each.
3. Compare every detection above the export's score floor, and again at the operating thresholds
   (`longtail.detector.export.compare_detections`): the largest box and score differences over
   matched detections, and any detection clearly above its cut without a counterpart.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import nn
from tqdm import tqdm

from longtail.catalog.versions import datasets_dir, load_version
from longtail.detector.export import BACKENDS, Backend, compare_detections, frame_tensor, load_exported
from longtail.detector.predict import predict
from longtail.errors import InputError, LongtailError

log = logging.getLogger(__name__)

TEST_SPLITS = ("test_longtail", "test_common")


class ParityError(LongtailError):
    """An export's detections differ from PyTorch's beyond the tolerance: the deployment is refused."""


def load_parity_frames(root: str | os.PathLike[str], version_id: str, n: int) -> tuple[list[str], list[np.ndarray], str]:
    """Up to ``n`` frames for the parity check (module docstring, step 1).

    Returns:
        (frame ids, HxWx3 uint8 RGB frames, a description such as "32 of 410 test frames of v-...").

    Raises:
        InputError: the version is missing or has no frames.
    """
    frames, _ = load_version(root, version_id)
    pool, what = frames[frames["split"].isin(TEST_SPLITS)], "test"
    if pool.empty:
        pool, what = frames[frames["split"] == "val"], "validation"
    if pool.empty:
        raise InputError(f"dataset version {version_id} has no test or validation frames for the parity check; "
                         "label more drives so some fall in those splits")
    pool = pool.sort_values("frame_id")
    picks = np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))
    rows = pool.iloc[picks]
    folder = datasets_dir(root) / version_id
    images = []
    for path in rows["image_path"]:
        with Image.open(Path(folder) / path) as image:
            images.append(np.asarray(image.convert("RGB")))
    return rows["frame_id"].tolist(), images, f"{len(rows)} of {len(pool)} {what} frames of {version_id}"


def _timed(fn: Any, frames: Sequence[np.ndarray], progress: bool, desc: str) -> tuple[list[list[dict[str, Any]]], float]:
    out = []
    start = time.perf_counter()
    for frame in tqdm(frames, desc=desc, unit="frame", disable=not progress):
        out.extend(fn(frame))
    return out, (time.perf_counter() - start) * 1000 / max(len(frames), 1)


def check_parity(model: nn.Module, export_dir: str | os.PathLike[str], frames: Sequence[np.ndarray],
                 thresholds: Mapping[str, float], score_floor: float, box_tolerance: float, score_tolerance: float,
                 max_detections: int | None = None, frames_description: str = "", frame_ids: Sequence[str] = (),
                 progress: bool = False) -> dict[str, Any]:
    """PyTorch vs each export on ``frames`` (module docstring, steps 2-3).

    Args:
        model: the PyTorch detector, in eval mode.
        export_dir: the folder with the exports, export.json and thresholds.json.
        frames: HxWx3 uint8 RGB frames.
        thresholds: class -> operating threshold.
        score_floor: the export's score floor (every detection at or above it is compared).
        box_tolerance: largest allowed box coordinate difference, px.
        score_tolerance: largest allowed score difference.
        max_detections: the detector's detections per image (its top-k cut).
        frames_description: what the frames are, for the record.
        frame_ids: their ids, to name the worst frame.
        progress: show progress bars.

    Returns:
        ``tolerance``, ``frames``, ``frames_description``, ``backends`` (backend -> ``all`` and ``operating``
        comparisons, ``ms_per_frame``, ``passed``), ``pytorch_ms_per_frame`` and ``passed``.
    """
    floor = {c: score_floor for c in thresholds}

    def eager(frame: np.ndarray) -> list[list[dict[str, Any]]]:
        return predict(model, [frame_tensor(frame)], score_threshold=0.0)

    reference, eager_ms = _timed(eager, frames, progress, "parity: pytorch")
    backends: dict[str, Any] = {}
    for backend in BACKENDS:
        name: Backend = backend  # type: ignore[assignment]
        detector = load_exported(export_dir, name)
        found, ms = _timed(lambda f, d=detector: d.predict([f], score_threshold=0.0), frames, progress,
                           f"parity: {backend}")
        result: dict[str, Any] = {
            "all": compare_detections(reference, found, floor, box_tolerance, score_tolerance, max_detections),
            "operating": compare_detections(reference, found, thresholds, box_tolerance, score_tolerance, max_detections),
            "ms_per_frame": ms}
        result["passed"] = result["all"]["passed"] and result["operating"]["passed"]
        for part in ("all", "operating"):
            worst = result[part]["worst_frame"]
            result[part]["worst_frame_id"] = frame_ids[worst] if worst is not None and frame_ids else None
        backends[backend] = result
        log.info("parity %s on %d frame(s): boxes within %.2g px, scores within %.2g, %d unmatched: %s", backend,
                 len(frames), result["all"]["max_box_diff"], result["all"]["max_score_diff"],
                 result["all"]["missed"] + result["operating"]["missed"], "passed" if result["passed"] else "FAILED")
    return {"tolerance": {"box_px": box_tolerance, "score": score_tolerance,
                          "rule": "matched detections within the box and score tolerances; no detection clearly "
                                  "(beyond the score tolerance) above its cut without a counterpart; compared above "
                                  "the export's score floor and at the operating thresholds"},
            "frames": len(frames), "frames_description": frames_description, "pytorch_ms_per_frame": eager_ms,
            "backends": backends, "passed": all(r["passed"] for r in backends.values())}


def raise_if_failed(parity: Mapping[str, Any]) -> None:
    """Refuse the deployment when an export failed parity, naming it and the numbers.

    Raises:
        ParityError: with the backend, its largest differences, the worst frame and the tolerance.
    """
    tol = parity["tolerance"]
    failed = []
    for backend, r in parity["backends"].items():
        if not r["passed"]:
            a, o = r["all"], r["operating"]
            failed.append(f"{backend}: boxes differ by up to {a['max_box_diff']:.3g} px (tolerance {tol['box_px']}), "
                          f"scores by up to {a['max_score_diff']:.3g} (tolerance {tol['score']}), "
                          f"{a['missed'] + o['missed']} detection(s) without a counterpart; worst frame "
                          f"{a['worst_frame_id'] or o['worst_frame_id']}")
    if failed:
        raise ParityError("the exports do not answer as the PyTorch model does on " + parity["frames_description"]
                          + ": " + "; ".join(failed) + ". Nothing was deployed. Check the export (torch/onnxruntime "
                          "versions) or, if the differences are harmless, widen the tolerance "
                          "(`longtail deploy --box-tolerance/--score-tolerance`)")
