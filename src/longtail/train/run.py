"""Wiring of a training run: data, model, checkpoints, resume and MLflow tracking around the engine.

Layout::

    DATA/runs/<run_id>/checkpoint-<epoch>.pt   model, optimizer, scheduler, epoch, config, RNG states
    DATA/runs/<run_id>/model.pt                the final weights (a state dict)
    DATA/runs/<run_id>/model.json              preset, classes, input size, dataset version, config
    DATA/mlflow/mlflow.db                      MLflow's tracking and model registry (sqlite), by default
    DATA/mlflow/artifacts/<experiment>/        MLflow's artifacts, by default

``<run_id>`` is the MLflow run id, so a checkpoint, its run folder and its MLflow run share one name.
Weights are saved and logged as state dicts (never a pickled module) and always loaded with
``torch.load(weights_only=True)``; MLflow's default ``torch.export`` model flavour fails for
torchvision detectors (../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import DataLoader

from longtail.catalog.root import DataRoot
from longtail.catalog.timeline import record_step, version_mined_modes
from longtail.catalog.versions import datasets_dir, load_version_folder
from longtail.detector.calibrate import calibrate_on_frames
from longtail.detector.model import MODEL_ARTIFACT, MODEL_FILE, MODEL_META_FILE, default_tracking, mlflow_client, save_model
from longtail.detector.presets import build_model, count_parameters, get_preset
from longtail.errors import ConfigError, InputError, invalid_config
from longtail.schemas import CATEGORIES
from longtail.storage import atomic_writer
from longtail.train.config import FIELDS_ADDED_OFF, TrainConfig
from longtail.train.data import VersionDataset, collate, epoch_indices, repeat_factors, select_frames
from longtail.train.engine import evaluate_map50, train_one_epoch

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)\.pt$")
MLFLOW_DIGEST_CHARS = 36
"""MLflow's SQL schema stores a dataset digest in 36 characters (``datasets.digest`` is String(36));
longer digests pass on sqlite but fail on Postgres and MySQL, so the version's sha256 is cut to
this length there and kept whole in the ``longtail.dataset_digest`` tag."""


def make_train_config(source: str, **values: Any) -> TrainConfig:
    """Validate ``values`` into a `TrainConfig`, naming ``source`` in the error.

    Raises:
        ConfigError: naming the source, each bad field and why.
    """
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise invalid_config(source, "training config", exc) from None


# ---------------------------------------------------------------------------------------------
# Seeds, devices, provenance


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu.

    Raises:
        ConfigError: ``cuda`` was asked for on a machine without a GPU.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("TrainConfig: invalid device='cuda'; no CUDA device here. Use device='cpu' or 'auto'.")
    return torch.device(device)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively: a CUDA GPU that says so, or a CPU with AVX512-BF16
    or AMX (oneDNN's test); elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        try:  # the default also counts the emulation pre-Ampere GPUs (V100, T4) get
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # torch before 2.3 has no such argument and counts native support only
            return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # private: absent in some builds
    return bool(probe()) if probe is not None else False


def resolve_precision(precision: str, device: torch.device) -> bool:
    """``TrainConfig.precision`` -> whether to train under bfloat16 autocast.

    Raises:
        ConfigError: ``bf16`` was asked for on a device without native bfloat16.
    """
    if precision == "auto":
        return bf16_supported(device)
    if precision == "bf16" and not bf16_supported(device):
        raise ConfigError(f"TrainConfig: invalid precision='bf16'; this {device.type} has no native bfloat16 "
                          f"(AVX512-BF16 or AMX on a CPU). Use precision='fp32' or 'auto'.")
    return precision == "bf16"


def _rng_state() -> dict[str, Any]:
    state = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"name": state[0], "keys": [int(k) for k in state[1]], "pos": int(state[2]),  # type: ignore[index]
                      "has_gauss": int(state[3]), "cached_gaussian": float(state[4])}}  # type: ignore[index]


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))


def _repo_dir() -> Path:
    return Path(__file__).resolve().parents[3]


def git_commit() -> str | None:
    """The git commit of the checked-out source (``+dirty`` when it has changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_repo_dir(), capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_repo_dir(),
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def env_lock_hash() -> str | None:
    """sha256 of env/requirements.lock (the locked dependency set), or None when absent (an installed package)."""
    path = _repo_dir() / "env" / "requirements.lock"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# Optimizer, schedule, checkpoints


class WarmupCosine:
    """The per-step learning-rate factor: linear warm-up over ``warmup_fraction`` of the steps, then
    cosine to 0 at ``total_steps`` (or constant).

    A callable object rather than a closure so `LambdaLR.state_dict` saves ``total_steps``: a run
    whose plan was fitted to its time budget (`fit_schedule`) resumes on the same schedule.
    """

    def __init__(self, total_steps: int, warmup_fraction: float, schedule: str, max_warmup: int | None = None) -> None:
        self.total_steps = int(total_steps)
        self.warmup = int(warmup_fraction * total_steps)
        if max_warmup is not None:
            self.warmup = min(self.warmup, int(max_warmup))
        self.schedule = schedule

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup) / max(self.total_steps - self.warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: nn.Module, config: TrainConfig, total_steps: int, max_warmup_steps: int | None = None
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on norms and biases) and a `WarmupCosine` per-step schedule.

    ``max_warmup_steps`` caps the warm-up. A run with a time budget passes one epoch's steps: its
    ``total_steps`` is an upper bound (``config.epochs``), not the steps that will fit, and a
    warm-up planned on it (say 5% of 10,000 epochs) would outlast the budget.
    """
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]  # norms and biases
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    factor = WarmupCosine(total_steps, config.warmup_fraction, config.schedule, max_warmup_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, epochs_done: int, max_epochs: int,
                 steps_per_epoch: int, seconds_per_epoch: float, seconds_left: float) -> int:
    """Re-plan the schedule so the cosine reaches 0 when the time budget runs out.

    A cosine planned for ``max_epochs`` that a budget stops early never anneals, and the model is
    judged at a high learning rate. After each epoch this plans the epochs that still fit (at
    the mean epoch time so far), at most ``max_epochs``, and stretches or shrinks the cosine to
    end there; warm-up is never re-planned.

    Returns:
        The planned number of epochs.
    """
    fit = epochs_done + int(max(seconds_left, 0.0) // max(seconds_per_epoch, 1e-9))
    planned = max(epochs_done, min(max_epochs, fit))
    factor = scheduler.lr_lambdas[0]
    if isinstance(factor, WarmupCosine):
        factor.total_steps = max(planned * steps_per_epoch, factor.warmup + 1)
    return planned


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a crash leaves the previous one intact)."""
    with atomic_writer(path) as handle:
        torch.save(state, handle)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (tensors and plain data only, no code).

    Config fields the checkpoint predates get the value in force when it was saved
    (`FIELDS_ADDED_OFF`), not today's default, so a resumed older run continues unchanged.

    Raises:
        InputError: missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint missing; resume from a DATA/runs/<run_id>/checkpoint-<epoch>.pt")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from None
    missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "config", "run_id") if k not in state]
    if missing:
        raise InputError(f"{path}: checkpoint lacks {missing}; it was not written by longtail.train")
    if isinstance(state["config"], dict):
        state["config"] = {**FIELDS_ADDED_OFF, **state["config"]}
    return state


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint of the highest epoch in a run folder, or None."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("checkpoint-*.pt") if (m := CHECKPOINT_RE.match(p.name))]
    return max(found)[1] if found else None


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    found = sorted((int(m.group(1)), p) for p in run_dir.glob("checkpoint-*.pt") if (m := CHECKPOINT_RE.match(p.name)))
    for _, path in found[:-keep]:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Model files


