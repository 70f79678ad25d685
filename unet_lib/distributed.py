"""Training on several GPUs (or CPU processes) with ``torchrun``, no change to user code.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script that calls
:func:`unet_lib.train.fit`; ``fit`` notices the launch (``WORLD_SIZE`` > 1), joins the process
group (NCCL on CUDA, Gloo on the CPU), wraps the model in ``DistributedDataParallel`` and:

* splits every **global** batch of ``config.batch_size`` images into equal shares, one per
  process, drawn from the same seeded permutation as a single-process run — so N processes
  see exactly the batches one process would, and DDP's averaged gradient is the single
  process's gradient (up to floating-point summation order; batch norm statistics are per
  process, as usual with DDP);
* sums losses and the Dice/precision/recall counts over all processes;
* logs and writes checkpoints on rank 0 only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


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
    """Join the process group if launched by ``torchrun``; a no-op context otherwise."""
    if launched_world_size() <= 1:
        return Context()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size())


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


def blank_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An all-zero ``(image (1, 4, S, S), mask (1, 3, S, S))``, ``S = size``: what a process
    steps on, its loss counted zero, when its share of the first batch held only unusable
    files. Under ``torchrun`` every process must take part in every step's exchange of
    gradients; one that skipped a step would leave the others waiting. (Later such shares
    step on the process's last batch.)"""
    return torch.zeros(1, 4, size, size), torch.zeros(1, 3, size, size)


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this process's share of each global batch of a seeded shuffle.

    Every process draws the same permutation from ``generator`` (same seed, same state), cuts
    it into global batches of ``batch_size`` and takes share ``rank`` of ``world`` equal shares
    (the last ``batch_size % world`` images of a batch go unused, and a last batch smaller
    than ``world`` is dropped, so that every process takes part in every step).
    With ``world == 1`` this is an ordinary shuffled batch sampler. ``order``, when given,
    draws each epoch's list of ``n`` indices from the generator instead of a permutation
    (e.g. :func:`unet_lib.sampling.tumour_share_order`).
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator,
                 context: Context = Context(), shuffle: bool = True,
                 order: Callable[[torch.Generator], list[int]] | None = None):
        if batch_size < context.world:
            raise ValueError(f"batch_size {batch_size} is smaller than the {context.world} "
                             f"processes: each needs at least one image per step")
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
