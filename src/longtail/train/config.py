"""The training stage's one frozen, typed config, saved with every checkpoint, MLflow run and model."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from longtail.config import _Frozen
from longtail.detector.presets import DEFAULT_PRESET, PRESETS, get_preset
from longtail.schemas import CATEGORIES, MIN_OBJECT_HEIGHT

SPLIT_NAMES = ("train", "val", "test_longtail", "test_common")
INIT_CHAMPION = "champion"
INIT_SCRATCH = ("scratch", "none", "null", "")
"""Strings ``init_from`` reads as None (from scratch), for env files and CLI flags that cannot say null."""
MODEL_VERSION_URI_RE = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
"""An explicit registered model version, ``models:/<name>/<version>``, as ``init_from`` takes it."""

FIELDS_ADDED_OFF: dict[str, object] = {"copy_paste": 0, "precision": "fp32", "haze": 0.0,
                                       "init_from": None, "mined_oversample": 1.0, "finetune_lr": None}
"""Fields added after checkpoints were first saved, with the value that reproduces a run saved before them."""


class TrainConfig(_Frozen):
    """How a detector is trained on a dataset version. Units are in each field's description.

    Defaults are the settings that trained ``fcos-small`` on the simulated fleet (batch 16, AdamW
    2e-3, cosine schedule; ../shared/ENVIRONMENT.md), with copy-paste of pedestrians and cyclists
    (bench/RESULTS.md: in the same 10 minutes it lifted test_common mAP@0.5 by 0.08-0.09 for
    two seeds, pedestrian AP from 0.00-0.02 to 0.12), on the ``fcos-small-p2`` preset (a stride-4
    level: a further 0.02-0.06 for two seeds), trained under bfloat16 autocast where the CPU runs it
    natively (``precision="auto"``: 1.8x the images/s on an AVX512-BF16 CPU, so 10 minutes hold 11-13
    epochs instead of 8, and test_common rose by a further 0.04 for two seeds), with half the training
    frames faded toward a haze (``haze``: test_common +0.023 and +0.049 for two seeds, gained on its fog
    drives; the clear-day validation split -0.059 and +0.002).
    """

    preset: str = Field(DEFAULT_PRESET, description=f"detector preset, one of {sorted(PRESETS)}")
    epochs: int = Field(12, ge=1, le=10_000, description="passes over the training frames")
    batch_size: int = Field(16, ge=1, le=1024, description="frames per optimizer step")
    lr: float = Field(2e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, le=1, description="AdamW weight decay")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="learning-rate schedule after warm-up")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="share of all steps with a linear warm-up; with "
                                                                   "max_minutes, at most the first epoch")
    clip_grad_norm: float = Field(10.0, ge=0, description="clip the gradient norm to this; 0 turns clipping off")
    repeat_factor_threshold: float = Field(
        0.0, ge=0, le=1, description="repeat-factor sampling (LVIS): frames with classes held by fewer than this "
                                     "share of training frames are repeated sqrt(t / share) times per epoch; 0: off")
    copy_paste: int = Field(
        4, ge=0, le=64, description="box-level copy-paste: up to N objects of copy_paste_classes from other training "
                                    "frames of the same lighting pasted into each frame, at their own position and "
                                    "only where they cover no labeled box; 0: off")
    copy_paste_classes: tuple[str, ...] = Field(("pedestrian", "cyclist"), description="classes copy-paste pastes")
    haze: float = Field(
        0.5, ge=0, le=1, description="share of training frames faded toward a uniform haze of random opacity "
                                     "0.2-0.7 (longtail.train.data.add_haze), as fog fades distant objects; 0: off")
    hflip: bool = Field(True, description="flip training frames horizontally at random (seeded per epoch)")
    seed: int = Field(0, ge=0, lt=2**31, description="seed of weights, shuffling and augmentation")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads (1 per process when several run at once)")
    num_workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes decoding JPEGs")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="training arithmetic: bf16 runs the forward pass under bfloat16 autocast (weights and "
                            "optimizer state stay float32); auto: bf16 where the device runs it natively "
                            "(AVX512-BF16 or AMX CPUs, recent GPUs), else fp32. Inference is float32")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu")
    max_minutes: float | None = Field(
        None, gt=0, description="time budget: the cosine is re-planned after each epoch to end with the epochs that "
                                "fit (at most `epochs`); training stops after the epoch in which it runs out")
    min_size: int | None = Field(None, ge=16, le=4096, description="input short side, px (default: the preset's)")
    max_size: int | None = Field(None, ge=16, le=8192, description="input long-side limit, px (default: the preset's)")
    max_train_frames: int | None = Field(None, ge=1, description="use only the first N training frames (quick runs)")
    train_splits: tuple[str, ...] = Field(("train",), min_length=1, description="splits trained on")
    val_split: str | None = Field("val", description="split evaluated after each epoch; None skips validation")
    eval_score_threshold: float = Field(0.05, ge=0, le=1, description="detections kept for validation mAP")
    val_min_object_height: float = Field(
        MIN_OBJECT_HEIGHT, ge=0, lt=1,
        description="validation ignores boxes less tall than this share of the frame height, as `longtail evaluate` does")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept in the run folder")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; None: sqlite:///DATA/mlflow/mlflow.db")
    artifact_location: str | None = Field(
        None, description="artifact store of a new experiment; None: DATA/mlflow/artifacts for the default sqlite URI")
    experiment: str = Field("longtail-train", min_length=1, description="MLflow experiment name")
    registered_model: str | None = Field(
        "longtail-detector", description="MLflow registered model the trained model becomes a version of; None: none")
    # Fine-tuning (the loop's second turn): warm start and mined-frame oversampling.
    init_from: str | None = Field(
        None, description="None (or 'scratch'): weights from scratch; 'champion': the registry's champion at training "
                          "time (of `registered_model`); or an explicit models:/<name>/<version>. Same preset and classes")
    finetune_lr: float | None = Field(
        1e-3, gt=0, description="peak AdamW learning rate when init_from is set (None: `lr`), after the same short "
                                "warm-up (`warmup_fraction`, at most the first epoch under a time budget); half of "
                                "`lr` so the first steps do not undo what the parent learned (tiny synthetic root, "
                                "8 epochs: val mAP@0.5 0.934 / 0.937 / 0.951 at 5e-4 / 1e-3 / 2e-3, but after "
                                "epoch 1 0.81 / 0.80 / 0.66: 2e-3 first undoes much of the parent)")
    mined_oversample: float = Field(
        1.0, ge=1, le=100, description="training frames mined for a failure mode (fm_name set by the labeling "
                                       "batch's selection) are drawn this many times per epoch in expectation, "
                                       "times their repeat factor; 1: off")

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        get_preset(v)  # raises ConfigError (a ValueError) listing the valid names
        return v

    @field_validator("train_splits")
    @classmethod
    def _train_splits(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if s not in SPLIT_NAMES]
        if bad:
            raise ValueError(f"unknown split(s) {bad}; valid splits are {list(SPLIT_NAMES)}")
        if any(s.startswith("test") for s in v):
            raise ValueError(f"train_splits={list(v)} includes a test suite; test frames are never trained on")
        return v

    @field_validator("copy_paste_classes")
    @classmethod
    def _copy_paste_classes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if c not in CATEGORIES]
        if bad:
            raise ValueError(f"unknown class(es) {bad} in copy_paste_classes; valid classes are {list(CATEGORIES)}")
        return v

    @field_validator("init_from", mode="before")
    @classmethod
    def _init_from(cls, v: object) -> object:
        # Ploomber's env files cannot hold null and a rendered placeholder is a string: "scratch"
        # (or "none", "") says "from scratch" there.
        if isinstance(v, str) and v.strip().lower() in INIT_SCRATCH:
            return None
        if isinstance(v, str) and v != INIT_CHAMPION and not MODEL_VERSION_URI_RE.match(v):
            raise ValueError(f"invalid init_from={v!r}; give None or 'scratch' (from scratch), {INIT_CHAMPION!r} or "
                             "models:/<name>/<version>")
        return v

    @field_validator("val_split")
    @classmethod
    def _val_split(cls, v: str | None) -> str | None:
        if v is not None and v not in SPLIT_NAMES:
            raise ValueError(f"unknown split {v!r}; valid splits are {list(SPLIT_NAMES)}")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> TrainConfig:
        spec = get_preset(self.preset)
        if (self.min_size or spec.min_size) > (self.max_size or spec.max_size):
            raise ValueError(f"min_size {self.min_size or spec.min_size} exceeds max_size {self.max_size or spec.max_size}")
        return self
