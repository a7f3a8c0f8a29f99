"""What a training run did, for notebooks/04_train.py, and the record the evaluate task reads.

`record_train_run` writes DATA/runs/latest.json (`TRAIN_RECORD_FIELDS`): which MLflow run and
model the train task produced, on which dataset version. `load_train_record` reads it back.
The tables and the figure show the run: its outcome, its config and its per-epoch metrics
(`longtail.train.run.train`'s ``history``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from longtail.errors import ConfigError, InputError
from longtail.storage import atomic_write_json, read_json_record

log = logging.getLogger(__name__)

TRAIN_RECORD_FIELDS = ("run_id", "model_uri", "registered_model", "model_version", "tracking_uri", "version_id",
                       "dataset_digest", "epochs_done", "val_map50", "images_per_s", "stopped_by_budget", "run_dir",
                       "model_path", "config")
"""Fields of DATA/runs/latest.json: the run the train task made, for the evaluate task."""
TRAIN_RECORD_LINEAGE = ("parent", "sampling")
"""Fields of DATA/runs/latest.json added for fine-tuning: ``parent`` (the model version the run
started from, with its weights' sha256; null from scratch) and ``sampling`` (mined-frame
oversampling). Not required when reading, so records written before them still load."""

LOSS_TERMS = {"train_classification": "classification", "train_bbox_regression": "box regression",
              "train_bbox_ctrness": "centerness"}
"""FCOS's loss terms as `train_one_epoch` logs them, and their names in the figure."""


