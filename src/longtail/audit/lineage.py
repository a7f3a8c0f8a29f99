"""Lineage: the chain from a deployed model down to the raw drive logs, every link checked.

`trace` follows the records the stages wrote, top to bottom::

    deployment        DATA/deployments/<id>/deployment.json: sha256 of every file in the folder
    model version     MLflow registry: its run, and model.pt's sha256 against the deployment's weights_sha256
    training run      MLflow run: code commit, environment lock sha256, config, the dataset it trained on
    dataset version   DATA/datasets/<v>/manifest.json and <v>.dvc: every file recomputed (sha256, DVC md5)
    label sets        DATA/labels/<batch>/manifest.json and qa.json: labels digest, label QA results
    selections        DATA/batches/<batch>/manifest.json: the selection digest, the failure modes it mined
    drive logs        DATA/index/logs/<log_id>.json: the MCAP's sha256 (its log id), recomputed when present

A link that does not check out is reported with status ``broken`` (and one that cannot be checked
because the data is elsewhere, ``absent``), never skipped: see `longtail.audit.links`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longtail.audit.links import (
    Link,
    Status,
    check_dataset_version,
    check_drive_log,
    check_failure_modes,
    check_label_set,
    check_selection,
    digest_status,
    files_digest,
    read_json,
)
from longtail.catalog.deployments import (
    DEPLOYMENT_FILE,
    deployment_folder,
    list_deployments,
    read_record,
)
from longtail.catalog.root import DataRoot
from longtail.detector.registry import CHAMPION_ALIAS, REGISTERED_MODEL, tracking_uri_for
from longtail.errors import InputError, LongtailError
from longtail.storage import sha256_file

_MODEL_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")
REF_HELP = ("models:/longtail-detector@champion, models:/longtail-detector/<version>, a deployment id (d- and 16 hex "
            "digits) or 'current'")


@dataclass(frozen=True)
class Lineage:
    """A traced chain.

    Attributes:
        ref: what was asked for.
        deployment_id: the deployment at the top, or None when the model is not deployed.
        model_uri: ``models:/<name>/<version>`` of the model, or None when it could not be resolved.
        links: every link, top (deployment) first, each naming its parent.
    """

    ref: str
    deployment_id: str | None
    model_uri: str | None
    links: tuple[Link, ...]

    @property
    def broken(self) -> list[Link]:
        """Links whose check failed."""
        return [link for link in self.links if link.status == "broken"]

    def counts(self) -> dict[str, int]:
        """Links per status."""
        return {s: sum(link.status == s for link in self.links) for s in ("ok", "broken", "absent")}

    def as_dict(self) -> dict[str, Any]:
        """The chain as JSON-ready data: ``ref``, ``deployment_id``, ``model_uri``, ``counts``, ``links``."""
        return {"ref": self.ref, "deployment_id": self.deployment_id, "model_uri": self.model_uri,
                "counts": self.counts(), "links": [link.as_dict() for link in self.links]}


def _repo_lock() -> str | None:
    """sha256 of this checkout's env/requirements.lock (what a training run records), or None."""
    path = Path(__file__).resolve().parents[3] / "env" / "requirements.lock"
    return sha256_file(path) if path.is_file() else None


def _tracking_uri(root: DataRoot, record: Mapping[str, Any] | None) -> str:
    """The data root's own MLflow store when it has one, else the one the deployment record names."""
    if (root.mlflow / "mlflow.db").exists() or not record or not record.get("tracking_uri"):
        return tracking_uri_for(root)
    return str(record["tracking_uri"])


def _resolve(root: DataRoot, ref: str) -> tuple[Path | None, str, str | None]:
    """(deployment folder or None, registered model name, version or None) for a reference.

    Raises:
        InputError: an unknown reference form, nothing deployed for 'current', or an unknown alias.
    """
    if ref == "current" or ref.startswith("d-"):
        folder = deployment_folder(root, ref)  # follows current.json; raises for a malformed id or nothing deployed
        if not folder.is_dir():
            raise InputError(f"{folder}: no deployment {ref} in {root}; deployments here: "
                             f"{[r['deployment_id'] for r in list_deployments(root)] or 'none'}")
        return folder, REGISTERED_MODEL, None
    match = _MODEL_REF.match(ref)
    if not match:
        raise InputError(f"lineage: REF={ref!r} is not a model or deployment reference; give {REF_HELP}")
    name, version = match["name"], match["version"]
    if match["alias"]:
        from mlflow.exceptions import MlflowException

        from longtail.detector.model import mlflow_client

        if not (root.mlflow / "mlflow.db").exists():
            raise InputError(f"{root.mlflow / 'mlflow.db'}: missing; no model was trained in {root}. Point --root at "
                             f"the data root whose registry holds {name}")
        try:
            version = str(mlflow_client(tracking_uri_for(root)).get_model_version_by_alias(name, match["alias"]).version)
        except MlflowException:
            raise InputError(f"{tracking_uri_for(root)}: registered model {name!r} has no alias {match['alias']!r}; "
                             f"`longtail evaluate` promotes a {CHAMPION_ALIAS}") from None
    deployed = [r for r in list_deployments(root) if str(r["model"].get("version")) == version
                and r["model"].get("name", name) == name]
    deployed.sort(key=lambda r: (bool(r.get("current")), r["created_at"]))
    return (Path(deployed[-1]["path"]) if deployed else None), name, version


