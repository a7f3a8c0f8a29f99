"""The optimizer and its per-step learning-rate schedule: warm-up, cosine, and its fit to a time budget."""

from __future__ import annotations

import math

import torch
from torch import nn

from longtail.train.config import TrainConfig


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


def peak_lr(config: TrainConfig) -> float:
    """The peak learning rate: ``config.finetune_lr`` when fine-tuning (``init_from`` set and
    ``finetune_lr`` not None), else ``config.lr``."""
    if config.init_from is not None and config.finetune_lr is not None:
        return config.finetune_lr
    return config.lr


def make_optimizer(model: nn.Module, config: TrainConfig, total_steps: int, max_warmup_steps: int | None = None
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on norms and biases) at `peak_lr` and a `WarmupCosine` per-step schedule.

    ``max_warmup_steps`` caps the warm-up. A run with a time budget passes one epoch's steps: its
    ``total_steps`` is an upper bound (``config.epochs``), not the steps that will fit, and a
    warm-up planned on it (say 5% of 10,000 epochs) would outlast the budget.
    """
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]  # norms and biases
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=peak_lr(config))
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
