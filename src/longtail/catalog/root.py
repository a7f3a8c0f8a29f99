"""The layout of a data root, declared once.

Every stage reads and writes under one folder, the data root (``data/`` for `make run`). Which
sub-folder holds what is declared here and nowhere else, so that moving the data root (to another
disk, or later to S3) means changing one type. Functions keep taking ``root`` as a path:
`DataRoot` is an ``os.PathLike``, so ``DataRoot.of(root)`` accepts either and passes through.

Layout::

    fleet/                          simulated drive logs and their ground truth (simulate)
    frames/                         the content-addressed frame store (ingest)
    index/frames/<log_id>.parquet   frame index of each log (ingest)
    index/signals/<log_id>.parquet  vehicle signals of each log, camera or not (ingest)
    index/logs/<log_id>.json        manifest of each log, written last (ingest)
    index/paths/                    path -> log id memo of ingested files (ingest)
    fiftyone/                       the data root's own MongoDB for FiftyOne (curate)
    embeddings/<key>/               embedding cache by frame and embedder (curate)
    curate/                         curate manifest, failure-mode registry, selected batch (curate)
    batches/<batch_id>/             labeling batches (curate: select)
    labelstudio/                    the data root's own Label Studio (label)
    labels/<batch_id>/              label sets (label)
    labels/<batch_id>/shown/        the batch's frames as people see them: faces and plates blurred (label)
    datasets/<version_id>/          dataset versions, tracked by DVC (label)
    runs/<run_id>/                  checkpoints and final weights (train)
    sweeps/<sweep_id>/              sweep tables (train)
    mlflow/                         MLflow's sqlite store and artifacts (train, evaluate)
    evaluations/<version>/<run>/    evaluation.json (evaluate)
    deployments/<deployment_id>/    exports, thresholds, model card, MLflow pyfunc, deployment.json (deploy)
    monitor/batches/<batch_id>.json monitoring record of each batch of new logs, written last (monitor)
    monitor/triggers/<batch_id>.parquet  frames the monitor marks for curation (monitor)
    monitor/reference/              cached embeddings and predictions of the training drives (monitor)
    fleet_test/cache/<key>/         the fleet test's truth arm, content-addressed (fleet test)
    reports/                        executed notebooks and HTML reports (every stage)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataRoot:
    """A data root and the folders in it.

    Args:
        path: the data root folder (need not exist yet).
    """

    path: Path

    @classmethod
    def of(cls, root: str | os.PathLike[str] | DataRoot) -> DataRoot:
        """The `DataRoot` of ``root`` (a path or a DataRoot)."""
        return root if isinstance(root, DataRoot) else cls(Path(root))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return self.path / other

    def __str__(self) -> str:
        return str(self.path)

    # -- simulate and ingest ---------------------------------------------------------------
    @property
    def fleet(self) -> Path:
        """DATA/fleet: simulated drive logs, ground truth and fleet.json."""
        return self.path / "fleet"

    @property
    def fleet_test_cache(self) -> Path:
        """DATA/fleet_test/cache: the fleet test's truth arm by content address (`longtail.sim.fleet_cache`)."""
        return self.path / "fleet_test" / "cache"

    @property
    def frames(self) -> Path:
        """DATA/frames: the content-addressed frame store."""
        return self.path / "frames"

    @property
    def index(self) -> Path:
        """DATA/index: frame indexes and log manifests."""
        return self.path / "index"

    def frame_index(self, log_id: str) -> Path:
        """DATA/index/frames/<log_id>.parquet: one row per kept frame of a log."""
        return self.index / "frames" / f"{log_id}.parquet"

    def signal_index(self, log_id: str) -> Path:
        """DATA/index/signals/<log_id>.parquet: a log's vehicle signals, camera or not."""
        return self.index / "signals" / f"{log_id}.parquet"

    @property
    def log_manifests(self) -> Path:
        """DATA/index/logs: one manifest per ingested log."""
        return self.index / "logs"

    def log_manifest(self, log_id: str) -> Path:
        """DATA/index/logs/<log_id>.json: a log's manifest, written last."""
        return self.log_manifests / f"{log_id}.json"

    # -- curate ----------------------------------------------------------------------------
    @property
    def fiftyone(self) -> Path:
        """DATA/fiftyone: the data root's own MongoDB (FiftyOne's) and its state file."""
        return self.path / "fiftyone"

    def embeddings(self, key: str) -> Path:
        """DATA/embeddings/<key>: cached embeddings of one embedder (descriptor or model version)."""
        return self.path / "embeddings" / key

    @property
    def curate(self) -> Path:
        """DATA/curate: the curate manifest, the failure-mode registry, the selected batch."""
        return self.path / "curate"

    @property
    def failure_modes(self) -> Path:
        """DATA/curate/failure_modes.json: the failure-mode registry."""
        return self.curate / "failure_modes.json"

    @property
    def batches(self) -> Path:
        """DATA/batches: one folder per labeling batch."""
        return self.path / "batches"

    def batch(self, batch_id: str) -> Path:
        """DATA/batches/<batch_id>: frames.parquet, then manifest.json."""
        return self.batches / batch_id

    # -- label -----------------------------------------------------------------------------
    @property
    def labelstudio(self) -> Path:
        """DATA/labelstudio: the data root's own Label Studio (sqlite, uploads, credentials)."""
        return self.path / "labelstudio"

    @property
    def labels(self) -> Path:
        """DATA/labels: one label set per labeling batch."""
        return self.path / "labels"

    def label_set(self, batch_id: str) -> Path:
        """DATA/labels/<batch_id>: labels.parquet, qa.json, then manifest.json."""
        return self.labels / batch_id

    def shown_frames(self, batch_id: str) -> Path:
        """DATA/labels/<batch_id>/shown: copies of the batch's frames as labelers see them (blurred)."""
        return self.label_set(batch_id) / "shown"

    @property
    def datasets(self) -> Path:
        """DATA/datasets: one folder per dataset version (and DVC's records beside them)."""
        return self.path / "datasets"

    def dataset_version(self, version_id: str) -> Path:
        """DATA/datasets/<version_id>: labels.parquet, images/, then manifest.json."""
        return self.datasets / version_id

    # -- train and evaluate ----------------------------------------------------------------
    @property
    def runs(self) -> Path:
        """DATA/runs: one folder of checkpoints and weights per training run."""
        return self.path / "runs"

    @property
    def sweeps(self) -> Path:
        """DATA/sweeps: one folder per sweep."""
        return self.path / "sweeps"

    @property
    def mlflow(self) -> Path:
        """DATA/mlflow: MLflow's sqlite tracking store and artifacts (the local default)."""
        return self.path / "mlflow"

    @property
    def evaluations(self) -> Path:
        """DATA/evaluations: evaluation.json per dataset version and run."""
        return self.path / "evaluations"

    # -- deploy ----------------------------------------------------------------------------
    @property
    def deployments(self) -> Path:
        """DATA/deployments: one folder per deployment, and current.json (`longtail.catalog.deployments`)."""
        return self.path / "deployments"

    # -- monitor ---------------------------------------------------------------------------
    @property
    def monitoring(self) -> Path:
        """DATA/monitor: the monitoring history (one record per batch), triggers for curation, caches."""
        return self.path / "monitor"

    def monitoring_record(self, batch_id: str) -> Path:
        """DATA/monitor/batches/<batch_id>.json: one batch's monitoring record, written last."""
        return self.monitoring / "batches" / f"{batch_id}.json"

    def monitor_triggers(self, batch_id: str) -> Path:
        """DATA/monitor/triggers/<batch_id>.parquet: frames the monitor marked (shadow disagreement, drift)."""
        return self.monitoring / "triggers" / f"{batch_id}.parquet"

    @property
    def reports(self) -> Path:
        """DATA/reports: executed notebooks and HTML reports."""
        return self.path / "reports"
