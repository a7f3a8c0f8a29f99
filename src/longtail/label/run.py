"""The label stage as the pipeline runs it: what notebooks/03_label.py calls.

One call takes the labeling batch the curate task chose through the whole stage, with the same
library calls ``longtail label push``, ``pull [--oracle]`` and ``version`` make:

1. Push the batch to the data root's Label Studio (once; a pushed batch keeps its project).
2. With the simulated labeler (``oracle``), label every unfinished task from the simulator's
   ground truth through Label Studio's REST API, as a person's *Submit* does.
3. When every task is finished, pull: QA, then the label set in DATA/labels/<batch_id>/.
   Without the simulated labeler, unfinished tasks mean people are still labeling: the run
   stops there, and a later run (or ``longtail label pull`` and ``longtail label version``)
   pulls.
4. Freeze the accepted labels of every pulled batch into a dataset version and track it with DVC.

Every step is idempotent, so running the stage again after an interruption finishes the work.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longtail.catalog.db import DEFAULT_DATASET
from longtail.catalog.timeline import batch_mined_modes, record_step
from longtail.catalog.versions import datasets_dir, list_versions
from longtail.detector.registry import champion_model_uri
from longtail.errors import InputError
from longtail.label.prelabel import prelabel_batch
from longtail.label.server import connect
from longtail.label.studio import (
    batch_truth,
    labels_dir,
    oracle_annotate,
    project_tasks,
    pull_batch,
    push_batch,
    read_label_set,
)
from longtail.label.version import VersionConfig, build_version, track_version
from longtail.privacy import PrivacyConfig
from longtail.storage import write_json_if_changed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelRun:
    """What one run of the label stage did and where its results are.

    While people are still labeling (``waiting``), ``version`` and ``dvc`` are None and
    ``label_set`` is the batch's earlier label set (a partial pull), if any.
    """

    batch_id: str
    project_url: str
    """The batch's Label Studio project, at the address Label Studio answers on now."""
    oracle: bool
    """True when the simulated labeler labeled the unfinished tasks."""
    tasks: int
    finished: int
    """Tasks finished (submitted) in Label Studio."""
    push: dict[str, Any]
    """The push record (DATA/labels/<batch_id>/push.json)."""
    label_set: dict[str, Any] | None
    """The label set manifest (DATA/labels/<batch_id>/manifest.json)."""
    version: dict[str, Any] | None
    """The dataset version manifest (DATA/datasets/<version_id>/manifest.json)."""
    dvc: dict[str, Any] | None
    """`track_version`'s record: dvc_file, md5, remote, pushed."""

    @property
    def waiting(self) -> bool:
        """True while tasks of the batch are unfinished in Label Studio (nothing was pulled)."""
        return self.finished < self.tasks


def run_label(root: str | os.PathLike[str], batch_id: str, oracle: bool = True,
              dataset_name: str = DEFAULT_DATASET, remote: str | os.PathLike[str] | None = None,
              version_config: VersionConfig | None = None, privacy: PrivacyConfig | None = None) -> LabelRun:
    """Push a labeling batch, have it labeled, pull and check it, and version the dataset.

    Needs the data root's Label Studio running (`longtail.label.server.start`), or the user's
    (``LONGTAIL_LABELSTUDIO_URL``). Once the registry has a champion, its boxes are pushed as
    pre-labels (`longtail.label.prelabel`), so the labeler corrects rather than draws; before the
    first champion the batch goes without.

    Args:
        root: the data root.
        batch_id: a labeling batch in DATA/batches (`longtail.curate.run.selected_batch`).
        oracle: label unfinished tasks with the simulated labeler (simulated drives only);
            False leaves them to people and pulls only once every task is finished.
        dataset_name: the FiftyOne dataset.
        remote: DVC remote (a folder or s3:// URL); None: `track_version`'s default.
        version_config: split settings of the dataset version; defaults when None.
        privacy: whether and how faces and plates are blurred in the frames people see (default:
            blurred; `longtail.label.blur`).

    Returns:
        What was done; ``waiting`` when people have tasks left.

    Raises:
        UnknownBatchError: for a batch not in DATA/batches.
        LabelStudioError: when Label Studio is not running or answers with an error.
        GroundTruthError: with ``oracle`` when a drive of the batch is not simulated.
        InputError: when the dataset version cannot be built (e.g. QA held every frame).
    """
    prelabels, model = None, None
    champion = champion_model_uri(root)
    if champion is not None:  # the champion pre-labels every batch once there is one
        prelabels, model = prelabel_batch(root, batch_id, champion)
    record = push_batch(root, batch_id, prelabels=prelabels, model=model, dataset_name=dataset_name, privacy=privacy)
    cost = oracle_annotate(root, batch_id, batch_truth(root, batch_id)) if oracle else None
    conn = connect(root)
    tasks = project_tasks(conn, record["project_id"])
    finished = sum(bool(t.get("is_labeled")) for t in tasks)
    url = f"{conn.url}/projects/{record['project_id']}"
    if finished < len(tasks):
        # The pipeline declares DATA/datasets a product of this stage: it exists, empty until a version is built.
        datasets_dir(root).mkdir(parents=True, exist_ok=True)
        previous = read_label_set(root, batch_id)[0] if (labels_dir(root, batch_id) / "manifest.json").is_file() \
            else None
        log.info("batch %s: %d of %d task(s) finished in %s; pull once people finish them", batch_id, finished,
                 len(tasks), url)
        return LabelRun(batch_id, url, oracle, len(tasks), finished, record, previous, None, None)
    # The simulated labeler's own count covers the batch only when it labeled every task; otherwise
    # (tasks finished earlier) the work is counted from the submitted boxes, in the same units.
    measured = cost if cost is not None and cost.frames == len(tasks) else None
    label_set = pull_batch(root, batch_id, source="oracle" if oracle else "labelstudio", cost=measured,
                           dataset_name=dataset_name)
    version = build_version(root, config=version_config)
    tracked = track_version(root, version["version_id"], remote=remote)
    # The failure modes this batch mined are labeled once its accepted labels are in a dataset version.
    record_step(root, batch_mined_modes(root, batch_id), "labeled", batch_id,
                f"{label_set['accepted']} frame(s) accepted into {version['version_id']}", at=label_set["created_at"])
    return LabelRun(batch_id, url, oracle, len(tasks), finished, record, label_set, version, tracked)


