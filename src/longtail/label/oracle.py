"""The simulated labeler ("oracle"): what a careful person would submit, and what it would cost.

For simulated drives the simulator's ground-truth sidecar plays the human: starting from the
detector's pre-labels, the oracle keeps what is right, moves, relabels or deletes what is wrong
and draws what is missing, and each of those actions is charged a time from the cost model
below. Real drives are labeled by people in Label Studio; the oracle never sees them.

Layout it relies on (see `longtail.sim.fleet`): a simulated log ``DIR/<stem>.mcap`` has its
ground truth in ``DIR/ground_truth/<stem>.parquet``; ingest records the log's absolute path in
its manifest (``DATA/index/logs/<log_id>.json``, field ``path``) and the simulator marks the log's
drive metadata with ``source: longtail-sim``.

Cost model. The seconds per action are assumptions of this model, not measurements made here:

- drawing a box: 7 s, the time per box of extreme clicking measured by Papadopoulos et al.,
  "Extreme clicking for efficient object annotation", ICCV 2017 (on PASCAL VOC; the traditional
  draw-then-verify protocol used for ILSVRC took about 35 s per high-quality box);
- accepting a correct pre-label: 1 s (a glance);
- adjusting a pre-label's box: 3 s (dragging one or two edges);
- deleting a ghost pre-label: 1.5 s;
- changing a pre-label's class: 2 s;
- looking over a frame for anything missed, and submitting it: 2 s, whatever it holds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from longtail.boxes import iou_matrix
from longtail.catalog.frames import load_manifest, manifest_path
from longtail.catalog.truth import GT_DIR, load_ground_truth
from longtail.errors import InputError, SchemaError, fail_config
from longtail.label.qa import BoxLike, LabelBox, as_label_box, box_array

DRAW_S = 7.0
"""Seconds to draw a missing box (extreme clicking, Papadopoulos et al., ICCV 2017): an assumption of the cost model."""
ACCEPT_S = 1.0
"""Seconds to accept a correct pre-label as it is: an assumption of the cost model."""
ADJUST_S = 3.0
"""Seconds to move or resize a pre-label's box onto the object: an assumption of the cost model."""
DELETE_S = 1.5
"""Seconds to delete a pre-label that marks nothing: an assumption of the cost model."""
RELABEL_S = 2.0
"""Seconds to change a pre-label's class: an assumption of the cost model."""
FRAME_S = 2.0
"""Seconds to look over a frame for anything missed and submit it: an assumption of the cost model."""

SIM_SOURCE = "longtail-sim"
"""The ``drive.source`` the simulator writes into its logs' metadata (`longtail.sim.drive.drive_metadata`)."""


class GroundTruthError(InputError):
    """Ground truth the simulated labeler needs is missing: the log is not simulated, or its sidecar is gone."""


