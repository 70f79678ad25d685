"""How training stops when it cannot go on: the GPU out of memory (:class:`OutOfMemory`, with
a message that says what to lower) and a loss gone NaN or infinite (:func:`check_finite`,
:class:`TrainingDiverged`), both raised in every process at once under ``torchrun``."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from . import distributed
from .checkpoint import CheckpointWriteError
from .checkpoint_writer import CheckpointWriter


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class OutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message says how much was asked and what to lower."""


def out_of_memory_message(error: Exception, batch_size: int, shape) -> str:
    asked = re.search(r"Tried to allocate ([\d.]+ [KMGT]i?B)", str(error))  # MPS says MB
    return (f"the GPU ran out of memory at batch size {batch_size} (images {tuple(shape)})"
            + (f" while allocating {asked[1]}" if asked else "")
            + f". Lower the batch size, e.g. to {max(1, batch_size // 2)} "
              f"(TrainConfig(batch_size=...) or --batch-size), or the image size; data held "
              f"on the GPU take memory too (resident_data=False or --resident-data off). In a "
              f"notebook, restart the kernel first: the failed run's tensors stay on the GPU "
              f"until then.")


def check_finite(total: torch.Tensor, epoch: int, rate: float, last: Path | None,
                 writer: CheckpointWriter, context: distributed.Context) -> None:
    """Raise :class:`TrainingDiverged` if the summed loss is NaN or infinite (a NaN in any
    step makes the sum NaN, so checking the sum now and then misses none); under
    ``torchrun`` in every process at once when any one's is (one stopping alone would leave
    the others waiting for it)."""
    if distributed.all_sum((~torch.isfinite(total)).to(total.dtype), context):
        try:  # the last good epoch's checkpoint on the disk before naming it
            writer.wait()
        except CheckpointWriteError:  # the file there is the one before: still named below
            pass
        value = total.item() if not torch.isfinite(total) else "not finite in another process"
        kept = last is not None and last.exists()  # an epoch before this one finished
        advice = ("resume with a lower --lr" if kept else
                  "nothing was saved, as no checkpoint folder was given: train again with a "
                  "lower one" if last is None else
                  "no epoch finished, so run again with a lower --lr, without --resume")
        raise TrainingDiverged(
            f"the loss became {value} in epoch {epoch + 1}; lower the learning rate "
            f"(now {rate:.2g}: {advice}); the weights in memory are spoilt"
            + (f"; the last good state is in {last}" if kept else ""))
