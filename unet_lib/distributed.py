"""Training on several GPUs (or CPU processes) with ``torchrun``, no change to user code.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script that calls
:func:`unet_lib.train.fit`; ``fit`` notices the launch (``WORLD_SIZE`` > 1), joins the process
group (NCCL on CUDA, Gloo on the CPU), wraps the model in ``DistributedDataParallel`` and:

* splits every **global** batch of ``config.batch_size`` images into equal shares, one per
  process (the batch size must divide by the number of processes), drawn from the same
  seeded permutation as a single-process run — so N processes see exactly the batches one
  process would, and DDP's averaged gradient is the single process's gradient (up to
  floating-point summation order);
* on GPUs, normalizes with batch statistics over the whole global batch: the model's
  ``BatchNorm2d`` layers become ``SyncBatchNorm`` while it trains (:func:`wrap`), and are
  ``BatchNorm2d`` again when ``fit`` returns (:func:`plain_batch_norm`). Gloo (CPU processes)
  has no synchronized batch norm: there each process normalizes its own share;
* scores validation with rank 0's batch-norm statistics on every process
  (:func:`broadcast_buffers`), sums losses and the Dice/precision/recall counts over all
  processes, and gathers every process's list of skipped files (:func:`gathered`);
* logs and writes checkpoints on rank 0 only.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from .config import ConfigError


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_world_size() -> int:
    """The number of processes ``torchrun`` started (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not launched by ``torchrun``), before any set-up."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device_type: str) -> Context:
    """Join the process group if launched by ``torchrun``; a no-op context otherwise. A group
    joined here is left when the program ends (a script may call ``fit`` again meanwhile, for
    another model, in the same group); one the caller made is the caller's to end."""
    if launched_world_size() <= 1:
        return Context()
    if device_type == "mps":  # Gloo moves CPU and CUDA tensors only
        raise ConfigError("device", "'mps' under torchrun: PyTorch's process groups cannot "
                                    "reach Apple's GPU; train in one process, or on the CPU "
                                    "(--device cpu)")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        atexit.register(_leave_group)
    return Context(dist.get_rank(), dist.get_world_size())


def _leave_group() -> None:
    """``destroy_process_group`` at the program's end, if the group is still there (PyTorch
    warns otherwise) and no training in this process failed: then the other processes may
    still wait in a collective, and destroying would wait for them, so the process just exits
    and ``torchrun`` stops the others."""
    if dist.is_initialized() and not _failed:
        dist.destroy_process_group()


_failed = False  # set by note_failure()


def note_failure() -> None:
    """Record that training stopped with an error in this process (see :func:`_leave_group`)."""
    global _failed
    _failed = True


def local_device(device: torch.device) -> torch.device:
    """On CUDA under ``torchrun``, this process's own GPU (``LOCAL_RANK``)."""
    if device.type == "cuda" and launched_world_size() > 1:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def all_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place, and returned); unchanged with one."""
    if context.active:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def check_batch_splits_evenly(batch_size: int, context: Context) -> None:
    """Refuse a global batch that does not split into equal shares, one per process (every
    step would leave images out), naming the nearest sizes that do."""
    world = context.world
    if batch_size % world:
        fewer, more = batch_size // world, -(-batch_size // world)
        raise ConfigError("batch_size", f"{batch_size} images do not split into {world} equal "
                                        f"shares, one per process: choose a multiple of {world}, "
                                        f"e.g. " + (f"{fewer * world} or " if fewer else "")
                          + f"{more * world}")


def gathered(items: list, context: Context) -> list:
    """Every process's ``items`` (picklable), one list in rank order; ``items`` with one."""
    if not context.active:
        return items
    lists = [None] * context.world
    dist.all_gather_object(lists, items)
    return [item for share in lists for item in share]


