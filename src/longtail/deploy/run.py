"""Deploy the champion: exports checked against PyTorch, thresholds, model card, MLflow pyfunc, record.

`run_deploy` is what `longtail deploy` and notebooks/06_deploy.py run:

1. Resolve the registry's ``champion`` alias to its version and download its model.pt and model.json;
   with no champion, stop with an error saying how to get one.
2. The per-class operating thresholds: the model's own (calibrated on validation when trained), else
   the ones its evaluation used, else 0.5 for every class; where they came from is recorded.
3. The deployment id, ``d-`` + 16 hex digits of sha256 over the model version, its weights' sha256
   and the thresholds. If DATA/deployments/<id>/deployment.json exists and its files check out, the
   champion is deployed already: nothing is written (current.json is pointed back at it if needed).
4. In a temporary folder beside the final one: TorchScript and ONNX exports, thresholds.json,
   model.json, the parity check on test frames (`longtail.deploy.parity`; a failure refuses the
   deployment), the model card, the MLflow pyfunc model, and deployment.json, written last with the
   sha256 of every other file. The folder is then renamed into place in one step, so a crash leaves
   no folder under the final name, and never a record without its files.
5. Point DATA/deployments/current.json (and the ``current`` symlink beside it) at it and tag the model
   version (``longtail.deployment``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from longtail.catalog.deployments import (
    CURRENT_FILE,
    CURRENT_LINK,
    DEPLOYMENT_FILE,
    DEPLOYMENT_FORMAT,
    current_deployment_id,
    deployments_dir,
    read_record,
    verify_files,
)
from longtail.catalog.failure_modes import load_registry
from longtail.catalog.root import DataRoot
from longtail.catalog.timeline import record_step, version_mined_modes
from longtail.catalog.versions import datasets_dir, list_versions, read_json_object
from longtail.config import _Frozen
from longtail.detector.export import EXPORT_META_FILE, ONNX_FILE, THRESHOLDS_FILE, TORCHSCRIPT_FILE, export_detector
from longtail.detector.model import MODEL_FILE, MODEL_META_FILE, load_model, mlflow_client
from longtail.detector.registry import REGISTERED_MODEL, champion_model_uri, tracking_uri_for
from longtail.errors import InputError, invalid_config
from longtail.schemas import CATEGORIES
from longtail.storage import atomic_write_bytes, atomic_write_json, sha256_file

log = logging.getLogger(__name__)

MODEL_CARD_FILE = "model_card.md"
PARITY_FILE = "parity.json"
PYFUNC_DIR = "pyfunc"
DEPLOYMENT_TAG = "longtail.deployment"


class NoChampionError(InputError):
    """The registry has no champion: there is nothing to deploy."""


class DeployConfig(_Frozen):
    """What `run_deploy` checks and writes."""

    registered_model: str = Field(REGISTERED_MODEL, description="registered model whose champion is deployed")
    version_id: str | None = Field(None, description="dataset version whose test frames the parity check uses "
                                                     "(default: the newest)")
    parity_frames: int = Field(32, ge=1, le=100_000, description="most test frames the parity check runs on")
    box_tolerance_px: float = Field(0.5, gt=0, description="largest box coordinate difference an export may show, px")
    score_tolerance: float = Field(1e-3, gt=0, le=1, description="largest score difference an export may show")
    pyfunc_backend: Literal["onnx", "torchscript"] = Field("onnx", description="the export `mlflow models serve` runs")


def make_deploy_config(source: str, **values: Any) -> DeployConfig:
    """A `DeployConfig`, with every bad field named in one `ConfigError` (None values keep the default)."""
    try:
        return DeployConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise invalid_config(source, "deploy config", exc) from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _fetch_champion(root: Path, tracking_uri: str | None, name: str, dst: Path) -> dict[str, Any]:
    """Step 1: the champion's version, run, tags and files (downloaded into ``dst``)."""
    import mlflow.artifacts

    champion = champion_model_uri(root, tracking_uri, name)
    if champion is None:
        where = tracking_uri or f"sqlite:///{DataRoot.of(root).mlflow / 'mlflow.db'}"
        raise NoChampionError(f"{where}: registered model {name!r} has no champion, so there is nothing to deploy. "
                         "Train a model (`longtail train`) and evaluate it (`longtail evaluate`: its gate promotes the "
                         "first model that passes), or promote a version yourself (`longtail promote N`)")
    version = champion.rsplit("/", 1)[1]
    tracking_uri = tracking_uri_for(root, tracking_uri)
    mv = mlflow_client(tracking_uri).get_model_version(name, version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=str(mv.source), dst_path=str(dst),
                                                     tracking_uri=tracking_uri))
    for file in (MODEL_FILE, MODEL_META_FILE):
        if not (local / file).is_file():
            raise InputError(f"{mv.source}: {file} missing from model version {version} of {name!r}; it cannot be "
                             "deployed. Promote another version (`longtail promote N`)")
    return {"name": name, "version": str(version), "uri": f"models:/{name}/{version}", "run_id": mv.run_id,
            "tags": dict(mv.tags), "files": local, "weights_sha256": sha256_file(local / MODEL_FILE)}