def model_meta(config: TrainConfig, version: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What it takes to rebuild a model from its state dict, and where it came from."""
    spec = get_preset(config.preset)
    return {"format": "longtail.detector/1", "preset": config.preset, "classes": list(CATEGORIES),
            "num_classes": len(CATEGORIES), "min_size": config.min_size or spec.min_size,
            "max_size": config.max_size or spec.max_size, "box_convention": "pixel edges x1,y1,x2,y2; x2/y2 exclusive",
            "dataset_version": version.get("version_id"), "dataset_digest": version.get("digest"),
            "config": config.model_dump(mode="json"), **(extra or {})}


# ---------------------------------------------------------------------------------------------
# MLflow


def _experiment_id(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    from mlflow.exceptions import MlflowException

    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    with contextlib.suppress(MlflowException):  # another process created it meanwhile
        return str(client.create_experiment(name, artifact_location=location))
    found = client.get_experiment_by_name(name)
    if found is None:
        raise InputError(f"MLflow experiment {name!r} could not be created at {client.tracking_uri}")
    return str(found.experiment_id)


def _log_dataset(client: MlflowClient, run_id: str, version_dir: Path, manifest: dict[str, Any]) -> None:
    """Record the dataset version as the run's MLflow dataset input (context ``training``)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = json.dumps({"uri": version_dir.resolve().as_uri(), "version_id": manifest["version_id"],
                         "digest": manifest["digest"]})
    profile = json.dumps({"frames": manifest.get("frames"), "counts": manifest.get("counts")})
    from mlflow.exceptions import MlflowException

    dataset = Dataset(name=manifest["version_id"], digest=str(manifest["digest"])[:MLFLOW_DIGEST_CHARS],
                      source_type="local", source=source, profile=profile)
    inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException as exc:
        # MLflow's SQL store looks the dataset up, then inserts it: runs of a parallel sweep can
        # both miss it and the second insert breaks the unique (experiment, name, digest) key.
        # The row now exists, so logging again links the run to it.
        if "unique" not in str(exc).lower():
            raise
        client.log_inputs(run_id, datasets=inputs)


