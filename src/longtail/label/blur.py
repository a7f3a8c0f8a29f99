"""What labelers see: a copy of each frame of a batch with faces and licence plates blurred.

Label Studio shows people the batch's frames, so they leave the data root: before a push, each
frame is blurred on a copy (`longtail.privacy`); the frame store keeps the originals, which
training reads, and labels drawn on a copy apply to its original unchanged (same pixels, same
size). A frame where nothing was found is linked as it is.

    DATA/labels/<batch_id>/shown/<image sha256>.<ext>   the frames as people see them
    DATA/labels/<batch_id>/privacy.json                   what was blurred in each frame, and by what

Blurring is on by default; ``PrivacyConfig(blur=False)`` (``longtail label push --no-blur``,
``label: {blur: false}`` in the target's env file) shows the originals and says so loudly, in the
log and in the batch's records.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from longtail.catalog.root import DataRoot
from longtail.privacy import PrivacyConfig, RegionDetector, blur_frame, encode_like, make_detector, read_image
from longtail.storage import atomic_write_bytes, atomic_write_json, sha256_file

log = logging.getLogger(__name__)

SHOWN_FIELD = "shown_filepath"
"""FiftyOne field holding the file Label Studio shows for a sample (the blurred copy, or the original)."""

PRIVACY_FILE = "privacy.json"


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another file system: copy
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)  # a new directory entry: the original's bytes are never written through


def prepare_shown(root: str | os.PathLike[str], batch_id: str, frames: Mapping[str, tuple[str, str]],
                  config: PrivacyConfig | None = None, detector: RegionDetector | None = None,
                  progress: bool = False) -> tuple[dict[str, str], dict[str, Any]]:
    """Make the copies of a batch's frames that people will see, and record what was blurred.

    Args:
        root: the data root.
        batch_id: the labeling batch.
        frames: frame_id -> (path of the original image, its sha256).
        config: whether and how to blur (default: blur with OpenCV's Haar cascades).
        detector: a replacement detector (a model); default: the one ``config`` names.
        progress: show a progress bar.

    Returns:
        frame_id -> the file to show (absolute), and the privacy record (also written to
        DATA/labels/<batch_id>/privacy.json).

    Raises:
        ConfigError: when the detector's files are missing or unreadable.
        InputError: when a frame cannot be decoded.
    """
    config = config or PrivacyConfig()
    folder = DataRoot.of(root).label_set(batch_id)
    record: dict[str, Any] = {
        "batch_id": batch_id, "blurred": config.blur, "config": config.model_dump(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "frames": len(frames),
    }
    if not config.blur:
        log.warning("PRIVACY OFF: batch %s goes to people with faces and licence plates NOT blurred "
                    "(blurring switched off: --no-blur or label.blur: false); %s records it", batch_id,
                    folder / PRIVACY_FILE)
        record.update(detector=None, frames_with_regions=0, regions=dict.fromkeys(("face", "plate"), 0), per_frame={})
        atomic_write_json(folder / PRIVACY_FILE, record)
        return {fid: str(Path(path).resolve()) for fid, (path, _) in frames.items()}, record
    detector = detector or make_detector(config)
    shown_dir = DataRoot.of(root).shown_frames(batch_id).resolve()
    shown_dir.mkdir(parents=True, exist_ok=True)
    shown: dict[str, str] = {}
    per_frame: dict[str, Any] = {}
    counts = {"face": 0, "plate": 0}
    for fid, (path, sha) in tqdm(sorted(frames.items()), unit="frame", desc=f"blurring {batch_id}",
                                 disable=not progress):
        src = Path(path)
        dst = shown_dir / f"{sha}{src.suffix.lower()}"
        blurred, regions = blur_frame(read_image(src), detector, margin=config.margin)
        if regions:
            atomic_write_bytes(dst, encode_like(blurred, src.suffix))
        else:
            _link_or_copy(src, dst)
        for r in regions:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        shown[fid] = str(dst)
        per_frame[fid] = {"image_sha256": sha, "shown": str(dst.relative_to(folder.resolve())),
                          "shown_sha256": sha256_file(dst),
                          "regions": [{"kind": r.kind, "x1": r.x1, "y1": r.y1, "x2": r.x2, "y2": r.y2,
                                       "source": r.source} for r in regions]}
    record.update(detector=detector.describe(), frames_with_regions=sum(bool(f["regions"]) for f in per_frame.values()),
                  regions=counts, per_frame=per_frame)
    atomic_write_json(folder / PRIVACY_FILE, record)
    log.info("batch %s: %d face(s) and %d plate(s) blurred in %d of %d frame(s) by %s -> %s", batch_id,
             counts["face"], counts["plate"], record["frames_with_regions"], len(frames), detector.id, shown_dir)
    return shown, record


def shown_store_paths(root: str | os.PathLike[str], batch_id: str) -> dict[str, str]:
    """frame_id -> the blurred copy people saw, relative to the data root (as frame indexes give
    ``store_path``), for the batch's reports; empty when the batch was shown unblurred or before
    blurring existed (reports then show the originals, as people saw them)."""
    path = DataRoot.of(root).label_set(batch_id) / PRIVACY_FILE
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    prefix = Path("labels") / batch_id
    return {fid: str(prefix / entry["shown"]) for fid, entry in record.get("per_frame", {}).items()}


def privacy_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The short form of a privacy record kept in push.json and in the label set's lineage:
    whether people saw blurred frames, with which detector, and how much was blurred."""
    detector = record.get("detector") or {}
    return {"blurred": bool(record["blurred"]), "detector": detector.get("id"),
            "frames_with_regions": record["frames_with_regions"], "regions": dict(record["regions"]),
            "record": PRIVACY_FILE}


def shown_to_people(summary: Mapping[str, Any] | None) -> str:
    """One line saying which version of the frames labelers saw (for reports)."""
    if summary is None:
        return "originals (pushed before blurring existed)"
    if not summary["blurred"]:
        return "ORIGINALS: blurring was switched off"
    regions = summary["regions"]
    return (f"blurred by {summary['detector']}: {regions.get('face', 0)} face(s), {regions.get('plate', 0)} plate(s) "
            f"in {summary['frames_with_regions']} frame(s)")
