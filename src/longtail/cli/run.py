"""``longtail run``: the pipeline on a target, and where its results are."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from longtail.errors import LongtailError

log = logging.getLogger("longtail")


# ------------------------------------------------------------------------------------ run
def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run the pipeline (pipeline.yaml) on a target: the main job",
        description=(
            "Run Longtail's pipeline on a target from env/: 'local' (default: a simulated fleet, local data "
            "store, everything on this machine) or 'ci' (the same DAG, shrunken). Tasks whose inputs did not "
            "change are skipped; --force reruns everything."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--target", default="local", help="env/<target>.yaml to run with")
    p.add_argument("--root", help="override the data folder of the target")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="override one value of the target's env file, by its dotted name (repeatable), e.g. "
                        "--set curate.budget=3500 --set train.max_minutes=5; only the tasks that depend on it rerun")
    p.add_argument("--force", action="store_true", help="rerun every task")
    p.add_argument("--dry-run", action="store_true",
                   help="list the tasks that would rerun (their notebook, parameters or an upstream product changed) and stop")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``longtail run``."""
    from longtail.catalog.versions import list_versions
    from longtail.curate.run import list_batches, selected_batch
    from longtail.evaluate.summary import load_evaluation_record
    from longtail.ingest.signals import resolve_signal_map
    from longtail.pipeline import load_env, parse_settings, run
    from longtail.train.report import load_train_record

    overrides = {**({"root": args.root} if args.root else {}), **parse_settings(args.settings)}
    # A wrong signal map stops the run before the simulator spends minutes on a fleet.
    resolve_signal_map(load_env(args.target, overrides=overrides or None).get("ingest", {}).get("signal_map"),
                       f"env/{args.target}.yaml ingest.signal_map")
    if args.dry_run:
        from longtail.pipeline import outdated_tasks

        todo = outdated_tasks(args.target, overrides or None)
        sys.stdout.write(f"Would rerun {len(todo)} task(s): {', '.join(todo)}\n" if todo
                          else "Nothing to rerun: every task is up to date\n")
        return 0
    env = run(args.target, force=args.force, overrides=overrides or None)
    root = env["root"]
    fleet = f"{root}/fleet"
    dataset = env.get("curate", {}).get("dataset", "longtail")
    batches = sorted(list_batches(root), key=lambda m: m["created_at"])
    latest = f"{root}/batches/{batches[-1]['batch_id']}/ (latest of {len(batches)})" if batches else f"{root}/batches/"
    app = f"longtail app --root {root}" + (f" --dataset {dataset}" if dataset != "longtail" else "")
    try:
        labels = f"{root}/labels/{selected_batch(root, path=_latest(root, 'batch'))}/"
    except LongtailError:  # a target without the curate task's record
        labels = f"{root}/labels/<batch id>/"
    versions = list_versions(root)
    version = (f"{root}/datasets/{versions[-1]['version_id']}/ (latest of {len(versions)}; DVC record "
               f"{root}/datasets/{versions[-1]['version_id']}.dvc)") if versions else f"{root}/datasets/"
    mlflow_ui = f"mlflow ui --backend-store-uri sqlite:///{root}/mlflow/mlflow.db"
    try:
        trained = load_train_record(_latest(root, "run"))
        val = trained["val_map50"]
        model = (f"{trained['model_uri']} = {trained['registered_model']} version {trained['model_version']} "
                 f"(MLflow run {trained['run_id']}; val mAP@0.5 {'n/a' if val is None else f'{val:.3f}'}; "
                 f"checkpoints in {trained['run_dir']}/)")
    except LongtailError:  # a target without the train task
        model = f"none yet ({root}/runs/latest.json missing)"
    try:
        evaluated = load_evaluation_record(_latest(root, "evaluation"))
        report = evaluated["published_report"] or evaluated["report"]
        decision = f"{evaluated['headline']} (every number: {evaluated['evaluation_path']})"
        from longtail.detector.registry import champion_model_uri

        current = champion_model_uri(root)
        decision += "\nChampion: " + ("none yet" if current is None else f"{current} (the registry's champion alias)")
    except LongtailError:  # a target without the evaluate task
        report, decision = f"{root}/reports/evaluation.html (not written yet)", "none yet"
    try:
        from longtail.catalog.deployments import load_deployment

        deployed = load_deployment(root)
        deployment = (f"{deployed['deployment_id']} = {deployed['model']['uri']} in {deployed['path']}/ (model card "
                      f"{deployed['model_card']}; serve: mlflow models serve -m {deployed['path']}/{deployed['pyfunc']} "
                      "--env-manager local)")
    except LongtailError:  # nothing deployed, or a target without the deploy task
        deployment = "none yet"
    from longtail.cli.run_summary import kpi_lines, task_time_line, turn_lines

    turns = [line for turn in (1, 2) for line in turn_lines(root, turn)]
    sys.stdout.write(
        "\n" + "".join(f"{line}\n" for line in turns)
        + f"\nEvaluation report (open in a browser; the page for product managers): {report}\n"
        f"Decision: {decision}\n"
        f"Model: {model}\n"
        f"Deployment: {deployment}\n"
        f"Lineage of the deployed champion, down to the drive logs' sha256: longtail lineage "
        f"models:/longtail-detector@champion --root {root}\n"
        f"Fleet test (the deployed model drives, beside truth perception; per 100 km with intervals): "
        f"{root}/reports/fleet_test.html (numbers {root}/fleet_test/fleet_test.json, drive logs with the model's "
        f"boxes {root}/fleet_test/<arm>/*.mcap)\n"
        f"Monitoring (drift, shadow mode, breaches; for product managers): {root}/reports/monitoring.html\n"
        f"MLflow runs and model registry: {mlflow_ui} (then http://127.0.0.1:5000)\n"
        f"Drive logs: {fleet}/*.mcap (ground truth in {fleet}/ground_truth/, manifest {fleet}/fleet.json)\n"
        f"Frame store and index: {root}/frames/, {root}/index/ (read with "
        "longtail.catalog.frames.load_frame_index)\n"
        f"Curated dataset: FiftyOne dataset {dataset!r} (manifest {root}/curate/manifest.json, failure modes "
        f"{root}/curate/failure_modes.json)\n"
        f"Labeling batch: {latest} (frames.parquet, manifest.json; the one labeled last: "
        f"{_latest(root, 'batch')})\n"
        f"Labels of the batch: {labels} (labels.parquet, qa.json, manifest.json)\n"
        f"Dataset version: {version}\n"
        f"Reports: {report}, then the notebooks {root}/reports/00_simulate.ipynb, {root}/reports/01_ingest.ipynb, "
        f"{root}/reports/02_curate.ipynb, {root}/reports/03_label.ipynb, {root}/reports/04_train.ipynb, "
        f"{root}/reports/05_evaluate.ipynb, {root}/reports/06_deploy.ipynb, {root}/reports/07_fleet_test.ipynb, "
        f"{root}/reports/08_monitor.ipynb\n"
        "Open a log in Foxglove (File > Open local file) or read it in Python with longtail.logs.iter_messages.\n"
        f"Explore the dataset, its failure modes and the batch in the FiftyOne App: {app}\n"
        f"Look at the labeling project in Label Studio: longtail label serve --root {root} (prints its address; "
        f"login in {root}/labelstudio/credentials.json; stop it with longtail label stop --root {root})\n"
        f"{servers_left_running(root)}"
        f"{task_time_line(env.get('_tasks', []))}\n\n"
        + "".join(f"{line}\n" for line in kpi_lines(root))
    )
    return 0


def _latest(root: str, record: str) -> str:
    """The last turn's record of this kind that exists (turn 2's once it has run, else turn 1's)."""
    from pathlib import Path

    from longtail.cli.run_summary import TURNS

    paths = [Path(root) / TURNS[turn][record] for turn in sorted(TURNS, reverse=True)]
    return str(next((p for p in paths if p.exists()), paths[-1]))


def servers_left_running(root: str) -> str:
    """A line naming the data root's servers that still run (with how to stop each), or ``""``.

    A run leaves FiftyOne's MongoDB and Label Studio up for the App, the notebooks and labeling.
    """
    from longtail.catalog import db
    from longtail.label import server

    running = []
    if db.running_uri(root):
        running.append(f"FiftyOne's MongoDB (stop it with longtail db stop --root {root})")
    if server.running(root):
        running.append(f"Label Studio (stop it with longtail label stop --root {root})")
    return f"Still running, for the App, the notebooks and labeling: {'; '.join(running)}\n" if running else ""


