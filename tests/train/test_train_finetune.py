"""Fine-tuning: a warm start from the champion's weights, mined frames oversampled, and the parent recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from train_helpers import tiny_config, write_version

import longtail.train.run as run_module
from longtail.catalog.versions import load_version_folder
from longtail.detector.presets import build_model
from longtail.errors import ConfigError
from longtail.schemas import CATEGORIES
from longtail.storage import sha256_file
from longtail.train.config import TrainConfig
from longtail.train.data import VersionDataset, collate, select_frames
from longtail.train.report import load_train_record, record_train_run, version_record_path
from longtail.train.run import load_checkpoint, make_train_config, train
from longtail.train.sampling import make_loader, mined_mask, sampling_factors
from longtail.train.schedule import peak_lr
from longtail.train.warmstart import load_parent

MODEL = "test-detector"


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _mine_every_third_train_frame(rows: list[dict[str, Any]]) -> None:
    for k, row in enumerate(rows):
        if row["split"] == "train" and k % 3 == 0:
            row["fm_name"] = "pedestrians_at_dusk"


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A root whose registry has a champion (2 epochs on a 16-frame version), and a second version
    (its next labeling batch) with every third training frame mined for a failure mode."""
    root = tmp_path_factory.mktemp("finetune") / "data"
    _, first = write_version(root, seed=0)
    result = train(root, first["version_id"], tiny_config(epochs=2, registered_model=MODEL), progress=False)
    _client(result["tracking_uri"]).set_registered_model_alias(MODEL, "champion", result["model_version"])
    folder, second = write_version(root, seed=1, edit=_mine_every_third_train_frame)
    return {"root": root, "result": result, "folder": folder, "manifest": second}


@pytest.fixture(scope="module")
def finetuned(champion: dict[str, Any]) -> dict[str, Any]:
    """A fine-tuning run from the champion, stopped by its budget after epoch 1 and resumed to epoch 2,
    with the model state seen at its first step captured."""
    seen: list[dict[str, torch.Tensor]] = []
    real = run_module.train_one_epoch

    def capture(model: torch.nn.Module, *args: Any, **kwargs: Any) -> dict[str, float]:
        if not seen:
            seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real(model, *args, **kwargs)

    config = tiny_config(epochs=2, max_minutes=1e-6, registered_model=MODEL, init_from="champion",
                         mined_oversample=3.0)
    patch = pytest.MonkeyPatch()
    patch.setattr(run_module, "train_one_epoch", capture)
    try:
        first = train(champion["root"], champion["manifest"]["version_id"], config, progress=False)
    finally:
        patch.undo()
    checkpoint = Path(first["run_dir"]) / "checkpoint-1.pt"
    resumed = train(champion["root"], champion["manifest"]["version_id"], config.model_copy(update={"max_minutes": None}),
                    resume=checkpoint, progress=False)
    return {"first": first, "resumed": resumed, "start": seen[0], "checkpoint": checkpoint}


def test_warm_start_begins_from_the_champions_weights(champion: dict[str, Any], finetuned: dict[str, Any]) -> None:
    parent = champion["result"]["model"].state_dict()
    start = finetuned["start"]
    assert start.keys() == parent.keys()
    for key, tensor in parent.items():
        assert torch.equal(start[key], tensor.cpu()), key
    assert finetuned["first"]["parent"]["weights_sha256"] == sha256_file(champion["result"]["model_path"])


def test_warm_start_loss_at_step_zero_is_lower_than_from_scratch(champion: dict[str, Any],
                                                                 finetuned: dict[str, Any]) -> None:
    frames = _frames(champion, "train")
    images, targets = collate([VersionDataset(champion["folder"], frames, "v")[i] for i in range(len(frames))])
    losses = {}
    for name, state in (("warm", finetuned["start"]), ("scratch", None)):
        torch.manual_seed(0)  # the seed the run uses (TrainConfig.seed)
        model = build_model("fcos-small-p2", len(CATEGORIES), 64, 96)
        if state is not None:
            model.load_state_dict(state)
        model.train()
        with torch.no_grad():
            losses[name] = float(sum(model(images, targets).values()))
    assert losses["warm"] < losses["scratch"], losses


