"""bench/defaults.py trains each arm on the same version and scores it on the validation split alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from train_helpers import write_version

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import defaults  # bench/ is not a package


def test_defaults_scores_each_arm_on_val_only_with_paired_intervals(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    _, manifest = write_version(root, frames=12, val=8)  # val: two frames from each of 4 drives
    out = tmp_path / "defaults.json"
    args = ["--root", str(root), "--version", manifest["version_id"], "--minutes", "0.05", "--epochs", "1",
            "--threads", "1", "--arms", "default,no haze", "--out", str(out)]
    assert defaults.main(args) == 0
    record = json.loads(out.read_text())
    assert record["split"] == "val" and record["val_frames"] == 8 and record["val_drives"] == 4
    default, ablation = record["rows"]
    assert (default["arm"], ablation["arm"], ablation["changes"]) == ("default", "no haze", {"haze": 0.0})
    assert default["drives"] == 4 and len(default["map50_ci"]) == 2
    assert ablation["diff_vs_default"] == pytest.approx(ablation["map50"] - default["map50"])
    lo, hi = ablation["diff_ci"]
    assert lo <= hi
    table = capsys.readouterr().out
    assert "| arm (val split, 8 frames, 4 drives) |" in table and "| no haze | 1 |" in table
    # An arm trained before is loaded and scored again, not retrained: the same model gives the same number.
    again = tmp_path / "again.json"
    assert defaults.main([*args[:-3], "default", "--trained", f"default=runs:/{default['run_id']}/model",
                          "--out", str(again)]) == 0
    reloaded = json.loads(again.read_text())["rows"][0]
    assert reloaded["loaded"] is True and reloaded["run_id"] == default["run_id"]
    assert reloaded["map50"] == default["map50"]
    with pytest.raises(SystemExit):
        defaults.main([*args[:-4], "--arms", "no-such-arm"])
