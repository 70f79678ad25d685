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
from .runtime import autocast, is_out_of_memory, moved, tally_device, tuned_for_full_batches


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


class RunningLoss:
    """An epoch's summed training loss, kept where adding to it makes the CPU wait for no GPU
    (it is read only now and then: :data:`unet_lib.train.SYNC_EVERY`): in float64 on
    :func:`~unet_lib.runtime.tally_device` (a CUDA GPU itself, or the CPU); where that is not
    the training device (Apple's MPS, which has no float64), summed in float32 on the device
    and folded into the float64 total when read."""

    def __init__(self, device: torch.device):
        tally = tally_device(device)
        self.total = torch.zeros((), dtype=torch.float64, device=tally)
        self.pending = None if tally == device else torch.zeros((), device=device)

    def add(self, loss: torch.Tensor, count: int) -> None:
        """Add a batch's mean ``loss`` for ``count`` images."""
        if self.pending is None:
            self.total += loss.double() * count
        else:
            self.pending += loss.detach().float() * count

    def read(self) -> torch.Tensor:
        """The float64 total so far (a 0-d tensor, not yet read to the CPU's Python)."""
        if self.pending is not None:  # one copy from the device per read, not per step
            self.total += self.pending.cpu().double()
            self.pending.zero_()
        return self.total
