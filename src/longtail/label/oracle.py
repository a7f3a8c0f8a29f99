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
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from longtail.boxes import iou_matrix
from longtail.errors import fail_config
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
