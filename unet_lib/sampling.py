"""Which slices a training epoch visits: a plain shuffle (the slides), or a shuffle that
draws a set share of its slices from those with tumour.

Most axial slices of a brain hold no tumour (35 % of the quick phantom's slices hold some; in
BraTS about a third). With few optimizer steps — the course's CPU scale trains for a few
hundred — a model then spends most of them on empty slices, and the small, rare sub-regions
(the enhancing rim, the necrotic core) are seen too seldom to be learned. A
``TrainConfig.tumour_share`` of e.g. 0.8 makes four slices in five of every epoch tumour slices,
drawn without replacement until the pool is used up and then again, and the rest from the
slices without tumour. The epoch keeps its length (one pass's worth of steps).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from . import distributed
from .data.base import slice_size
from .data.nifti import BraTSNifti
from .data.contents import channel_flags
from .parallel import usable_cores
from .resident import (ResidentBatches, ResidentSlices, hold_on_device, resident_rows,
                       use_resident)
from .runtime import tally_device
from .data.samples import collate_samples

if TYPE_CHECKING:
    from .config import TrainConfig


def tumour_flags(dataset: Dataset) -> np.ndarray:
    """``(N,)`` bool: whether item ``i`` of ``dataset`` has any tumour pixel
    (:func:`unet_lib.data.channel_flags`)."""
    return channel_flags(dataset).any(axis=1)


def _cycled(pool: np.ndarray, count: int, generator: torch.Generator) -> list[int]:
    """``count`` items of ``pool``: shuffled passes over it, as many as needed."""
    drawn: list[int] = []
    while len(drawn) < count and len(pool):
        drawn.extend(pool[torch.randperm(len(pool), generator=generator).numpy()].tolist())
    return drawn[:count]


def tumour_share_order(flags: np.ndarray, share: float
                       ) -> Callable[[torch.Generator], list[int]]:
    """An epoch order of ``len(flags)`` indices of which ``round(share · N)`` come from the
    tumour slices (``flags`` true) and the rest from the others, shuffled together.

    When one pool is empty the order is a plain shuffle of the other. Every index of a pool
    appears once before any appears twice.

    Raises:
        ValueError: ``share`` outside [0, 1].
    """
    if not 0 <= share <= 1:
        raise ValueError(f"tumour_share must be between 0 and 1, got {share!r}")
    flags = np.asarray(flags, dtype=bool)
    tumour, healthy = np.flatnonzero(flags), np.flatnonzero(~flags)

    def order(generator: torch.Generator) -> list[int]:
        n = len(flags)
        wanted = round(share * n) if len(tumour) and len(healthy) else (
            n if len(tumour) else 0)
        chosen = (_cycled(tumour, wanted, generator)
                  + _cycled(healthy, n - wanted, generator))
        mixed = torch.randperm(len(chosen), generator=generator).tolist()
        return [chosen[i] for i in mixed]

    return order


#: shared memory a loader process needs: it hands its batches over through ``/dev/shm``,
#: two at a time, each up to about 100 MB (64 slices of 240×240 uploading held data)
SHARED_MEMORY_PER_WORKER = 256 * 2 ** 20


def reading_workers(device: torch.device, batches: int | None = None) -> int:
    """How many processes read the data files by default: none on the CPU (they would take
    cores from the computation); for a GPU up to 8, sharing the cores this process may use
    (:func:`~unet_lib.parallel.usable_cores`) with the other processes ``torchrun`` started on
    the machine (``LOCAL_WORLD_SIZE``), and as many as the shared memory holds (a Docker or
    Kubernetes container gets 64 MB of ``/dev/shm`` unless given more: none there, where a
    worker would die with "Bus error"); no more than ``batches``."""
    if device.type == "cpu":
        return 0
    ranks_here = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    workers = max(1, min(8, usable_cores() // ranks_here))
    if batches is not None:
        workers = min(workers, batches)
    shared = shared_memory_free()
    fitting = workers if shared is None else shared // ranks_here // SHARED_MEMORY_PER_WORKER
    if fitting < workers:
        if not _warned_of_shared_memory:  # once: scoring asks again for every pass
            _warned_of_shared_memory.append(shared)
            warnings.warn(f"/dev/shm has {shared / 2 ** 20:.0f} MB free: {fitting} "
                          f"file-reading process(es) instead of {workers}, so passes over data "
                          f"read from disk are slower. Give the container more shared memory "
                          f"(docker run --shm-size=4g; on Kubernetes an emptyDir of medium "
                          f"Memory mounted at /dev/shm)", RuntimeWarning, stacklevel=2)
        workers = fitting
    return workers


_warned_of_shared_memory: list[int] = []  # the free bytes of the one warning given


def shared_memory_free(path: str = "/dev/shm") -> int | None:
    """Free bytes in the shared memory loader processes pass batches through (Linux);
    ``None`` where there is no such folder (macOS, Windows: other mechanisms)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def scoring_workers(device: torch.device, batches: int) -> int:
    """The processes that read the files for one pass of scoring (validation, test scores,
    predictions): as for training on a CUDA GPU, at most one per batch; none elsewhere (on a
    Mac each pass would start its workers anew, each a fresh Python that imports torch)."""
    return reading_workers(device, batches) if device.type == "cuda" else 0


