"""The persistent FiftyOne dataset of a data root, built from the frame index incrementally.

Only frames not in the dataset yet are added, each with all its fields at creation (writing a
field afterwards is several times slower; ../shared/ENVIRONMENT.md): drive log, vehicle,
signals, triggers, image statistics, scenario tags, and labels when the frame came with them.
Frames are matched by ``frame_id``, so re-running adds nothing and changes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from longtail.catalog.frames import SIGNAL_FIELDS, index_path, load_frame_index
from longtail.catalog.monitoring import load_monitor_triggers
from longtail.curate.descriptor import STAT_NAMES
from longtail.curate.embeddings import MissingFrameError, compute_descriptors
from longtail.curate.tags import compute_image_tags, trigger_tags
from longtail.errors import LongtailError

if TYPE_CHECKING:
    import fiftyone as fo

log = logging.getLogger(__name__)

FRAME_FIELDS = ("frame_id", "image_sha256", "log_id", "source", "vehicle_id", "vehicle_type", "drive_id", "camera",
                "timestamp_ns", "keyframe", "triggers")


def _detections(labels: Any, width: int, height: int) -> Any:
    import fiftyone as fo

    from longtail.boxes import to_fiftyone

    dets = []
    for lab in labels:
        if lab["ignore"]:
            continue
        dets.append(fo.Detection(
            label=lab["category"] or lab["source_class"],
            bounding_box=to_fiftyone((lab["x1"], lab["y1"], lab["x2"], lab["y2"]), width, height),
            source_class=lab["source_class"], occluded=int(lab["occluded"]), truncated=float(lab["truncated"]),
        ))
    return fo.Detections(detections=dets)


def make_samples(root: str | os.PathLike[str], frames: pd.DataFrame, stats: np.ndarray,
                 image_tags: list[list[str]]) -> list[fo.Sample]:
    """FiftyOne samples for frame-index rows, with every field set at creation."""
    import fiftyone as fo

    root = Path(root).resolve()
    cols = {c: frames[c].tolist() for c in (*FRAME_FIELDS, *SIGNAL_FIELDS, "store_path", "width", "height",
                                            "image_bytes", "image_format", "labels")}
    samples = []
    for i in range(len(frames)):
        signals = {k: cols[k][i] for k in SIGNAL_FIELDS}
        for k, v in signals.items():
            if isinstance(v, float) and np.isnan(v):
                signals[k] = None
            elif isinstance(v, np.generic):
                signals[k] = v.item()
        triggers = list(cols["triggers"][i])
        sample = fo.Sample(
            filepath=str(root / cols["store_path"][i]),
            tags=image_tags[i] + trigger_tags(triggers),
            metadata=fo.ImageMetadata(width=int(cols["width"][i]), height=int(cols["height"][i]),
                                      size_bytes=int(cols["image_bytes"][i]),
                                      mime_type=f"image/{cols['image_format'][i]}", num_channels=3),
            **{k: (cols[k][i].item() if isinstance(cols[k][i], np.generic) else cols[k][i]) for k in FRAME_FIELDS
               if k != "triggers"},
            triggers=triggers,
            signals=fo.DynamicEmbeddedDocument(**signals),
            image_stats=fo.DynamicEmbeddedDocument(**{k: float(v) for k, v in zip(STAT_NAMES, stats[i], strict=True)}),
        )
        labels = cols["labels"][i]
        if labels is not None and len(labels):
            sample["ground_truth"] = _detections(labels, int(cols["width"][i]), int(cols["height"][i]))
        samples.append(sample)
    return samples


def check_frames_exist(root: str | os.PathLike[str], frames: pd.DataFrame) -> None:
    """Raise `MissingFrameError` naming the index file and frame of the first missing image."""
    root = Path(root)
    for log_id, path, frame_id in zip(frames["log_id"], frames["store_path"], frames["frame_id"], strict=True):
        if not (root / path).is_file():
            raise MissingFrameError(
                f"{index_path(root, log_id)}: frame {frame_id} points at {root / path}, which is not in the frame "
                f"store; nothing was added. Re-ingest the drive log (`longtail ingest --root {root} <log>`) "
                "or restore the frame store from its backup")


def add_new_frames(root: str | os.PathLike[str], dataset: fo.Dataset, batch_size: int = 1000, workers: int = 1,
                   progress: Callable[[int], None] | None = None) -> int:
    """Add the frame-index rows the dataset does not have yet; returns how many were added.

    Every new frame is checked to exist before anything is written; descriptors and image
    statistics come from the embedding cache (computed for new frames). Frames are added in
    batches, so a crash leaves whole samples only, and the next run adds the rest.

    Raises:
        MissingFrameError: when the index points at a frame file that does not exist.
    """
    index = load_frame_index(root)
    if index.empty:
        raise LongtailError(f"{Path(root) / 'index'}: no ingested frames; run `longtail ingest --root {root} <logs>` first")
    have = set(dataset.values("frame_id")) if len(dataset) else set()
    new = index[~index["frame_id"].isin(have)].reset_index(drop=True)
    if new.empty:
        return 0
    check_frames_exist(root, new)
    marked = load_monitor_triggers(root)  # the monitor's triggers (shadow disagreement, drift) join ingest's
    if marked:
        new["triggers"] = [sorted(set(t) | set(marked.get(f, ()))) for f, t in zip(new["frame_id"], new["triggers"],
                                                                                  strict=True)]
    cache = compute_descriptors(root, new["image_sha256"].tolist(), new["store_path"].tolist(), workers=workers)
    stats = cache.stats(new["image_sha256"].tolist())
    image_tags = compute_image_tags(stats)
    for start in range(0, len(new), batch_size):
        part = new.iloc[start:start + batch_size]
        samples = make_samples(root, part, stats[start:start + batch_size], image_tags[start:start + batch_size])
        dataset.add_samples(samples, progress=False)
        if progress:
            progress(len(part))
    log.info("added %d new frame(s) to FiftyOne dataset %s (%d in all)", len(new), dataset.name, len(dataset))
    return len(new)


def sync_monitor_triggers(root: str | os.PathLike[str], dataset: fo.Dataset) -> int:
    """Add the monitor's triggers (DATA/monitor/triggers, `load_monitor_triggers`) to samples that
    were in the dataset before the monitor marked them; returns how many samples changed."""
    marked = load_monitor_triggers(root)
    if not marked or not len(dataset):
        return 0
    view = dataset.select_by("frame_id", sorted(marked))
    fids, triggers, tags = view.values(["frame_id", "triggers", "tags"])
    changed = {}
    for fid, trig, tag in zip(fids, triggers, tags, strict=True):
        want = sorted(set(trig or []) | set(marked[fid]))
        if want != sorted(trig or []):
            changed[fid] = (want, sorted(set(tag or []) | set(trigger_tags(want))))
    if changed:
        sub = dataset.select_by("frame_id", sorted(changed), ordered=True)
        sub.set_values("triggers", [changed[f][0] for f in sorted(changed)])
        sub.set_values("tags", [changed[f][1] for f in sorted(changed)])
        log.info("%d sample(s) of %s carry the monitor's triggers now", len(changed), dataset.name)
    return len(changed)


def load_pool_fields(dataset: fo.Dataset) -> pd.DataFrame:
    """One row per sample with the fields selection needs, in the dataset's order."""
    fields = ["id", "frame_id", "image_sha256", "drive_id", "vehicle_type", "timestamp_ns", "triggers", "tags",
              "signals.decel_mps2", "signals.steering_rate_dps", "signals.lateral_accel_mps2", "signals.adas_alert",
              "signals.driver_override"]
    schema = dataset.get_field_schema()
    for optional in ("uniqueness", "uncertainty", "labeling_batch"):
        if optional in schema:
            fields.append(optional)
    if "ground_truth" in schema:
        fields.append("ground_truth")
    values = dataset.values([f if f != "ground_truth" else "ground_truth.detections" for f in fields])
    frame = pd.DataFrame({f.split(".")[-1] if f.startswith("signals.") else f: v for f, v in zip(fields, values, strict=True)})
    if "ground_truth" in frame:
        frame["labeled"] = frame.pop("ground_truth").map(lambda d: d is not None)
    else:
        frame["labeled"] = False
    frame["triggers"] = frame["triggers"].map(lambda t: list(t or []))
    frame["tags"] = frame["tags"].map(lambda t: list(t or []))
    return frame
