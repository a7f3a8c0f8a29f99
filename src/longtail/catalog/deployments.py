"""Readers of deployments: which model the fleet runs, with its exports, thresholds and digests.

`longtail.deploy` writes one folder per deployment, DATA/deployments/<deployment_id>/::

    model.ts            TorchScript export (longtail.detector.export)
    model.onnx          ONNX export, opset 18
    export.json         classes, input scale and score floor of both exports
    thresholds.json     per-class operating thresholds and where they came from
    model.json          the trained model's own meta (preset, dataset version, training config)
    model_card.md       intended use, training data and lineage, targets, known failure modes
    parity.json         PyTorch vs TorchScript vs onnxruntime on test frames
    pyfunc/             an MLflow pyfunc model (``mlflow models serve -m pyfunc``)
    deployment.json     the record, written last (`DEPLOYMENT_FIELDS`)

and DATA/deployments/current.json points at the deployment in use (`CURRENT_FIELDS`); the symlink
DATA/deployments/current -> <deployment_id> says the same to tools that take a folder (``longtail
fleet-test --perception champion=DATA/deployments/current``), current.json being the record. A folder
without deployment.json is incomplete (a deploy that crashed) and is never read. Stages that need
the deployed model (the fleet test, the monitor) read it here and open it with
`longtail.detector.export.load_deployed_detector`, never through the deploy stage.

The record (deployment.json):

- ``format``: ``longtail.deployment/1``.
- ``deployment_id``: ``d-`` and 16 hex digits, derived from the model version, its weights' sha256
  and its thresholds: the same champion always gets the same id.
- ``created_at``: ISO 8601 UTC.
- ``model``: ``name``, ``version``, ``uri`` (``models:/<name>/<version>``), ``run_id``,
  ``weights_sha256`` (model.pt), ``preset``, ``dataset_version``, ``dataset_digest``.
- ``thresholds``: class -> operating threshold (score 0..1); ``thresholds_source``: where they came from.
- ``parity``: tolerances and, per backend, the largest box (px) and score differences (parity.json).
- ``files``: path relative to the folder -> sha256, for every file but deployment.json.
- ``backends``: backend -> export file; ``pyfunc``: the MLflow model folder; ``model_card``: its file.
- ``tracking_uri``: the MLflow registry the model came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from longtail.catalog.root import DataRoot
from longtail.catalog.versions import read_json_object
from longtail.errors import InputError, SchemaError
from longtail.storage import sha256_file

DEPLOYMENT_FORMAT = "longtail.deployment/1"
DEPLOYMENT_FILE = "deployment.json"
CURRENT_FILE = "current.json"
CURRENT_LINK = "current"
DEPLOYMENT_ID_RE = re.compile(r"^d-[0-9a-f]{16}$")
DEPLOYMENT_FIELDS = ("format", "deployment_id", "created_at", "model", "thresholds", "thresholds_source", "parity",
                     "files", "backends", "pyfunc", "model_card", "tracking_uri")
"""Fields of DATA/deployments/<deployment_id>/deployment.json."""
CURRENT_FIELDS = ("deployment_id", "model_uri", "updated_at")
"""Fields of DATA/deployments/current.json. ``deployment_id`` is null while nothing is deployed (the
pipeline ran before any model became champion); ``reason`` then says why."""
_FIX = "Deploy again with `longtail deploy`"


def deployments_dir(root: str | os.PathLike[str]) -> Path:
    """DATA/deployments: one folder per deployment, and current.json."""
    return DataRoot.of(root).deployments


def current_deployment_id(root: str | os.PathLike[str]) -> str | None:
    """The id current.json points at, or None before the first deployment (or while it says none).

    Raises:
        InputError: current.json is unreadable or names no valid id.
    """
    path = deployments_dir(root) / CURRENT_FILE
    if not path.exists():
        return None
    pointer = read_json_object(path, "the pointer to the current deployment is damaged", _FIX + ".")
    found = pointer.get("deployment_id")
    if found is None:
        return None
    if not isinstance(found, str) or not DEPLOYMENT_ID_RE.match(found):
        raise InputError(f"{path}: field deployment_id={found!r} is not a deployment id (d- and 16 hex digits). "
                         f"{_FIX}.")
    return found


def deployment_folder(root: str | os.PathLike[str], deployment_id: str = "current") -> Path:
    """DATA/deployments/<deployment_id>; ``"current"`` follows current.json.

    Raises:
        InputError: ``"current"`` before any deployment, or a malformed id.
    """
    if deployment_id == "current":
        found = current_deployment_id(root)
        if found is None:
            raise InputError(f"{deployments_dir(root) / CURRENT_FILE}: names no deployment; nothing is deployed in "
                             f"{root} yet. Deploy the champion with `longtail deploy`")
        deployment_id = found
    if not DEPLOYMENT_ID_RE.match(deployment_id):
        raise InputError(f"invalid deployment id {deployment_id!r}: a deployment id is 'd-' and 16 hex digits, as "
                         "`longtail deploy` prints, or 'current'")
    return deployments_dir(root) / deployment_id


def read_record(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A deployment folder's record (deployment.json), checked for its fields, with ``path`` added.

    Raises:
        InputError: the record is missing (an incomplete deployment) or not JSON.
        SchemaError: a field is missing or the format is unknown.
    """
    folder = Path(folder)
    path = folder / DEPLOYMENT_FILE
    if not path.is_file() and folder.is_dir():
        raise InputError(f"{path}: missing; {folder} is an incomplete deployment (deploy stopped before writing its "
                         f"record). Delete the folder and deploy again (`longtail deploy`)")
    record = read_json_object(path, "no deployment here", _FIX + ", or list deployments with list_deployments.")
    lacking = [k for k in DEPLOYMENT_FIELDS if k not in record]
    if lacking:
        raise SchemaError(f"{path}: not a deployment record, lacks {lacking}. {_FIX}.")
    if record["format"] != DEPLOYMENT_FORMAT:
        raise SchemaError(f"{path}: field format={record['format']!r}; this Longtail reads {DEPLOYMENT_FORMAT!r}. "
                          f"{_FIX}.")
    return {**record, "path": str(folder)}


