"""One training step of :func:`unet_lib.train.fit`, the five lines the book teaches (clear the
gradients, forward, loss, backward, step), with what a real run adds around them: mixed
precision, the batch moved to the device, an out-of-memory error that says what to lower, and
under torchrun the blank step of a process whose batch was unusable.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import torch
from torch import nn

from . import distributed
from .config import TrainConfig
from .failures import OutOfMemory, out_of_memory_message
from .runtime import autocast, is_out_of_memory, moved, tuned_for_full_batches


@dataclasses.dataclass
class TrainingParts:
    """What a training step needs, made once per run by :func:`unet_lib.train.fit`.
    ``trained``: the model, or its DDP or compiled wrapper; ``layout``: the images' memory
    format; ``loader``: the epoch's batches ``(images, masks, unusable samples)``."""

    trained: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    config: TrainConfig
    device: torch.device
    layout: torch.memory_format
    context: distributed.Context
    loader: Iterable
    spare: tuple | None = None  # the last batch trained on, for a torchrun blank step


def batch_on_device(steps: TrainingParts, images, masks
                    ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The batch on the device (images in the model's memory layout) and its weight in the
    loss: 1, or 0 for a blank step. Under torchrun every process steps together, so a process
    whose whole batch was unusable (``images`` ``None``) steps on its last batch again, or on
    a blank one, and adds nothing."""
    weight = 1.0
    if images is None:
        images, masks = steps.spare or distributed.blank_batch(steps.config.image_size)
        weight = 0.0
    images, masks = moved(images, steps.device, steps.layout), moved(masks, steps.device)
    steps.spare = images, masks
    return images, masks, weight


def train_step(steps: TrainingParts, images: torch.Tensor, masks: torch.Tensor, weight: float
                ) -> torch.Tensor:
    """One optimizer step on a batch: (N, 4, H, W) ``images`` → (N, 3, H, W) logits under
    autocast, the loss against ``masks`` × ``weight``, backward, the optimizer's step; returns
    the loss, detached (still on the device: reading it would wait for the GPU).

    Raises:
        OutOfMemory: forward, backward or the first step (AdamW's moments) ran out of GPU
            memory; the message says what to lower.
    """
    config, optimizer = steps.config, steps.optimizer
    try:
        # full: this process's share of the global batch (all of it without torchrun)
        with tuned_for_full_batches(len(images), config.batch_size // steps.context.world):
            with autocast(steps.device, config.amp):
                loss = steps.loss_fn(steps.trained(images).float(), masks) * weight
            optimizer.zero_grad(set_to_none=True)
            steps.scaler.scale(loss).backward()
        steps.scaler.step(optimizer)
        steps.scaler.update()
    except RuntimeError as error:  # CUDA's OutOfMemoryError is one, and MPS raises one
        if not is_out_of_memory(error):
            raise
        raise OutOfMemory(out_of_memory_message(error, config.batch_size,
                                                 images.shape)) from error
    return loss.detach()
