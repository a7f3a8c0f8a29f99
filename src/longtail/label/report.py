"""What labeling a batch cost, what QA held back, what the labels look like, and the dataset
version they went into: tables and galleries for the label notebook.

Tables are pandas, galleries `longtail.curate.report.Gallery` (HTML with thumbnails embedded as
JPEG data URIs, so the rendered report stands alone). While people are still labeling a batch
there is nothing to show yet: the functions then return a `Pending` note instead.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from longtail.catalog.versions import SPLITS
from longtail.errors import InputError
from longtail.gallery import CATEGORY_COLORS, Gallery, gallery
from longtail.label.blur import shown_store_paths, shown_to_people
from longtail.label.oracle import LabelingCost
from longtail.label.qa import CHECKS
from longtail.label.run import LabelRun
from longtail.label.studio import labels_dir, read_label_set
from longtail.schemas import CATEGORIES

CHECK_TEXT: dict[str, str] = {
    "non_finite": "a box coordinate is not a number",
    "degenerate": "a box is too thin or inverted",
    "out_of_image": "a box reaches beyond the image",
    "unknown_class": "a box has a class outside the label set",
    "disagrees_with_prelabel": "a confident pre-label has no matching box",
    "empty_but_model_saw": "nothing was drawn where the model saw objects",
}
"""Each QA check (`longtail.label.qa.CHECKS`) in a product manager's words."""

COST_ROWS: tuple[tuple[str, str], ...] = (
    ("added", "boxes drawn from scratch"),
    ("moved", "pre-labels moved or resized"),
    ("relabeled", "pre-labels given another class"),
    ("deleted", "pre-labels deleted"),
    ("accepted", "pre-labels accepted as they were"),
    ("boxes", "boxes submitted"),
)
"""Rows of `cost_table`: a `LabelingCost` field and what it counts."""


@dataclass(frozen=True)
class Pending:
    """A note standing in for a table or gallery whose labels are not pulled yet."""

    text: str

    def _repr_html_(self) -> str:
        return f"<p><em>{html.escape(self.text)}</em></p>"

    def __repr__(self) -> str:
        return self.text


def _pending(batch_id: str) -> Pending:
    return Pending(f"Batch {batch_id} has no labels yet: people are still labeling it in Label Studio. Once every "
                   f"frame is submitted, `longtail label pull {batch_id} --root <root>` brings the labels back and "
                   "`longtail label version --root <root>` makes the dataset version (or rerun the pipeline with "
                   "`longtail run --force`).")


def label_summary(run: LabelRun) -> pd.DataFrame:
    """The label stage's outcome in one column: the batch, who labeled it, how far labeling got,
    what QA accepted and the dataset version it went into."""
    label_set, version, dvc = run.label_set, run.version, run.dvc
    rows: dict[str, Any] = {
        "labeling batch": run.batch_id,
        "Label Studio project": run.project_url,
        "labeled by": "simulated labeler" if run.oracle else "people in Label Studio",
        "frames submitted": f"{run.finished} of {run.tasks}",
        "pre-labels": run.push.get("prelabel_model") or "none (no model trained yet)",
        "frames people saw": shown_to_people(run.push.get("privacy")),
        "accepted by QA": label_set["accepted"] if label_set else "-",
        "held by QA": label_set["held"] if label_set else "-",
        "dataset version": version["version_id"] if version else "- (waiting for labels)",
        "frames in the version": version["frames"] if version else "-",
        "DVC record": dvc["dvc_file"] if dvc else "-",
    }
    return pd.Series(rows, name="label stage").to_frame()


