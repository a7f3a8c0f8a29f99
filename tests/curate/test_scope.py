"""A new champion works only on its scope: it predicts and embeds the frames of logs outside its
dataset version (one forward pass gives both), once; selection's pool comes from that scope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.curate.embeddings import FeatureCache
from longtail.curate.run import CurateConfig, make_pool, predict_with_champion, run_curate
from longtail.curate.scope import record_scope, scoped
from longtail.detector.embed import BackboneEmbedder, predict_and_embed
from longtail.detector.predict import load_image, predict
from longtail.detector.presets import build_model
from longtail.schemas import CATEGORIES

KEY = "t-scope-detector@v1"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = build_model("fcos-small-p2", len(CATEGORIES)).eval()
    torch.nn.init.zeros_(net.head.classification_head.cls_logits.bias)  # scores near 0.5: boxes to compare
    return net


@pytest.fixture(scope="module")
def scope(fleet_subset, model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[no-untyped-def]
    import fiftyone as fo

    # Two drives: one inside the champion's dataset version, one outside, each run through the model.
    root = fleet_subset(tmp_path_factory.mktemp("scope") / "data", ("ebrake", "q-hw-rain"))
    run_curate(root, CurateConfig(dataset="t-scope"))  # no champion yet: the descriptor, every frame
    ds = fo.load_dataset("t-scope")
    logs = sorted(ds.distinct("log_id"))
    record_scope(ds, KEY, logs[:1])
    champion = (model, {"key": KEY, "classes": list(CATEGORIES)})
    first = predict_with_champion(root, scoped(ds, KEY), champion)
    again = predict_with_champion(root, scoped(ds, KEY), champion)
    embedder = BackboneEmbedder(model, KEY)
    pool, vectors, _ = make_pool(root, ds, failure_modes=[], embedder=embedder)
    return {"root": root, "ds": ds, "excluded": logs[0], "first": first, "again": again, "pool": pool,
            "vectors": vectors, "embedder": embedder}


def test_the_champion_predicts_only_the_logs_outside_its_dataset_version_and_only_once(scope: dict) -> None:
    from fiftyone import ViewField as F

    ds, excluded = scope["ds"], scope["excluded"]
    outside = ds.match(F("log_id") != excluded)
    assert 0 < scope["first"] == len(outside) < len(ds)
    assert scope["again"] == 0
    assert set(outside.values("predictions.model_version")) == {KEY}
    assert set(ds.match(F("log_id") == excluded).values("predictions.model_version")) == {None}
    assert "hardness" in ds.list_brain_runs() and "mistakenness" not in ds.list_brain_runs()


def test_the_pool_is_the_scope_and_its_embeddings_came_from_the_prediction_pass(scope: dict) -> None:
    from fiftyone import ViewField as F

    ds, pool = scope["ds"], scope["pool"]
    outside = ds.match(F("log_id") != scope["excluded"])
    assert sorted(pool["frame_id"]) == sorted(outside.values("frame_id"))
    cache = FeatureCache(scope["root"], KEY, scope["embedder"].dim)
    assert len(cache) == len(set(outside.values("image_sha256")))  # nothing embedded twice, nothing outside
    # The one-pass embeddings are the backbone embedder's.
    paths = outside.values("filepath")[:4]
    direct = scope["embedder"].embed([Path(p).read_bytes() for p in paths], paths)
    np.testing.assert_allclose(scope["vectors"][:4], direct, atol=1e-4)


def test_one_pass_gives_the_boxes_of_predict(model: torch.nn.Module, scope: dict) -> None:
    images = [load_image(p) for p in scope["ds"].values("filepath")[:3]]
    boxes, vectors = predict_and_embed(model, images, 0.1)
    assert boxes == predict(model, images, 0.1) and any(boxes)
    assert vectors.shape == (3, scope["embedder"].dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
