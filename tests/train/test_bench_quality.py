"""bench/quality.py scores a model per split, and per drive of each split with ``--by drive``."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from train_helpers import tiny_config, write_version

from longtail.catalog.versions import LABELS_FILE
from longtail.train.run import train

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import quality  # bench/ is not a package


def _rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()[2:] if line.startswith("|")]


def test_quality_scores_each_drive_of_a_split_on_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    folder, manifest = write_version(root, frames=12, val=8)  # val: frames 4-11, two from each of 4 drives
    result = train(root, manifest["version_id"], tiny_config(epochs=1, val_split=None, registered_model=None),
                   progress=False)
    args = ["--root", str(root), "--version", manifest["version_id"], "--splits", "val", "--threads", "1",
            result["model_uri"]]

    assert quality.main(args) == 0
    whole = _rows(capsys.readouterr().out)
    assert [(r[1], r[2]) for r in whole] == [("val", "8")]

    assert quality.main([*args[:-1], "--by", "drive", args[-1]]) == 0
    rows = _rows(capsys.readouterr().out)
    drives = [f"car-00{k}_drive000" for k in range(4)]
    assert [(r[1], r[2]) for r in rows] == [(f"val {d}", "2") for d in drives]
    # Each row is the evaluation of that drive's frames alone.
    frames = pd.read_parquet(folder / LABELS_FILE)
    for row, drive in zip(rows, drives, strict=True):
        alone = frames[frames["drive_id"] == drive]
        [(_, _, expected)] = quality.score_splits(result["model"], folder, alone, ["val"])
        per_class = ", ".join(f"{c} {v['ap50']:.2f} ({v['gt']})" for c, v in expected["per_class"].items()
                              if v["ap50"] is not None)
        assert row[3:] == [f"{expected['map50'] if expected['map50'] is not None else float('nan'):.3f}", per_class]
    # The scored boxes (in brackets) differ from drive to drive: each row saw only its own frames.
    assert len({r[4] for r in rows}) == 4 and whole[0][4] not in {r[4] for r in rows}
