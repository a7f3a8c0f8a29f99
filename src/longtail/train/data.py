"""Dataset versions as torch datasets: frames of some splits, their JPEGs and boxes as tensors.

A version folder (DATA/datasets/<version_id>/, or a SageMaker channel holding one) is read as it
is: its labels.parquet is checked against the manifest's digest and `VERSION_LABELS_SCHEMA`
before any work, and every box is checked before training starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from longtail.catalog.truth import vehicle_from_drive_id
from longtail.catalog.versions import MANIFEST_FILE
from longtail.detector.predict import load_image
from longtail.errors import SchemaError
from longtail.schemas import CATEGORIES

CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
"""Category -> the detector's label index (FCOS has no background class)."""

Target = dict[str, torch.Tensor]


def _flip_coin(seed: int, epoch: int, index: int) -> bool:
    """A fair coin from (seed, epoch, frame index) alone: the same in any worker and after a resume."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return digest[0] < 128


def repeat_factors(labels: Sequence[torch.Tensor], threshold: float, num_classes: int = len(CATEGORIES)) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., "LVIS", CVPR 2019; detectron2's RepeatFactorTrainingSampler).

    With f_c the share of frames holding class c, class c's factor is r_c = max(1, sqrt(t / f_c)),
    and a frame's factor is the largest of its classes' (1 for a frame without boxes): frames with
    rare classes (pedestrians, cyclists) are seen more often, frames of common ones once.

    Args:
        labels: each frame's class indices (`VersionDataset.targets[i]["labels"]`).
        threshold: t in (0, 1]; 0 gives every frame the factor 1 (plain sampling).
        num_classes: number of classes.

    Returns:
        float64 factors, one per frame, each >= 1.
    """
    factors = np.ones(len(labels))
    if threshold <= 0 or not len(labels):
        return factors
    present = [set(int(c) for c in lab.tolist()) for lab in labels]
    freq = np.array([sum(c in p for p in present) for c in range(num_classes)]) / len(labels)
    per_class = np.where(freq > 0, np.maximum(1.0, np.sqrt(threshold / np.maximum(freq, 1e-12))), 1.0)
    for i, p in enumerate(present):
        if p:
            factors[i] = max(per_class[c] for c in p)
    return factors


def epoch_indices(factors: np.ndarray, generator: torch.Generator) -> list[int]:
    """One epoch's frames under repeat factors, shuffled: frame i appears floor(r_i) times and once
    more with probability frac(r_i) (stochastic rounding, drawn from ``generator``)."""
    whole = np.floor(factors).astype(np.int64)
    extra = torch.rand(len(factors), generator=generator).numpy() < (factors - whole)
    counts = whole + extra
    indices = np.repeat(np.arange(len(factors)), counts)
    order = torch.randperm(len(indices), generator=generator).numpy()
    return indices[order].tolist()