def loader_workers(config: "TrainConfig", device: torch.device) -> int:
    """The processes that read the data files: ``config.num_workers``, or by default
    :func:`reading_workers`."""
    if config.num_workers is not None:
        return config.num_workers
    return reading_workers(device)


def sized_as_data(config: "TrainConfig", train_data: Dataset,
                  report: Callable[..., None] = print) -> "TrainConfig":
    """``config`` with the ``image_size`` of the slices ``train_data`` yields, which is what the
    model learns at and what its checkpoints must record (``fit`` trains on the data as given:
    the config's size is the one a recipe opens the data at)."""
    size = slice_size(train_data)
    if size is None or size == config.image_size:
        return config
    report(f"the training slices are {size}×{size} pixels: checkpoints record image_size "
           f"{size}, not the config's {config.image_size}")
    return dataclasses.replace(config, image_size=size)


def held_as_configured(train_data: Dataset, val_data: Dataset | None, config: "TrainConfig",
                       device: torch.device, report: Callable[..., None] = print,
                       context: distributed.Context = distributed.Context()):
    """``(train, val)`` as :func:`unet_lib.train.fit` trains on them: held on ``device`` when
    ``config.resident_data`` says so (:func:`~unet_lib.resident.use_resident`), their files
    read by :func:`loader_workers` processes; else as given. Under ``torchrun`` the data are
    held only where every process can hold them (held data leave unusable files out, so the
    processes must agree, or their epochs would differ in length). A ``Subset`` of held
    data becomes held data of its rows (:func:`~unet_lib.resident.resident_rows`)."""
    train_data, val_data = resident_rows(train_data), resident_rows(val_data)
    resident = use_resident(config.resident_data, (train_data, val_data), device)
    if context.active:
        agreed = torch.tensor(float(resident), device=tally_device(device))
        resident = int(distributed.all_sum(agreed, context).item()) == context.world
    if not resident:
        if any(isinstance(getattr(d, "dataset", d), BraTSNifti) for d in (train_data, val_data)):
            report("reading NIfTI cases slice by slice in a shuffled order decodes a whole case "
                   "for almost every slice: `unet-lib pack` the folder once for fast epochs")
        return train_data, val_data
    return hold_on_device(train_data, val_data, device, report, loader_workers(config, device))


def make_train_loader(data: Dataset, config: "TrainConfig", device: torch.device,
                      generator: torch.Generator, context: distributed.Context) -> DataLoader:
    """Shuffled batches of ``config.batch_size`` (this process's share under ``torchrun``),
    with ``config.tumour_share`` of the slices from those with tumour when it is set."""
    workers = loader_workers(config, device)
    order = None
    if config.tumour_share is not None:
        order = tumour_share_order(tumour_flags(data), config.tumour_share)
    sampler = distributed.GlobalBatchSampler(len(data), config.batch_size, generator, context,
                                             order=order)
    if isinstance(data, ResidentSlices):  # already on the device: batches by index
        return ResidentBatches(data, sampler)
    return DataLoader(data, batch_sampler=sampler, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      collate_fn=collate_samples)
