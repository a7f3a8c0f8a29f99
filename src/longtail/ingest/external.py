"""Import labelled datasets a team already has (KITTI, nuScenes 2D) into the frame index.

Images are stored untouched in the frame store, like fleet frames; their boxes come along in the
index's ``labels`` column, converted to Longtail's box convention (`longtail.boxes`) and
categories, with the dataset's own class kept in ``source_class``. An import is one "log" in the
index: its id is the sha256 over the imported files, so importing the same files again does
nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from longtail import __version__
from longtail.boxes import clip, from_coco, from_kitti
from longtail.catalog.frames import load_manifest
from longtail.errors import InputError
from longtail.ingest.features import FEATURES
from longtail.ingest.jpeg import ImageFormatError, image_size
from longtail.ingest.manifest import LogResult
from longtail.ingest.rows import frame_id
from longtail.ingest.store import FrameStore, write_index, write_manifest
from longtail.schemas import FRAME_INDEX_SCHEMA

KITTI_CLASSES: dict[str, str] = {
    "Car": "car", "Van": "car", "Truck": "truck", "Pedestrian": "pedestrian", "Person_sitting": "pedestrian",
    "Cyclist": "cyclist", "Tram": "", "Misc": "", "DontCare": "",
}
"""KITTI class -> Longtail category ("" = kept with its source class but not a Longtail category)."""

NUSCENES_CLASSES: dict[str, str] = {
    "car": "car", "truck": "truck", "trailer": "truck", "bus": "truck", "construction_vehicle": "truck",
    "bicycle": "cyclist", "motorcycle": "", "pedestrian": "pedestrian", "traffic_cone": "", "barrier": "",
}
"""nuScenes class -> Longtail category; a bicycle counts as a cyclist only with a rider."""


def _label(category: str, source_class: str, box: tuple[float, float, float, float], ignore: bool = False,
           occluded: int = -1, truncated: float = -1.0) -> dict[str, Any]:
    x1, y1, x2, y2 = box
    return {"category": category, "source_class": source_class, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            "ignore": ignore, "occluded": occluded, "truncated": truncated}


def parse_kitti_labels(path: Path, width: int, height: int) -> list[dict[str, Any]]:
    """Boxes of one KITTI label file, in Longtail's convention, clipped to the image.

    Raises:
        InputError: naming the file and line of a malformed label.
    """
    labels = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 15:
            raise InputError(f"{path}:{number}: a KITTI label has 15 fields (type truncated occluded alpha x1 y1 x2 y2 "
                             f"h w l x y z ry), found {len(parts)}")
        kind = parts[0]
        try:
            truncated, occluded = float(parts[1]), int(float(parts[2]))
            x1, y1, x2, y2 = (float(v) for v in parts[4:8])
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not a number in {line!r} ({exc})") from exc
        if x2 < x1 or y2 < y1:
            raise InputError(f"{path}:{number}: box ({x1}, {y1}, {x2}, {y2}) has x2 < x1 or y2 < y1")
        box = clip(from_kitti(x1, y1, x2, y2), width, height)
        labels.append(_label(KITTI_CLASSES.get(kind, ""), kind, box, ignore=kind == "DontCare",
                             occluded=occluded, truncated=truncated))
    return labels


def _kitti_frames(src: Path) -> tuple[list[dict[str, Any]], str, str]:
    base = src / "training" if (src / "training").is_dir() else src
    images, labels = base / "image_2", base / "label_2"
    if not images.is_dir() or not labels.is_dir():
        raise InputError(f"{src}: not a KITTI object folder; expected training/image_2 and training/label_2 in it")
    frames: list[dict[str, Any]] = []
    for image in sorted(images.glob("*.png")):
        label = labels / f"{image.stem}.txt"
        if not label.exists():
            raise InputError(f"{label}: missing; every image in {images} needs its label file")
        data = image.read_bytes()
        try:
            width, height = image_size(data, "png")
        except ImageFormatError as exc:
            raise InputError(f"{image}: {exc}") from exc
        frames.append({"file": image, "data": data, "fmt": "png", "width": width, "height": height,
                       "camera": "image_2", "t": int(image.stem) if image.stem.isdigit() else len(frames),
                       "labels": parse_kitti_labels(label, width, height), "extra": [label]})
    if not frames:
        raise InputError(f"{images}: no .png images")
    return frames, "kitti", f"kitti/{base.name}"


def _nuscenes_frames(src: Path) -> tuple[list[dict[str, Any]], str, str]:
    ann = src / "annotations_2d.json"
    if not ann.exists():
        raise InputError(f"{src}: no annotations_2d.json (COCO 2D boxes of the nuScenes sample)")
    try:
        coco = json.loads(ann.read_text())
        categories = {c["id"]: c["name"] for c in coco["categories"]}
        images = coco["images"]
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in coco["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{ann}: not COCO detection JSON (images, annotations, categories): {exc}") from exc
    frames: list[dict[str, Any]] = []
    scenes = set()
    for img in images:
        path = src / img["file_name"]
        if not path.exists():
            raise InputError(f"{ann}: image {img['file_name']!r} is missing under {src}")
        data = path.read_bytes()
        try:
            width, height = image_size(data, "jpeg")
        except ImageFormatError as exc:
            raise InputError(f"{path}: {exc}") from exc
        if (width, height) != (img["width"], img["height"]):
            raise InputError(f"{ann}: image {img['id']} is {width}x{height}, the JSON says {img['width']}x{img['height']}")
        labels = []
        for a in by_image.get(img["id"], []):
            name = categories.get(a["category_id"], "")
            category = NUSCENES_CLASSES.get(name, "")
            if name == "bicycle" and a.get("attribute") != "cycle.with_rider":
                category = ""  # a parked bicycle is not a cyclist
            labels.append(_label(category, name, clip(from_coco(a["bbox"]), width, height)))
        scenes.add(Path(img["file_name"]).name.split("__")[0])
        frames.append({"file": path, "data": data, "fmt": "jpeg", "width": width, "height": height,
                       "camera": img.get("camera", path.parent.name), "t": int(img.get("timestamp_us", 0)) * 1000,
                       "labels": labels, "extra": []})
    return frames, "nuscenes", "nuscenes/" + ",".join(sorted(scenes))


def import_dataset(fmt: str, source: str | os.PathLike[str], root: str | os.PathLike[str]) -> LogResult:
    """Import a KITTI or nuScenes-2D folder into the frame store and index of ``root``.

    Raises:
        InputError: for an unknown format, a missing folder, or malformed files (named).
    """
    start = time.perf_counter()
    src = Path(source)
    if not src.is_dir():
        raise InputError(f"{src}: no such folder")
    readers = {"kitti": _kitti_frames, "nuscenes": _nuscenes_frames}
    if fmt not in readers:
        raise InputError(f"unknown dataset format {fmt!r}; valid formats are {sorted(readers)}")
    frames, source_name, drive_id = readers[fmt](src)
    digest = hashlib.sha256()
    for f in frames:
        for part in [f["file"], *f["extra"]]:
            digest.update(str(Path(part).relative_to(src)).encode() + b"\0" + hashlib.sha256(Path(part).read_bytes()).digest())
    log_id = digest.hexdigest()
    total = sum(len(f["data"]) for f in frames)
    previous = load_manifest(root, log_id)
    if previous is not None:
        return LogResult(str(src), log_id, "skipped", int(previous["frames_kept"]), 0, 0, {},
                         ["these files were already imported"], time.perf_counter() - start, total)
    store = FrameStore(root)
    frames.sort(key=lambda f: (f["camera"], f["t"]))
    rows = []
    for f in frames:
        sha, rel = store.put(f["data"], f["fmt"])
        rows.append((f, sha, rel))
    n = len(rows)
    nan = np.full(n, np.nan, dtype=np.float32)
    table = pa.Table.from_pydict({
        "frame_id": [frame_id(log_id, f["camera"], f["t"]) for f, _, _ in rows],
        "log_id": [log_id] * n, "source": [source_name] * n, "vehicle_id": [source_name] * n,
        "vehicle_type": ["car"] * n, "drive_id": [drive_id] * n, "camera": [f["camera"] for f, _, _ in rows],
        "timestamp_ns": [f["t"] for f, _, _ in rows], "width": [f["width"] for f, _, _ in rows],
        "height": [f["height"] for f, _, _ in rows], "image_format": [f["fmt"] for f, _, _ in rows],
        "image_sha256": [sha for _, sha, _ in rows], "store_path": [rel for _, _, rel in rows],
        "image_bytes": [len(f["data"]) for f, _, _ in rows], "keyframe": [True] * n,
        **dict.fromkeys(FEATURES, nan),
        "adas_engaged": [False] * n, "driver_override": [False] * n, "adas_alert": [""] * n, "turn_signal": [""] * n,
        "latitude": np.full(n, np.nan), "longitude": np.full(n, np.nan),
        "triggers": [[] for _ in range(n)], "labels": [f["labels"] for f, _, _ in rows],
        "camera_slice": ["front"] * n, "time_step_ns": [f["t"] for f, _, _ in rows],
    }, schema=FRAME_INDEX_SCHEMA)
    counts: dict[str, int] = {}
    for f, _, _ in rows:
        for lab in f["labels"]:
            counts[lab["source_class"]] = counts.get(lab["source_class"], 0) + 1
    write_index(root, log_id, table)
    write_manifest(root, log_id, {
        "format": "longtail.ingest/1", "log_id": log_id, "path": str(src.resolve()), "bytes": total,
        "longtail_version": __version__, "status": "ingested", "reasons": [], "source": source_name,
        "dataset_format": fmt, "frames_kept": n, "keyframes": n, "labels_per_class": counts,
        "note": "test fixtures only: KITTI and nuScenes are licensed CC BY-NC-SA (non-commercial)",
        "elapsed_s": round(time.perf_counter() - start, 3),
    })
    return LogResult(str(src), log_id, "ingested", n, n, 0, {}, [], time.perf_counter() - start, total)