def cost_table(manifest: Mapping[str, Any] | None) -> pd.DataFrame | Pending:
    """The labeling work a label set took: each kind of action for the batch and per frame, the
    boxes submitted and the estimated minutes (the simulated labeler's cost model,
    `longtail.label.oracle`); when the batch had pre-labels, also per frame what drawing the same
    boxes from nothing would have cost.

    Args:
        manifest: a label set manifest (`longtail.label.studio.pull_batch`); None while people
            are still labeling.
    """
    if manifest is None:
        return Pending("No labeling work to count yet: the batch is still being labeled.")
    cost = LabelingCost(**manifest["cost"])
    per_frame = cost.per_frame()
    rows: list[dict[str, Any]] = [{"work": text, "batch": int(getattr(cost, field)),
                                   "per frame": round(per_frame[field], 2)} for field, text in COST_ROWS]
    rows.append({"work": "estimated minutes", "batch": round(cost.seconds / 60, 1),
                 "per frame": round(per_frame["seconds"] / 60, 2)})
    scratch = manifest.get("cost_without_prelabels")
    if scratch and manifest.get("lineage", {}).get("prelabel_model"):
        # The same boxes drawn from nothing: what pre-labels saved.
        plain = LabelingCost(**scratch).per_frame()
        for row, (field, _) in zip(rows, COST_ROWS, strict=False):
            row["per frame without pre-labels"] = round(plain[field], 2)
        rows[-1]["per frame without pre-labels"] = round(plain["seconds"] / 60, 2)
    # object dtype: counts stay integers beside the minutes
    table = pd.DataFrame(rows, dtype=object).set_index("work")
    table.columns = [f"batch ({cost.frames} frames)", "per frame", *(["per frame without pre-labels"]
                                                                     if len(table.columns) == 3 else [])]
    return table


@dataclass(frozen=True)
class QATables:
    """Label QA of one batch: ``checks`` (one row per check: findings, frames held) and
    ``held`` (one row per held frame: its reasons). Renders both in a notebook."""

    batch_id: str
    checks: pd.DataFrame
    held: pd.DataFrame
    accepted: int
    frames: int

    def _repr_html_(self) -> str:
        head = (f"<p><b>{self.accepted} of {self.frames}</b> labeled frames of {html.escape(self.batch_id)} passed "
                f"every check; {len(self.held)} are held for review.</p>")
        held = self.held.to_html(index=False) if len(self.held) else "<p><em>No frame is held.</em></p>"
        return head + self.checks.to_html() + "<h4>Held frames</h4>" + held

    def __repr__(self) -> str:
        return (f"QA of {self.batch_id}: {self.accepted} of {self.frames} frames accepted, {len(self.held)} held\n"
                f"{self.checks.to_string()}" + (f"\n{self.held.to_string(index=False)}" if len(self.held) else ""))


def qa_table(root: str | os.PathLike[str], batch_id: str) -> QATables | Pending:
    """Label QA of a batch from its report, DATA/labels/<batch_id>/qa.json.

    Returns:
        The checks in `longtail.label.qa.CHECKS` order with what each means, its findings and
        the frames it held (a frame can be held by several checks), then the held frames with
        their reasons; `Pending` while the batch has no QA report.

    Raises:
        InputError: when the report is unreadable.
    """
    path = labels_dir(root, batch_id) / "qa.json"
    if not path.is_file():
        return _pending(batch_id)
    try:
        report = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: unreadable QA report ({exc}); pull the batch again "
                         f"(`longtail label pull {batch_id}`)") from None
    checks = pd.DataFrame([{"check": c, "what it catches": CHECK_TEXT.get(c, c),
                            "findings": report["checks"].get(c, {}).get("findings", 0),
                            "frames held": report["checks"].get(c, {}).get("frames", 0)} for c in CHECKS]
                          ).set_index("check")
    held = pd.DataFrame([{"frame_id": h["frame_id"], "reasons": "; ".join(h["reasons"])}
                         for h in report["held_frames"]], columns=["frame_id", "reasons"])
    return QATables(batch_id, checks, held, int(report["accepted"]), int(report["frames"]))


