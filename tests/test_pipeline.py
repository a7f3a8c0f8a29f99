"""The whole DAG on the ci target, in-process, so a failure stops inside the failing task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longtail.errors import ConfigError
from longtail.pipeline import load_env, make_dag


@pytest.mark.slow
def test_pipeline_builds_on_the_ci_target(tmp_path: Path) -> None:
    dag = make_dag("ci", overrides={"root": str(tmp_path)}, in_process=True)
    dag.build(force=True, show_progress=False)
    manifest = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    env = load_env("ci")
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
    # A second build finds nothing to do: the products stay as they were.
    stamp = (tmp_path / "fleet" / "fleet.json").stat().st_mtime_ns
    dag.build(show_progress=False)
    assert (tmp_path / "fleet" / "fleet.json").stat().st_mtime_ns == stamp


def test_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"--target 'moon': no .*env/moon.yaml; valid targets are \['ci', 'local'\]"):
        load_env("moon")