def record_train_run(result: Mapping[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the record of a training run (JSON, atomically): what the evaluate task evaluates.

    Args:
        result: what `longtail.train.run.train` returned.
        path: where to write (the pipeline's declared product, DATA/runs/latest.json).

    Returns:
        The record: `TRAIN_RECORD_FIELDS` and `TRAIN_RECORD_LINEAGE`, ``config`` as a plain dict.

    Raises:
        InputError: when ``result`` lacks a field (it is not a `train` result).
    """
    missing = [k for k in TRAIN_RECORD_FIELDS if k not in result]
    if missing:
        raise InputError(f"training result lacks field(s) {missing}; pass what longtail.train.run.train returned")
    record = {k: result[k] for k in TRAIN_RECORD_FIELDS}
    record.update({k: result.get(k) for k in TRAIN_RECORD_LINEAGE})
    config = record["config"]
    record["config"] = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    atomic_write_json(path, record)
    log.info("training run %s (%s on %s) -> %s", record["run_id"], record["model_uri"], record["version_id"], path)
    return record


def version_record_path(upstream: Mapping[str, Any] | None, version_record: str | os.PathLike[str] | None = None
                        ) -> str | None:
    """The dataset-version record (DATA/datasets/latest.json, `longtail.label.run.record_latest_version`)
    the train notebook trains on: ``version_record`` when given, else the ``version`` product of the
    one upstream task that has one (``label`` in the first turn, ``label-2`` in the second).

    Args:
        upstream: Ploomber's ``upstream`` (task name -> its products), or None outside the pipeline.
        version_record: a path that wins over ``upstream`` (a pipeline param).

    Returns:
        The path, or None when neither names one (the data root's latest.json is then used).

    Raises:
        ConfigError: several upstream tasks have a ``version`` product; name one with ``version_record``.
    """
    if version_record is not None:
        return str(version_record)
    found = {name: products["version"] for name, products in dict(upstream or {}).items()
             if isinstance(products, Mapping) and "version" in products}
    if len(found) > 1:
        raise ConfigError(f"notebooks/04_train.py: upstream tasks {sorted(found)} each have a 'version' product; "
                          "pass the one to train on as the version_record parameter")
    return str(next(iter(found.values()))) if found else None


def load_train_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training record (`record_train_run`).

    Raises:
        InputError: missing (run the train task), not JSON, or lacking a field.
    """
    return read_json_record(path, TRAIN_RECORD_FIELDS, kind="a training record", task="train",
                            missing="no model was trained yet. Run the train task (`longtail run`) or "
                                    "`longtail train --root <root>`")


def _fmt(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def train_summary(result: Mapping[str, Any]) -> pd.DataFrame:
    """A training run's outcome in one column: the MLflow run and model, the data, how long it
    trained, how fast, and its last validation mAP@0.5.

    Args:
        result: what `longtail.train.run.train` returned, or its record (`load_train_record`).
    """
    config = result["config"]
    cfg = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    history = result.get("history") or []
    train_s = sum(h.get("epoch_s", 0.0) for h in history)
    version = result.get("model_version")
    rows: dict[str, Any] = {
        "MLflow run": result["run_id"],
        "model URI": result["model_uri"],
        "registered model": f"{result['registered_model']} version {version}" if version else "not registered",
        "tracking URI": result["tracking_uri"],
        "dataset version": f"{result['version_id']} (digest {str(result['dataset_digest'])[:16]}...)",
        "preset": cfg.get("preset"),
        "epochs": f"{result['epochs_done']} of {cfg.get('epochs')}" + (
            f" (time budget of {cfg.get('max_minutes')} min spent)" if result.get("stopped_by_budget") else ""),
        "training time": f"{train_s / 60:.1f} min" if history else "n/a",
        "images/s (last epoch)": _fmt(result.get("images_per_s"), 1),
        "val mAP@0.5 (last epoch)": _fmt(result.get("val_map50")),
        "started from": (f"{result['parent']['model_uri']} (weights sha256 "
                         f"{str(result['parent']['weights_sha256'])[:16]}...)") if result.get("parent") else "scratch",
        "mined frames oversampled": (f"{result['sampling']['mined_frames']} x {result['sampling']['mined_oversample']:g}"
                                     if result.get("sampling") else "n/a"),
        "checkpoints and model": result["run_dir"],
    }
    return pd.Series(rows, name="training run").to_frame()


def config_table(config: Any) -> pd.DataFrame:
    """Every field of the `TrainConfig` a run used (also in MLflow as params and config.json)."""
    cfg = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    return pd.Series({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in cfg.items()},
                     name="value", dtype=object).to_frame()


def history_table(history: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """Per-epoch metrics, one row per epoch: loss and its terms, val mAP@0.5 and per-class AP@0.5,
    learning rate, images/s and seconds per epoch."""
    if not history:
        return pd.DataFrame(columns=["epoch"])
    table = pd.DataFrame([dict(h) for h in history])
    table["epoch"] = table["epoch"].astype(int)
    first = ["epoch", "loss", *[c for c in LOSS_TERMS if c in table], "val_map50"]
    order = [c for c in first if c in table] + sorted(c for c in table if c not in first)
    return table[order].set_index("epoch")


def history_figure(history: Sequence[Mapping[str, float]], title: str = "Training") -> go.Figure:
    """Per-epoch training loss (with its terms) and validation mAP@0.5 (with per-class AP@0.5), side by side.

    Args:
        history: `longtail.train.run.train`'s ``history``.
        title: the figure title.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Training loss (mean per epoch)",
                                                        "Validation mAP@0.5 and AP@0.5 per class"))
    epochs = [int(h["epoch"]) for h in history]
    fig.add_scatter(x=epochs, y=[h.get("loss") for h in history], name="loss", mode="lines+markers",
                    line={"width": 3}, row=1, col=1)
    for key, name in LOSS_TERMS.items():
        if any(key in h for h in history):
            fig.add_scatter(x=epochs, y=[h.get(key) for h in history], name=name, mode="lines+markers",
                            line={"dash": "dot"}, row=1, col=1)
    if any("val_map50" in h for h in history):
        fig.add_scatter(x=epochs, y=[h.get("val_map50") for h in history], name="val mAP@0.5", mode="lines+markers",
                        line={"width": 3}, row=1, col=2)
        classes = sorted({k for h in history for k in h if k.startswith("val_ap50_")})
        for key in classes:
            fig.add_scatter(x=epochs, y=[h.get(key) for h in history], name=f"AP@0.5 {key[len('val_ap50_'):]}",
                            mode="lines+markers", line={"dash": "dot"}, row=1, col=2)
    else:
        fig.add_annotation(text="no validation frames: no mAP", showarrow=False, xref="x2 domain", yref="y2 domain",
                           x=0.5, y=0.5)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="AP", range=[0, 1], row=1, col=2)
    fig.update_layout(title=title, height=380, margin={"t": 70, "b": 40})
    return fig
