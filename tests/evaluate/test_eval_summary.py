"""The evaluate notebook's tables, the stable report copy and the evaluate task's record, on an evaluation
of hand-made frames whose numbers are worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from longtail.errors import InputError
from longtail.evaluate.bootstrap import BootstrapConfig
from longtail.evaluate.gate import GateConfig, SanityFloors
from longtail.evaluate.run import EvalConfig, evaluate
from longtail.evaluate.summary import (
    EVALUATION_RECORD_FIELDS,
    Note,
    class_table,
    comparison_figure,
    comparison_table,
    critical_table,
    decision_note,
    kpi_table,
    load_evaluation_record,
    promotion_note,
    publish_report,
    record_evaluation,
    slices_table,
    suites_table,
    targets_table,
)


def _box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


GT = {"f0": ("test_common", [_box("car", 10, 40, 60, 70), _box("pedestrian", 100, 20, 112, 60)]),
      "f1": ("test_common", [_box("cyclist", 70, 30, 95, 80)]),
      "f2": ("train", [_box("car", 10, 10, 50, 50)])}
FRAMES = pd.DataFrame([{"frame_id": f, "split": s, "tags": [], "triggers": [], "fm_name": "", "boxes": b, "height": 192}
                       for f, (s, b) in GT.items()])


def _evaluate(tmp_path: Path, miss_pedestrian: bool, champion: dict[str, Any] | None = None) -> dict[str, Any]:
    preds = {f: [dict(b, score=0.9) for b in boxes if not (miss_pedestrian and b["category"] == "pedestrian")]
             for f, (_, boxes) in GT.items() if f != "f2"}
    # The pedestrian is missed on purpose (AP 0): a floor at 0 lets this first model through the gate.
    config = EvalConfig(bootstrap=BootstrapConfig(min_drives=1, min_objects=1, resamples=50),
                        gate=GateConfig(sanity=SanityFloors(class_ap50=0.0)))
    return evaluate(tmp_path / "v-00000000000000aa", preds, FRAMES, champion_eval=champion,
                    model="challenger" if champion else "first", config=config)


def test_first_model_tables_show_every_number(tmp_path: Path) -> None:
    ev = _evaluate(tmp_path, miss_pedestrian=True)
    kpi = kpi_table(ev)["challenger"]
    # Car and cyclist found exactly (AP 1), pedestrian missed (AP 0): mAP = 2/3; one critical false negative.
    assert kpi["mAP@0.5"] == pytest.approx(2 / 3) and kpi["critical false negatives"] == 1
    assert kpi["critical false positives"] == 0 and kpi["test frames"] == 2
    assert "champion" not in kpi_table(ev).columns
    classes = class_table(ev)
    assert classes.loc["pedestrian", "fn"] == 1 and classes.loc["car", "ap50"] == pytest.approx(1.0)
    assert classes.loc["car", "objects"] == 1 and classes.loc["truck", "objects"] == 0
    assert critical_table(ev).loc["total", "errors"] == 1 and critical_table(ev).loc["pedestrian", "fn"] == 1
    suites = suites_table(ev)
    assert suites.loc["test_common", "status"] == "passed" and suites.loc["test_longtail", "status"] == "no_data"
    slices = slices_table(ev)
    assert slices.loc["suite:test_common", "frames"] == 2 and slices.loc["suite:test_common", "objects"] == 3
    assert isinstance(comparison_table(ev), Note) and isinstance(comparison_figure(ev), Note)
    note = decision_note(ev)
    assert note.promote and note.headline == ev["decision"]["headline"]
    assert "Decision: promote" in note._repr_html_() and str(note).startswith("Decision: promote\n")
    targets = targets_table(ev)
    assert targets.loc["pedestrian AP@0.5", "status"] == "not met" and targets.loc["car AP@0.5", "status"] == "met"
    assert str(promotion_note(ev)) == "The champion alias did not move: no promotion was attempted."


def test_against_a_champion_the_worst_change_comes_first(tmp_path: Path) -> None:
    champion = _evaluate(tmp_path, miss_pedestrian=False)
    ev = _evaluate(tmp_path, miss_pedestrian=True, champion=champion)
    kpi = kpi_table(ev)
    assert kpi.loc["critical false negatives", "champion"] == 0 and kpi.loc["critical false negatives", "change"] == 1
    assert kpi.loc["mAP@0.5", "change"] == pytest.approx(2 / 3 - 1)
    table = comparison_table(ev)
    assert isinstance(table, pd.DataFrame) and table["better"].iloc[0] is False
    assert isinstance(comparison_figure(ev), go.Figure)
    assert not decision_note(ev).promote


def test_report_is_published_and_the_record_round_trips(tmp_path: Path) -> None:
    ev = _evaluate(tmp_path, miss_pedestrian=True)
    report = tmp_path / "reports" / "evaluate-v-00000000000000aa-abc.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>decision</html>")
    stable = publish_report(report, tmp_path / "reports" / "evaluation.html")
    assert stable.read_bytes() == report.read_bytes()
    result = {"evaluation": ev, "evaluation_path": tmp_path / "evaluation.json", "report": str(report),
              "model_uri": "runs:/abc/model", "run_id": "abc", "champion_uri": None}
    record = record_evaluation(result, tmp_path / "evaluations" / "latest.json", published_report=stable)
    assert sorted(record) == sorted(EVALUATION_RECORD_FIELDS)
    assert (record["version_id"], record["promote"], record["published_report"]) == (
        "v-00000000000000aa", True, str(stable))
    assert load_evaluation_record(tmp_path / "evaluations" / "latest.json") == record


def test_missing_report_and_bad_records_say_how_to_fix_them(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone.html: evaluation report missing; run the evaluation again"):
        publish_report(tmp_path / "gone.html", tmp_path / "evaluation.html")
    with pytest.raises(InputError, match=r"latest.json: missing; no model was evaluated yet"):
        load_evaluation_record(tmp_path / "latest.json")
    (tmp_path / "latest.json").write_text(json.dumps({"run_id": "abc"}))
    with pytest.raises(InputError, match=r"not an evaluation record, lacks \['version_id'"):
        load_evaluation_record(tmp_path / "latest.json")