def load_deployment(root: str | os.PathLike[str], deployment_id: str = "current") -> dict[str, Any]:
    """A deployment's record, by id or ``"current"``.

    Args:
        root: the data root.
        deployment_id: ``d-<16 hex>`` or ``"current"`` (current.json).

    Returns:
        deployment.json (`DEPLOYMENT_FIELDS`) plus ``path``, the deployment folder.

    Raises:
        InputError: nothing deployed, an unknown id, or an incomplete deployment.
        SchemaError: a malformed record.
    """
    return read_record(deployment_folder(root, deployment_id))


def list_deployments(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of every complete deployment, oldest first, each with ``path`` and ``current`` (bool).

    Incomplete folders (no deployment.json) are left out.
    """
    folder = deployments_dir(root)
    current = current_deployment_id(root)
    out = []
    for path in sorted(folder.glob(f"d-*/{DEPLOYMENT_FILE}")) if folder.is_dir() else []:
        if DEPLOYMENT_ID_RE.match(path.parent.name):
            record = read_record(path.parent)
            out.append({**record, "current": record["deployment_id"] == current})
    out.sort(key=lambda r: (r["created_at"], r["deployment_id"]))
    return out


def verify_files(folder: str | os.PathLike[str], record: Mapping[str, Any], names: Iterable[str] | None = None) -> None:
    """Check files of a deployment against the sha256 its record holds (all of them by default).

    Raises:
        InputError: naming the first file that is missing or whose bytes differ.
    """
    folder = Path(folder)
    files = record["files"]
    for name in sorted(files) if names is None else names:
        if name not in files:
            raise InputError(f"{folder / DEPLOYMENT_FILE}: field files lacks {name!r}. {_FIX}.")
        path = folder / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != files[name]:
            raise InputError(f"{path}: sha256 {actual} differs from the record's {files[name]}; the deployment was "
                             f"modified. Delete {folder} and deploy again (`longtail deploy`)")