@dataclasses.dataclass(frozen=True)
class LabelingCost:
    """Counts of labeling actions and the seconds they cost, over one or more frames.

    A relabeled box whose pre-label was also off by more than ``accept_iou`` counts as both
    relabeled and moved; ``boxes`` is the number of boxes submitted.
    """

    frames: int = 0
    accepted: int = 0
    moved: int = 0
    relabeled: int = 0
    deleted: int = 0
    added: int = 0
    boxes: int = 0
    seconds: float = 0.0

    def add(self, other: LabelingCost) -> LabelingCost:
        """The cost of both (sums every field)."""
        return LabelingCost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    __add__ = add

    def per_frame(self) -> dict[str, float]:
        """Every field but ``frames`` divided by the number of frames (all 0.0 for no frames)."""
        n = self.frames
        return {k: (v / n if n else 0.0) for k, v in self.as_dict().items() if k != "frames"}

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (for manifests and MLflow)."""
        return dataclasses.asdict(self)


class FrameTruth(NamedTuple):
    """The simulator's ground truth of one frame.

    ``objects`` holds one dict per object with the fields of `longtail.schemas.GT_OBJECT_TYPE`.
    The image size is not in the sidecar: take width and height from the frame index.
    """

    frame_id: str
    drive_id: str
    timestamp_ns: int
    frame_index: int
    time_of_day: str
    weather: str
    road_type: str
    scenario: str
    objects: list[dict[str, Any]]
    truth_file: str


def truth_boxes(objects: Iterable[Mapping[str, Any]], width: int, height: int, min_visible_px: float = 4,
                min_visible_fraction: float = 0.1) -> list[LabelBox]:
    """The boxes a careful person draws on a simulated frame: around what they can see.

    Args:
        objects: a ground-truth frame's objects (fields of `longtail.schemas.GT_OBJECT_TYPE`).
        width, height: image size, px.
        min_visible_px: objects whose visible box, clipped to the image, is narrower or shorter
            than this are left out (default 4 px, the simulator's own ground-truth minimum).
        min_visible_fraction: objects with less of themselves visible are left out (default 0.1).

    Returns:
        Boxes from the visible extent ``vx1, vy1, vx2, vy2`` (pixel edges, x2/y2 exclusive), clipped
        to the image, score 1.0, in the order of ``objects``.
    """
    out: list[LabelBox] = []
    for obj in objects:
        if float(obj["visible_fraction"]) < min_visible_fraction:
            continue
        x1, y1 = min(max(float(obj["vx1"]), 0.0), width), min(max(float(obj["vy1"]), 0.0), height)
        x2, y2 = min(max(float(obj["vx2"]), 0.0), width), min(max(float(obj["vy2"]), 0.0), height)
        if x2 - x1 < min_visible_px or y2 - y1 < min_visible_px:
            continue
        out.append(LabelBox(category=str(obj["category"]), x1=x1, y1=y1, x2=x2, y2=y2, score=1.0))
    return out


def find_truth_files(root: str | os.PathLike[str], log_ids: Iterable[str]) -> list[Path]:
    """The ground-truth sidecars of simulated drive logs ingested into ``root``.

    Args:
        root: the data root the logs were ingested into.
        log_ids: the logs (e.g. the ``log_id`` column of a labeling batch); repeats are fine.

    Returns:
        One sidecar per distinct log, in the order the logs first appear.

    Raises:
        GroundTruthError: listing every log that was not ingested into ``root``, is not a
            simulated drive, or whose sidecar is missing.
    """
    files: list[Path] = []
    problems: list[str] = []
    for log_id in dict.fromkeys(log_ids):
        manifest = load_manifest(root, log_id)
        if manifest is None:
            problems.append(f"log {log_id} has no manifest ({manifest_path(root, log_id)}): it was not ingested into "
                            f"{root}; ingest it there first")
            continue
        log_path = Path(str(manifest.get("path", "")))
        # Drive logs carry their source in the drive metadata; imported datasets at the top level.
        source = str((manifest.get("drive") or {}).get("source") or manifest.get("source") or "")
        if source != SIM_SOURCE:
            problems.append(f"log {log_id} ({log_path}) is not a simulated drive (source {source or 'unknown'!r}); only "
                            f"{SIM_SOURCE} logs have ground truth: label it in Label Studio instead")
            continue
        sidecar = log_path.parent / GT_DIR / f"{log_path.stem}.parquet"
        if not sidecar.is_file():
            problems.append(f"log {log_id} ({log_path}) has no ground-truth sidecar at {sidecar}; keep the fleet's "
                            f"{GT_DIR}/ folder beside its logs (or re-simulate the fleet and re-ingest it)")
            continue
        files.append(sidecar)
    if problems:
        raise GroundTruthError(f"no ground truth for {len(problems)} log(s): " + "; ".join(problems))
    return list(dict.fromkeys(files))


def load_truth(truth_files: Iterable[str | os.PathLike[str]], frames: pd.DataFrame) -> dict[str, FrameTruth]:
    """The ground truth of each frame, matched on (drive_id, timestamp_ns).

    Args:
        truth_files: ground-truth sidecars (`find_truth_files`); read in order and only until every
            frame is found. When two files hold the same drive (one plan recorded twice), the first wins.
        frames: one row per frame with columns frame_id, drive_id, timestamp_ns (a labeling batch
            or the frame index).

    Returns:
        ``frame_id`` -> `FrameTruth`, for every frame.

    Raises:
        SchemaError: when ``frames`` lacks a column, or a sidecar is not a ground-truth file.
        GroundTruthError: naming the frames with no ground truth in ``truth_files``.
    """
    missing_cols = [c for c in ("frame_id", "drive_id", "timestamp_ns") if c not in frames.columns]
    if missing_cols:
        raise SchemaError(f"frames lack column(s) {missing_cols}; pass a labeling batch or the frame index")
    files = [Path(p) for p in truth_files]
    # 1. Which frame(s) each (drive, time) key stands for; two logs of one drive share a key.
    wanted: dict[tuple[str, int], list[str]] = {}
    for fid, drive, ts in zip(frames["frame_id"], frames["drive_id"], frames["timestamp_ns"], strict=True):
        wanted.setdefault((str(drive), int(ts)), []).append(str(fid))
    n_frames = len({fid for fids in wanted.values() for fid in fids})
    out: dict[str, FrameTruth] = {}
    # 2. Read sidecars until every key is found, taking only the wanted frames' objects.
    for path in files:
        if len(out) == n_frames:
            break
        gt_frames, gt_objects = load_ground_truth(path)
        keys = list(zip(gt_frames["drive_id"].astype(str), gt_frames["timestamp_ns"].astype("int64"), strict=True))
        hit = np.array([k in wanted and wanted[k][0] not in out for k in keys], dtype=bool)
        if not hit.any():
            continue
        rows = gt_frames[hit]
        objects = gt_objects[gt_objects["frame_index"].isin(rows["frame_index"])]
        by_frame = {int(i): g.drop(columns="frame_index").to_dict("records")
                    for i, g in objects.groupby("frame_index", sort=False)}
        for row in rows.itertuples(index=False):
            key = (str(row.drive_id), int(row.timestamp_ns))
            for fid in wanted[key]:
                out[fid] = FrameTruth(
                    frame_id=fid, drive_id=key[0], timestamp_ns=key[1], frame_index=int(row.frame_index),
                    time_of_day=str(row.time_of_day), weather=str(row.weather), road_type=str(row.road_type),
                    scenario=str(row.scenario), objects=[dict(o) for o in by_frame.get(int(row.frame_index), [])],
                    truth_file=str(path),
                )
    # 3. Every frame must have its truth: a labeler that silently saw nothing would label it empty.
    missing = [(fid, drive, int(ts)) for fid, drive, ts in
               zip(frames["frame_id"], frames["drive_id"], frames["timestamp_ns"], strict=True) if str(fid) not in out]
    if missing:
        shown = "; ".join(f"frame {fid} (drive {drive}, timestamp_ns {ts})" for fid, drive, ts in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        searched = ", ".join(str(p) for p in files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        raise GroundTruthError(
            f"no ground truth for {len(missing)} of {len(frames)} frame(s): {shown}{more}; searched "
            f"{len(files)} file(s): {searched or 'none'}. Pass the sidecars of the logs these frames came from "
            "(find_truth_files(root, log_ids)); only simulated drives have ground truth, label the others in Label Studio"
        )
    return out


def plan_edits(prelabels: Iterable[BoxLike], truth: Iterable[BoxLike], match_iou: float = 0.5,
               accept_iou: float = 0.9) -> tuple[list[LabelBox], LabelingCost]:
    """What a careful person submits starting from the pre-labels, and what it costs.

    Steps:
        1. Match pre-labels to truth boxes one-to-one, greedily, highest IoU first, over pairs with
           IoU >= ``match_iou`` (ties broken by pre-label, then truth order). Classes are ignored here.
        2. A matched pre-label of the right class with IoU >= ``accept_iou`` is accepted as it is
           (its coordinates are kept); with a lower IoU it is moved onto the truth box.
        3. A matched pre-label of another class is relabeled, and also moved when its IoU is below
           ``accept_iou``.
        4. Unmatched pre-labels are deleted; unmatched truth boxes are drawn (added).

    Args:
        prelabels: the detector's boxes (internal pixel edges, with scores).
        truth: what a person would draw (`truth_boxes`).
        match_iou: least IoU for a pre-label to count as marking a truth box (default 0.5).
        accept_iou: least IoU for a person to leave a pre-label's box as it is (default 0.9).

    Returns:
        The submitted boxes (pre-label order for matched ones, then added boxes in truth order;
        every score 1.0) and the `LabelingCost` of this one frame.

    Raises:
        ConfigError: when the thresholds are not 0 < match_iou <= accept_iou <= 1.
    """
    if not 0 < match_iou <= 1:
        raise fail_config("plan_edits", "match_iou", match_iou, "Use an IoU in (0, 1].")
    if not match_iou <= accept_iou <= 1:
        raise fail_config("plan_edits", "accept_iou", accept_iou, f"Use an IoU in [match_iou={match_iou}, 1].")
    pres = [as_label_box(b) for b in prelabels]
    gts = [as_label_box(b) for b in truth]
    ious = iou_matrix(box_array(pres), box_array(gts))
    # 1. Greedy one-to-one matching.
    pi, ti = np.nonzero(ious >= match_iou)
    order = np.lexsort((ti, pi, -ious[pi, ti]))
    match: dict[int, int] = {}
    taken: set[int] = set()
    for k in order:
        p, t = int(pi[k]), int(ti[k])
        if p not in match and t not in taken:
            match[p] = t
            taken.add(t)
    # 2-4. Decide each box and count the actions.
    final: list[LabelBox] = []
    counts = dict.fromkeys(("accepted", "moved", "relabeled", "deleted", "added"), 0)
    for p, box in enumerate(pres):
        if p not in match:
            counts["deleted"] += 1
            continue
        gt = gts[match[p]]
        keep = ious[p, match[p]] >= accept_iou
        if box["category"] == gt["category"]:
            counts["accepted" if keep else "moved"] += 1
        else:
            counts["relabeled"] += 1
            counts["moved"] += not keep
        src = box if keep else gt
        final.append(LabelBox(category=gt["category"], x1=src["x1"], y1=src["y1"], x2=src["x2"], y2=src["y2"], score=1.0))
    for t, gt in enumerate(gts):
        if t not in taken:
            counts["added"] += 1
            final.append(LabelBox(category=gt["category"], x1=gt["x1"], y1=gt["y1"], x2=gt["x2"], y2=gt["y2"], score=1.0))
    seconds = (FRAME_S + ACCEPT_S * counts["accepted"] + ADJUST_S * counts["moved"] + RELABEL_S * counts["relabeled"]
               + DELETE_S * counts["deleted"] + DRAW_S * counts["added"])
    return final, LabelingCost(frames=1, boxes=len(final), seconds=seconds, **counts)


def total_cost(costs: Iterable[LabelingCost]) -> LabelingCost:
    """The sum of per-frame costs."""
    total = LabelingCost()
    for c in costs:
        total = total.add(c)
    return total