def _deployment_links(folder: Path) -> tuple[list[Link], dict[str, Any] | None]:
    """The deployment record and every file it lists, each recomputed."""
    path = folder / DEPLOYMENT_FILE
    try:
        record = read_record(folder)
    except LongtailError as exc:
        return [Link("deployment", folder.name, str(path), None, None, "broken",
                     f"{exc}. Without its record the deployment cannot be traced.")], None
    files: dict[str, str] = record.get("files") or {}
    actual = {name: sha256_file(folder / name) if (folder / name).is_file() else "missing" for name in files}
    key = f"deployment:{record['deployment_id']}"
    bad = [Link("file", str(folder / name), str(folder / name), files[name], None if actual[name] == "missing"
                else actual[name], "broken",
                f"{folder / name}: sha256 {actual[name]} differs from {files[name]}, the digest {path} records: the "
                f"deployed file was modified or removed after deployment. Deploy again (`longtail deploy`); "
                f"what the fleet runs is not what was checked.", key) for name in sorted(files) if actual[name] != files[name]]
    recorded, found = files_digest(files), files_digest(actual)
    status: Status = "broken" if bad else "ok"
    message = (f"{len(files)} file(s) match the sha256 in {DEPLOYMENT_FILE}" if not bad else
               f"{len(bad)} of {len(files)} file(s) differ from {DEPLOYMENT_FILE}: {', '.join(b.id for b in bad)}")
    detail = {k: record.get(k) for k in ("created_at", "thresholds", "thresholds_source", "backends")}
    return [Link("deployment", record["deployment_id"], str(path), recorded, found, status, message, None, detail),
            *bad], record


