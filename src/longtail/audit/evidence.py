"""The evidence pack of a deployment: what a functional-safety (ISO 26262-minded) reviewer asks for.

`write_evidence` writes two files, by default into DATA/reports/:

- ``evidence-<deployment id>.json``: machine-readable (`EVIDENCE_KEYS`): the deployment, its lineage
  with every link's digests and status, the gate decision with its intervals, the evaluation summary,
  the fleet test's summary (when DATA/fleet_test/fleet_test.json exists), the model card, the label QA
  summary, the failure modes with their status, and what is known not to be met;
- ``evidence-<deployment id>.html``: the same, one self-contained page (inline CSS, no scripts, no
  external resources) that leads with what was deployed and whether its lineage checks out.

Nothing in either file depends on the clock: re-running with nothing changed writes the same bytes
(``digest`` is the sha256 of the JSON without its own field).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from longtail.audit.evidence_html import render_evidence_html
from longtail.audit.lineage import trace
from longtail.audit.links import read_json
from longtail.catalog.deployments import deployment_folder, load_deployment
from longtail.catalog.root import DataRoot
from longtail.storage import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

FORMAT = "longtail.evidence/1"
EVIDENCE_KEYS = ("format", "deployment_id", "deployment", "lineage", "gate", "evaluation", "fleet_test", "model_card",
                 "label_qa", "failure_modes", "not_met", "digest")
"""Fields of evidence-<deployment id>.json."""
FLEET_TEST_FILE = Path("fleet_test") / "fleet_test.json"
"""The fleet test's results under the data root (the sim stage's declared product, read by path)."""


def _evaluation(root: DataRoot, lineage: Mapping[str, Any], record: Mapping[str, Any]) -> tuple[Path | None, dict | None]:
    """The deployed model's evaluation.json: the path its model version's tag names, else the evaluate
    stage's layout DATA/evaluations/<dataset version>/<run id>/evaluation.json."""
    model = next((link for link in lineage["links"] if link["kind"] == "model_version"), None)
    candidates = []
    if model is not None and model["detail"].get("tags", {}).get("longtail.evaluation"):
        candidates.append(Path(model["detail"]["tags"]["longtail.evaluation"]))
    m = record.get("model", {})
    if m.get("dataset_version") and m.get("run_id"):
        candidates.append(root.evaluations / str(m["dataset_version"]) / str(m["run_id"]) / "evaluation.json")
    for path in candidates:
        data, _ = read_json(path)
        if data is not None:
            return path, data
    return None, None