def _frames(champion: dict[str, Any], split: str) -> pd.DataFrame:
    return select_frames(load_version_folder(champion["folder"])[0], [split])


def test_mined_frames_are_drawn_at_the_configured_rate(champion: dict[str, Any]) -> None:
    frames = _frames(champion, "train")
    dataset = VersionDataset(champion["folder"], frames, "v")
    mined = mined_mask(dataset.frames)
    assert 0 < mined.sum() < len(mined)
    for rate, epochs in ((3.0, 1), (1.5, 40)):
        config = tiny_config(mined_oversample=rate, copy_paste=0, seed=7)
        factors, count = sampling_factors(dataset, config)
        assert count == int(mined.sum())
        draws = torch.zeros(len(dataset))
        for epoch in range(1, epochs + 1):
            order = list(make_loader(dataset, config, True, epoch, factors).sampler)  # type: ignore[arg-type]
            draws += torch.bincount(torch.tensor(order), minlength=len(dataset))
        per_epoch = draws / epochs
        assert torch.all(per_epoch[torch.from_numpy(~mined)] == 1.0)  # the others: once per epoch
        assert float(per_epoch[torch.from_numpy(mined)].mean()) == pytest.approx(rate, abs=0.15)
    plain, _ = sampling_factors(dataset, tiny_config(copy_paste=0))
    assert (plain == 1).all()


def test_the_parent_and_the_oversampling_are_recorded_everywhere(champion: dict[str, Any],
                                                                  finetuned: dict[str, Any], tmp_path: Path) -> None:
    parent_version = champion["result"]["model_version"]
    parent_uri = f"models:/{MODEL}/{parent_version}"
    sha = sha256_file(champion["result"]["model_path"])
    result = finetuned["resumed"]
    assert result["epochs_done"] == 2 and result["parent"] == finetuned["first"]["parent"]  # kept on resume
    assert (result["parent"]["model_uri"], result["parent"]["version"]) == (parent_uri, parent_version)
    assert result["sampling"]["mined_oversample"] == 3.0 and result["sampling"]["mined_frames"] == 4
    assert load_checkpoint(finetuned["checkpoint"])["parent"]["weights_sha256"] == sha

    client = _client(result["tracking_uri"])
    run = client.get_run(result["run_id"])
    assert (run.data.params["parent_model_uri"], run.data.params["parent_weights_sha256"]) == (parent_uri, sha)
    assert (run.data.params["init_from"], run.data.params["mined_oversample"]) == ("champion", "3.0")
    assert run.data.tags["longtail.parent_model_version"] == parent_version
    assert run.data.tags["longtail.mined_frames"] == "4"
    version = client.get_model_version(MODEL, result["model_version"])
    assert version.tags["longtail.parent_model_uri"] == parent_uri
    assert version.tags["longtail.parent_weights_sha256"] == sha
    assert parent_uri in version.description and sha in version.description

    record_train_run(result, tmp_path / "latest.json")
    record = load_train_record(tmp_path / "latest.json")
    assert record["parent"]["model_uri"] == parent_uri and record["sampling"]["mined_oversample"] == 3.0
    assert record["config"]["init_from"] == "champion"


def test_fine_tuning_uses_its_own_peak_learning_rate() -> None:
    assert peak_lr(tiny_config(lr=2e-3)) == 2e-3  # from scratch: lr
    assert peak_lr(tiny_config(lr=2e-3, init_from="champion", finetune_lr=5e-4)) == 5e-4
    assert peak_lr(tiny_config(lr=2e-3, init_from="champion", finetune_lr=None)) == 2e-3


