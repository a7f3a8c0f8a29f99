"""Export a detector to TorchScript and ONNX, run an export, and check that it answers as PyTorch does.

An export is a graph of one image -> (boxes, scores, labels): the torchvision detector's
normalisation, backbone, head and post-processing (score floor, NMS, top-k), traced once.
``torch.jit.script`` fails on the backbone's forward and the dynamo ONNX exporter fails in
``torch.export`` on these detectors (../shared/ENVIRONMENT.md, "Export, serving"), so both files
come from tracing: ``torch.jit.trace`` and ``torch.onnx.export(dynamo=False, opset_version=18)``.

A traced graph keeps the sizes it saw as constants where torchvision turns shapes into Python
numbers: the box rescaling after the detector's own resize is one of them (measured: traced at
320x192, a 400x240 frame came back with boxes 336 px off). The graph therefore takes images
already at the model's input scale, and the resize and the box rescaling happen here, outside it,
with torchvision's own functions (`prepare_image`, `DeployedDetector.predict`): one
preprocessing for PyTorch, TorchScript and ONNX alike, and any frame size works.

`load_deployed_detector` opens a deployment (`longtail.catalog.deployments`) for any stage:
``predict(frames)`` takes HxWx3 uint8 RGB arrays and returns the same box dicts as
`longtail.detector.predict.predict`, at the per-class operating thresholds.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from longtail.errors import ConfigError, InputError
from longtail.storage import atomic_write_bytes, atomic_write_json, atomic_writer

log = logging.getLogger(__name__)

EXPORT_FORMAT = "longtail.export/1"
TORCHSCRIPT_FILE = "model.ts"
ONNX_FILE = "model.onnx"
EXPORT_META_FILE = "export.json"
"""What an export takes and gives: classes, input scale, score floor, library versions."""
THRESHOLDS_FILE = "thresholds.json"
"""The per-class operating thresholds a deployment applies, and where they came from."""
ONNX_OPSET = 18
BACKENDS: tuple[str, ...] = ("torchscript", "onnx")
Backend = Literal["torchscript", "onnx"]
BACKEND_FILES = {"torchscript": TORCHSCRIPT_FILE, "onnx": ONNX_FILE}


def _no_resize(image: torch.Tensor, target: Any = None) -> tuple[torch.Tensor, Any]:
    return image, target


class ExportWrapper(nn.Module):
    """One image tensor [3, H, W] float32 0..1, already at the model's input scale (`prepare_image`),
    -> boxes [N, 4] (x1, y1, x2, y2 in that image's pixels), scores [N], labels [N] (int64 class index).

    A copy of the detector with its resize switched off: the resize and the box rescaling stay outside
    the traced graph (module docstring).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        setattr(self.model.transform, "resize", _no_resize)  # noqa: B010 (an instance attribute over the method)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model([image])[0]
        return out["boxes"], out["scores"], out["labels"]


def input_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """torchvision's resize factor: the short side to ``min_size`` unless the long side would exceed ``max_size``."""
    return min(min_size / min(height, width), max_size / max(height, width))


def prepare_image(frame: np.ndarray, min_size: int, max_size: int) -> torch.Tensor:
    """An HxWx3 uint8 RGB frame -> float32 [3, H', W'] in 0..1 at the model's input scale, resized as
    torchvision's `GeneralizedRCNNTransform` resizes (bilinear, its own function).

    Raises:
        InputError: the frame is not HxWx3 uint8.
    """
    from torchvision.models.detection.transform import _resize_image_and_masks

    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(f"a frame must be an HxWx3 uint8 RGB array, got {type(frame).__name__} "
                         f"{getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}; decode JPEGs with PIL "
                         "(np.asarray(Image.open(path).convert('RGB')))")
    image = frame_tensor(frame)
    if input_scale(frame.shape[0], frame.shape[1], min_size, max_size) == 1.0:
        return image
    return _resize_image_and_masks(image, min_size, max_size)[0]


def frame_tensor(frame: np.ndarray) -> torch.Tensor:
    """An HxWx3 uint8 RGB frame -> float32 [3, H, W] in 0..1, as `longtail.detector.predict.load_image` makes it."""
    return torch.tensor(frame).permute(2, 0, 1).float().div_(255.0)  # a copy: PIL's arrays are read-only


def _rescale(boxes: np.ndarray, resized: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
    """Boxes from the resized image back to the frame, as torchvision's ``resize_boxes`` does (float32 ratios)."""
    if resized == original:
        return boxes
    ry = np.float32(original[0]) / np.float32(resized[0])
    rx = np.float32(original[1]) / np.float32(resized[1])
    return boxes * np.array([rx, ry, rx, ry], np.float32)


# ---------------------------------------------------------------------------------------------
# Export


def export_detector(model: nn.Module, meta: Mapping[str, Any], folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``model.ts`` (TorchScript), ``model.onnx`` (ONNX opset 18) and ``export.json`` into ``folder``.

    Both graphs are traced on a random image of the model's input size (``max_size`` x ``min_size``);
    the ONNX graph's height and width are dynamic.

    Args:
        model: a torchvision detector (`longtail.detector.model.load_model`).
        meta: its model.json: ``classes``, ``min_size``, ``max_size``, ``preset``.
        folder: where to write.

    Returns:
        The export meta (what export.json holds).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(model.cpu()).eval()
    height, width = int(meta["min_size"]), int(meta["max_size"])
    example = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        # Tracing warns on every Python number torchvision takes from a shape; the parity check
        # (`compare_detections`) is what tells whether the graph is right.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        with atomic_writer(folder / TORCHSCRIPT_FILE) as handle:
            torch.jit.save(traced, handle)
        onnx_bytes = io.BytesIO()  # the TorchScript-based exporter writes to file objects too (untyped)
        torch.onnx.export(wrapper, (example,), onnx_bytes, dynamo=False, opset_version=ONNX_OPSET,  # type: ignore[arg-type]
                          input_names=["image"], output_names=["boxes", "scores", "labels"],
                          dynamic_axes={"image": {1: "height", 2: "width"}, "boxes": {0: "detections"},
                                        "scores": {0: "detections"}, "labels": {0: "detections"}})
    atomic_write_bytes(folder / ONNX_FILE, onnx_bytes.getvalue())
    score_floor = float(getattr(model, "score_thresh", 0.0))
    export_meta = {
        "format": EXPORT_FORMAT, "preset": meta.get("preset"), "classes": list(meta["classes"]),
        "min_size": int(meta["min_size"]), "max_size": int(meta["max_size"]), "score_floor": score_floor,
        "detections_per_img": int(getattr(model, "detections_per_img", 0)) or None,
        "input": "one float32 RGB image [3, H, W] in 0..1 at the model's input scale (longtail.detector.export."
                 "prepare_image)",
        "outputs": "boxes [N, 4] x1,y1,x2,y2 pixel edges of that image; scores [N]; labels [N] int64 class index",
        "files": {"torchscript": TORCHSCRIPT_FILE, "onnx": ONNX_FILE}, "onnx_opset": ONNX_OPSET,
        "torch": torch.__version__, "traced_at": [height, width],
    }
    atomic_write_json(folder / EXPORT_META_FILE, export_meta)
    log.info("exported %s to %s and %s in %s", meta.get("preset"), TORCHSCRIPT_FILE, ONNX_FILE, folder)
    return export_meta


# ---------------------------------------------------------------------------------------------
# Running an export


class DeployedDetector:
    """An exported detector: frames in, box dicts out, at per-class operating thresholds.

    Args:
        model_path: ``model.ts`` or ``model.onnx``.
        export_meta: what export.json holds (classes, min_size, max_size).
        thresholds: class -> operating threshold (a class left out keeps 0.5).
        backend: ``torchscript`` or ``onnx``.
        threads: onnxruntime's intra-op threads (TorchScript follows ``torch.set_num_threads``).
    """

    def __init__(self, model_path: str | os.PathLike[str], export_meta: Mapping[str, Any],
                 thresholds: Mapping[str, float], backend: Backend = "torchscript", threads: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"DeployedDetector: invalid backend={backend!r}; valid backends are {list(BACKENDS)}")
        self.backend = backend
        self.classes: tuple[str, ...] = tuple(export_meta["classes"])
        self.min_size, self.max_size = int(export_meta["min_size"]), int(export_meta["max_size"])
        self.thresholds = {c: float(thresholds.get(c, 0.5)) for c in self.classes}
        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"{path}: missing; the deployment is incomplete. Deploy again (`longtail deploy`)")
        if backend == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export,
                self._module = torch.jit.load(str(path), map_location="cpu").eval()  # which fails on these models
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _run(self, image: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.backend == "torchscript":
            with torch.inference_mode():
                boxes, scores, labels = self._module(image)
            return boxes.numpy(), scores.numpy(), labels.numpy()
        boxes, scores, labels = self._session.run(None, {"image": image.numpy()})
        return boxes, scores, labels

    def predict(self, frames: Sequence[np.ndarray], score_threshold: float | Mapping[str, float] | None = None
                ) -> list[list[dict[str, Any]]]:
        """Detect objects in frames.

        Args:
            frames: HxWx3 uint8 RGB arrays of any size (each is resized to the model's input scale
                and its boxes scaled back).
            score_threshold: None for the deployment's per-class operating thresholds; a number (0 keeps
                every detection above the export's score floor) or class -> number to override them.

        Returns:
            Per frame, box dicts ``category, x1, y1, x2, y2, score`` in the frame's pixel edges
            (`longtail.boxes`), highest score first: `longtail.detector.predict.predict`'s format.

        Raises:
            InputError: a frame is not an HxWx3 uint8 array.
        """
        cut = self.thresholds if score_threshold is None else score_threshold
        floor = np.array([float(cut.get(c, 0.5)) if isinstance(cut, Mapping) else float(cut) for c in self.classes])
        out = []
        for frame in frames:
            image = prepare_image(frame, self.min_size, self.max_size)
            boxes, scores, labels = self._run(image)
            boxes = _rescale(boxes, (image.shape[1], image.shape[2]), (frame.shape[0], frame.shape[1]))
            keep = scores >= floor[labels] if len(labels) else np.zeros(0, bool)
            out.append([{"category": self.classes[int(lab)], "x1": float(b[0]), "y1": float(b[1]), "x2": float(b[2]),
                         "y2": float(b[3]), "score": float(s)}
                        for b, s, lab in zip(boxes[keep], scores[keep], labels[keep], strict=True)])
        return out


def load_exported(folder: str | os.PathLike[str], backend: Backend = "torchscript", threads: int | None = None
                  ) -> DeployedDetector:
    """A `DeployedDetector` from a folder holding the export, export.json and thresholds.json (no record checked).

    Raises:
        InputError: a file is missing or not JSON.
    """
    folder = Path(folder)
    if backend not in BACKENDS:
        raise ConfigError(f"load_exported: invalid backend={backend!r}; valid backends are {list(BACKENDS)}")
    metas = []
    for name in (EXPORT_META_FILE, THRESHOLDS_FILE):
        try:
            metas.append(json.loads((folder / name).read_text()))
        except FileNotFoundError:
            raise InputError(f"{folder / name}: missing; {folder} is not a complete export. Deploy again "
                             "(`longtail deploy`)") from None
        except ValueError as exc:
            raise InputError(f"{folder / name}: not JSON ({exc}); deploy again (`longtail deploy`)") from None
    export_meta, thresholds = metas
    return DeployedDetector(folder / BACKEND_FILES[backend], export_meta, thresholds["thresholds"], backend, threads)


def load_deployed_detector(deployment: str | os.PathLike[str], backend: Backend = "torchscript",
                           threads: int | None = None, root: str | os.PathLike[str] | None = None) -> DeployedDetector:
    """Open a deployment for prediction, after checking its record and the model file's sha256.

    Args:
        deployment: a deployment folder (DATA/deployments/<deployment_id>), or, with ``root``, a
            deployment id or ``"current"``.
        backend: ``torchscript`` or ``onnx``.
        threads: onnxruntime's intra-op threads (TorchScript follows ``torch.set_num_threads``).
        root: the data root, when ``deployment`` is an id.

    Returns:
        The detector; ``.predict(frames)`` applies the deployment's per-class operating thresholds.

    Raises:
        InputError: no such deployment, an incomplete one (no deployment.json), or a file whose bytes
            differ from the record.
    """
    from longtail.catalog.deployments import deployment_folder, read_record, verify_files

    folder = deployment_folder(root, str(deployment)) if root is not None else Path(deployment)
    record = read_record(folder)
    verify_files(folder, record, [BACKEND_FILES[backend], EXPORT_META_FILE, THRESHOLDS_FILE])
    return load_exported(folder, backend, threads)


# ---------------------------------------------------------------------------------------------
# Parity


def _pairs(ref: list[dict[str, Any]], cand: list[dict[str, Any]]) -> tuple[list[tuple[int, int, float]], set[int], set[int]]:
    """Greedy one-to-one matching of same-class detections, nearest first (distance: the largest
    coordinate difference, px). Returns (pairs (i, j, distance), unmatched reference, unmatched candidate)."""
    keys = ("x1", "y1", "x2", "y2")
    options = sorted((max(abs(r[k] - c[k]) for k in keys), i, j) for i, r in enumerate(ref)
                     for j, c in enumerate(cand) if r["category"] == c["category"])
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for dist, i, j in options:
        if i not in used_r and j not in used_c:
            pairs.append((i, j, dist))
            used_r.add(i)
            used_c.add(j)
    return pairs, set(range(len(ref))) - used_r, set(range(len(cand))) - used_c


def compare_detections(reference: Sequence[list[dict[str, Any]]], candidate: Sequence[list[dict[str, Any]]],
                       thresholds: Mapping[str, float], box_tolerance: float = 0.5, score_tolerance: float = 1e-3,
                       max_detections: int | None = None) -> dict[str, Any]:
    """How far an export's detections are from PyTorch's, frame by frame.

    1. In each frame, keep detections at or above their class's threshold minus ``score_tolerance``
       and match them one-to-one within a class, nearest first.
    2. ``max_box_diff`` (px) and ``max_score_diff`` are the largest differences over matched pairs.
    3. An unmatched detection is excused when its score is within ``score_tolerance`` of a cut: its
       class's threshold, or, in a frame that reached ``max_detections``, the lowest kept score (the
       top-k cut). Any other is a miss.
    4. Parity holds when both maxima are within tolerance and nothing is missed, so the count of
       detections clearly above threshold is the same.

    Args:
        reference: per frame, PyTorch's box dicts (`longtail.detector.predict.predict`).
        candidate: per frame, the export's box dicts.
        thresholds: class -> score threshold (a class left out keeps 0.5).
        box_tolerance: largest allowed coordinate difference, px.
        score_tolerance: largest allowed score difference.
        max_detections: the detector's detections per image (its top-k cut), or None.

    Returns:
        ``frames``, ``detections`` (reference, over the cut), ``max_box_diff``, ``max_score_diff``,
        ``missed`` (unexcused unmatched detections), ``count_differences`` (frames whose counts at the
        thresholds differ), ``worst_frame`` (index of the largest box difference) and ``passed``.

    Raises:
        InputError: the two lists have different lengths.
    """
    if len(reference) != len(candidate):
        raise InputError(f"compare_detections: {len(reference)} reference frame(s) but {len(candidate)} candidate(s)")
    max_box = max_score = 0.0
    missed = count_diffs = detections = 0
    worst = None
    for k, (ref_all, cand_all) in enumerate(zip(reference, candidate, strict=True)):
        def cut(b: dict[str, Any]) -> float:
            return float(thresholds.get(b["category"], 0.5))

        ref = [b for b in ref_all if b["score"] >= cut(b) - score_tolerance]
        cand = [b for b in cand_all if b["score"] >= cut(b) - score_tolerance]
        detections += len(ref)
        pairs, lone_r, lone_c = _pairs(ref, cand)
        for i, j, dist in pairs:
            if dist > max_box:
                max_box, worst = dist, k
            max_score = max(max_score, abs(ref[i]["score"] - cand[j]["score"]))
        full = max_detections is not None and max(len(ref_all), len(cand_all)) >= max_detections
        lowest = min((b["score"] for b in ref_all + cand_all), default=0.0) if full else -1.0
        for b in [ref[i] for i in lone_r] + [cand[j] for j in lone_c]:
            if b["score"] - cut(b) > score_tolerance and b["score"] - lowest > score_tolerance:
                missed += 1
                worst = k if worst is None else worst
        count_diffs += sum(b["score"] >= cut(b) for b in ref) != sum(b["score"] >= cut(b) for b in cand)
    passed = max_box <= box_tolerance and max_score <= score_tolerance and missed == 0
    return {"frames": len(reference), "detections": detections, "max_box_diff": max_box, "max_score_diff": max_score,
            "missed": missed, "count_differences": count_diffs, "worst_frame": worst, "passed": passed}
