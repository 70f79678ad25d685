"""Training data held on the GPU: every slice uploaded once, batches cut by index on the device.

On one H200 the Classic U-Net trains at 2310-2865 images/s while the loaders deliver 355
(Kaggle h5 files) to 1450 (the packed copy) slices/s (``benchmarks/h200-2026-11-27/``): the
data path, not the model, sets the pace of ``fit()``. A whole BraTS release is about 26 GB of
float16 images and a few GB of masks, which fits one H100; so when the data fit the GPU's free
memory, ``fit`` uploads them once (:class:`ResidentSlices`) and draws each batch by indexing
(:class:`ResidentBatches`): no worker processes, no host-to-device copy per step.

On the CPU the same holds the slices in memory, read once: reading the quick phantom's 384
training and validation slices from their h5 files took 1.5 s of each 12 s epoch of the Classic
U-Net (2 CPU cores, 2026-11-27).

``TrainConfig.resident_data``: ``"auto"`` (when the data take at most half the free GPU
memory, or on the CPU half the available RAM), ``True`` or ``False``.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .data.base import first_usable
from .data.samples import announce_skipped, collate_samples
from .runtime import same_device

#: "auto" holds the data only if they take at most this share of the free GPU memory (of the
#: available RAM on the CPU)
FREE_MEMORY_SHARE = 0.5


class ResidentSlices(Dataset):
    """Every usable slice of a dataset, in two tensors on one device.

    Attributes:
        images: (N, 4, H, W) in ``dtype`` (float16 by default: half the memory; training
            casts each batch to float32, or runs it under bf16 autocast anyway).
        masks: (N, 3, H, W) bool.
        skipped: the unusable items of the source, as their :class:`SkippedSample` text.

    Item ``i`` is ``(image float32 (4, H, W), mask float32 (3, H, W))`` on the device, so
    :func:`unet_lib.inference.evaluate` and friends take it like any dataset.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, skipped=()):
        if images.shape[0] != masks.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {masks.shape[0]} masks")
        self.images, self.masks, self.skipped = images, masks.bool(), list(skipped)

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device | str,
             dtype: torch.dtype = torch.float16, num_workers: int = 0,
             batch_size: int = 64, role: str = "") -> "ResidentSlices":
        """Read every item of ``dataset`` once (unusable ones are left out and listed) and
        upload it to ``device``, ``batch_size`` items at a time into tensors made for all of
        them: the host never holds more than a batch (a whole BraTS release is ~50 GB as
        float32). ``num_workers`` processes read the files, as a training loader's would.
        ``role`` ("training", "validation") names the data in an error."""
        num_workers = min(num_workers, -(-len(dataset) // batch_size))  # none idle per batch
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                            collate_fn=collate_samples)
        images = masks = None
        count, skipped = 0, []
        for batch_images, batch_masks, bad in loader:
            skipped.extend(str(sample) for sample in announce_skipped(bad))
            if batch_images is None:
                continue
            if images is None:
                images = torch.empty((len(dataset), *batch_images.shape[1:]), dtype=dtype,
                                     device=device)
                masks = torch.empty((len(dataset), *batch_masks.shape[1:]), dtype=torch.bool,
                                    device=device)
            images[count:count + len(batch_images)] = batch_images
            masks[count:count + len(batch_masks)] = batch_masks.bool()
            count += len(batch_images)
        if not count:
            raise ValueError(f"{getattr(dataset, 'root', 'the dataset')}: no usable "
                             f"{role + ' ' if role else ''}slice to upload: "
                             + (f"all {len(skipped)} were skipped, e.g. {skipped[0]}"
                                if skipped else "it holds none"))
        if count < len(dataset):  # room was made for the skipped items too: a view of the
            images, masks = images[:count], masks[:count]  # rest (a copy would double the peak)
        return cls(images, masks, skipped)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index].float(), self.masks[index].float()

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 4, H, W) float32 and masks (B, 3, H, W) float32 of ``indices`` (a
        sequence, or best a tensor already on the data's device: a list is copied there first,
        and on a GPU that copy waits for all queued work)."""
        rows = torch.as_tensor(indices, device=self.images.device)
        return self.images[rows].float(), self.masks[rows].float()

    def channel_flags(self):
        """``(N, 3)`` bool (NumPy): whether item ``i`` has any NCR/NET, ED, ET pixel."""
        return self.masks.flatten(2).any(dim=2).cpu().numpy()

    @property
    def nbytes(self) -> int:
        return (self.images.element_size() * self.images.nelement()
                + self.masks.element_size() * self.masks.nelement())


class ResidentBatches:
    """Batches of a :class:`ResidentSlices` in the order a batch sampler draws, as the
    training loop expects them from its loader: ``(images, masks, skipped)``; the first batch
    of each epoch lists the source's unusable items, so that every epoch's record names them
    as the loader's would.

    The sampler's whole pass is drawn first and its indices copied to the device in one go,
    from pinned memory: a copy from ordinary host memory to a GPU waits until the GPU has
    finished all the work queued before it, so a copy per batch would stop the CPU from
    queueing the next step while the GPU computes this one. Cutting each batch's rows out of
    the pass's index tensor stays on the device.
    """

    def __init__(self, data: ResidentSlices, sampler):
        self.data, self.sampler = data, sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        batches = [list(indices) for indices in self.sampler]
        rows = upload([i for indices in batches for i in indices], self.data.images.device)
        rows = rows.split([len(indices) for indices in batches])
        for step, batch_rows in enumerate(rows):
            images, masks = self.data.batch(batch_rows)
            yield images, masks, list(self.data.skipped) if step == 0 else []


def upload(indices: list[int], device: torch.device) -> torch.Tensor:
    """``indices`` as a long tensor on ``device``; to a GPU through pinned memory, so that the
    copy is queued behind the GPU's work instead of waiting for it."""
    order = torch.tensor(indices, dtype=torch.long)
    if device.type != "cuda":
        return order.to(device)
    return order.pin_memory().to(device, non_blocking=True)


