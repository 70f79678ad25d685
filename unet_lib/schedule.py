"""The optimizer and its learning-rate schedule: AdamW (or Adam) at ``config.lr``, multiplied by
``config.lr_gamma`` after every epoch, after an optional linear warm-up.

Epoch ``k`` (from 1) trains at ``config.lr · config.lr_gamma ** (k - 1)`` (:func:`rate_of`):
the slides' 2e-3 and γ = 0.9 give 2e-3 in epoch 1 and about 2.7e-4 in epoch 20. In a training
loop::

    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    for epoch in range(config.epochs):
        rate = optimizer.param_groups[0]["lr"]   # this epoch's
        ...                                      # the steps (warm_up may lower the rate)
        decay_after_epoch(optimizer, scheduler, rate)
"""

from __future__ import annotations

import torch
from torch import nn

from .config import OPTIMIZERS, TrainConfig


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, with its learning rate and weight decay, for
    ``model`` where it is now: on a CUDA GPU in its fused form, one kernel for the whole update
    (the Classic U-Net's AdamW step took 10 % of its training step on an H200 as a series of
    multi-tensor kernels, ``benchmarks/h200-2026-11-27-session/profile.md``); the same
    arithmetic."""
    try:
        cls = OPTIMIZERS[config.optimizer]
    except KeyError:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of "
                         f"{', '.join(repr(n) for n in OPTIMIZERS)}") from None
    parameters = list(model.parameters())
    fused = bool(parameters) and all(p.is_cuda for p in parameters)
    return cls(parameters, lr=config.lr, weight_decay=config.weight_decay,
               **({"fused": True} if fused else {}))


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig
                   ) -> torch.optim.lr_scheduler.ExponentialLR:
    """The exponential decay: each :meth:`~torch.optim.lr_scheduler.ExponentialLR.step`
    multiplies the optimizer's learning rate by ``config.lr_gamma``."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)


def rate_of(epoch: int, config: TrainConfig) -> float:
    """The scheduled learning rate of epoch ``epoch`` (from 1), before any warm-up."""
    return config.lr * config.lr_gamma ** (epoch - 1)


def decay_after_epoch(optimizer: torch.optim.Optimizer,
                      scheduler: torch.optim.lr_scheduler.ExponentialLR, rate: float) -> None:
    """End an epoch trained at ``rate``: the next one's is ``rate · γ``.

    ``ExponentialLR`` multiplies whatever rate the optimizer holds, so the epoch's own ``rate``
    goes back first: a warm-up step (:func:`warm_up`) may have left a lower one there.
    """
    for group in optimizer.param_groups:
        group["lr"] = rate
    scheduler.step()


def warm_up(optimizer: torch.optim.Optimizer, rate: float, step: int, steps: int) -> None:
    """Set the learning rate of warm-up step ``step`` (from 1) of ``steps``: ``rate · step /
    steps``, rising linearly to the epoch's scheduled ``rate``."""
    for group in optimizer.param_groups:
        group["lr"] = rate * min(1.0, step / steps)