def broadcast_buffers(model: nn.Module, context: Context) -> None:
    """Give every process rank 0's buffers (batch norm's running statistics). DDP does so at
    the start of each training forward pass, so after an epoch's last step each process holds
    statistics updated by its own last share; scoring validation with them would score a
    slightly different model on each process from the one rank 0 saves."""
    if context.active:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def wrap(model: nn.Module, context: Context, device: torch.device) -> nn.Module:
    """``model`` as the training step calls it: itself, or under ``torchrun`` its
    ``DistributedDataParallel`` wrapper, with (on GPUs) its ``BatchNorm2d`` layers made
    ``SyncBatchNorm`` in place first (same parameters and buffers), so that batch norm
    normalizes over the global batch as one process would. :func:`plain_batch_norm` undoes
    it."""
    if not context.active:
        return model
    if device.type == "cuda":  # NCCL; SyncBatchNorm has no CPU implementation
        synchronized_batch_norm(model)
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)


class _SyncedForTraining(nn.SyncBatchNorm):
    """A ``SyncBatchNorm`` that :func:`synchronized_batch_norm` put in place of a
    ``BatchNorm2d`` (and :func:`plain_batch_norm` takes out again; a model's own
    ``SyncBatchNorm`` layers stay as they are)."""


def synchronized_batch_norm(model: nn.Module) -> int:
    """Make every ``BatchNorm2d`` of ``model`` a ``SyncBatchNorm`` in place, holding the same
    parameter and buffer tensors (an optimizer built on the model keeps training them);
    returns how many were changed."""
    return _swap_norms(model, nn.BatchNorm2d, _SyncedForTraining)


def plain_batch_norm(model: nn.Module) -> int:
    """Make the ``SyncBatchNorm`` layers :func:`synchronized_batch_norm` put into ``model``
    ``BatchNorm2d`` again, keeping their parameters and statistics; returns how many."""
    return _swap_norms(model, _SyncedForTraining, nn.BatchNorm2d)


def _swap_norms(module: nn.Module, source: type, target: type) -> int:
    """Replace every child layer of exactly type ``source`` (below ``module``) by a ``target``
    layer that holds the same parameter and buffer tensors; returns the number replaced."""
    swapped = 0
    for name, child in module.named_children():
        if type(child) is not source:
            swapped += _swap_norms(child, source, target)
            continue
        norm = target(child.num_features, child.eps, child.momentum, child.affine,
                      child.track_running_stats)
        for key, tensor in [*child._parameters.items(), *child._buffers.items()]:
            setattr(norm, key, tensor)
        norm.train(child.training)
        setattr(module, name, norm)
        swapped += 1
    return swapped


def blank_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An all-zero ``(image (1, 4, S, S), mask (1, 3, S, S))``, ``S = size``: what a process
    steps on, its loss counted zero, when its share of the first batch held only unusable
    files. Under ``torchrun`` every process must take part in every step's exchange of
    gradients; one that skipped a step would leave the others waiting. (Later such shares
    step on the process's last batch.) Its gradient is zero, but on GPUs, where batch norm is
    synchronized, it counts in that step's batch statistics of every process."""
    return torch.zeros(1, 4, size, size), torch.zeros(1, 3, size, size)


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this process's share of each global batch of a seeded shuffle.

    Every process draws the same permutation from ``generator`` (same seed, same state), cuts
    it into global batches of ``batch_size`` (a multiple of ``world``) and takes share
    ``rank`` of ``world`` equal shares. Of the last, smaller batch the last ``len % world``
    images go unused, and a last batch smaller than ``world`` is dropped, so that every
    process takes part in every step.
    With ``world == 1`` this is an ordinary shuffled batch sampler. ``order``, when given,
    draws each epoch's list of ``n`` indices from the generator instead of a permutation
    (e.g. :func:`unet_lib.sampling.tumour_share_order`).
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator,
                 context: Context = Context(), shuffle: bool = True,
                 order: Callable[[torch.Generator], list[int]] | None = None):
        check_batch_splits_evenly(batch_size, context)
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.context, self.shuffle, self.order = context, shuffle, order

    def __iter__(self):
        if self.order is not None:
            order = self.order(self.generator)
        else:
            order = (torch.randperm(self.n, generator=self.generator) if self.shuffle
                     else torch.arange(self.n)).tolist()
        world, rank = self.context.world, self.context.rank
        for start in range(0, self.n, self.batch_size):
            batch = order[start:start + self.batch_size]
            share = len(batch) // world
            if share:
                yield batch[rank * share:(rank + 1) * share]

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (rest >= self.context.world)