def test_no_champion_another_preset_or_a_bad_uri_is_refused_clearly(champion: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=8, val=0)
    with pytest.raises(ConfigError, match=r"init_from='champion', but registered model 'test-detector' has no "
                                          r"champion in sqlite:.*from scratch \(init_from=None\)"):
        train(root, manifest["version_id"], tiny_config(init_from="champion", val_split=None), progress=False)
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())  # refused before any work

    uri = champion["result"]["tracking_uri"]
    with pytest.raises(ConfigError, match=r"preset 'fcos-small-p2', but preset='fcos-small'; fine-tuning keeps"):
        load_parent(tiny_config(init_from="champion", preset="fcos-small"), uri)
    with pytest.raises(ConfigError, match=r"no version 99 of registered model 'test-detector'"):
        load_parent(tiny_config(init_from=f"models:/{MODEL}/99"), uri)
    with pytest.raises(ConfigError, match=r"init_from.*models:/<name>/<version>"):
        make_train_config("test", init_from="latest")
    assert make_train_config("test", init_from="scratch").init_from is None  # env files cannot say null
    assert make_train_config("test", init_from="None").init_from is None
    with pytest.raises(ConfigError, match=r"mined_oversample"):
        make_train_config("test", mined_oversample=0.5)


def test_checkpoints_and_records_saved_before_fine_tuning_still_load(champion: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    state = torch.load(Path(champion["result"]["run_dir"]) / "checkpoint-2.pt", weights_only=True)
    for field in ("init_from", "mined_oversample", "finetune_lr"):
        del state["config"][field]  # as saved before the fields existed
    state.pop("parent", None)
    old = tmp_path / "checkpoint-2.pt"
    torch.save(state, old)
    config = make_train_config(str(old), **load_checkpoint(old)["config"])
    assert (config.init_from, config.mined_oversample) == (None, 1.0)
    assert peak_lr(config) == config.lr == TrainConfig().lr

    record = record_train_run(champion["result"], tmp_path / "latest.json")
    assert record["parent"] is None and record["sampling"]["mined_oversample"] == 1.0
    old_record = {k: v for k, v in record.items() if k not in ("parent", "sampling")}
    (tmp_path / "old.json").write_text(json.dumps(old_record))
    assert load_train_record(tmp_path / "old.json")["run_id"] == record["run_id"]


def test_the_notebook_finds_the_one_upstream_with_a_version_record(tmp_path: Path) -> None:
    upstream = {"label-2": {"version": "/d/datasets/latest.json", "nb": "x"}, "monitor": {"nb": "y"}}
    assert version_record_path(upstream) == "/d/datasets/latest.json"
    assert version_record_path(upstream, "/elsewhere.json") == "/elsewhere.json"
    assert version_record_path(None) is None
    with pytest.raises(ConfigError, match=r"\['label', 'label-2'\] each have a 'version' product; pass"):
        version_record_path({**upstream, "label": {"version": "/d/v1.json"}})


def test_cli_passes_the_fine_tuning_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from longtail.cli import main

    seen: list[TrainConfig] = []

    def fake_train(root: object, version: str, config: TrainConfig, **kwargs: object) -> dict[str, object]:
        seen.append(config)
        return {"run_id": "r", "epochs_done": 0, "val_map50": None, "images_per_s": 0.0, "model_uri": "runs:/r/model"}

    monkeypatch.setattr(run_module, "train", fake_train)
    args = ["train", "--root", str(tmp_path), "--version", "v-0123456789abcdef"]
    assert main([*args, "--init-from", "champion", "--finetune-lr", "3e-4", "--mined-oversample", "2.5"]) == 0
    assert (seen[0].init_from, seen[0].finetune_lr, seen[0].mined_oversample) == ("champion", 3e-4, 2.5)
    assert main([*args, "--init-from", "latest"]) == 2
    assert "init_from" in capsys.readouterr().err and len(seen) == 1
