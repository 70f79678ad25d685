"""The optimizer and its learning-rate schedule: AdamW (or Adam) at ``config.lr``, multiplied by
``config.lr_gamma`` after every epoch, after an optional linear warm-up."""

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


def align_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Make a state loaded with ``optimizer.load_state_dict`` this run's own.

    A loaded state brings the saving run's choices: its fused/foreach flags (a checkpoint
    written on a GPU says fused, one written on a CPU does not) and the memory layout of its
    moments (channels_last on a GPU). Resumed elsewhere, a fused CPU update would pair moments
    and parameters of different layouts value by value, wrongly and silently, and CUDA's
    refuses them. Here the flags go back to the ones this optimizer was made with, the moments
    take their parameter's layout and device, and the step counters go where the update
    expects them (on the parameter's device when fused, else on the CPU). The same values.
    """
    for group in optimizer.param_groups:
        for flag in ("fused", "foreach", "capturable"):
            if flag in optimizer.defaults:
                group[flag] = optimizer.defaults[flag]
        on_device = bool(group.get("fused") or group.get("capturable"))
        for parameter in group["params"]:
            state = optimizer.state.get(parameter, {})
            for key, value in state.items():
                if not isinstance(value, torch.Tensor):
                    continue
                if key == "step":
                    state[key] = value.to(parameter.device if on_device else "cpu",
                                          torch.float32)
                elif value.shape == parameter.shape:
                    state[key] = torch.empty_like(parameter).copy_(value)


def warm_up(optimizer: torch.optim.Optimizer, rate: float, step: int, steps: int) -> None:
    """Set the learning rate of warm-up step ``step`` (from 1) of ``steps``: ``rate · step /
    steps``, rising linearly to the epoch's scheduled ``rate``."""
    for group in optimizer.param_groups:
        group["lr"] = rate * min(1.0, step / steps)
