"""bfloat16 autocast training: when it is used, what stays float32, and the error when it cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config, write_version

from longtail.detector.presets import build_model
from longtail.errors import ConfigError
from longtail.train import run as train_run
from longtail.train.engine import train_one_epoch


def _batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 96, generator=gen) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 30.0, 40.0], [50.0, 20.0, 56.0, 37.0]]),
                "labels": torch.tensor([0, 2])} for _ in range(2)]
    return images, targets


def test_bf16_steps_keep_float32_weights_and_losses_and_remove_their_hook() -> None:
    torch.manual_seed(0)
    model = build_model("fcos-small-p2", 4, min_size=64, max_size=96)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen: list[dict[str, torch.dtype]] = []
    head_loss = model.head.compute_loss  # type: ignore[union-attr]

    def spy(targets, head_outputs, anchors, matched_idxs):  # type: ignore[no-untyped-def]
        seen.append({k: v.dtype for k, v in head_outputs.items()})
        terms = head_loss(targets, head_outputs, anchors, matched_idxs)
        seen.append({k: v.dtype for k, v in terms.items()})
        return terms

    model.head.compute_loss = spy  # type: ignore[union-attr,method-assign]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stats = train_one_epoch(model, [_batch()], optimizer, None, epoch=1, progress=False, bf16=True)
    # Under autocast the head returns bfloat16 (next test); the hook hands the losses float32, and they stay so.
    assert set(seen[0].values()) == {torch.float32} and set(seen[1].values()) == {torch.float32}
    assert stats["loss"] > 0 and stats["steps"] == 1.0
    after = model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert any(not torch.equal(v, before[k]) for k, v in after.items() if v.is_floating_point())
    assert not model.head._forward_hooks  # type: ignore[union-attr]  # nothing left on the model


def test_bf16_autocast_really_lowers_the_convolutions() -> None:
    conv = torch.nn.Conv2d(3, 8, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16  # what the hook casts back


def test_precision_auto_follows_the_device_and_bf16_is_refused_where_it_is_not_native(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert train_run.resolve_precision("fp32", cpu) is False
    monkeypatch.setattr(train_run, "bf16_supported", lambda device: True)
    assert train_run.resolve_precision("auto", cpu) is True and train_run.resolve_precision("bf16", cpu) is True
    monkeypatch.setattr(train_run, "bf16_supported", lambda device: False)
    assert train_run.resolve_precision("auto", cpu) is False
    with pytest.raises(ConfigError, match=r"invalid precision='bf16'; this cpu has no native bfloat16 .* Use "
                                          r"precision='fp32' or 'auto'"):
        train_run.resolve_precision("bf16", cpu)


def test_a_bf16_run_trains_and_saves_the_setting(tiny_version: tuple[Path, Path, dict[str, object]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_run, "bf16_supported", lambda device: True)
    root, _, manifest = tiny_version
    result = train_run.train(root, str(manifest["version_id"]), tiny_config(epochs=1, registered_model=None,
                                                                            precision="bf16"), progress=False)
    saved = torch.load(Path(result["run_dir"]) / "checkpoint-1.pt", weights_only=True)
    assert saved["config"]["precision"] == "bf16"
    assert result["history"][0]["loss"] > 0 and "val_map50" in result["history"][0]
    assert all(p.dtype == torch.float32 for p in result["model"].parameters())


def test_a_checkpoint_saved_before_precision_existed_resumes_in_float32(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_run, "bf16_supported", lambda device: True)  # auto would pick bf16 today
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=8, val=0)
    first = train_run.train(root, manifest["version_id"], tiny_config(epochs=2, max_minutes=1e-6, val_split=None,
                                                                      registered_model=None, precision="fp32"),
                            progress=False)
    checkpoint = Path(first["run_dir"]) / "checkpoint-1.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["precision"]  # as saved before the field existed
    torch.save(state, checkpoint)
    resumed = train_run.train(root, manifest["version_id"], None, resume=checkpoint, progress=False)
    assert resumed["epochs_done"] == 2 and resumed["config"].precision == "fp32"
