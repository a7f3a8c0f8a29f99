"""What the curated pool holds and what was chosen: tables and figures for the curate notebook.

Figures are plotly, tables pandas, galleries `Gallery` (HTML that a notebook renders inline,
thumbnails embedded as JPEG data URIs so the rendered report stands alone).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import pyarrow.parquet as pq

from longtail.catalog.failure_modes import load_registry
from longtail.curate.brain import MAP_KEY
from longtail.curate.tags import IMAGE_TAGS, PREDICTION_TAGS, TRIGGER_TAG_PREFIX
from longtail.errors import InputError, LongtailError
from longtail.gallery import Gallery, gallery

if TYPE_CHECKING:
    import fiftyone as fo

NO_TAG = "no scenario tag"
BATCH_COLUMNS = ("rank", "frame_id", "drive_id", "triggers", "tags", "score", "priority", "uncertainty",
                 "fm_similarity", "fm_name", "diversity", "quota", "reason")


def primary_scenario(tags: Iterable[str]) -> str:
    """The one scenario a frame is shown as: its first trigger tag, else its first image tag
    (night, fog, rain, glare), else its first prediction tag, else `NO_TAG`."""
    tags = set(tags)
    triggers = sorted(t for t in tags if t.startswith(TRIGGER_TAG_PREFIX))
    if triggers:
        return triggers[0]
    for tag in (*IMAGE_TAGS, *PREDICTION_TAGS):
        if tag in tags:
            return tag
    return NO_TAG


def compute_tag_counts(tags: Iterable[Iterable[str]]) -> pd.Series:
    """Frames carrying each scenario tag (a frame counts once per tag; frames without any count
    as `NO_TAG`, which comes last), most frequent first, ties by name."""
    counts: Counter[str] = Counter()
    for frame_tags in tags:
        unique = set(frame_tags)
        counts.update(unique or {NO_TAG})
    return pd.Series(dict(sorted(counts.items(), key=lambda kv: (kv[0] == NO_TAG, -kv[1], kv[0]))), dtype="int64", name="frames")


def scenario_distribution(dataset: fo.Dataset | fo.DatasetView, batch: Mapping[str, Any] | None = None) -> go.Figure:
    """Bar chart of the share of frames carrying each scenario tag, for the pool and, when
    ``batch`` (a labeling batch manifest) is given, for the batch beside it.

    A frame can carry several tags, so the shares add up to 1 or more. Hover shows the counts.
    """
    frame_ids, tags = dataset.values(["frame_id", "tags"])
    pool = compute_tag_counts(tags)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=pool.index.tolist(), y=(pool / max(len(tags), 1)).tolist(), name=f"pool ({len(tags)} frames)",
                         customdata=pool.tolist(), hovertemplate="%{x}: %{customdata} frames (%{y:.1%})<extra></extra>"))
    title = f"Scenarios in the curated pool: {len(tags)} frames"
    if batch is not None:
        chosen = set(batch["frames"])
        batch_tags = [t for fid, t in zip(frame_ids, tags, strict=True) if fid in chosen]
        counts = compute_tag_counts(batch_tags).reindex(pool.index, fill_value=0)
        fig.add_trace(go.Bar(x=counts.index.tolist(), y=(counts / max(len(batch_tags), 1)).tolist(),
                             name=f"labeling batch ({len(batch_tags)} frames)", customdata=counts.tolist(),
                             hovertemplate="%{x}: %{customdata} frames (%{y:.1%})<extra></extra>"))
        title += f"; labeling batch {batch['batch_id']}: {len(batch_tags)} frames"
    fig.update_layout(title=title, barmode="group", yaxis_title="share of frames", yaxis_tickformat=".0%",
                      xaxis_title="scenario tag", height=420)
    return fig


def embedding_map(dataset: fo.Dataset, batch: Mapping[str, Any] | None = None) -> go.Figure:
    """Scatter of FiftyOne Brain's 2-D map of the frames' embeddings, one colour per scenario
    (`primary_scenario`); the frames of ``batch`` (a labeling batch manifest) ringed in black.

    Frames that look alike sit together: a scenario that forms its own island is one the pool
    can cover with a few frames; one spread thin needs many.

    Raises:
        LongtailError: when the dataset has no map yet (run curate first).
    """
    if MAP_KEY not in dataset.list_brain_runs():
        raise LongtailError(f"dataset {dataset.name!r} has no embedding map (brain key {MAP_KEY!r}); "
                            "run `longtail curate` first")
    results = dataset.load_brain_results(MAP_KEY)
    ids, frame_ids, tags, drives = dataset.values(["id", "frame_id", "tags", "drive_id"])
    by_id = {i: (f, t, d) for i, f, t, d in zip(ids, frame_ids, tags, drives, strict=True)}
    df = pd.DataFrame(results.points, columns=["x", "y"])
    df["frame_id"] = [by_id[s][0] for s in results.sample_ids]
    df["tags"] = [", ".join(sorted(by_id[s][1])) or NO_TAG for s in results.sample_ids]
    df["drive_id"] = [by_id[s][2] for s in results.sample_ids]
    df["scenario"] = [primary_scenario(by_id[s][1]) for s in results.sample_ids]
    fig = go.Figure()
    hover = "frame %{customdata[0]}<br>drive %{customdata[1]}<br>%{customdata[2]}<extra></extra>"
    for scenario, part in sorted(df.groupby("scenario"), key=lambda kv: (kv[0] == NO_TAG, kv[0])):
        fig.add_trace(go.Scattergl(x=part.x, y=part.y, mode="markers", name=f"{scenario} ({len(part)})",
                                   marker={"size": 5, "color": "#bbbbbb"} if scenario == NO_TAG else {"size": 6},
                                   customdata=part[["frame_id", "drive_id", "tags"]].to_numpy(), hovertemplate=hover))
    if batch is not None:
        part = df[df.frame_id.isin(set(batch["frames"]))]
        fig.add_trace(go.Scattergl(x=part.x, y=part.y, mode="markers", name=f"labeling batch ({len(part)})",
                                   marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"width": 1.5, "color": "black"}},
                                   customdata=part[["frame_id", "drive_id", "tags"]].to_numpy(), hovertemplate=hover))
    fig.update_layout(title=f"Embedding map ({results.config.method.upper()} of {dataset.info.get('embedding_key')}): "
                            f"{len(df)} frames", xaxis_title="component 1", yaxis_title="component 2", height=520)
    return fig


def failure_mode_table(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The failure-mode registry, one row per failure mode: open ones first, then pending, then fixed."""
    rows = [{
        "failure mode": m.name, "title": m.title, "status": m.status, "frames": m.count,
        "at discovery": m.first_count, "discovered at": m.discovered_at, "query": m.query.describe(),
        "fixed by": m.fixed_by,
    } for m in load_registry(root).values()]
    order = {"open": 0, "pending": 1, "fixed": 2}
    df = pd.DataFrame(rows)
    return df.sort_values("status", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _spread(n: int, limit: int) -> list[int]:
    """``limit`` positions spread evenly over ``range(n)`` (all of them when n <= limit)."""
    if n <= limit:
        return list(range(n))
    return [round(i * (n - 1) / (limit - 1)) for i in range(limit)] if limit > 1 else [0]


def failure_mode_galleries(root: str | os.PathLike[str], dataset: fo.Dataset, limit: int = 8,
                           columns: int = 4) -> Gallery:
    """One gallery per open failure mode: up to ``limit`` of its frames, spread over the
    matching frames in time order, each captioned with its tags.
    """
    parts: list[str] = []
    shown: list[str] = []
    for mode in load_registry(root).values():
        if mode.status != "open":
            continue
        view = mode.query.to_view(dataset).sort_by("timestamp_ns")
        frame_ids, paths, tags = view.values(["frame_id", "filepath", "tags"])
        keep = _spread(len(frame_ids), limit)
        frames = pd.DataFrame({"frame_id": [frame_ids[i] for i in keep], "store_path": [paths[i] for i in keep],
                               "caption": [", ".join(sorted(tags[i])) for i in keep]})
        g = gallery(root, frames, columns=columns,
                    title=f"{mode.title} ({mode.name}): {len(frame_ids)} frames; {mode.description}")
        parts.append(g.html)
        shown.extend(g.frame_ids)
    if not parts:
        return Gallery(html="<p><em>No failure mode is open yet: none of the registered queries matches a frame. "
                            "Ingest more drives (triggers come with hard braking, takeovers, alerts).</em></p>",
                       frame_ids=())
    return Gallery(html="".join(parts), frame_ids=tuple(shown))


def load_batch_frames(root: str | os.PathLike[str], manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The frames table of a labeling batch (DATA/batches/<batch_id>/frames.parquet), by rank.

    Raises:
        InputError: when the table is missing.
    """
    path = Path(root) / "batches" / manifest["batch_id"] / manifest.get("frames_file", "frames.parquet")
    if not path.exists():
        raise InputError(f"{path}: labeling batch {manifest['batch_id']} has no frames table; run `longtail select`")
    return pq.read_table(path).to_pandas().sort_values("rank").reset_index(drop=True)


def batch_table(root: str | os.PathLike[str], manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The chosen batch, one row per frame in the order chosen: why it was chosen and its scores."""
    df = load_batch_frames(root, manifest)
    out = df[list(BATCH_COLUMNS)].copy()
    for col in ("triggers", "tags"):
        out[col] = out[col].map(lambda v: ", ".join(v))
    return out


def batch_gallery(root: str | os.PathLike[str], manifest: Mapping[str, Any], limit: int = 16,
                  columns: int = 4) -> Gallery:
    """Thumbnails of the first ``limit`` frames of a labeling batch, captioned with rank and reason."""
    df = load_batch_frames(root, manifest).head(limit)
    frames = pd.DataFrame({"frame_id": df.frame_id, "store_path": df.store_path,
                           "caption": [f"#{r}: {why}" for r, why in zip(df["rank"], df.reason, strict=True)]})
    return gallery(root, frames, columns=columns,
                   title=f"Labeling batch {manifest['batch_id']} ({manifest['selector']}): first {len(df)} of "
                         f"{len(manifest['frames'])} frames")


def batch_summary(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """A labeling batch in one column: id, selector, budget, pool, failure modes favoured."""
    fms: Sequence[str] = manifest.get("failure_modes") or []
    return pd.Series({
        "batch": manifest["batch_id"], "selector": manifest["selector"], "frames": len(manifest["frames"]),
        "candidates in the pool": manifest["pool"]["frames"], "embedding": manifest["pool"].get("embedding_key"),
        "failure modes favoured": ", ".join(fms) or "none open", "drive logs": len(manifest["lineage"]["logs"]),
        "created at": manifest["created_at"],
    }, name="labeling batch").to_frame()
