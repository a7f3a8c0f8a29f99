"""The whole DAG on the ci target, in-process, so a failure stops inside the failing task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longtail.errors import ConfigError
from longtail.pipeline import load_env, make_dag


@pytest.mark.slow
def test_pipeline_builds_on_the_ci_target(tmp_path: Path) -> None:
    env = load_env("ci")
    # The test session shares one MongoDB: name the pipeline's FiftyOne dataset after this test.
    overrides = {"root": str(tmp_path), "curate": {**env["curate"], "dataset": "t-pipeline"}}
    dag = make_dag("ci", overrides=overrides, in_process=True)
    dag.build(force=True, show_progress=False)
    manifest = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    assert len(manifest["drives"]) == env["sim"]["vehicles"] * env["sim"]["drives_per_vehicle"]
    notebook = json.loads((tmp_path / "reports" / "00_simulate.ipynb").read_text())
    outputs = [o for cell in notebook["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("fleet (2 drives)" in "".join(o.get("text", "")) for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows frames and signals"
    # Ingest: every simulated log indexed, and the notebook shows the table, a timeline and frames.
    from longtail.ingest.store import list_manifests, load_frame_index

    assert sorted(m["status"] for m in list_manifests(tmp_path)) == ["ingested"] * len(manifest["drives"])
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
    batches = list_batches(tmp_path)
    assert [len(b["frames"]) for b in batches] == [env["curate"]["budget"]]
    assert (tmp_path / "batches" / batches[0]["batch_id"] / "frames.parquet").is_file()
    curate_nb = json.loads((tmp_path / "reports" / "02_curate.ipynb").read_text())
    outputs = [o for cell in curate_nb["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    assert sum("plotly" in h for h in html) >= 4, "scenario distribution and embedding map, pool and batch"
    assert any(batches[0]["batch_id"] in h and "data:image/jpeg;base64," in h for h in html), "the batch's frames"
    # A second build finds nothing to do: the products stay as they were.
    stamps = [p.stat().st_mtime_ns for p in (tmp_path / "fleet" / "fleet.json", tmp_path / "curate" / "manifest.json",
                                              tmp_path / "batches" / batches[0]["batch_id"] / "manifest.json")]
    dag.build(show_progress=False)
    assert [p.stat().st_mtime_ns for p in (tmp_path / "fleet" / "fleet.json", tmp_path / "curate" / "manifest.json",
                                           tmp_path / "batches" / batches[0]["batch_id"] / "manifest.json")] == stamps


def test_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"--target 'moon': no .*env/moon.yaml; valid targets are \['ci', 'local'\]"):
        load_env("moon")