def labeled_gallery(root: str | os.PathLike[str], batch_id: str, limit: int = 8, columns: int = 4) -> Gallery | Pending:
    """Thumbnails of a batch's labeled frames, as labelers saw them (blurred), with their labels drawn
    in class colours (`longtail.curate.report.CATEGORY_COLORS`), held frames first, then in batch
    order; each captioned with its boxes, who labeled it and whether QA accepted it.

    Raises:
        InputError: when the label set is damaged or a frame image is missing.
    """
    if not (labels_dir(root, batch_id) / "manifest.json").is_file():
        return _pending(batch_id)
    _, table = read_label_set(root, batch_id)
    df = table.to_pandas()
    df = pd.concat([df[~df.accepted], df[df.accepted]]).head(limit)
    captions = [f"{len(boxes)} boxes, by {who or 'unknown'}; "
                + ("accepted" if ok else f"held: {why[0] if len(why) else 'no reason given'}")
                for boxes, who, ok, why in zip(df.boxes, df.annotator, df.accepted, df.qa_reasons, strict=True)]
    shown = shown_store_paths(root, batch_id)  # what labelers saw: the blurred copies
    frames = pd.DataFrame({"frame_id": df.frame_id, "boxes": df.boxes, "caption": captions,
                           "store_path": [shown.get(f, p) for f, p in zip(df.frame_id, df.store_path, strict=True)]})
    g = gallery(root, frames, columns=columns,
                title=f"Labels of batch {batch_id}: {len(df)} of {len(table)} frames, held by QA first")
    legend = " ".join(f'<span style="color:{CATEGORY_COLORS[c]};font-weight:bold">&#9632; {c}</span>'
                      for c in CATEGORIES)
    return Gallery(html=f'<p style="font-size:12px">{legend}</p>' + g.html, frame_ids=g.frame_ids)


def version_table(manifest: Mapping[str, Any] | None) -> pd.DataFrame | Pending:
    """A dataset version by split: frames, drive logs and boxes of each class, and a total row.

    Splits are per drive log: ``test_longtail`` and ``test_common`` come from the same test
    logs (their long-tail frames and the rest) and are never trained on.

    Args:
        manifest: a dataset version manifest (`longtail.label.version.build_version`); None
            while the batch is still being labeled.
    """
    if manifest is None:
        return Pending("No dataset version yet: it is built once the batch's labels are pulled.")
    rows = []
    for split in SPLITS:
        boxes = manifest["categories"][split]
        rows.append({"split": split, "frames": manifest["counts"][split],
                     "drive logs": len(manifest["logs"][split]), **{c: boxes.get(c, 0) for c in CATEGORIES}})
    table = pd.DataFrame(rows).set_index("split")
    table.loc["all"] = table.sum()
    # A test log holds frames of both test suites: count each drive log once.
    table.loc["all", "drive logs"] = len(manifest["lineage"]["drive_logs"])
    table.columns = ["frames", "drive logs", *(f"{c} boxes" for c in CATEGORIES)]
    return table.astype(int)


def version_summary(manifest: Mapping[str, Any] | None, dvc: Mapping[str, Any] | None = None) -> pd.DataFrame | Pending:
    """A dataset version in one column: its id, what it holds, where it came from (labeling
    batches, drive logs, parent version) and its DVC record.

    Args:
        manifest: a dataset version manifest; None while the batch is still being labeled.
        dvc: `longtail.label.version.track_version`'s record, when the version is tracked.
    """
    if manifest is None:
        return Pending("No dataset version yet: it is built once the batch's labels are pulled.")
    rows: dict[str, Any] = {
        "version": manifest["version_id"], "created at": manifest["created_at"],
        "frames": manifest["frames"], "frames held by QA (left out)": manifest["frames_held"],
        "labeling batches": ", ".join(manifest["batches"]),
        "drive logs": len(manifest["lineage"]["drive_logs"]),
        "images": f"{manifest['images']['files']} ({manifest['images']['hardlinked']} hardlinked from the frame store)",
        "long-tail test frames": manifest["long_tail_rule"],
        "previous version": manifest.get("parent") or "none (first version)",
    }
    if dvc:
        rows.update({"DVC record": dvc["dvc_file"], "DVC hash": dvc["md5"], "DVC remote": dvc["remote"]})
    return pd.Series(rows, name="dataset version").to_frame()