def _rng(*parts: object) -> np.random.Generator:
    """A generator from its key alone: the same draws in any worker and after a resume."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class PasteCrop(NamedTuple):
    """One object of the copy-paste bank."""

    source: int  # the frame it was cut from (dataset index)
    group: str  # `paste_group` of that frame
    label: int  # `CLASS_INDEX`
    box: torch.Tensor  # float32 [4], its labeled box, pixel edges
    pixels: torch.Tensor  # float32 [3, h, w], the pixels the box touches
    region: tuple[int, int, int, int]  # x1, y1, x2, y2 of those pixels


class PasteBank:
    """Box-level copy-paste of rare classes (Ghiasi et al., "Simple Copy-Paste is a Strong Data
    Augmentation Method for Instance Segmentation", CVPR 2021, with boxes for masks).

    The bank holds the pixels of every labeled object of ``classes`` at least ``min_height`` px
    tall in the training frames. `paste` puts up to ``per_frame`` of them into a frame, each at
    the position it had in its own frame: a crop is pasted only into a frame of the same camera
    (vehicle type: the car and truck cameras differ in height and field of view, so an object's
    position and scale on one mean nothing on the other), size and lighting (night or not)
    (`paste_group`), and only where it covers no labeled box and no crop pasted before, so no
    label is hidden. Classes are drawn uniformly, then an object of the class.
    """

    def __init__(self, dataset: VersionDataset, classes: Sequence[str], per_frame: int, min_height: float = 8.0
                 ) -> None:
        self.per_frame = per_frame
        self.crops: list[PasteCrop] = []
        wanted = {CLASS_INDEX[c] for c in classes}
        for index, target in enumerate(dataset.targets):
            objects = [(label, box) for label, box in zip(target["labels"].tolist(), target["boxes"], strict=True)
                       if label in wanted and float(box[3] - box[1]) >= min_height]
            if not objects:
                continue
            row = dataset.frames.iloc[index]
            image = load_image(dataset.folder / row["image_path"])
            group = dataset.groups[index]
            for label, box in objects:
                x1, y1 = (math.floor(v) for v in box[:2].tolist())  # the pixels the box touches
                x2, y2 = (math.ceil(v) for v in box[2:].tolist())
                self.crops.append(PasteCrop(index, group, label, box.clone(), image[:, y1:y2, x1:x2].clone(),
                                            (x1, y1, x2, y2)))
        by_class: dict[tuple[str, int], list[int]] = {}  # (group, label) -> indices into crops
        for k, crop in enumerate(self.crops):
            by_class.setdefault((crop.group, crop.label), []).append(k)
        self.pools: dict[str, list[list[int]]] = {}  # group -> its classes' crop indices, in label order
        for (group, _), ks in sorted(by_class.items()):
            self.pools.setdefault(group, []).append(ks)

    def __len__(self) -> int:
        return len(self.crops)

    def paste(self, image: torch.Tensor, target: Target, index: int, group: str, rng: np.random.Generator
              ) -> tuple[torch.Tensor, Target]:
        """Paste up to ``per_frame`` crops into ``image`` (in place) and add their boxes to ``target``."""
        pools = self.pools.get(group)
        if not pools:
            return image, target
        taken = [tuple(b) for b in target["boxes"].tolist()]
        boxes, labels = [], []
        for _ in range(self.per_frame):
            pool = pools[int(rng.integers(len(pools)))]
            crop = self.crops[pool[int(rng.integers(len(pool)))]]
            x1, y1, x2, y2 = crop.region
            if crop.source == index or any(x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2 for b in taken):
                continue
            image[:, y1:y2, x1:x2] = crop.pixels
            taken.append(crop.region)
            boxes.append(crop.box)
            labels.append(crop.label)
        if boxes:
            target["boxes"] = torch.cat([target["boxes"], torch.stack(boxes)])
            target["labels"] = torch.cat([target["labels"], torch.tensor(labels, dtype=torch.int64)])
        return image, target


def load_drive_vehicles(folder: str | os.PathLike[str]) -> dict[str, str]:
    """drive_id -> vehicle type from a version's manifest (``split.profiles``, versions split by drive);
    empty for older versions or a folder without a manifest."""
    path = Path(folder) / MANIFEST_FILE
    try:
        profiles = (json.loads(path.read_text()).get("split") or {}).get("profiles") or {}
    except (OSError, ValueError):
        return {}
    return {str(d): str(p.get("vehicle_type") or "") for d, p in profiles.items() if p.get("vehicle_type")}


def frame_vehicle_type(row: Any, drive_vehicles: dict[str, str]) -> str:
    """The recording vehicle of a labels-table row, first known of: a ``vehicle_type`` column, the
    manifest's drive profile, a ``car-``/``truck-`` drive id, a ``truck_view`` tag; else ``unknown``."""
    vt = str(row.get("vehicle_type") or "") or drive_vehicles.get(str(row.get("drive_id")), "")
    if vt and vt != "unknown":
        return vt
    drive = str(row.get("drive_id") or "")
    vt = vehicle_from_drive_id(drive)
    if not vt and row.get("tags") is not None and "truck_view" in set(row["tags"]):
        vt = "truck"
    return vt or "unknown"


def paste_group(row: Any, vehicle_type: str) -> str:
    """Frames whose objects can be swapped: same camera (vehicle type), size and lighting."""
    night = "night" in set(row["tags"]) if row.get("tags") is not None else False
    return f"{vehicle_type}:{row['width']}x{row['height']}:{'night' if night else 'day'}"


HAZE_STRENGTH = (0.2, 0.7)
"""Range of the haze's opacity: fog of 40-180 m visibility fades an object 30-50 m away by 0.5-0.8."""


def add_haze(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Fade a frame toward a uniform haze, as fog or rain fades distant objects (a new tensor).

    ``image * (1 - a) + level * a`` with opacity ``a`` drawn from `HAZE_STRENGTH` and a near-grey
    ``level``: the frame's mean brightness times U(0.9, 1.4), each channel tinted by U(0.95, 1.05)
    and clipped to [0.03, 0.92], so a night frame fades to a dark haze and a day frame to a light one.
    Boxes keep their place; only the contrast of what they hold drops.
    """
    a = float(rng.uniform(*HAZE_STRENGTH))
    level = float(image.mean()) * float(rng.uniform(0.9, 1.4))
    tint = rng.uniform(0.95, 1.05, image.shape[0])
    color = torch.as_tensor(np.clip(level * tint, 0.03, 0.92), dtype=image.dtype).view(-1, 1, 1)
    return image.mul(1.0 - a).add_(color * a)


class VersionDataset(Dataset[tuple[torch.Tensor, Target]]):
    """Frames of some splits of a dataset version: (image, target) pairs for torchvision detectors.

    Images are float32 RGB tensors [3, H, W] in 0..1; targets hold ``boxes`` (float32 [N, 4],
    x1, y1, x2, y2 in pixel edges, x2/y2 exclusive: `longtail.boxes`), ``labels`` (int64 [N],
    `CLASS_INDEX`) and ``index`` (the row, for looking the frame up).
    """

    def __init__(self, folder: str | os.PathLike[str], frames: pd.DataFrame, version_id: str,
                 hflip: bool = False, seed: int = 0, paste_per_frame: int = 0,
                 paste_classes: Sequence[str] = (), haze: float = 0.0) -> None:
        self.folder = Path(folder)
        self.frames = frames.reset_index(drop=True)
        self.version_id = version_id
        self.hflip = hflip
        self.haze = haze
        self.seed = seed
        self.epoch = 0
        self.targets = [boxes_to_target(row.boxes, version_id, row.frame_id, row.width, row.height)
                        for row in self.frames.itertuples()]
        vehicles = load_drive_vehicles(self.folder)
        self.groups = [paste_group(row, frame_vehicle_type(row, vehicles)) for _, row in self.frames.iterrows()]
        self.paste_bank = PasteBank(self, paste_classes, paste_per_frame) if paste_per_frame and paste_classes else None

    def set_epoch(self, epoch: int) -> None:
        """Choose this epoch's random flips (the same for the same seed and epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        row = self.frames.iloc[index]
        image = load_image(self.folder / row["image_path"])
        target = {"boxes": self.targets[index]["boxes"].clone(), "labels": self.targets[index]["labels"].clone(),
                  "index": torch.tensor(index)}
        if self.paste_bank is not None:
            image, target = self.paste_bank.paste(image, target, index, self.groups[index],
                                                  _rng("paste", self.seed, self.epoch, index))
        if self.hflip and _flip_coin(self.seed, self.epoch, index):
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = target["boxes"]
            target["boxes"] = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
        if self.haze > 0:
            rng = _rng("haze", self.seed, self.epoch, index)
            if rng.random() < self.haze:
                image = add_haze(image, rng)
        return image, target


def boxes_to_target(boxes: Sequence[dict[str, Any]], version_id: str, frame_id: str, width: int, height: int
                    ) -> Target:
    """Turn a frame's box dicts into detector targets, refusing any degenerate or unknown box.

    Args:
        boxes: dicts with ``category`` and ``x1, y1, x2, y2`` (pixel edges, x2/y2 exclusive).
        version_id: the version, for the error message.
        frame_id: the frame, for the error message.
        width: image width, px.
        height: image height, px.

    Returns:
        ``{"boxes": float32 [N, 4], "labels": int64 [N]}``.

    Raises:
        SchemaError: a box is non-finite, empty (x2 <= x1 or y2 <= y1), outside the image, or of
            an unknown category; the message names the version, frame and box.
    """
    coords: list[list[float]] = []
    labels: list[int] = []
    for i, box in enumerate(boxes):
        xyxy = [math.nan if box[k] is None else float(box[k]) for k in ("x1", "y1", "x2", "y2")]  # None: missing
        where = f"dataset version {version_id}, frame {frame_id}, box {i} {box['category']} {xyxy}"
        if box["category"] not in CLASS_INDEX:
            raise SchemaError(f"{where}: unknown category; valid are {list(CATEGORIES)}. Rebuild the version.")
        if not all(math.isfinite(v) for v in xyxy):
            raise SchemaError(f"{where}: non-finite coordinate. Fix the label and rebuild the version.")
        x1, y1, x2, y2 = xyxy
        if x2 <= x1 or y2 <= y1:
            raise SchemaError(f"{where}: degenerate box (x2 <= x1 or y2 <= y1). Fix the label and rebuild the version.")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise SchemaError(f"{where}: outside the {width}x{height} image. Fix the label and rebuild the version.")
        coords.append([x1, y1, x2, y2])
        labels.append(CLASS_INDEX[box["category"]])
    return {"boxes": torch.tensor(coords, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64)}


def select_frames(frames: pd.DataFrame, splits: Sequence[str], limit: int | None = None) -> pd.DataFrame:
    """Frames of ``splits``, in frame_id order, the first ``limit`` of them when given."""
    out = frames[frames["split"].isin(list(splits))].sort_values("frame_id", kind="stable")
    return out.head(limit) if limit else out


def collate(batch: Sequence[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Batch of (image, target) -> (list of images, list of targets): detectors take images of any size."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