def _log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, json.dumps(v) if isinstance(v, list | tuple | dict) else str(v))
                                     for k, v in sorted(params.items())])


def _log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in sorted(metrics.items())
                                      if math.isfinite(v)])


def _reopen_run(client: MlflowClient, run_id: str, checkpoint: object) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.update_run(run_id, status="RUNNING")
    except MlflowException as exc:
        raise InputError(f"resume={checkpoint}: its MLflow run {run_id} is not in {client.tracking_uri} ({exc.message}); "
                         f"resume against the tracking URI the run started with (config.tracking_uri).") from None


def _register(client: MlflowClient, name: str, run_id: str, source: str, tags: dict[str, str]) -> str:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):  # exists already
        client.create_registered_model(name)
    version = client.create_model_version(name, source=source, run_id=run_id, tags=tags)
    return str(version.version)


# ---------------------------------------------------------------------------------------------
# The run


def _loader(dataset: VersionDataset, config: TrainConfig, shuffle: bool, epoch: int,
            factors: np.ndarray | None = None) -> DataLoader[Any]:
    # Shuffling is seeded per epoch, so a resumed run draws the same order as an uninterrupted one.
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    if shuffle and factors is not None and (factors > 1).any():  # repeat-factor sampling
        order = epoch_indices(factors, generator)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=order, collate_fn=collate,
                          num_workers=config.num_workers, drop_last=False, persistent_workers=False)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=shuffle, collate_fn=collate,
                      num_workers=config.num_workers, generator=generator, drop_last=False,
                      persistent_workers=False)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def train(root: str | os.PathLike[str], version_id: str, config: TrainConfig | None = None,
          resume: str | os.PathLike[str] | None = None, progress: bool = True,
          tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Train a detector on dataset version ``version_id`` of the data root, tracked in MLflow.

    Checkpoints go to DATA/runs/<run_id>/; MLflow defaults to sqlite:///DATA/mlflow/mlflow.db with
    artifacts in DATA/mlflow/artifacts (``config.tracking_uri`` picks any other server).

    Args:
        root: the data root.
        version_id: a dataset version, DATA/datasets/<version_id>/.
        config: training settings; `TrainConfig` defaults when None.
        resume: a checkpoint to continue from (see `train_on_folder`).
        progress: show progress bars.
        tags: extra MLflow run tags (a sweep's id, for instance).

    Returns:
        See `train_on_folder`.
    """
    root = Path(root)
    folder = datasets_dir(root) / version_id
    if not folder.is_dir():
        raise InputError(f"{folder}: no dataset version {version_id} in {root}; build one with build_version")
    result = train_on_folder(folder, config, runs_dir=DataRoot.of(root).runs, mlflow_dir=DataRoot.of(root).mlflow,
                             resume=resume, progress=progress, tags=tags)
    # The failure modes mined by the version's batches are now in a trained model.
    record_step(root, version_mined_modes(root, version_id), "trained", f"{version_id}/{result['run_id']}",
                f"model version {result.get('model_version')}")
    return result


def train_on_folder(version_dir: str | os.PathLike[str], config: TrainConfig | None = None, *,
                    runs_dir: str | os.PathLike[str], mlflow_dir: str | os.PathLike[str] | None = None,
                    resume: str | os.PathLike[str] | None = None, progress: bool = True,
                    tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Train a detector on a dataset version folder (any path: a SageMaker channel works), tracked in MLflow.

    1. Load and check the version; check every box of the frames used (degenerate boxes fail here).
    2. Seed everything, build the model, AdamW and the per-step schedule; or restore them all
       from ``resume`` (its config wins; a ``config`` that differs in more than the time budget,
       threads, workers or device is refused).
    3. Per epoch: train, validate (mAP@0.5 on ``config.val_split``), log metrics to MLflow,
       write checkpoint-<epoch>.pt. Stop after the epoch in which ``max_minutes`` runs out.
    4. Write model.pt + model.json, log them, the config and the dataset input to MLflow and
       register the model as a new version of ``config.registered_model``.

    Args:
        version_dir: a dataset version folder (manifest.json, labels.parquet, images/).
        config: training settings; `TrainConfig` defaults when None.
        runs_dir: where run folders (checkpoints, model) go.
        mlflow_dir: the local MLflow folder used when ``config.tracking_uri`` is None.
        resume: a checkpoint-<epoch>.pt; the run continues in the same run folder and MLflow run.
        progress: show progress bars.
        tags: extra MLflow run tags (e.g. a sweep id).

    Returns:
        ``run_id``, ``run_dir``, ``model_path``, ``model_uri`` (runs:/<run_id>/model),
        ``registered_model`` and ``model_version`` (or None), ``tracking_uri``, ``version_id``,
        ``dataset_digest``, ``epochs_done``, ``val_map50`` (last epoch; None without validation),
        ``images_per_s`` (last epoch), ``stopped_by_budget``, ``history`` (per-epoch metrics),
        ``config`` (the `TrainConfig` used) and ``model`` (the trained detector, in memory).

    Raises:
        InputError / SchemaError: bad version, bad box (naming version, frame and box) or checkpoint.
        ConfigError: bad config, or a resume config that contradicts the checkpoint's.
        TrainingError: a non-finite loss (naming epoch, step and loss terms).
    """
    version_dir = Path(version_dir)
    runs_dir = Path(runs_dir)
    state = load_checkpoint(resume) if resume is not None else None
    if state is not None:
        saved = make_train_config(f"{resume} (config)", **state["config"])
        if config is not None:
            free = {"max_minutes", "threads", "num_workers", "device"}
            differ = sorted(k for k in TrainConfig.model_fields
                            if k not in free and getattr(config, k) != getattr(saved, k))
            if differ:
                raise ConfigError(f"resume={resume}: config differs from the checkpoint's in {differ}; a resumed run "
                                  f"keeps its config (only {sorted(free)} may change). Start a new run instead.")
            saved = saved.model_copy(update={k: getattr(config, k) for k in free})
        config = saved
    config = config or TrainConfig()

    # 1. Data, checked before any work.
    frames, manifest = load_version_folder(version_dir)
    version_id = str(manifest["version_id"])
    if state is not None and state.get("version_digest") != manifest["digest"]:
        raise InputError(f"resume={resume}: checkpoint was trained on version {state.get('version_id')} "
                         f"(digest {state.get('version_digest')}), not {version_id} at {version_dir}")
    train_frames = select_frames(frames, config.train_splits, config.max_train_frames)
    if train_frames.empty:
        raise InputError(f"{version_dir}: dataset version {version_id} has no frame in split(s) "
                         f"{list(config.train_splits)}; counts: {manifest.get('counts')}")
    train_set = VersionDataset(version_dir, train_frames, version_id, hflip=config.hflip, seed=config.seed,
                              paste_per_frame=config.copy_paste, paste_classes=config.copy_paste_classes,
                              haze=config.haze)
    val_frames = select_frames(frames, [config.val_split]) if config.val_split else frames.iloc[:0]
    val_set = VersionDataset(version_dir, val_frames, version_id) if len(val_frames) else None
    if config.val_split and val_set is None:
        log.warning("dataset version %s has no %s frame: no validation mAP", version_id, config.val_split)

    device = resolve_device(config.device)
    bf16 = resolve_precision(config.precision, device)
    if mlflow_dir is None and config.tracking_uri is None:
        raise ConfigError("train_on_folder: give mlflow_dir or config.tracking_uri; nowhere to track the run")
    if config.tracking_uri is not None:
        tracking_uri, artifact_root = config.tracking_uri, config.artifact_location
    else:
        tracking_uri, artifact_root = default_tracking(Path(mlflow_dir))  # type: ignore[arg-type]
        artifact_root = config.artifact_location or artifact_root
    client = mlflow_client(tracking_uri)

    with _torch_threads(config.threads):
        # 2. Model, optimizer, schedule: fresh and seeded, or restored.
        seed_everything(config.seed)
        model = build_model(config.preset, len(CATEGORIES), config.min_size, config.max_size).to(device)
        if train_set.paste_bank is not None:
            log.info("copy-paste: up to %d of %d %s objects pasted into each training frame",
                     config.copy_paste, len(train_set.paste_bank), "/".join(config.copy_paste_classes))
        factors = repeat_factors([t["labels"] for t in train_set.targets], config.repeat_factor_threshold)
        if (factors > 1).any():
            log.info("repeat-factor sampling (t=%.2f): %d of %d training frames repeated, %.0f frames per epoch",
                     config.repeat_factor_threshold, int((factors > 1).sum()), len(factors), factors.sum())
        steps_per_epoch = math.ceil(factors.sum() / config.batch_size)
        # Under a time budget the epochs that fit are unknown until one has been timed, so the
        # warm-up ends within the first epoch; `fit_schedule` then fits the cosine to the budget.
        optimizer, scheduler = make_optimizer(model, config, steps_per_epoch * config.epochs,
                                              max_warmup_steps=steps_per_epoch if config.max_minutes else None)
        history: list[dict[str, float]] = []
        start_epoch = 1
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"])
            start_epoch = int(state["epoch"]) + 1
            history = list(state.get("history", []))
            run_id = str(state["run_id"])
            _reopen_run(client, run_id, resume)
            log.info("resuming run %s at epoch %d of %d from %s", run_id, start_epoch, config.epochs, resume)
        else:
            experiment_id = _experiment_id(client, config.experiment, artifact_root)
            run = client.create_run(experiment_id, run_name=f"{config.preset}-{version_id}")
            run_id = run.info.run_id
            _log_params(client, run_id, {**config.model_dump(mode="json"), "dataset_version": version_id,
                                         "train_frames": len(train_set), "val_frames": len(val_frames),
                                         "parameters": count_parameters(model), "device": str(device)})
            _log_dataset(client, run_id, version_dir, manifest)
            run_tags = {"longtail.stage": "train", "longtail.version_id": version_id,
                        "longtail.dataset_digest": str(manifest["digest"]), "longtail.preset": config.preset,
                        **(tags or {})}
            commit = git_commit()
            if commit:
                run_tags["mlflow.source.git.commit"] = commit
            lock = env_lock_hash()
            if lock:
                run_tags["longtail.env_lock_sha256"] = lock
            for key, value in run_tags.items():
                client.set_tag(run_id, key, value)
            client.log_text(run_id, config.model_dump_json(indent=2), "config.json")
        run_dir = runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        log.info("training %s (%d parameters) on %s: %d train / %d val frames, %d epochs, device %s (%s), "
                 "MLflow run %s", config.preset, count_parameters(model), version_id, len(train_set), len(val_frames),
                 config.epochs, device, "bfloat16 autocast" if bf16 else "float32", run_id)

        # 3. Epochs.
        deadline = time.monotonic() + config.max_minutes * 60 if config.max_minutes else None
        stopped_by_budget = False
        epoch = start_epoch - 1
        try:
            for epoch in range(start_epoch, config.epochs + 1):
                started = time.perf_counter()
                train_set.set_epoch(epoch)
                stats = train_one_epoch(model, _loader(train_set, config, True, epoch, factors), optimizer, scheduler,
                                        epoch, progress=progress, clip_grad_norm=config.clip_grad_norm, device=device,
                                        deadline=deadline, bf16=bf16)
                metrics = {("images_per_s" if k == "images_per_s" else k if k in ("lr", "loss") else f"train_{k}"): v
                           for k, v in stats.items() if k not in ("steps", "stopped_early")}
                if val_set is not None:
                    scores = evaluate_map50(model, _loader(val_set, config, False, epoch), config.eval_score_threshold,
                                            device, min_height_fraction=config.val_min_object_height)
                    metrics.update({f"val_{k}": v for k, v in scores.items()})
                metrics["epoch_s"] = time.perf_counter() - started
                history.append({"epoch": float(epoch), **metrics})
                _log_metrics(client, run_id, metrics, step=epoch)
                save_checkpoint(run_dir / f"checkpoint-{epoch}.pt", {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "config": config.model_dump(mode="json"),
                    "run_id": run_id, "version_id": version_id, "version_digest": manifest["digest"],
                    "rng": _rng_state(), "history": history})
                _prune_checkpoints(run_dir, config.keep_checkpoints)
                log.info("epoch %d/%d: loss %.4f, val mAP@0.5 %s, %.1f images/s", epoch, config.epochs,
                         metrics["loss"], f"{metrics['val_map50']:.3f}" if "val_map50" in metrics else "n/a",
                         metrics["images_per_s"])
                if deadline is not None and epoch < config.epochs:
                    spent = [h["epoch_s"] for h in history if "epoch_s" in h]
                    planned = fit_schedule(scheduler, epoch, config.epochs, steps_per_epoch,
                                           sum(spent) / len(spent), deadline - time.monotonic())
                    if planned <= epoch:
                        stopped_by_budget = True
                        log.warning("time budget of %.1f min spent after epoch %d of %d: stopping",
                                    config.max_minutes, epoch, config.epochs)
                        break
                    log.info("time budget: %d of %d epochs fit; learning rate annealed to end there", planned,
                             config.epochs)

            # 4. Per-class operating thresholds on validation, then the model, in the run folder and in MLflow.
            calibration = calibrate_on_frames(model, version_dir, val_frames, config.val_min_object_height) \
                if len(val_frames) else None
            meta = model_meta(config, manifest, {"run_id": run_id, "epochs_done": epoch,
                                                 "val_map50": history[-1].get("val_map50") if history else None,
                                                 "thresholds": calibration["thresholds"] if calibration else None,
                                                 "calibration": calibration})
            model_path = save_model(run_dir, model, meta)
            client.log_artifact(run_id, str(run_dir / MODEL_FILE), MODEL_ARTIFACT)
            client.log_artifact(run_id, str(run_dir / MODEL_META_FILE), MODEL_ARTIFACT)
            client.set_tag(run_id, "longtail.stopped_by_budget", str(stopped_by_budget).lower())
            model_version = None
            if config.registered_model:
                source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
                model_version = _register(client, config.registered_model, run_id, source,
                                          {"dataset_version": version_id, "preset": config.preset,
                                           **({"longtail.thresholds": json.dumps(calibration["thresholds"])}
                                              if calibration else {})})
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")

    last = history[-1] if history else {}
    return {"run_id": run_id, "run_dir": str(run_dir), "model_path": str(model_path),
            "model_uri": f"runs:/{run_id}/{MODEL_ARTIFACT}", "registered_model": config.registered_model,
            "model_version": model_version, "tracking_uri": tracking_uri, "version_id": version_id,
            "dataset_digest": manifest["digest"], "epochs_done": epoch, "val_map50": last.get("val_map50"),
            "images_per_s": last.get("images_per_s"), "stopped_by_budget": stopped_by_budget, "history": history,
            "model": model, "config": config}
