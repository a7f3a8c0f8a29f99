"""The whole DAG on the ci target, in-process, so a failure stops inside the failing task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longtail.errors import ConfigError
from longtail.label import server
from longtail.pipeline import load_env, make_dag


@pytest.mark.slow
@pytest.mark.timeout(2400)  # both turns of the loop: about 10 minutes on a quiet 2-core machine
@pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")  # DVC 3.67 reads pygtrie's deprecated API
def test_pipeline_builds_on_the_ci_target(tmp_path: Path) -> None:
    env = load_env("ci")
    # The test session shares one MongoDB: name the pipeline's FiftyOne dataset after this test.
    overrides = {"root": str(tmp_path), "curate": {**env["curate"], "dataset": "t-pipeline"}}
    dag = make_dag("ci", overrides=overrides, in_process=True)
    try:
        _build_and_check(dag, env, tmp_path, overrides)
    finally:
        server.stop(tmp_path)  # the label notebook leaves the data root's Label Studio running for people


def _outputs(notebook: Path) -> list[dict]:
    cells = json.loads(notebook.read_text())["cells"]
    return [o for cell in cells if cell["cell_type"] == "code" for o in cell.get("outputs", [])]


def _build_and_check(dag: Any, env: dict, tmp_path: Path, overrides: dict) -> None:
    dag.build(force=True, show_progress=False)
    manifest = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    assert len(manifest["drives"]) == env["sim"]["vehicles"] * env["sim"]["drives_per_vehicle"]
    notebook = json.loads((tmp_path / "reports" / "00_simulate.ipynb").read_text())
    outputs = [o for cell in notebook["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(f"fleet ({len(manifest['drives'])} drives)" in "".join(o.get("text", "")) for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows frames and signals"
    # Ingest: every simulated log indexed, and the notebook shows the table, a timeline and frames.
    from longtail.catalog.frames import list_manifests, load_frame_index

    week2 = env["turn2"]["sim"]["vehicles"]  # turn 2 ingests the second week into the same index
    assert sorted(m["status"] for m in list_manifests(tmp_path)) == ["ingested"] * (len(manifest["drives"]) + week2)
    assert len(load_frame_index(tmp_path)) > 0
    ingest_nb = json.loads((tmp_path / "reports" / "01_ingest.ipynb").read_text())
    outputs = [o for cell in ingest_nb["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("plotly" in str(o.get("data", {}).get("text/html", "")) for o in outputs)
    # Curate: every frame in the dataset, one labeling batch of the budget, and the notebook shows
    # figures, tables and thumbnails.
    from longtail.curate.run import list_batches

    curated = json.loads((tmp_path / "curate" / "manifest.json").read_text())
    assert curated["dataset"] == "t-pipeline" and curated["samples"] == len(load_frame_index(tmp_path))
    from longtail.curate.run import selected_batch

    batch_id = selected_batch(tmp_path)  # turn 1's batch (the curate task's record)
    first = [b for b in list_batches(tmp_path) if b["batch_id"] == batch_id]
    assert [len(b["frames"]) for b in first] == [env["curate"]["budget"]]
    assert (tmp_path / "batches" / batch_id / "frames.parquet").is_file()
    curate_nb = json.loads((tmp_path / "reports" / "02_curate.ipynb").read_text())
    outputs = [o for cell in curate_nb["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    assert sum("plotly" in h for h in html) >= 4, "scenario distribution and embedding map, pool and batch"
    assert any(batch_id in h and "data:image/jpeg;base64," in h for h in html), "the batch's frames"
    # Label: the simulated labeler labeled the whole batch in Label Studio, QA ran, and the accepted
    # frames went into a dataset version tracked by DVC.
    from longtail.catalog.versions import list_versions, load_version
    from longtail.label.studio import read_label_set

    labels, table = read_label_set(tmp_path, batch_id)
    assert labels["source"] == "oracle" and labels["frames"] == env["curate"]["budget"] == table.num_rows
    assert labels["accepted"] + labels["held"] == labels["frames"] and labels["accepted"] > 0
    assert labels["cost"]["added"] == labels["cost"]["boxes"] > 0, "no model yet: every box is drawn"
    assert (tmp_path / "labels" / batch_id / "qa.json").is_file()
    from longtail.label.run import latest_version

    vid = latest_version(tmp_path)  # turn 1's version (the label task's record)
    [version] = [v for v in list_versions(tmp_path) if v["version_id"] == vid]
    assert version["counts"]["train"] > 0 and version["counts"]["test_longtail"] + version["counts"]["test_common"] > 0, \
        "the ci fleet's seed puts drive logs in train and test"
    frames, _ = load_version(tmp_path, vid, check_images=True)
    assert len(frames) == version["frames"] == labels["accepted"] and version["batches"] == [batch_id]
    assert (tmp_path / "datasets" / vid / "manifest.json").is_file()
    assert (tmp_path / "datasets" / f"{vid}.dvc").is_file() and (tmp_path / ".dvc" / "config").is_file()
    outputs = _outputs(tmp_path / "reports" / "03_label.ipynb")
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    for shown in ("frames submitted", "boxes drawn from scratch", "what it catches", "test_longtail",
                  f"datasets/{vid}.dvc"):
        assert any(shown in h for h in html), f"the label report shows {shown!r}"
    assert any(f"Labels of batch {batch_id}" in h and "data:image/jpeg;base64," in h for h in html), "the gallery"
    _check_train_and_evaluate(tmp_path, version)
    _check_deploy(tmp_path)
    _check_fleet_test(tmp_path)
    _check_turn_two(tmp_path, env, batch_id, vid)
    # A second build finds nothing to do: the products stay as they were, and the build says so.
    products = (tmp_path / "fleet" / "fleet.json", tmp_path / "curate" / "manifest.json",
                tmp_path / "batches" / batch_id / "manifest.json", tmp_path / "labels" / batch_id / "manifest.json",
                tmp_path / "datasets" / vid / "manifest.json", tmp_path / "datasets" / "latest.json",
                tmp_path / "runs" / "latest.json", tmp_path / "evaluations" / "latest.json",
                tmp_path / "reports" / "evaluation.html", tmp_path / "deployments" / "current.json",
                tmp_path / "fleet_test" / "fleet_test.json", tmp_path / "reports" / "fleet_test.html",
                tmp_path / "reports" / "monitoring.html", tmp_path / "index" / "ingest-2.json",
                tmp_path / "curate" / "selected_batch-2.json", tmp_path / "datasets" / "turn-2.json",
                tmp_path / "runs" / "turn-2.json", tmp_path / "evaluations" / "turn-2.json",
                tmp_path / "deployments" / "turn-2.json", tmp_path / "fleet_test-2" / "fleet_test.json",
                tmp_path / "reports" / "evidence" / "turn-1.json", tmp_path / "reports" / "evidence" / "turn-2.json")
    stamps = [p.stat().st_mtime_ns for p in products]
    from longtail.pipeline import outdated_tasks, task_times

    assert outdated_tasks("ci", overrides) == []
    report = task_times(dag.build(show_progress=False))
    assert [p.stat().st_mtime_ns for p in products] == stamps
    assert len(report) == len(dag) and not [t["task"] for t in report if t["ran"]]
    # `longtail run --target ci` itself: nothing to rebuild, it says so, and it prints both turns, the lineage
    # command and the KPI report last.
    import contextlib
    import io

    from longtail.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "--target", "ci", "--root", str(tmp_path), "--set", "curate.dataset=t-pipeline"]) == 0
    printed = out.getvalue()
    assert [line.split(" (")[0] for line in printed.splitlines() if line.startswith("Turn ")] == ["Turn 1", "Turn 2"]
    assert "longtail lineage models:/longtail-detector@champion" in printed and "Evidence pack: " in printed
    assert f"Nothing changed since the last run: all {len(dag)} tasks are up to date" in printed
    kpi_text = json.loads((tmp_path / "reports" / "kpi.json").read_text())["headline"]
    assert printed.rstrip().splitlines()[-1] and kpi_text in printed.split("KPI report of turn 2")[-1]
    # Changing one parameter reruns only what depends on it: turn 2's labeling budget.
    changed = {**overrides, "turn2.curate.budget": env["turn2"]["curate"]["budget"] + 1}
    assert set(outdated_tasks("ci", changed)) == {
        "curate-2", "label-2", "train-2", "evaluate-2", "deploy-2", "fleet-test-2", "evidence-2", "kpi"}
    # Without the simulated labeler a batch waits for people in Label Studio; once they have submitted
    # every frame, the next run pulls it and builds a new version on top of the first.
    _people_label_a_later_batch(tmp_path, latest_version(tmp_path, path=tmp_path / "datasets" / "turn-2.json"))


def _check_train_and_evaluate(root: Path, version: dict) -> None:
    """The train task trained on the label task's version and registered the model in MLflow with the version's
    digest; the evaluate task evaluated that model on the version's test suites and published the report."""
    from mlflow import MlflowClient

    from longtail.evaluate.run import load_evaluation
    from longtail.evaluate.summary import load_evaluation_record
    from longtail.label.run import latest_version
    from longtail.train.report import load_train_record

    vid = version["version_id"]
    assert latest_version(root) == vid
    trained = load_train_record(root / "runs" / "latest.json")
    assert (trained["version_id"], trained["dataset_digest"]) == (vid, version["digest"])
    assert trained["epochs_done"] >= 1 and (root / "runs" / trained["run_id"] / "model.pt").is_file()
    client = MlflowClient(trained["tracking_uri"])
    assert trained["tracking_uri"] == f"sqlite:///{(root / 'mlflow' / 'mlflow.db').resolve()}"
    registered = client.get_model_version(trained["registered_model"], trained["model_version"])
    assert registered.run_id == trained["run_id"] and registered.tags["dataset_version"] == vid
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["longtail.dataset_digest"] == version["digest"]
    assert [(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs] == [(vid, version["digest"][:36])]
    outputs = _outputs(root / "reports" / "04_train.ipynb")
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    assert sum("plotly" in h for h in html) >= 1, "the learning curves"
    for shown in (trained["run_id"], trained["model_uri"], "images/s (last epoch)", "val mAP@0.5"):
        assert any(shown in h for h in html), f"the train report shows {shown!r}"
    # Evaluate: the record names the trained model, evaluation.json has the version's test frames, and the
    # stable report is the evaluation's own, opening with the decision.
    record = load_evaluation_record(root / "evaluations" / "latest.json")
    registered_uri = f"models:/{trained['registered_model']}/{trained['model_version']}"
    assert (record["run_id"], record["model_uri"], record["version_id"]) == (trained["run_id"], registered_uri, vid)
    evaluation = load_evaluation(record["evaluation_path"])
    assert evaluation["frames"] == version["counts"]["test_longtail"] + version["counts"]["test_common"]
    assert evaluation["decision"]["headline"] == record["headline"] and record["champion_uri"] is None
    # The ci target's sanity floors are 0: the first model becomes champion, through the gate, with its
    # per-class thresholds calibrated on validation and the decision's evidence on the model version.
    from longtail.detector.registry import champion_version

    assert evaluation["decision"]["promotion"]["done"] is True
    turn_two = load_train_record(root / "runs" / "turn-2.json")["model_version"]  # turn 2 may have moved it on
    assert champion_version(trained["tracking_uri"]) in (trained["model_version"], turn_two)
    tags = client.get_model_version(trained["registered_model"], trained["model_version"]).tags
    assert tags["longtail.decision"] == "promote" and tags["longtail.promoted_by"] == "gate"
    assert set(evaluation["operating_thresholds"]) == {"car", "truck", "pedestrian", "cyclist"}
    page = (root / "reports" / "evaluation.html").read_text()
    assert record["published_report"] == str(root / "reports" / "evaluation.html")
    assert page == Path(record["report"]).read_text()
    assert "<body><section id='decision'" in page and "Decision: " in page
    outputs = _outputs(root / "reports" / "05_evaluate.ipynb")
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert f"Report for product managers: {root / 'reports' / 'evaluation.html'}" in text
    assert record["evaluation_path"] in text
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    assert any("longtail-decision" in h for h in html), "the decision"
    assert sum("plotly" in h for h in html) >= 3, "critical errors, per-class AP and slice mAP figures"
    for shown in ("regression suites passed", "test_longtail", "pedestrian", "No champion yet", "The champion alias now"):
        assert any(shown in h for h in html), f"the evaluate report shows {shown!r}"


def _turn_one_deployment(root: Path) -> dict:
    """Turn 1's deployment: the one its fleet test drove (current.json moves on when turn 2 promotes)."""
    from longtail.catalog.deployments import load_deployment

    tested = json.loads((root / "fleet_test" / "fleet_test.json").read_text())["deployment"]["deployment_id"]
    return load_deployment(root, tested)


def _check_deploy(root: Path) -> None:
    """The deploy task deployed the champion the gate promoted, with exports that passed parity, and the
    notebook shows the parity table and the model card."""
    from longtail.catalog.deployments import verify_files
    from longtail.train.report import load_train_record

    record = _turn_one_deployment(root)
    trained = load_train_record(root / "runs" / "latest.json")
    assert record["model"]["uri"] == f"models:/{trained['registered_model']}/{trained['model_version']}"
    assert record["parity"]["passed"]
    verify_files(record["path"], record)
    outputs = _outputs(root / "reports" / "06_deploy.ipynb")
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = "".join(str(o.get("data", {})) for o in outputs)
    for text in (record["deployment_id"], "max box difference (px)", "## Intended use", "## Known failure modes"):
        assert text in shown, f"the deploy notebook shows {text!r}"


def _check_fleet_test(root: Path) -> None:
    """The fleet-test task drove the test fleet with the deployment beside truth perception (rates per
    100 km with intervals, the model's boxes in its logs, a report)."""
    record = _turn_one_deployment(root)
    results = json.loads((root / "fleet_test" / "fleet_test.json").read_text())
    assert sorted(results["arms"]) == ["deployed", "truth"]
    assert {(r["arm"], r["metric"]) for r in results["rates"] if r["scenario"] == "all"} >= {
        (arm, m) for arm in ("truth", "deployed") for m in ("disengagement", "phantom_braking", "missed_hazard")}
    assert sorted((root / "fleet_test" / "deployed").glob("*.mcap"))
    report = (root / "reports" / "fleet_test.html").read_text()
    assert record["deployment_id"] in report and "per 100 km" in report
    assert not [o for o in _outputs(root / "reports" / "07_fleet_test.ipynb") if o.get("output_type") == "error"]


def _check_turn_two(root: Path, env: dict, first_batch: str, first_version: str) -> None:
    """Turn 2: the second week's logs came in and were monitored against the champion, a new batch was
    mined and labeled into a version on top of the first, the champion was fine-tuned and judged against
    itself, and whatever the gate decided is deployed, fleet-tested on the same seeds, with evidence."""
    from longtail.catalog.deployments import load_deployment
    from longtail.catalog.monitoring import list_monitoring_records
    from longtail.catalog.versions import list_versions
    from longtail.curate.run import selected_batch
    from longtail.evaluate.run import load_evaluation
    from longtail.evaluate.summary import load_evaluation_record
    from longtail.label.run import latest_version
    from longtail.train.report import load_train_record

    for nb in sorted((root / "reports" / "turn-2").glob("*.ipynb")):
        assert not [o for o in _outputs(nb) if o.get("output_type") == "error"], nb
    assert len(sorted((root / "reports" / "turn-2").glob("*.ipynb"))) == 11
    week2 = json.loads((root / "index" / "ingest-2.json").read_text())["logs"]
    assert len(week2) == env["turn2"]["sim"]["vehicles"] and {w["status"] for w in week2} == {"ingested"}
    assert all(Path(w["path"]).name.endswith("_drive001.mcap") for w in week2), "week 2 continues each vehicle's drives"
    [monitored] = list_monitoring_records(root)
    assert sorted(monitored["logs"]) == sorted(w["log_id"] for w in week2), "the batch monitored is the new week"
    second = selected_batch(root, path=root / "curate" / "selected_batch-2.json")
    assert second != first_batch
    version = latest_version(root, path=root / "datasets" / "turn-2.json")
    [record] = [v for v in list_versions(root) if v["version_id"] == version]
    assert record["parent"] == first_version and record["batches"] == [first_batch, second]
    first_run, run = load_train_record(root / "runs" / "latest.json"), load_train_record(root / "runs" / "turn-2.json")
    assert run["version_id"] == version and run["model_version"] != first_run["model_version"]
    evaluated = load_evaluation_record(root / "evaluations" / "turn-2.json")
    evaluation = load_evaluation(evaluated["evaluation_path"])
    first_uri = f"models:/{first_run['registered_model']}/{first_run['model_version']}"
    assert evaluated["champion_uri"] == first_uri, "the fine-tuned model was judged against the champion"
    deployed = json.loads((root / "deployments" / "turn-2.json").read_text())
    promoted = evaluation["decision"]["promotion"]["done"]
    assert deployed["model_uri"] == (f"models:/{run['registered_model']}/{run['model_version']}" if promoted else first_uri)
    assert deployed["deployment_id"] == load_deployment(root)["deployment_id"]
    fleet = json.loads((root / "fleet_test-2" / "fleet_test.json").read_text())
    assert fleet["deployment"]["deployment_id"] == deployed["deployment_id"]
    assert fleet["config"] == json.loads((root / "fleet_test" / "fleet_test.json").read_text())["config"], "same seeds"
    # The fine-tuned model's lineage names the champion it started from, with its weights re-hashed, and
    # reaches both weeks' drive logs.
    from longtail.audit.lineage import trace

    lineage = trace(root, f"models:/{run['registered_model']}/{run['model_version']}")
    assert [(link.id, link.status) for link in lineage.links if link.kind == "parent_model"] == [(first_uri, "ok")]
    logs = {link.id: link.status for link in lineage.links if link.kind == "drive_log"}
    assert set(logs.values()) == {"ok"} and {w["log_id"] for w in week2} & set(logs)
    for turn in ("turn-1", "turn-2"):
        evidence = json.loads((root / "reports" / "evidence" / f"{turn}.json").read_text())
        assert Path(evidence["html"]).is_file() and Path(evidence["json"]).is_file() and not evidence["broken"], turn
    assert (root / "reports" / "monitoring.html").is_file()
    # The KPI report of the turn: v2 against v1 with intervals, the same decision as the gate's, both fleet
    # tests, the labeling cost, and each failure mode's steps toward a model update.
    from longtail.cli.run_summary import kpi_lines

    kpi = json.loads((root / "reports" / "kpi.json").read_text())
    assert kpi["gate"]["promoted"] == promoted and (root / "reports" / "kpi.html").is_file()
    assert kpi["fleet"]["deployment_after"] == deployed["deployment_id"] and kpi["labeling"]["batch_id"] == second
    assert {m["metric"] for m in kpi["fleet"]["metrics"]} >= {"disengagement", "phantom_braking", "missed_hazard"}
    assert {(r["suite"], r["group"]) for r in kpi["critical"]} >= {
        (suite, group) for suite in ("test_longtail", "test_common") for group in ("pedestrian", "cyclist", "cut_in_vehicle")}
    assert kpi["labeling"]["seconds"] > 0 and kpi["time_to_model_update"]
    assert kpi["headline"] in "\n".join(kpi_lines(root))


def _people_label_a_later_batch(root: Path, first_version: str) -> None:
    import pyarrow.parquet as pq

    from longtail.catalog.versions import list_versions
    from longtail.curate.run import run_select
    from longtail.curate.select import SelectConfig
    from longtail.label.run import run_label
    from longtail.label.studio import batch_truth, labels_dir, submit_annotation

    later = run_select(root, SelectConfig(budget=3, selector="random", seed=3), "t-pipeline")["batch_id"]
    run = run_label(root, later, oracle=False, dataset_name="t-pipeline")
    assert run.waiting and (run.tasks, run.finished) == (3, 0) and run.version is None and run.label_set is None
    assert run.project_url.endswith(f"/projects/{run.push['project_id']}")
    assert not (labels_dir(root, later) / "manifest.json").exists() and len(list_versions(root)) == 2
    truth = batch_truth(root, later)
    sizes = pq.read_table(labels_dir(root, later) / "prelabels.parquet").to_pandas().set_index("frame_id")
    conn = server.connect(root)
    for task, fid in run.push["tasks"].items():
        submit_annotation(conn, int(task), truth[fid], int(sizes.width[fid]), int(sizes.height[fid]))
    run = run_label(root, later, oracle=False, dataset_name="t-pipeline")
    assert not run.waiting and run.label_set is not None and run.version is not None and run.dvc is not None
    assert run.label_set["source"] == "labelstudio" and run.label_set["frames"] == 3
    assert run.version["parent"] == first_version and later in run.version["batches"]
    assert len(run.version["batches"]) == 3 and len(list_versions(root)) == 3


def test_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"--target 'moon': no .*env/moon.yaml; valid targets are \['ci', 'local'\]"):
        load_env("moon")


def test_set_overrides_one_nested_value_and_names_a_wrong_one() -> None:
    from longtail.pipeline import parse_settings

    env = load_env("ci", overrides=parse_settings(["curate.budget=60", "train.max_minutes=0.5"]))
    assert env["curate"]["budget"] == 60 and env["train"]["max_minutes"] == 0.5
    assert env["curate"]["selector"] == "longtail"  # the rest of the section stays
    with pytest.raises(ConfigError, match=r"override curate\.budgt=60: .* has no value 'curate\.budgt'; curate holds"):
        load_env("ci", overrides=parse_settings(["curate.budgt=60"]))
    with pytest.raises(ConfigError, match="write KEY=VALUE"):
        parse_settings(["curate.budget"])
