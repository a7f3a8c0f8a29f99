"""A detector's outputs on the dataset: predictions, their tags, uncertainty, FiftyOne Brain
hardness and mistakenness; and embeddings from a detector's backbone, cached by model version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.catalog.failure_modes import discover_failure_modes
from longtail.curate.brain import attach_predictions, frame_uncertainty, score_predictions
from longtail.curate.embeddings import FeatureCache, compute_embeddings
from longtail.curate.run import CurateConfig, run_curate
from longtail.detector.embed import BackboneEmbedder

CLASSES = ("car", "truck", "pedestrian", "cyclist")


@pytest.fixture(scope="module")
def small(curate_fleet: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the fleet's data root curated without brain runs (dataset ``t-brain``)."""
    import shutil

    import fiftyone as fo

    root = tmp_path_factory.mktemp("brain") / "data"
    for part in ("frames", "index"):
        shutil.copytree(curate_fleet["root"] / part, root / part)
    run_curate(root, CurateConfig(dataset="t-brain", brain=False))
    return {"root": root, "dataset": fo.load_dataset("t-brain")}


def test_frame_uncertainty_by_hand() -> None:
    assert frame_uncertainty([]) == 0.0
    assert frame_uncertainty([0.5]) == pytest.approx(1.0)
    assert frame_uncertainty([0.0, 1.0]) == pytest.approx(0.0)
    # the three most ambiguous of four: 0.5 -> 1, 0.6 -> 0.8, 0.3 -> 0.6 (0.99 -> 0.02 is left out)
    assert frame_uncertainty([0.99, 0.5, 0.6, 0.3]) == pytest.approx((1.0 + 0.8 + 0.6) / 3)


def test_predictions_are_written_with_their_tags(small: dict) -> None:
    ds = small["dataset"]
    car_frames = ds.match({"vehicle_type": "car"}).values("frame_id")[:3]
    truck_frame = ds.match({"vehicle_type": "truck"}).values("frame_id")[0]
    crowded = [("car", 0.9, (10.0 + 20 * i, 100.0, 28.0 + 20 * i, 120.0)) for i in range(8)]
    small_ped = [("pedestrian", 0.8, (150.0, 90.0, 156.0, 105.0))]         # 15 px tall
    unsure_ped = [("pedestrian", 0.35, (200.0, 60.0, 230.0, 140.0))]
    preds = {car_frames[0]: crowded, car_frames[1]: small_ped, car_frames[2]: unsure_ped,
             truck_frame: [("car", 0.95, (100.0, 80.0, 140.0, 110.0))]}
    before = {s.frame_id: list(s.tags) for s in ds.select_by("frame_id", list(preds))}
    assert attach_predictions(ds, preds, CLASSES, "fcos-test@1") == 4

    got = {s.frame_id: s for s in ds.select_by("frame_id", list(preds))}
    assert "crowded" in got[car_frames[0]].tags and len(got[car_frames[0]].predictions.detections) == 8
    assert "small_pedestrian" in got[car_frames[1]].tags
    assert "low_confidence_pedestrian" in got[car_frames[2]].tags
    assert "truck_view" in got[truck_frame].tags
    for fid, s in got.items():  # the image and trigger tags stay
        assert set(before[fid]) <= set(s.tags)
        assert s.predictions.model_version == "fcos-test@1"
    assert got[car_frames[2]].uncertainty == pytest.approx(frame_uncertainty([0.35]))
    det = got[truck_frame].predictions.detections[0]
    w, h = got[truck_frame].metadata.width, got[truck_frame].metadata.height
    assert det.bounding_box == pytest.approx([100 / w, 80 / h, 40 / w, 30 / h])
    logits = got[car_frames[2]].prediction_summary.logits
    assert len(logits) == 4 and np.argmax(logits) == CLASSES.index("pedestrian")

    # Re-running with other predictions replaces the prediction tags rather than piling them up.
    attach_predictions(ds, {car_frames[0]: small_ped}, CLASSES, "fcos-test@2")
    s = ds.select_by("frame_id", [car_frames[0]]).first()
    assert "crowded" not in s.tags and "small_pedestrian" in s.tags


