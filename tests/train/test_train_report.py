"""The train notebook's tables and figure, and the record the evaluate task reads (DATA/runs/latest.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longtail.errors import InputError
from longtail.train.config import TrainConfig
from longtail.train.report import (
    TRAIN_RECORD_FIELDS,
    TRAIN_RECORD_LINEAGE,
    config_table,
    history_figure,
    history_table,
    load_train_record,
    record_train_run,
    train_summary,
)

HISTORY = [
    {"epoch": 1.0, "loss": 3.0, "train_classification": 1.2, "train_bbox_regression": 1.0, "train_bbox_ctrness": 0.8,
     "lr": 1e-3, "images_per_s": 30.0, "epoch_s": 60.0, "val_map50": 0.2, "val_ap50_car": 0.3, "val_ap50_truck": 0.1},
    {"epoch": 2.0, "loss": 2.0, "train_classification": 0.7, "train_bbox_regression": 0.7, "train_bbox_ctrness": 0.6,
     "lr": 5e-4, "images_per_s": 40.0, "epoch_s": 60.0, "val_map50": 0.5, "val_ap50_car": 0.6, "val_ap50_truck": 0.4},
]


def _result(**overrides: Any) -> dict[str, Any]:
    result = {"run_id": "a" * 32, "model_uri": f"runs:/{'a' * 32}/model", "registered_model": "longtail-detector",
              "model_version": "3", "tracking_uri": "sqlite:////data/mlflow/mlflow.db", "version_id": "v-00000000000000aa",
              "dataset_digest": "d" * 64, "epochs_done": 2, "val_map50": 0.5, "images_per_s": 40.0,
              "stopped_by_budget": True, "run_dir": f"/data/runs/{'a' * 32}", "model_path": "/data/runs/x/model.pt",
              "config": TrainConfig(epochs=12, max_minutes=2.0), "history": HISTORY, "model": object()}
    result.update(overrides)
    return result


def test_the_record_round_trips_without_the_model_or_history(tmp_path: Path) -> None:
    record = record_train_run(_result(), tmp_path / "runs" / "latest.json")
    assert sorted(record) == sorted(TRAIN_RECORD_FIELDS + TRAIN_RECORD_LINEAGE) and record["config"]["epochs"] == 12
    assert record["parent"] is None and record["sampling"] is None  # a result from before fine-tuning existed
    assert json.loads((tmp_path / "runs" / "latest.json").read_text()) == record
    assert load_train_record(tmp_path / "runs" / "latest.json") == record


def test_bad_results_and_records_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"training result lacks field\(s\) \['model_uri'\]"):
        record_train_run({k: v for k, v in _result().items() if k != "model_uri"}, tmp_path / "r.json")
    with pytest.raises(InputError, match=r"r.json: missing; no model was trained yet. Run the train task"):
        load_train_record(tmp_path / "r.json")
    (tmp_path / "r.json").write_text(json.dumps({"run_id": "x"}))
    with pytest.raises(InputError, match=r"not a training record, lacks \['model_uri'"):
        load_train_record(tmp_path / "r.json")


def test_summary_says_the_time_budget_stopped_it() -> None:
    table = train_summary(_result())["training run"]
    assert table["epochs"] == "2 of 12 (time budget of 2.0 min spent)"
    assert table["training time"] == "2.0 min" and table["val mAP@0.5 (last epoch)"] == "0.500"
    assert table["registered model"] == "longtail-detector version 3"
    summary = train_summary(_result(model_version=None, val_map50=None, stopped_by_budget=False, history=[]))
    assert summary["training run"]["registered model"] == "not registered"
    assert summary["training run"]["val mAP@0.5 (last epoch)"] == "n/a"


def test_history_table_leads_with_loss_and_val_map_per_epoch() -> None:
    table = history_table(HISTORY)
    assert list(table.index) == [1, 2]
    assert list(table.columns[:5]) == ["loss", "train_classification", "train_bbox_regression", "train_bbox_ctrness",
                                       "val_map50"]
    assert table.loc[2, "val_ap50_car"] == 0.6 and history_table([]).empty


def test_history_figure_draws_loss_terms_and_per_class_ap() -> None:
    names = [t.name for t in history_figure(HISTORY).data]
    assert names == ["loss", "classification", "box regression", "centerness", "val mAP@0.5", "AP@0.5 car",
                     "AP@0.5 truck"]
    no_val = history_figure([{k: v for k, v in h.items() if not k.startswith("val_")} for h in HISTORY])
    assert [t.name for t in no_val.data][-1] == "centerness"
    assert no_val.layout.annotations[-1].text == "no validation frames: no mAP"


def test_config_table_lists_every_field() -> None:
    table = config_table(TrainConfig())
    assert set(table.index) == set(TrainConfig.model_fields) and table.loc["train_splits", "value"] == '["train"]'
