"""Once the registry has a champion, curation and selection use it with no flag: its backbone's
embeddings (cached by model version), its predictions, tags, hardness and uncertainty."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from longtail.catalog.root import DataRoot
from longtail.curate.descriptor import DESCRIPTOR_KEY
from longtail.curate.run import CurateConfig, run_curate, run_select
from longtail.curate.select import SelectConfig
from longtail.detector.model import default_tracking, mlflow_client, save_model
from longtail.detector.presets import build_model
from longtail.detector.registry import REGISTERED_MODEL, promote
from longtail.schemas import CATEGORIES


def _register_uncertain_detector(root: Path) -> str:
    """Register an untrained fcos-small-p2 whose classification bias is 0, so it scores boxes near
    0.5 (sigmoid 0, times centre-ness): the most uncertain detector there is. Returns its version."""
    import torch

    torch.manual_seed(0)
    model = build_model("fcos-small-p2", len(CATEGORIES))
    torch.nn.init.zeros_(model.head.classification_head.cls_logits.bias)
    folder = root / "model"
    save_model(folder, model, {"format": "longtail.detector/1", "preset": "fcos-small-p2", "classes": list(CATEGORIES),
                               "num_classes": len(CATEGORIES), "min_size": 192, "max_size": 320})
    uri, artifacts = default_tracking(DataRoot.of(root).mlflow)
    client = mlflow_client(uri)
    run = client.create_run(client.create_experiment("t-champion", artifact_location=artifacts))
    for name in ("model.pt", "model.json"):
        client.log_artifact(run.info.run_id, str(folder / name), "model")
    client.create_registered_model(REGISTERED_MODEL)
    version = client.create_model_version(REGISTERED_MODEL, f"{run.info.artifact_uri}/model", run.info.run_id).version
    promote(uri, version, lock_dir=DataRoot.of(root).mlflow, expected_champion=None, reason="test")
    return str(version)


@pytest.fixture(scope="module")
def steered(fleet_subset, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[no-untyped-def]
    # Two drives (a scenario and ordinary night driving): the champion runs on every frame of them.
    root = fleet_subset(tmp_path_factory.mktemp("champion") / "data", ("occped", "q-town-night"))
    before = run_curate(root, CurateConfig(dataset="t-champion"))
    version = _register_uncertain_detector(root)
    after = run_curate(root, CurateConfig(dataset="t-champion"))
    again = run_curate(root, CurateConfig(dataset="t-champion"))
    batch = run_select(root, SelectConfig(budget=12, seed=3), "t-champion")
    return {"root": root, "before": before, "after": after, "again": again, "batch": batch, "version": version}


def test_curation_embeds_with_the_champion_and_keys_the_cache_by_its_version(steered: dict) -> None:
    key = f"{REGISTERED_MODEL}@v{steered['version']}"
    assert steered["before"]["embedding_key"] == DESCRIPTOR_KEY and steered["before"]["champion"] is None
    assert steered["after"]["embedding_key"] == key
    assert steered["after"]["champion"]["key"] == key
    assert (steered["root"] / "embeddings" / key).is_dir()
    assert steered["batch"]["pool"]["embedding_key"] == key
    saved = json.loads((steered["root"] / "curate" / "manifest.json").read_text())
    assert saved["champion"]["model"] == f"models:/{REGISTERED_MODEL}/{steered['version']}"


def test_the_champion_predicts_each_frame_once_and_brain_scores_them(steered: dict) -> None:
    import fiftyone as fo

    ds = fo.load_dataset("t-champion")
    assert steered["after"]["predicted"] == len(ds) > 0 and steered["again"]["predicted"] == 0
    versions = set(ds.values("predictions.model_version"))
    assert versions == {f"{REGISTERED_MODEL}@v{steered['version']}"}
    assert "hardness" in steered["after"]["brain_runs"]
    assert max(ds.values("uncertainty")) > 0.5


def test_selection_uses_the_champion_uncertainty(steered: dict) -> None:
    frames = pq.read_table(steered["root"] / "batches" / steered["batch"]["batch_id"] / "frames.parquet").to_pandas()
    assert len(frames) == 12 and (frames["uncertainty"] > 0).all()
    assert frames["reason"].str.contains("model uncertainty").any()