def _find_evaluation(root: Path, tags: dict[str, str], run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The model's evaluation.json: the one its version's tag names, else the newest of its run."""
    candidates = [Path(tags["longtail.evaluation"])] if tags.get("longtail.evaluation") else []
    candidates += sorted(DataRoot.of(root).evaluations.glob(f"*/{run_id}/evaluation.json"),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if path.is_file():
            try:
                return json.loads(path.read_text()), str(path)
            except ValueError:
                log.warning("%s: not JSON; the model card leaves it out", path)
    return None, None


def _thresholds(meta: dict[str, Any], tags: dict[str, str], evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """Step 2: the operating thresholds and where they came from (JSON of thresholds.json)."""
    classes = list(meta.get("classes") or CATEGORIES)
    found, source = meta.get("thresholds"), "calibrated on validation when the model was trained (model.json)"
    if not found and tags.get("longtail.thresholds"):
        found, source = json.loads(tags["longtail.thresholds"]), "the model version's longtail.thresholds tag"
    if not found and evaluation and evaluation.get("operating_thresholds"):
        found, source = evaluation["operating_thresholds"], "the operating thresholds of the model's evaluation"
    if not found:
        found, source = {}, "0.5 for every class: the model has no calibrated thresholds"
        log.warning("the champion has no calibrated thresholds: deploying with 0.5 for every class")
    thresholds = {c: float(found.get(c, 0.5)) for c in classes}
    rule = (meta.get("calibration") or {}).get("rule")
    return {"classes": classes, "thresholds": thresholds, "source": source, **({"rule": rule} if rule else {})}


def compute_deployment_id(model_uri: str, weights_sha256: str, thresholds: dict[str, float]) -> str:
    """Step 3: ``d-`` + 16 hex digits of sha256 over the format, model version, weights digest and thresholds."""
    key = json.dumps({"format": DEPLOYMENT_FORMAT, "model": model_uri, "weights": weights_sha256,
                      "thresholds": thresholds}, sort_keys=True)
    return "d-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _link_current(root: Path, deployment_id: str) -> None:
    """DATA/deployments/current -> <deployment_id>, a relative symlink replaced in one step, for tools
    that take a deployment folder (`longtail fleet-test --perception champion=DATA/deployments/current`)."""
    link = deployments_dir(root) / CURRENT_LINK
    if link.is_symlink() and os.readlink(link) == deployment_id:
        return
    tmp = link.with_name(f".{CURRENT_LINK}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(deployment_id, tmp)
    try:
        os.replace(tmp, link)
    except OSError as exc:  # e.g. a real folder called "current": current.json still says which is current
        tmp.unlink(missing_ok=True)
        log.warning("%s: not replaced by a link to %s (%s); current.json names the current deployment", link,
                    deployment_id, exc)


def _point_current(root: Path, record: dict[str, Any]) -> bool:
    """Step 5: current.json (then the ``current`` link) -> the deployment, unless it points there
    already. Returns whether current.json moved."""
    moved = current_deployment_id(root) != record["deployment_id"]
    if moved:
        atomic_write_json(deployments_dir(root) / CURRENT_FILE, {"deployment_id": record["deployment_id"],
                                                                 "model_uri": record["model"]["uri"],
                                                                 "updated_at": _now()})
    _link_current(root, record["deployment_id"])
    return moved


def _parity_version(root: Path, config: DeployConfig) -> str:
    if config.version_id:
        return config.version_id
    versions = list_versions(root)
    if not versions:
        raise InputError(f"{datasets_dir(root)}: no dataset version, so no test frames for the parity check; build "
                         "one with `longtail label`, or pass --version")
    return str(versions[-1]["version_id"])


def _file_digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != DEPLOYMENT_FILE}


def run_deploy(root: str | os.PathLike[str], config: DeployConfig | None = None, tracking_uri: str | None = None,
               progress: bool = False) -> dict[str, Any]:
    """Deploy the champion (module docstring).

    Args:
        root: the data root.
        config: parity sample and tolerances, registered model, pyfunc backend.
        tracking_uri: MLflow (default: the data root's sqlite store).
        progress: show progress bars.

    Returns:
        ``{"record": deployment.json plus path, "created": bool, "current_moved": bool}``.

    Raises:
        NoChampionError: the registry has no champion.
        InputError: no dataset version for the parity check, or an existing deployment of the
            same id whose files were modified.
        ParityError: an export does not answer as PyTorch does (nothing is written).
    """
    from longtail.deploy.card import render_model_card
    from longtail.deploy.parity import check_parity, load_parity_frames, raise_if_failed

    config = config or DeployConfig()
    root = Path(root)
    out_dir = deployments_dir(root)
    with tempfile.TemporaryDirectory(prefix="longtail-champion-") as download:
        # 1-3. The champion, its thresholds, the deployment id.
        champ = _fetch_champion(root, tracking_uri, config.registered_model, Path(download))
        uri = tracking_uri_for(root, tracking_uri)
        meta = json.loads((champ["files"] / MODEL_META_FILE).read_text())
        evaluation, evaluation_path = _find_evaluation(root, champ["tags"], champ["run_id"])
        thresholds = _thresholds(meta, champ["tags"], evaluation)
        deployment_id = compute_deployment_id(champ["uri"], champ["weights_sha256"], thresholds["thresholds"])
        final = out_dir / deployment_id
        if final.exists():  # deployed already (read_record refuses a folder without its record)
            record = read_record(final)
            verify_files(final, record)
            moved = _point_current(root, record)
            _record_deployed(root, record)
            log.info("%s is deployed already as %s: nothing to do%s", champ["uri"], deployment_id,
                     " (current.json points at it again)" if moved else "")
            return {"record": record, "created": False, "current_moved": moved}
        # 4. Everything in a temporary folder beside the final one, the record last, then one rename.
        model, _ = load_model(champ["files"])
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{deployment_id}.", suffix=".tmp", dir=out_dir))
        try:
            export_meta = export_detector(model, meta, tmp)
            atomic_write_json(tmp / THRESHOLDS_FILE, thresholds)
            shutil.copyfile(champ["files"] / MODEL_META_FILE, tmp / MODEL_META_FILE)
            version_id = _parity_version(root, config)
            ids, frames, described = load_parity_frames(root, version_id, config.parity_frames)
            parity = check_parity(model, tmp, frames, thresholds["thresholds"], export_meta["score_floor"],
                                  config.box_tolerance_px, config.score_tolerance, export_meta["detections_per_img"],
                                  described, ids, progress)
            atomic_write_json(tmp / PARITY_FILE, parity)
            raise_if_failed(parity)
            created_at = _now()
            model_info = {k: champ[k] for k in ("name", "version", "uri", "run_id", "weights_sha256")}
            model_info.update(preset=meta.get("preset"), dataset_version=meta.get("dataset_version"),
                              dataset_digest=meta.get("dataset_digest"))
            vid = meta.get("dataset_version")
            manifest_path = datasets_dir(root) / str(vid) / "manifest.json"
            manifest = read_json_object(manifest_path, "", "") if vid and manifest_path.is_file() else None
            card = render_model_card(deployment_id, model_info, meta, thresholds, manifest, evaluation, evaluation_path,
                                     load_registry(root).values(), parity, created_at)
            atomic_write_bytes(tmp / MODEL_CARD_FILE, card.encode())
            from longtail.deploy.pyfunc import save_pyfunc  # imports MLflow's pyfunc: only when deploying

            save_pyfunc(tmp, tmp / PYFUNC_DIR, config.pyfunc_backend)
            record = {"format": DEPLOYMENT_FORMAT, "deployment_id": deployment_id, "created_at": created_at,
                      "model": model_info, "thresholds": thresholds["thresholds"],
                      "thresholds_source": thresholds["source"],
                      "parity": {k: parity[k] for k in ("tolerance", "frames", "frames_description", "passed")}
                      | {"backends": {b: {"max_box_diff": r["all"]["max_box_diff"],
                                          "max_score_diff": r["all"]["max_score_diff"],
                                          "unmatched": r["all"]["missed"] + r["operating"]["missed"],
                                          "ms_per_frame": r["ms_per_frame"]} for b, r in parity["backends"].items()}},
                      "files": _file_digests(tmp),
                      "backends": {"torchscript": TORCHSCRIPT_FILE, "onnx": ONNX_FILE}, "export": EXPORT_META_FILE,
                      "pyfunc": PYFUNC_DIR, "pyfunc_backend": config.pyfunc_backend, "model_card": MODEL_CARD_FILE,
                      "evaluation": evaluation_path, "parity_version": version_id, "tracking_uri": uri,
                      "config": config.model_dump(mode="json")}
            atomic_write_json(tmp / DEPLOYMENT_FILE, record)  # written last
            tmp.chmod(0o755)  # mkdtemp makes it 0700; a deployment is as readable as any other product
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / DEPLOYMENT_FILE).is_file():
                    raise
                log.info("another process deployed %s as %s meanwhile: keeping its folder", champ["uri"], deployment_id)
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    # 5. The pointer, then the tag on the model version.
    moved = _point_current(root, record)
    _record_deployed(root, record)
    client = mlflow_client(uri)
    client.set_model_version_tag(champ["name"], champ["version"], DEPLOYMENT_TAG, deployment_id)
    client.set_model_version_tag(champ["name"], champ["version"], "longtail.deployed_at", created_at)
    log.info("deployed %s as %s in %s (parity on %s: passed)", champ["uri"], deployment_id, final, described)
    return {"record": read_record(final), "created": True, "current_moved": moved}


def _record_deployed(root: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Mark deployed the failure modes whose mined frames are in the deployed model's dataset version."""
    model = record["model"]
    record_step(root, version_mined_modes(root, model.get("dataset_version")), "deployed", record["deployment_id"],
                f"{model.get('uri')} trained on {model.get('dataset_version')}", at=record["created_at"])


def deploy_task(root: str | os.PathLike[str], config: DeployConfig | None = None, tracking_uri: str | None = None
                ) -> dict[str, Any]:
    """The pipeline's deploy task: `run_deploy`, except that a registry without a champion (the gate
    refused every model so far) is an outcome, not a failure: current.json then says that nothing is
    deployed and why (``deployment_id`` null), unless an earlier deployment is current.

    Returns:
        `run_deploy`'s dict, or ``{"record": None, "created": False, "reason": why}``.
    """
    try:
        return run_deploy(root, config, tracking_uri)
    except NoChampionError as exc:
        pointer = deployments_dir(root) / CURRENT_FILE
        if not pointer.exists():
            atomic_write_json(pointer, {"deployment_id": None, "model_uri": None, "updated_at": _now(),
                                        "reason": str(exc)})
        log.warning("nothing deployed: %s", exc)
        return {"record": None, "created": False, "reason": str(exc)}


def record_deploy_task(result: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write what one deploy task left deployed to ``path`` (a later turn's product: current.json is
    shared by every turn and moves with the champion), atomically.

    When the gate kept the old champion, the record names the deployment that stays, with
    ``created`` false; with nothing deployed at all, ``deployment_id`` is null and ``reason`` says why.
    """
    record = result.get("record")
    out = {"deployment_id": record["deployment_id"] if record else None,
           "model_uri": record["model"]["uri"] if record else None,
           "created": bool(result.get("created")), "reason": result.get("reason")}
    atomic_write_json(path, out)
    return out