LATEST_VERSION_FIELDS = ("version_id", "digest", "frames", "counts", "batch_id", "waiting")
"""Fields of DATA/datasets/latest.json: the dataset version the label task left for training."""


def latest_version_path(root: str | os.PathLike[str]) -> Path:
    """DATA/datasets/latest.json: the dataset version the last label run built, for the tasks after it."""
    return datasets_dir(root) / "latest.json"


def record_latest_version(root: str | os.PathLike[str], run: LabelRun,
                          path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Record which dataset version the label task leaves for training, so the train task uses that one.

    The version is the one ``run`` built; while people are still labeling (``run.waiting``) it is
    the newest earlier version, or none (``version_id`` null) when nothing was ever versioned.
    The record (`LATEST_VERSION_FIELDS`) is written atomically, only when it changes.

    Args:
        root: the data root.
        run: what `run_label` returned.
        path: where to write (the pipeline's declared product); default `latest_version_path`.

    Returns:
        The record: ``version_id``, ``digest``, ``frames``, ``counts`` (frames per split; null
        without a version), ``batch_id`` (the batch of this run) and ``waiting``.
    """
    version = run.version
    if version is None:
        earlier = list_versions(root)
        version = earlier[-1] if earlier else None
    record = {"version_id": version["version_id"] if version else None,
              "digest": version["digest"] if version else None,
              "frames": version["frames"] if version else None,
              "counts": version["counts"] if version else None,
              "batch_id": run.batch_id, "waiting": run.waiting}
    target = Path(path) if path is not None else latest_version_path(root)
    write_json_if_changed(target, record)
    log.info("dataset version for training: %s (batch %s%s) -> %s", record["version_id"], run.batch_id,
             ", still being labeled" if run.waiting else "", target)
    return record


def latest_version(root: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> str:
    """The id of the dataset version the label task left for training (`record_latest_version`).

    Args:
        root: the data root.
        path: the record (the label task's product); default `latest_version_path`.

    Raises:
        InputError: when there is no record (run the label task), it is unreadable, it names no
            version yet (people are still labeling the first batch), or its version is gone.
    """
    target = Path(path) if path is not None else latest_version_path(root)
    if not target.is_file():
        raise InputError(f"{target}: missing; no dataset version was recorded yet. Run the label task "
                         f"(`longtail run`) or build one with `longtail label version --root {root}`")
    try:
        record = json.loads(target.read_text())
        version_id = record["version_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{target}: not a dataset-version record ({type(exc).__name__}: {exc}); run the label "
                         "task again to rewrite it") from None
    if version_id is None:
        raise InputError(f"{target}: no dataset version yet: labeling batch {record.get('batch_id')} is still being "
                         f"labeled in Label Studio (`longtail label status --root {root}`). Once every frame is "
                         "submitted, run the pipeline again to pull the labels and version them")
    if not (datasets_dir(root) / str(version_id) / "manifest.json").is_file():
        raise InputError(f"{target}: names dataset version {version_id}, which is not in {datasets_dir(root)}; "
                         "restore it (`longtail label restore`) or run the label task again")
    return str(version_id)