def test_prediction_failure_modes_open_once_predictions_exist(small: dict) -> None:
    ds = small["dataset"]
    modes = discover_failure_modes(small["root"], ds)
    assert modes["small_pedestrians"].status == "open" and modes["small_pedestrians"].count >= 1
    assert ds.has_saved_view("fm-small-pedestrians")


def test_hardness_and_mistakenness_rank_the_frames_they_should(small: dict) -> None:
    import fiftyone as fo

    ds = small["dataset"]
    ids = ds.match({"predictions": None}).values("frame_id")[:40]
    agree, disagree = ids[:20], ids[20:]
    box = (60.0, 60.0, 120.0, 120.0)
    w, h = ds.first().metadata.width, ds.first().metadata.height
    gt = {fid: fo.Detections(detections=[fo.Detection(label="car", bounding_box=[60 / w, 60 / h, 60 / w, 60 / h])])
          for fid in ids}
    ds.select_by("frame_id", ids).set_values("ground_truth", gt, key_field="frame_id")
    preds = {fid: [("car", 0.97, box)] for fid in agree}
    # Wrong class, confidently, on the other half; and an ambiguous frame for hardness.
    preds |= {fid: [("pedestrian", 0.97, box)] for fid in disagree[:-1]}
    preds[disagree[-1]] = [("car", 0.5, box), ("truck", 0.5, box), ("pedestrian", 0.5, box), ("cyclist", 0.5, box)]
    attach_predictions(ds, preds, CLASSES, "fcos-test@3")

    assert set(score_predictions(ds)) == {"hardness", "mistakenness"}
    view = ds.select_by("frame_id", ids)
    by_id = dict(zip(view.values("frame_id"), view.values("mistakenness"), strict=True))
    m_agree = np.array([by_id[f] for f in agree])
    m_disagree = np.array([by_id[f] for f in disagree[:-1]])
    assert m_disagree.min() > m_agree.max()
    hard = dict(zip(view.values("frame_id"), view.values("hardness"), strict=True))
    assert hard[disagree[-1]] > max(hard[f] for f in agree)


@pytest.fixture(scope="module")
def detector():  # type: ignore[no-untyped-def]
    """A small FCOS, randomly initialised (no weights can be downloaded): ResNet-10 body, FPN P3-P7."""
    import torch
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.resnet import BasicBlock, ResNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    torch.manual_seed(0)
    body = ResNet(BasicBlock, [1, 1, 1, 1])
    backbone = _resnet_fpn_extractor(body, 5, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    return FCOS(backbone, num_classes=5, min_size=192, max_size=320)


def test_backbone_embeddings_are_cached_by_model_version(small: dict, detector) -> None:  # type: ignore[no-untyped-def]
    ds, root = small["dataset"], small["root"]
    view = ds.limit(12)
    shas = view.values("image_sha256")
    paths = [str(Path(p).relative_to(root.resolve())) for p in view.values("filepath")]
    embedder = BackboneEmbedder(detector, "fcos-small@1", batch_size=4)
    assert embedder.dim == 5 * 256  # five FPN levels (P3-P7), 256 channels each

    calls = []
    real = embedder.embed
    embedder.embed = lambda images, sources: calls.append(len(images)) or real(images, sources)  # type: ignore[method-assign]
    first = compute_embeddings(root, embedder, shas, paths, batch_size=5)
    assert first.shape == (12, embedder.dim) and calls == [5, 5, 2]
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.abs(first[0] - first[1]).max() > 0  # different frames, different embeddings
    again = compute_embeddings(root, embedder, shas, paths)
    assert calls == [5, 5, 2] and np.array_equal(first, again)  # served from the cache
    assert len(FeatureCache(root, "fcos-small@1", embedder.dim)) == 12
    assert len(FeatureCache(root, "fcos-small@2", embedder.dim)) == 0  # a new model version starts afresh

    with pytest.raises(ValueError, match=r"broken\.jpg"):
        embedder.embed([b"not a jpeg"], ["broken.jpg"])
