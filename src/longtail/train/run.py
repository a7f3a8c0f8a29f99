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

This module wires the run (device, seeds, the epoch loop and its time budget); the parts live
beside it: `longtail.train.schedule` (optimizer, warm-up and cosine), `longtail.train.checkpoint`,
`longtail.train.tracking` (MLflow and provenance), `longtail.train.sampling` (what an epoch draws)
and `longtail.train.warmstart` (fine-tuning from a registered version). Their public names are
importable from here too, as before the split.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from longtail.catalog.root import DataRoot
from longtail.catalog.timeline import record_step, version_mined_modes
from longtail.catalog.versions import datasets_dir, load_version_folder
from longtail.detector.calibrate import calibrate_on_frames
from longtail.detector.model import MODEL_ARTIFACT, MODEL_FILE, MODEL_META_FILE, default_tracking, mlflow_client, save_model
from longtail.detector.presets import build_model, count_parameters
from longtail.errors import ConfigError, InputError, invalid_config
from longtail.schemas import CATEGORIES
from longtail.train.checkpoint import (
    CHECKPOINT_RE,
    _prune_checkpoints,
    _rng_state,
    _set_rng_state,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from longtail.train.config import TrainConfig
from longtail.train.data import VersionDataset, select_frames
from longtail.train.engine import evaluate_map50, train_one_epoch
from longtail.train.sampling import make_loader, sampling_factors, torch_threads
from longtail.train.schedule import WarmupCosine, fit_schedule, make_optimizer
from longtail.train.tracking import (
    MLFLOW_DIGEST_CHARS,
    _experiment_id,
    _log_dataset,
    _log_metrics,
    _log_params,
    _register,
    _reopen_run,
    env_lock_hash,
    git_commit,
    model_meta,
)
from longtail.train.warmstart import ParentModel, load_parent, parent_description, parent_params, parent_tags

__all__ = [  # the names importers use from here (notebooks, cli, bench, tests); they live in the modules above
    "CHECKPOINT_RE", "MLFLOW_DIGEST_CHARS", "WarmupCosine", "_experiment_id", "_log_dataset", "_prune_checkpoints",
    "_register", "bf16_supported", "env_lock_hash", "fit_schedule", "git_commit", "latest_checkpoint",
    "load_checkpoint", "make_optimizer", "make_train_config", "model_meta", "resolve_device", "resolve_precision",
    "save_checkpoint", "seed_everything", "train", "train_on_folder",
]

log = logging.getLogger(__name__)


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
# Seeds and devices


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


def _load_parent_weights(model: torch.nn.Module, parent: ParentModel) -> None:
    """Load the parent's weights into a freshly built model of the same preset.

    Raises:
        ConfigError: the weights do not fit (min_size/max_size never change the weights; another
            preset or number of classes does, and `load_parent` refuses those first).
    """
    try:
        model.load_state_dict(parent.state_dict, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"TrainConfig: init_from={parent.init_from!r}: the weights of {parent.model_uri} do not fit "
                          f"preset {parent.preset!r} ({exc}); train from scratch (init_from=None).") from None


# ---------------------------------------------------------------------------------------------
# The run


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

    With ``config.init_from`` the model starts from that registered version's weights (same
    preset and classes; `longtail.train.warmstart`) at ``config.finetune_lr``, and the parent is
    named in the run's params and tags, the checkpoints, model.json, the registered version's
    tags and description, and the result. With ``config.mined_oversample`` > 1 the training
    frames mined for a failure mode are drawn that many times per epoch (`longtail.train.sampling`).

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
        ``config`` (the `TrainConfig` used), ``model`` (the trained detector, in memory), ``parent``
        (``model_uri``, ``name``, ``version``, ``run_id``, ``weights_sha256``, ``preset``, ``init_from``;
        None from scratch) and ``sampling`` (``mined_oversample``, ``mined_frames``, ``frames_per_epoch``).

    Raises:
        InputError / SchemaError: bad version, bad box (naming version, frame and box) or checkpoint.
        ConfigError: bad config, a resume config that contradicts the checkpoint's, or an
            ``init_from`` the registry cannot satisfy (no champion, no such version, another preset).
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
    # The parent of a fine-tuning run: resolved once, when the run starts ("champion" is the
    # champion of that moment); a resumed run keeps the one its checkpoint names.
    parent_model = load_parent(config, tracking_uri) if state is None else None
    parent = parent_model.record() if parent_model is not None else (state or {}).get("parent")

    with torch_threads(config.threads):
        # 2. Model, optimizer, schedule: fresh and seeded, or warm-started from the parent, or restored.
        seed_everything(config.seed)
        model = build_model(config.preset, len(CATEGORIES), config.min_size, config.max_size).to(device)
        if parent_model is not None:
            _load_parent_weights(model, parent_model)
        if train_set.paste_bank is not None:
            log.info("copy-paste: up to %d of %d %s objects pasted into each training frame",
                     config.copy_paste, len(train_set.paste_bank), "/".join(config.copy_paste_classes))
        factors, mined_frames = sampling_factors(train_set, config)
        sampling = {"mined_oversample": config.mined_oversample, "mined_frames": mined_frames,
                    "frames_per_epoch": float(factors.sum())}
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
                                         "parameters": count_parameters(model), "device": str(device),
                                         "mined_train_frames": mined_frames, **parent_params(parent)})
            _log_dataset(client, run_id, version_dir, manifest)
            run_tags = {"longtail.stage": "train", "longtail.version_id": version_id,
                        "longtail.dataset_digest": str(manifest["digest"]), "longtail.preset": config.preset,
                        "longtail.init_from": config.init_from or "scratch",
                        "longtail.mined_oversample": str(config.mined_oversample),
                        "longtail.mined_frames": str(mined_frames), **parent_tags(parent), **(tags or {})}
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
                stats = train_one_epoch(model, make_loader(train_set, config, True, epoch, factors), optimizer, scheduler,
                                        epoch, progress=progress, clip_grad_norm=config.clip_grad_norm, device=device,
                                        deadline=deadline, bf16=bf16)
                metrics = {("images_per_s" if k == "images_per_s" else k if k in ("lr", "loss") else f"train_{k}"): v
                           for k, v in stats.items() if k not in ("steps", "stopped_early")}
                if val_set is not None:
                    scores = evaluate_map50(model, make_loader(val_set, config, False, epoch), config.eval_score_threshold,
                                            device, min_height_fraction=config.val_min_object_height)
                    metrics.update({f"val_{k}": v for k, v in scores.items()})
                metrics["epoch_s"] = time.perf_counter() - started
                history.append({"epoch": float(epoch), **metrics})
                _log_metrics(client, run_id, metrics, step=epoch)
                save_checkpoint(run_dir / f"checkpoint-{epoch}.pt", {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "config": config.model_dump(mode="json"),
                    "run_id": run_id, "version_id": version_id, "version_digest": manifest["digest"],
                    "rng": _rng_state(), "history": history, "parent": parent})
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
                                                 "calibration": calibration, "parent": parent,
                                                 "sampling": sampling})
            model_path = save_model(run_dir, model, meta)
            client.log_artifact(run_id, str(run_dir / MODEL_FILE), MODEL_ARTIFACT)
            client.log_artifact(run_id, str(run_dir / MODEL_META_FILE), MODEL_ARTIFACT)
            client.set_tag(run_id, "longtail.stopped_by_budget", str(stopped_by_budget).lower())
            model_version = None
            if config.registered_model:
                source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
                model_version = _register(client, config.registered_model, run_id, source,
                                          {"dataset_version": version_id, "preset": config.preset,
                                           **parent_tags(parent),
                                           **({"longtail.thresholds": json.dumps(calibration["thresholds"])}
                                              if calibration else {})}, description=parent_description(parent))
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
            "model": model, "config": config, "parent": parent, "sampling": sampling}