def estimated_bytes(dataset: Dataset, dtype: torch.dtype = torch.float16) -> int:
    """What :meth:`ResidentSlices.load` would take: the first usable item's size × N."""
    sample = first_usable(dataset)
    if sample is None:
        return 0
    image, mask = sample
    per_item = image.nelement() * torch.empty(0, dtype=dtype).element_size()
    return len(dataset) * (per_item + mask.nelement())


def use_resident(setting, datasets, device: torch.device) -> bool:
    """Whether to hold ``datasets`` on ``device``: ``setting`` True/False as given; ``"auto"``
    when together they take at most :data:`FREE_MEMORY_SHARE` of the free memory (the GPU's
    on CUDA, the available RAM on the CPU; never on other devices). Under ``torchrun`` every
    process holds a copy of its own: on the CPU the processes of one machine share its RAM,
    so each may take only its part (``LOCAL_WORLD_SIZE``)."""
    if setting is True or setting is False:
        return setting
    datasets = [d for d in datasets if d is not None and not is_held_on(d, device)]
    if not datasets:  # nothing left to upload
        return True
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # what PyTorch has reserved but holds nothing (freed tensors) is free for it too
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    elif device.type == "cpu":
        free = available_ram()
        free = free and free // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    else:
        return False
    if not free:
        return False
    need = sum(estimated_bytes(d, resident_dtype(device)) for d in datasets if d is not None)
    return need <= FREE_MEMORY_SHARE * free


def available_ram() -> int | None:
    """Bytes of RAM free for new data (Linux: ``MemAvailable``); ``None`` where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def resident_dtype(device: torch.device) -> torch.dtype:
    """float16 images on CUDA (half the memory; training casts them), float32 elsewhere (the
    loader's own values: training on them gives the same weights)."""
    return torch.float16 if device.type == "cuda" else torch.float32


def resident_rows(data: Dataset | None) -> Dataset | None:
    """``data`` as it is, or, for a ``Subset`` (of a ``Subset`` ...) of a
    :class:`ResidentSlices`, a :class:`ResidentSlices` of those rows, copied on its device:
    training reads held data by index on the device, which a ``Subset`` would hand to reader
    processes instead (and CUDA tensors cannot go to forked readers)."""
    if not isinstance(data, Subset):
        return data
    inner = resident_rows(data.dataset)
    if not isinstance(inner, ResidentSlices):
        return data
    rows = torch.as_tensor(list(data.indices), dtype=torch.long, device=inner.images.device)
    return ResidentSlices(inner.images[rows], inner.masks[rows], inner.skipped)


def is_held_on(data: Dataset, device: torch.device) -> bool:
    """Whether ``data`` is a :class:`ResidentSlices` on ``device`` already ("cuda" is the
    current GPU: "cuda:0" when nothing else was chosen)."""
    if not isinstance(data, ResidentSlices):
        return False
    return data.images.device == same_device(device)


def hold_on_device(train_data: Dataset, val_data: Dataset | None, device: torch.device,
                   report=print, num_workers: int = 0
                   ) -> tuple[ResidentSlices, ResidentSlices | None]:
    """Upload both datasets (:func:`resident_dtype`), their files read by ``num_workers``
    processes, and say so. Data already held on ``device`` (several models trained on one
    split) are used as they are."""
    dtype = resident_dtype(device)
    uploaded = []

    def held(data, role: str):
        if data is None or is_held_on(data, device):
            return data
        uploaded.append(data)
        return ResidentSlices.load(data, device, dtype, num_workers, role=role)

    train, val = held(train_data, "training"), held(val_data, "validation")
    size = (train.nbytes + (val.nbytes if val is not None else 0)) / 2 ** 30
    report(f"data held on {device}: {len(train)} training"
           + (f" and {len(val)} validation" if val is not None else "")
           + f" slices, {size:.2f} GiB, "
           + ("already there" if not uploaded else
              "uploaded once" if device.type == "cuda" else "read once"), flush=True)
    return train, val
