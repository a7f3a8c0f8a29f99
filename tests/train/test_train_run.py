"""A tracked run: MLflow holds the dataset input, params, metrics and the model; resume is bit-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient
from train_helpers import tiny_config, write_version

import longtail.train.run as run_module
from longtail.catalog.versions import load_version_folder
from longtail.detector.model import load_model_from_mlflow
from longtail.detector.predict import predict_frames
from longtail.errors import ConfigError
from longtail.train.data import select_frames
from longtail.train.run import MLFLOW_DIGEST_CHARS, latest_checkpoint, load_checkpoint, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted 2-epoch run on a 16-frame version (12 train, 4 val), one thread."""
    root = tmp_path_factory.mktemp("train-run") / "data"
    folder, manifest = write_version(root)
    result = train(root, manifest["version_id"], tiny_config(), progress=False)
    return {"root": root, "folder": folder, "manifest": manifest, "result": result}


def _client(result: dict[str, Any]) -> MlflowClient:
    return MlflowClient(tracking_uri=result["tracking_uri"], registry_uri=result["tracking_uri"])


def test_mlflow_run_holds_dataset_digest_params_metrics_tags_and_model(trained: dict[str, Any]) -> None:
    result, manifest = trained["result"], trained["manifest"]
    client = _client(result)
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert result["tracking_uri"] == f"sqlite:///{trained['root'].resolve()}/mlflow/mlflow.db"

    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == manifest["version_id"]
    assert dataset_input.dataset.digest == manifest["digest"][:MLFLOW_DIGEST_CHARS]
    assert run.data.tags["longtail.dataset_digest"] == manifest["digest"]
    assert [t.value for t in dataset_input.tags if t.key == "mlflow.data.context"] == ["training"]

    params = run.data.params
    assert (params["preset"], params["epochs"], params["lr"], params["batch_size"]) == ("fcos-small-p2", "2", "0.002", "4")
    assert (params["dataset_version"], params["train_frames"], params["val_frames"]) == (manifest["version_id"], "12", "4")

    for name in ("loss", "train_classification", "train_bbox_regression", "val_map50", "images_per_s", "lr"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2], name
    assert 0.0 <= run.data.metrics["val_map50"] <= 1.0
    assert run.data.metrics["images_per_s"] > 0

    lock = Path(run_module.__file__).resolve().parents[3] / "env" / "requirements.lock"
    assert run.data.tags["longtail.env_lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert len(run.data.tags["mlflow.source.git.commit"].split("+")[0]) == 40

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | \
        {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"config.json", "model/model.pt", "model/model.json"} <= artifacts
    assert (trained["root"] / "mlflow" / "artifacts" / "longtail-train").is_dir()  # the local artifact store

    version = client.get_model_version("test-detector", result["model_version"])
    assert version.run_id == result["run_id"] and version.tags["dataset_version"] == manifest["version_id"]


def test_model_from_mlflow_reloads_bit_identically_for_inference(trained: dict[str, Any]) -> None:
    result, folder = trained["result"], trained["folder"]
    client = _client(result)
    client.set_registered_model_alias("test-detector", "champion", result["model_version"])
    model = result["model"].eval()
    frames = select_frames(load_version_folder(folder)[0], ["val", "train"])
    expected = predict_frames(model, folder, frames, score_threshold=0.0, batch_size=3)
    assert sum(len(b) for b in expected.values()) > 0  # something to compare

    for uri in (result["run_id"], result["model_uri"], "models:/test-detector@champion"):
        loaded, meta = load_model_from_mlflow(uri, result["tracking_uri"])
        assert meta["dataset_digest"] == trained["manifest"]["digest"]
        assert meta["preset"] == "fcos-small-p2" and meta["classes"] == ["car", "truck", "pedestrian", "cyclist"]
        assert meta["run_id"] == result["run_id"]
        reference = model.state_dict()
        for key, tensor in loaded.state_dict().items():
            assert torch.equal(tensor, reference[key]), key
        assert predict_frames(loaded, folder, frames, score_threshold=0.0, batch_size=3) == expected


def test_resume_from_a_checkpoint_ends_with_the_same_weights(trained: dict[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = run_module.train_one_epoch

    def crash_in_epoch_2(*args: Any, **kwargs: Any) -> dict[str, float]:
        if args[4] == 2:  # epoch
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    root, version_id = trained["root"], trained["manifest"]["version_id"]
    monkeypatch.setattr(run_module, "train_one_epoch", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(root, version_id, tiny_config(), progress=False)
    monkeypatch.setattr(run_module, "train_one_epoch", real)

    runs = sorted((root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    crashed = runs[-1]
    checkpoint = latest_checkpoint(crashed)
    assert checkpoint is not None and checkpoint.name == "checkpoint-1.pt"
    state = load_checkpoint(checkpoint)  # weights_only=True
    assert state["epoch"] == 1 and state["config"]["lr"] == 0.002 and state["run_id"] == crashed.name
    client = _client(trained["result"])
    assert client.get_run(crashed.name).info.status == "FAILED"

    with pytest.raises(ConfigError, match=r"config differs from the checkpoint's in \['lr'\]"):
        train(root, version_id, tiny_config(lr=1e-3), resume=checkpoint, progress=False)

    resumed = train(root, version_id, None, resume=checkpoint, progress=False)
    assert resumed["run_id"] == crashed.name and resumed["epochs_done"] == 2
    reference = trained["result"]["model"].state_dict()
    for key, tensor in resumed["model"].state_dict().items():
        assert torch.equal(tensor, reference[key]), key
    run = client.get_run(resumed["run_id"])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_map50")] == [1, 2]
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in trained["result"]["history"]]


def test_time_budget_stops_after_the_epoch_it_runs_out_in(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=8, val=0)
    result = train(root, manifest["version_id"], tiny_config(epochs=5, max_minutes=1e-6, val_split=None,
                                                              registered_model=None), progress=False)
    assert result["stopped_by_budget"] and result["epochs_done"] == 1 and result["model_version"] is None
    assert result["val_map50"] is None
    assert sorted(p.name for p in Path(result["run_dir"]).iterdir()) == ["checkpoint-1.pt", "model.json", "model.pt"]


def test_time_budget_warms_up_within_the_first_epoch_whatever_the_epoch_cap(tmp_path: Path) -> None:
    # A budgeted run with a generous cap (epochs=10,000) must not plan its warm-up on the cap:
    # 5% of 10,000 epochs would keep the learning rate near 0 for the whole budget.
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=8, val=0)
    config = tiny_config(epochs=10_000, max_minutes=1e-6, val_split=None, registered_model=None)
    result = train(root, manifest["version_id"], config, progress=False)
    assert result["epochs_done"] == 1
    # The spent budget ends the epoch after its first step. A warm-up of one epoch (8 frames /
    # batch 4 = 2 steps) is then at 2/3 of the peak rate; one planned on the cap would be at 2/1001.
    assert result["history"][0]["lr"] == pytest.approx(config.lr * 2 / 3)


def test_schedule_fitted_to_the_time_budget_anneals_where_the_budget_ends() -> None:
    from longtail.train.config import TrainConfig
    from longtail.train.run import fit_schedule, make_optimizer

    config = TrainConfig(epochs=20, warmup_fraction=0.05, lr=1e-2)
    model = torch.nn.Linear(2, 2)
    optimizer, scheduler = make_optimizer(model, config, total_steps=20 * 10)
    for _ in range(30):  # three epochs of 10 steps
        optimizer.step()
        scheduler.step()
    lr_at_3 = optimizer.param_groups[0]["lr"]
    # 4 more epochs of 60 s fit in 250 s: the cosine now ends after epoch 7, not 20.
    assert fit_schedule(scheduler, 3, 20, 10, seconds_per_epoch=60.0, seconds_left=250.0) == 7
    factor = scheduler.lr_lambdas[0]
    assert factor(69) > 0 and factor(70) == pytest.approx(0.0, abs=1e-12) and factor(30) < factor(29)
    assert factor(9) == pytest.approx(10 / 11)  # warm-up (5% of the first plan's 200 steps) is not re-planned
    for _ in range(40):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12) and lr_at_3 > 1e-3
    # The plan travels in the scheduler's state: a resumed run keeps the fitted schedule.
    _, restored = make_optimizer(model, config, total_steps=20 * 10)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.lr_lambdas[0].total_steps == 70
    # A cap on the warm-up (a time-budgeted run's first epoch) shortens it, never lengthens it.
    assert make_optimizer(model, config, total_steps=10_000 * 10, max_warmup_steps=10)[1].lr_lambdas[0].warmup == 10
    assert make_optimizer(model, config, total_steps=20 * 10, max_warmup_steps=50)[1].lr_lambdas[0].warmup == 10
    # Bounds: never beyond the configured epochs, never before the epochs already done.
    assert fit_schedule(scheduler, 3, 20, 10, seconds_per_epoch=1.0, seconds_left=1e6) == 20
    assert fit_schedule(scheduler, 3, 20, 10, seconds_per_epoch=60.0, seconds_left=-5.0) == 3


def _register_at_once(uri: str, barrier: Any, results: Any, i: int) -> None:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    barrier.wait()  # every process registers at the same moment
    try:
        results.put(("ok", run_module._register(client, "sweep-detector", f"run{i}", f"file:///models/{i}", {})))
    except Exception as exc:  # reported to the test, which fails on it
        results.put(("error", repr(exc)))


def test_parallel_registrations_get_distinct_versions_of_one_registered_model(tmp_path: Path) -> None:
    # `longtail sweep --register --parallel N`: N processes register versions of the same (new) model
    # in one sqlite store at once. Each must get its own version; none may fail on the model existing.
    import multiprocessing

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # create the schema once, as a tracking server would
    n = 5
    context = multiprocessing.get_context("forkserver")
    barrier, results = context.Barrier(n), context.Queue()
    workers = [context.Process(target=_register_at_once, args=(uri, barrier, results, i)) for i in range(n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    outcomes = sorted(results.get(timeout=10) for _ in range(n))
    assert outcomes == [("ok", str(v)) for v in range(1, n + 1)]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name='sweep-detector'")
    assert sorted(v.run_id for v in versions) == [f"run{i}" for i in range(n)]


def test_dataset_input_survives_a_parallel_run_inserting_the_same_dataset_first(tmp_path: Path) -> None:
    # Runs of a parallel sweep log the same dataset: MLflow's SQL store looks it up and then inserts
    # it, so the loser of the race gets the unique-key error CI saw (first call below); logging again
    # links its run to the row the winner wrote. Any other MLflow error still propagates.
    from mlflow.exceptions import MlflowException

    root = tmp_path / "data"
    version_dir, manifest = write_version(root, frames=4, val=0)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("race", artifact_location=(tmp_path / "artifacts").as_uri())
    winner, loser = (client.create_run(experiment).info.run_id for _ in range(2))
    run_module._log_dataset(client, winner, version_dir, manifest)
    real, calls = client.log_inputs, []

    def racing(run_id: str, datasets: Any = None) -> None:
        calls.append(run_id)
        if len(calls) == 1:
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
                                  "datasets.name, datasets.digest")
        real(run_id, datasets=datasets)

    client.log_inputs = racing  # type: ignore[method-assign]
    run_module._log_dataset(client, loser, version_dir, manifest)
    assert calls == [loser, loser]
    for run_id in (winner, loser):
        (logged,) = client.get_run(run_id).inputs.dataset_inputs
        assert logged.dataset.name == manifest["version_id"]
    assert client.get_run(winner).inputs.dataset_inputs[0].dataset.digest == logged.dataset.digest

    def refused(run_id: str, datasets: Any = None) -> None:
        raise MlflowException(f"The run {run_id} must be in the 'active' state.")

    client.log_inputs = refused  # type: ignore[method-assign]
    with pytest.raises(MlflowException, match="active"):
        run_module._log_dataset(client, loser, version_dir, manifest)