def _gate(evaluation: Mapping[str, Any] | None, path: Path | None, tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The gate's decision with its intervals: from evaluation.json, else from the model version's tags."""
    if evaluation is not None and isinstance(evaluation.get("decision"), dict):
        d = evaluation["decision"]
        ev = d.get("evidence") or {}
        return {"promote": bool(d.get("promote")), "headline": d.get("headline"), "reasons": d.get("reasons", []),
                "targets": ev.get("targets", []), "critical": ev.get("critical"), "suites": ev.get("suites", []),
                "sanity": ev.get("sanity"), "source": str(path)}
    if tags.get("longtail.decision"):
        try:
            ev = json.loads(tags.get("longtail.decision_evidence", "{}"))
        except ValueError:
            ev = {}
        return {"promote": tags["longtail.decision"] == "promote", "headline": tags.get("longtail.decision_headline"),
                "reasons": [], "targets": ev.get("targets", []), "critical": ev.get("critical"),
                "suites": ev.get("suites", []), "sanity": ev.get("sanity"), "source": "model version tags"}
    return None


def _evaluation_summary(evaluation: Mapping[str, Any] | None, path: Path | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    overall = evaluation.get("overall") or {}
    critical = (evaluation.get("critical") or {}).get("total")
    suites = [{k: s.get(k) for k in ("name", "metric", "value", "ci", "threshold", "status", "frames", "drives", "reason")}
              for s in evaluation.get("suites") or [] if isinstance(s, dict)]
    return {"path": str(path), "model": evaluation.get("model"), "version_id": evaluation.get("version_id"),
            "frames": evaluation.get("frames"), "map50": overall.get("map50"), "map50_ci": overall.get("map50_ci"),
            "critical": critical, "suites": suites}


def _fleet_test(root: DataRoot, deployment_id: str) -> dict[str, Any] | None:
    """The fleet test that drove this deployment: each turn of the loop writes its own (DATA/fleet_test/,
    DATA/fleet_test-2/, ...); without one for this deployment, the first turn's, marked as another's."""
    first = root / FLEET_TEST_FILE
    found = [first, *sorted(first.parent.parent.glob(f"{FLEET_TEST_FILE.parent}-*/{FLEET_TEST_FILE.name}"))]
    results = [(p, d) for p in found if (d := read_json(p)[0]) is not None]
    if not results:
        return None
    path, data = next(((p, d) for p, d in results if (d.get("deployment") or {}).get("deployment_id") == deployment_id),
                      results[0])
    tested = (data.get("deployment") or {}).get("deployment_id")
    return {"path": str(path), "deployment_id": tested, "same_deployment": tested == deployment_id,
            "arms": data.get("arms"), "reference": data.get("reference"), "note": data.get("note"),
            "rates": data.get("rates", []), "paired": data.get("paired", []),
            "config": data.get("config")}


def _not_met(lineage: Mapping[str, Any], gate: Mapping[str, Any] | None, fleet: Mapping[str, Any] | None,
             modes: list[dict[str, Any]]) -> list[str]:
    """What a reviewer must know is not met or not shown, one sentence each."""
    out = [f"lineage {link['kind']} {link['id']} is {link['status']}: {link['message']}"
           for link in lineage["links"] if link["status"] != "ok"]
    out += [f"lineage code_commit: {link['message']}" for link in lineage["links"]
            if link["kind"] == "code_commit" and str(link["id"]).endswith("+dirty")]
    if gate is None:
        out.append("no gate decision was found for the deployed model (no evaluation.json, no decision tags)")
    else:
        out += [f"target {t.get('target')}: {t.get('status')} (value {t.get('value')}, interval {t.get('ci')}, goal "
                f"{t.get('goal')})" for t in gate.get("targets") or [] if t.get("status") != "met"]
    if fleet is None:
        out.append("no fleet test result (DATA/fleet_test/fleet_test.json) in this data root")
    elif not fleet["same_deployment"]:
        out.append(f"the fleet test drove deployment {fleet['deployment_id']}, not this one")
    out += [f"failure mode {m['name']} ({m.get('title')}) is {m.get('status')}" for m in modes
            if m.get("status") not in ("fixed",)]
    return out


def build_evidence(root: str | os.PathLike[str], deployment_id: str = "current", progress: bool = False
                   ) -> dict[str, Any]:
    """The evidence of a deployment as JSON-ready data (`EVIDENCE_KEYS`).

    Raises:
        InputError: nothing is deployed, or no such deployment.
    """
    data = DataRoot.of(root)
    record = load_deployment(data, deployment_id)
    dep_id = str(record["deployment_id"])
    lineage = trace(data, dep_id, progress=progress).as_dict()
    model = next((link for link in lineage["links"] if link["kind"] == "model_version"), None)
    tags = model["detail"].get("tags", {}) if model else {}
    eval_path, evaluation = _evaluation(data, lineage, record)
    gate = _gate(evaluation, eval_path, tags)
    fleet = _fleet_test(data, dep_id)
    card_file = deployment_folder(data, dep_id) / str(record.get("model_card", "model_card.md"))
    card = card_file.read_text() if card_file.is_file() else None
    label_qa = [{"batch_id": link["id"], "path": link["path"], "status": link["status"],
                 **{k: link["detail"].get(k) for k in ("frames", "accepted", "held", "checks")}}
                for link in lineage["links"] if link["kind"] == "label_qa"]
    registry, _ = read_json(data.failure_modes)
    modes = [{k: m.get(k) for k in ("name", "title", "status", "discovered_at", "discovered_by", "fixed_by", "fixed_at",
                                    "count")} for m in (registry or {}).get("failure_modes", [])]
    pack = {"format": FORMAT, "deployment_id": dep_id,
            "deployment": {k: record.get(k) for k in ("created_at", "model", "thresholds", "thresholds_source", "parity",
                                                      "files", "backends", "tracking_uri")},
            "lineage": lineage, "gate": gate, "evaluation": _evaluation_summary(evaluation, eval_path),
            "fleet_test": fleet, "model_card": card, "label_qa": label_qa, "failure_modes": modes,
            "not_met": _not_met(lineage, gate, fleet, modes)}
    pack["digest"] = hashlib.sha256(json.dumps(pack, sort_keys=True, default=str).encode()).hexdigest()
    return pack


def write_evidence(root: str | os.PathLike[str], deployment_id: str | None = None,
                   out_dir: str | os.PathLike[str] | None = None, progress: bool = False) -> dict[str, Any]:
    """Write evidence-<deployment id>.json and .html for a deployment (atomically, JSON last).

    Args:
        root: the data root.
        deployment_id: ``d-<16 hex>``; None: the current deployment (DATA/deployments/current.json).
        out_dir: where to write; None: DATA/reports.
        progress: progress bars while hashing.

    Returns:
        ``{"deployment_id", "json", "html", "broken" (links), "digest"}``.

    Raises:
        InputError: nothing is deployed, or no such deployment.
    """
    pack = build_evidence(root, deployment_id or "current", progress)
    out = Path(out_dir) if out_dir is not None else DataRoot.of(root).reports
    dep_id = pack["deployment_id"]
    html_path, json_path = out / f"evidence-{dep_id}.html", out / f"evidence-{dep_id}.json"
    atomic_write_bytes(html_path, render_evidence_html(pack).encode())
    atomic_write_json(json_path, json.loads(json.dumps(pack, default=str)))
    broken = pack["lineage"]["counts"]["broken"]
    log.info("evidence of %s: %s and %s (%d broken link(s))", dep_id, json_path, html_path, broken)
    return {"deployment_id": dep_id, "json": str(json_path), "html": str(html_path), "broken": broken,
            "digest": pack["digest"]}


RECORD_FIELDS = ("deployment_id", "json", "html", "broken", "digest", "reason")
"""Fields of the pipeline task's record (notebooks/09_evidence.py, product ``record``)."""


def evidence_task(root: str | os.PathLike[str], record: str | os.PathLike[str],
                  out_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The pipeline's evidence step: the pack of the current deployment, and a small record naming it.

    When nothing is deployed (the gate refused every model), no pack is written and the record says why.

    Args:
        root: the data root.
        record: where the record goes (`RECORD_FIELDS`; ``deployment_id`` and the paths null without a deployment).
        out_dir: where the pack goes; None: DATA/reports.

    Returns:
        The record.
    """
    from longtail.catalog.deployments import current_deployment_id

    if current_deployment_id(root) is None:
        out: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
        out["reason"] = ("nothing is deployed (no model passed the gate, or deploy has not run): there is no "
                         "deployment to write evidence for")
        log.warning("evidence: %s", out["reason"])
    else:
        out = {**write_evidence(root, None, out_dir), "reason": ""}
    from longtail.storage import write_json_if_changed

    write_json_if_changed(record, out)
    return out
