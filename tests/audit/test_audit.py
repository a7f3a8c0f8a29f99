"""Lineage and the evidence pack on a small data root whose chain the real producers wrote
(audit_helpers): the champion traced down to the MCAP files' sha256, tampering and missing records
reported as broken links, and the evidence pack read back in headless Chromium."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import BATCH_FAILURE_MODES, make_deployed_root

from longtail.audit.evidence import EVIDENCE_KEYS, RECORD_FIELDS, evidence_task, write_evidence
from longtail.audit.lineage import trace
from longtail.cli import main
from longtail.errors import InputError

# DVC 3.67 reads pygtrie's deprecated _NoneStep.value; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return make_deployed_root(tmp_path_factory.mktemp("audit"))


def _copy(chain: dict[str, Any], dst: Path) -> Path:
    """A copy of the data root (its own MLflow store, DVC cache and records) to damage."""
    shutil.copytree(chain["root"], dst / "data", symlinks=True)
    return dst / "data"


def _by_kind(lineage: Any, kind: str) -> list[Any]:
    return [link for link in lineage.links if link.kind == kind]


def test_the_champion_is_traced_down_to_the_drive_logs_sha256(chain: dict[str, Any]) -> None:
    lineage = trace(chain["root"], "models:/longtail-detector@champion")
    assert lineage.broken == [] and lineage.counts()["absent"] == 0
    assert lineage.deployment_id == chain["deployment_id"]
    assert lineage.model_uri == f"models:/longtail-detector/{chain['version']}"
    kinds = [link.kind for link in lineage.links]
    for kind in ("deployment", "model_version", "training_run", "code_commit", "environment", "dataset_version",
                 "dvc_record", "label_set", "label_qa", "selection", "failure_mode", "drive_log"):
        assert kind in kinds, kind
    # The MCAP files' own sha256, computed here, are what the chain ends in, each checked.
    expected = {hashlib.sha256(p.read_bytes()).hexdigest(): str(p) for p in chain["logs"]}
    logs = _by_kind(lineage, "drive_log")
    assert {link.id: link.path for link in logs} == expected
    assert all(link.recorded == link.found == link.id and link.status == "ok" for link in logs)
    assert [m.id for m in _by_kind(lineage, "failure_mode")] == BATCH_FAILURE_MODES
    # Each link hangs from the one above it.
    keys = {link.key for link in lineage.links}
    assert all(link.parent in keys for link in lineage.links[1:])
    run = _by_kind(lineage, "training_run")[0]
    assert run.id == chain["run_id"] and run.found == chain["manifest"]["digest"]
    weights = _by_kind(lineage, "model_version")[0].found
    assert weights == hashlib.sha256((chain["root"] / "runs" / chain["run_id"] / "model.pt").read_bytes()).hexdigest()
    assert run.detail["run_folder_weights_sha256"] == weights
    # A deployment id names the same chain.
    assert [link.key for link in trace(chain["root"], chain["deployment_id"]).links] == [link.key for link in lineage.links]


def test_one_changed_byte_in_the_dataset_breaks_the_lineage_naming_the_file(
        chain: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(chain, tmp_path)
    image = sorted((root / "datasets" / chain["manifest"]["version_id"] / "images").iterdir())[0]
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0x01
    image.write_bytes(bytes(data))
    lineage = trace(root, "current")
    broken = lineage.broken
    assert broken, "a changed dataset file must break the lineage"
    assert {link.kind for link in broken} >= {"dataset_version", "dvc_record", "file"}
    named = [link for link in broken if link.kind == "file"]
    assert all(link.id == str(image) for link in named) and len(named) == 2  # its sha256 name, and DVC's md5
    assert str(image) in named[0].message and named[0].found == hashlib.sha256(bytes(data)).hexdigest()
    assert "restore_version" in named[0].message
    # The rest of the chain is still checked, down to the logs.
    assert all(link.status == "ok" for link in _by_kind(lineage, "drive_log"))
    # The command line says the same and fails.
    assert main(["lineage", "current", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and str(image) in out


def test_missing_records_are_reported_not_skipped(chain: dict[str, Any], tmp_path: Path) -> None:
    root = _copy(chain, tmp_path)
    batch = chain["batch_id"]
    (root / "labels" / batch / "manifest.json").unlink()
    logs = sorted(chain["logs"])
    moved = tmp_path / "elsewhere.mcap"
    shutil.copy(logs[0], moved)
    log_ids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in logs]
    (root / "index" / "logs" / f"{log_ids[1]}.json").unlink()
    lineage = trace(root, "current")
    label = _by_kind(lineage, "label_set")[0]
    assert label.status == "broken" and str(root / "labels" / batch / "manifest.json") in label.message
    by_id = {link.id: link for link in _by_kind(lineage, "drive_log")}
    assert set(by_id) == set(log_ids)  # every log still listed
    assert by_id[log_ids[1]].status == "broken" and "never ingested" in by_id[log_ids[1]].message
    assert by_id[log_ids[2]].status == "ok"
    # The selection below the missing label set is still checked.
    assert _by_kind(lineage, "selection")[0].status == "ok"


def test_a_log_moved_away_is_absent_and_a_replaced_one_broken(chain: dict[str, Any], tmp_path: Path) -> None:
    root = _copy(chain, tmp_path)
    manifests = sorted((root / "index" / "logs").glob("*.json"))
    first, second = (json.loads(p.read_text()) for p in manifests[:2])
    first["path"] = str(tmp_path / "gone.mcap")
    replaced = tmp_path / "replaced.mcap"
    replaced.write_bytes(Path(second["path"]).read_bytes() + b"\0")
    second["path"] = str(replaced)
    manifests[0].write_text(json.dumps(first))
    manifests[1].write_text(json.dumps(second))
    logs = {link.id: link for link in _by_kind(trace(root, "current"), "drive_log")}
    assert logs[first["log_id"]].status == "absent" and logs[first["log_id"]].found is None
    assert logs[second["log_id"]].status == "broken" and str(replaced) in logs[second["log_id"]].message


def test_an_unknown_reference_says_what_to_give(chain: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="models:/longtail-detector@champion"):
        trace(chain["root"], "champion")
    with pytest.raises(InputError, match="no alias 'nope'"):
        trace(chain["root"], "models:/longtail-detector@nope")


def test_the_evidence_pack_is_complete_stable_and_opens_in_a_browser(chain: dict[str, Any], tmp_path: Path,
                                                                     chromium: Any) -> None:
    out = write_evidence(chain["root"], out_dir=tmp_path)
    dep = chain["deployment_id"]
    assert Path(out["json"]).name == f"evidence-{dep}.json" and Path(out["html"]).name == f"evidence-{dep}.html"
    pack = json.loads(Path(out["json"]).read_text())
    assert tuple(sorted(pack)) == tuple(sorted(EVIDENCE_KEYS))
    assert pack["deployment_id"] == dep and pack["lineage"]["counts"]["broken"] == 0
    assert pack["gate"]["promote"] in (True, False) and pack["gate"]["headline"]
    assert pack["gate"]["source"] == str(chain["evaluation"])
    assert pack["evaluation"]["version_id"] == chain["manifest"]["version_id"]
    assert pack["model_card"] and pack["label_qa"][0]["batch_id"] == chain["batch_id"]
    assert any(m["name"] == "hard_brake_events" for m in pack["failure_modes"])
    assert pack["fleet_test"] is None and any("fleet test" in s for s in pack["not_met"])
    # Nothing changed: the same bytes again.
    before = (Path(out["json"]).read_bytes(), Path(out["html"]).read_bytes())
    again = write_evidence(chain["root"], dep, out_dir=tmp_path)
    assert (Path(again["json"]).read_bytes(), Path(again["html"]).read_bytes()) == before

    page = chromium.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(Path(out["html"]).as_uri())
    assert dep in page.title() and dep in page.inner_text("h1")
    rows = page.locator("#lineage + p + table tr").all_inner_texts()
    logs = [hashlib.sha256(p.read_bytes()).hexdigest() for p in chain["logs"]]
    assert len(rows) == len(pack["lineage"]["links"]) + 1
    assert all(any(log in row for row in rows) for log in logs)
    assert "checks out" in page.inner_text("#verdict")
    assert requests == [Path(out["html"]).as_uri()]  # self-contained: nothing else is fetched
    page.close()


def test_the_pipeline_step_writes_a_record_and_no_pack_when_nothing_is_deployed(chain: dict[str, Any],
                                                                                   tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    record = evidence_task(empty, tmp_path / "none.json", out_dir=tmp_path / "reports")
    assert record["deployment_id"] is None and "nothing is deployed" in record["reason"]
    assert json.loads((tmp_path / "none.json").read_text()) == record and not (tmp_path / "reports").exists()
    done = evidence_task(chain["root"], tmp_path / "record.json", out_dir=tmp_path / "reports")
    assert set(done) == set(RECORD_FIELDS) and done["deployment_id"] == chain["deployment_id"]
    assert Path(done["html"]).is_file() and Path(done["json"]).is_file()