def _model_links(root: DataRoot, uri: str, name: str, version: str, record: Mapping[str, Any] | None,
                 parent: str | None) -> tuple[list[Link], dict[str, Any], Any]:
    """The model version (weights recomputed from the registry's artifact) and its MLflow run."""
    import json

    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from longtail.detector.model import mlflow_client

    client = mlflow_client(uri)
    model_uri = f"models:/{name}/{version}"
    try:
        mv = client.get_model_version(name, version)
    except MlflowException:
        return [Link("model_version", f"{name}/{version}", model_uri, None, None, "broken",
                     f"{uri}: no version {version} of registered model {name!r}: the registry the deployment names "
                     f"lost it (another data root, or deleted). Point --root at the data root that trained it.",
                     parent)], {}, None
    recorded = (record or {}).get("model", {}).get("weights_sha256")
    meta: dict[str, Any] = {}
    found = None
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{str(mv.source).rstrip('/')}",
                                                             dst_path=tmp, tracking_uri=uri))
            found = sha256_file(local / "model.pt") if (local / "model.pt").is_file() else None
            meta = json.loads((local / "model.json").read_text()) if (local / "model.json").is_file() else {}
        except (MlflowException, OSError, ValueError) as exc:
            problems.append(f"{mv.source}: the model's artifacts could not be read ({exc})")
    if found is None and not problems:
        problems.append(f"{mv.source}: no model.pt among the model version's artifacts")
    if recorded is not None and found is not None and recorded != found:
        problems.append(f"{mv.source}/model.pt: sha256 {found} differs from weights_sha256={recorded} of the "
                        f"deployment record: the registered weights are not the deployed ones")
    deployed_run = (record or {}).get("model", {}).get("run_id")
    if deployed_run and deployed_run != mv.run_id:
        problems.append(f"model version {version} comes from run {mv.run_id}, the deployment record says {deployed_run}")
    status: Status = "broken" if problems else ("ok" if found else "absent")
    message = "; ".join(problems) + ". Redeploy from the registry (`longtail deploy`)" if problems else \
        "model.pt in the registry matches the deployed weights" if recorded else \
        "model.pt read from the registry (no deployment records its digest)"
    detail = {"run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags or {}), "preset": meta.get("preset")}
    links = [Link("model_version", f"{name}/{version}", model_uri, recorded, found, status, message, parent, detail)]
    parent_uri = (mv.tags or {}).get("longtail.parent_model_uri")
    if parent_uri:  # fine-tuned (a later turn of the loop): the model it started from, its weights re-hashed
        links.append(_parent_link(client, uri, str(parent_uri), (mv.tags or {}).get("longtail.parent_weights_sha256"),
                                  f"model_version:{name}/{version}"))
    try:
        run = client.get_run(str(mv.run_id))
    except MlflowException:
        links.append(Link("training_run", str(mv.run_id), f"runs:/{mv.run_id}", None, None, "broken",
                          f"{uri}: MLflow run {mv.run_id} of model version {version} is gone: its code commit, "
                          f"environment and config cannot be shown. Restore the tracking store.",
                          f"model_version:{name}/{version}"))
        return links, meta, None
    return links, meta, run


def _parent_link(client: Any, uri: str, parent_uri: str, recorded: str | None, parent: str) -> Link:
    """The registered model a fine-tuned version started from, with its weights' sha256 recomputed."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    name, _, version = parent_uri.removeprefix("models:/").rpartition("/")
    try:
        mv = client.get_model_version(name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=str(mv.source).rstrip("/"), dst_path=tmp,
                                                             tracking_uri=uri))
            found = sha256_file(local / "model.pt") if (local / "model.pt").is_file() else None
    except (MlflowException, OSError, ValueError) as exc:
        return Link("parent_model", parent_uri, parent_uri, recorded, None, "broken",
                    f"{uri}: the model this one was fine-tuned from, {parent_uri}, cannot be read ({exc}): restore it in "
                    "the registry, or the fine-tuned model's origin cannot be shown", parent)
    if found is None or (recorded is not None and found != recorded):
        return Link("parent_model", parent_uri, parent_uri, recorded, found, "broken",
                    f"{mv.source}/model.pt: sha256 {found} differs from longtail.parent_weights_sha256={recorded} recorded "
                    "when fine-tuning started: the registered parent is not the model that was fine-tuned", parent)
    return Link("parent_model", parent_uri, parent_uri, recorded, found, "ok",
                "fine-tuned from these weights (warm start); their own lineage: longtail lineage " + parent_uri, parent,
                {"run_id": mv.run_id})


def _run_links(root: DataRoot, run: Any, meta: Mapping[str, Any], dataset: Mapping[str, Any] | None, version_id: str,
               weights: str | None, parent: str) -> list[Link]:
    """The training run, the code commit and the environment lock it recorded, and the run folder's own
    model.pt (DATA/runs/<run_id>/model.pt, when this data root trained it) against the registered weights."""
    tags, params = dict(run.data.tags), dict(run.data.params)
    run_id = run.info.run_id
    recorded = tags.get("longtail.dataset_digest") or meta.get("dataset_digest")
    found = (dataset or {}).get("digest")
    status = digest_status(recorded, found) if dataset is not None else "absent"
    message = (f"trained on dataset version {version_id}, whose manifest digest matches" if status == "ok" else
               f"the run recorded dataset digest {recorded}, dataset version {version_id} now has {found}: the "
               f"version was rebuilt or changed after training; the model cannot be traced to it" if status == "broken"
               else f"dataset version {version_id} is not readable here, so the run's dataset digest was not compared")
    detail = {"run_name": run.info.run_name, "status": run.info.status, "dataset_version": version_id,
              "config": params, "experiment_id": run.info.experiment_id,
              "stopped_by_budget": tags.get("longtail.stopped_by_budget")}
    key = f"training_run:{run_id}"
    local = root.runs / run_id / "model.pt"
    actual = sha256_file(local) if local.is_file() and weights is not None else None
    if actual is not None:
        detail["run_folder_weights_sha256"] = actual
    links = [Link("training_run", run_id, f"runs:/{run_id}", recorded, found, status, message, parent, detail)]
    if actual is not None and actual != weights:
        links.append(Link("file", str(local), str(local), weights, actual, "broken",
                          f"{local}: sha256 {actual} differs from {weights}, the registered model's: the run folder's "
                          f"weights were overwritten after registration (a resumed or repeated run?). The registry's "
                          f"copy is the one deployed; find out what rewrote the folder.", key))
    commit = tags.get("mlflow.source.git.commit")
    if commit:
        dirty = commit.endswith("+dirty")
        links.append(Link("code_commit", commit, f"runs:/{run_id}", commit, None, "ok",
                          f"git commit {commit}" + (": the working tree had uncommitted changes, so the exact code is "
                                                    "not recoverable from git alone" if dirty else ""), key))
    else:
        links.append(Link("code_commit", "unknown", f"runs:/{run_id}", None, None, "absent",
                          "the run recorded no code commit (tag mlflow.source.git.commit): it was trained outside a git "
                          "checkout or not by `longtail train`; the code cannot be identified", key))
    lock = tags.get("longtail.env_lock_sha256")
    here = _repo_lock()
    if lock:
        same = "matches" if here == lock else f"differs from this checkout's ({here or 'none'})"
        links.append(Link("environment", lock[:16], f"runs:/{run_id}", lock, None, "ok",
                          f"env/requirements.lock sha256 {lock}; {same}", key))
    else:
        links.append(Link("environment", "unknown", f"runs:/{run_id}", None, None, "absent",
                          "the run recorded no environment lock (tag longtail.env_lock_sha256): the dependency set it "
                          "trained with is unknown", key))
    return links


def trace(root: str | os.PathLike[str], ref: str = "current", progress: bool = False) -> Lineage:
    """Trace a deployed or registered model down to the drive logs, checking every link.

    Args:
        root: the data root.
        ref: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, a deployment id or ``"current"``.
        progress: show progress bars while hashing the dataset and the drive logs.

    Returns:
        The `Lineage`, its links top first. Broken links are in it, never left out.

    Raises:
        InputError: the reference is malformed, names nothing (no such alias; nothing deployed for
            ``current``), or the data root has no registry.
    """
    data = DataRoot.of(root)
    folder, name, version = _resolve(data, ref)
    links: list[Link] = []
    record: dict[str, Any] | None = None
    if folder is not None:
        top, record = _deployment_links(folder)
        links += top
        if record is not None:
            name = record["model"].get("name", name)
            version = str(record["model"]["version"])
    elif version is not None:
        links.append(Link("deployment", "none", str(data.deployments), None, None, "absent",
                          f"{name} version {version} has not been deployed (no deployment record names it)."))
    if version is None:  # the deployment record is unreadable: nothing below it can be found
        return Lineage(ref, folder.name if folder else None, None, tuple(links))
    parent = links[0].key if links else None
    uri = _tracking_uri(data, record)
    model_links, meta, run = _model_links(data, uri, name, version, record, parent)
    links += model_links
    version_id = (run.data.tags.get("longtail.version_id") if run is not None else None) or \
        meta.get("dataset_version") or (record or {}).get("model", {}).get("dataset_version")
    if not version_id:
        links.append(Link("dataset_version", "unknown", str(data.datasets), None, None, "broken",
                          "neither the run nor the model's meta names its dataset version: the model was registered "
                          "without `longtail train`; its training data cannot be traced.", model_links[0].key))
        return Lineage(ref, record["deployment_id"] if record else None, f"models:/{name}/{version}", tuple(links))
    run_key = f"training_run:{run.info.run_id}" if run is not None else model_links[-1].key
    dataset_links, dataset = check_dataset_version(data, str(version_id), run_key, progress)
    if run is not None:
        links += _run_links(data, run, meta, dataset, str(version_id), model_links[0].found, model_links[0].key)
    links += dataset_links
    links += _below_dataset(data, dataset or {}, f"dataset_version:{version_id}", progress)
    return Lineage(ref, record["deployment_id"] if record else None, f"models:/{name}/{version}", tuple(links))


def _below_dataset(data: DataRoot, dataset: Mapping[str, Any], key: str, progress: bool) -> list[Link]:
    """Label sets, their QA, selections, the failure modes they mined and the drive logs, under a version."""
    links: list[Link] = []
    label_keys = {}
    for entry in dataset.get("label_sets") or []:
        found = check_label_set(data, entry, key)
        links += found
        label_keys[str(entry.get("batch_id"))] = found[0].key
    registry, why = read_json(data.failure_modes)
    modes = {m.get("name"): m for m in (registry or {}).get("failure_modes", [])} if registry else None
    seen: set[str] = set()
    lineage = dataset.get("lineage") or {}
    for batch_id, digest in sorted((lineage.get("batches") or {}).items()):
        sel_links, manifest = check_selection(data, batch_id, digest, label_keys.get(batch_id, key))
        links += sel_links
        if manifest is None:
            continue
        names = list(manifest.get("failure_modes") or [])
        if names and modes is None:
            links.append(Link("failure_mode", ",".join(names), str(data.failure_modes), None, None, "broken",
                              f"{why}: the failure-mode registry is gone; batch {batch_id} mined {names}. Restore "
                              f"DATA/curate/failure_modes.json.", sel_links[0].key))
        else:
            links += check_failure_modes(names, modes, data.failure_modes, sel_links[0].key)
        for log_id in (manifest.get("lineage") or {}).get("logs") or []:
            if log_id not in seen:
                seen.add(log_id)
                links.append(check_drive_log(data, log_id, sel_links[0].key, progress))
    for log_id in lineage.get("drive_logs") or []:
        if log_id not in seen:
            seen.add(log_id)
            links.append(check_drive_log(data, log_id, key, progress))
    return links
