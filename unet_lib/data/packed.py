"""A packed copy of a BraTS folder: one memory-mapped array per field, read at memory speed.

Reading the Kaggle release means opening 57,195 small gzip-compressed HDF5 files per epoch,
which starves a GPU. :func:`pack` reads every slice once (through the same checks as
training) and writes a folder::

    images.npy   float16 (N, 4, H, W)   z-scored channels (|values| < 65,504: float16 is enough)
    masks.npy    uint8   (N, H, W)      the three mask channels as bits: NCR/NET 1, ED 2, ET 4
    index.npy    int32   (K, 3)         (volume, slice, row) of each usable slice (K ≤ N; rows
                                        of skipped files stay zero and are never read)
    packed.json  the source folder, image size, dtypes and the files skipped as unusable

:class:`PackedSlices` reads it as a dataset identical to :class:`BraTSSlices` (up to float16
rounding of the images, about 1e-3 relative).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..progress import progress_bar
from .kaggle import resize_sample
from .samples import SkippedSample

PACKED_META = "packed.json"
CHANNEL_BITS = np.arange(3, dtype=np.uint8)[:, None, None]  # channel c is bit c of a mask byte


def is_packed(root: str | Path) -> bool:
    """Whether ``root`` is a folder written by :func:`pack`."""
    return (Path(root) / PACKED_META).is_file()


def pack(source: Dataset, out: str | Path, progress: bool = True) -> Path:
    """Write every usable sample of ``source`` (e.g. a :class:`BraTSSlices`) to ``out``.

    ``source`` must yield ``(image (4, H, W), mask (3, H, W))`` of one size and have a
    ``slices`` list of ``(volume, slice, ...)`` entries, as the BraTS datasets do. Unusable
    files are skipped and listed in ``packed.json``. Returns ``out``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = next(sample for sample in (source[i] for i in range(len(source)))
                 if not isinstance(sample, SkippedSample))
    height, width = first[0].shape[-2:]
    n = len(source)
    images = np.lib.format.open_memmap(out / "images.npy", "w+", np.float16, (n, 4, height, width))
    masks = np.lib.format.open_memmap(out / "masks.npy", "w+", np.uint8, (n, height, width))
    index, skipped = [], []
    for row in progress_bar(range(n), progress, desc=f"packing {n} slices"):
        sample = source[row]
        if isinstance(sample, SkippedSample):
            skipped.append(str(sample))
            continue
        images[row] = sample[0].numpy()
        masks[row] = (sample[1].numpy().astype(np.uint8) << CHANNEL_BITS).sum(axis=0)
        index.append((*source.slices[row][:2], row))
    images.flush()
    masks.flush()
    del images, masks
    np.save(out / "index.npy", np.array(index, np.int32).reshape(-1, 3))
    meta = {"source": str(getattr(source, "root", "")), "slices": len(index),
            "height": int(height), "width": int(width), "image_dtype": "float16",
            "mask_dtype": "uint8 bits", "skipped": skipped}
    (out / PACKED_META).write_text(json.dumps(meta, indent=1))
    return out


class PackedSlices(Dataset):
    """A folder written by :func:`pack` as a dataset of ``(image, mask)`` float32 tensors.

    Args:
        root: the packed folder.
        volumes: volume numbers to include; ``None`` takes all.
        image_size: resize to ``image_size × image_size``; ``None`` keeps the packed size.

    The arrays are memory-mapped: opening is instant, each item is two array slices, and
    DataLoader workers share the operating system's page cache.
    """

    def __init__(self, root: str | Path, volumes: Iterable[int] | None = None,
                 image_size: int | None = None):
        self.root = Path(root)
        if not is_packed(root):
            raise FileNotFoundError(f"{root}: not a packed folder (no {PACKED_META}); "
                                    f"make one with `unet-lib pack`")
        self.meta = json.loads((self.root / PACKED_META).read_text())
        index = np.load(self.root / "index.npy")
        if volumes is not None:
            index = index[np.isin(index[:, 0], list(volumes))]
        self.slices = [(int(v), int(s), int(row)) for v, s, row in index]
        self.image_size = image_size
        self._images = self._masks = None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None:  # opened lazily: each DataLoader worker maps its own view
            self._images = np.load(self.root / "images.npy", mmap_mode="r")
            self._masks = np.load(self.root / "masks.npy", mmap_mode="r")
        return self._images, self._masks

    @property
    def volumes(self) -> list[int]:
        return sorted({volume for volume, _, _ in self.slices})

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, masks = self._arrays()
        row = self.slices[index][2]
        image = torch.from_numpy(images[row].astype(np.float32))
        mask = torch.from_numpy(((masks[row] >> CHANNEL_BITS) & 1).astype(np.float32))
        return resize_sample(image, mask, self.image_size)

    def __getstate__(self) -> dict:  # workers re-open the maps instead of pickling them
        return {**self.__dict__, "_images": None, "_masks": None}

    def __repr__(self) -> str:
        return f"PackedSlices({str(self.root)!r}, {len(self.volumes)} volumes, {len(self)} slices)"


def pack_folder(root: str | Path, out: str | Path, progress: bool = True) -> Path:
    """Pack a BraTS folder, Kaggle slices or the NIfTI release (see :func:`pack`).

    The NIfTI release is read case by case, in order, so each volume is decoded once; a
    shuffled training loader over NIfTI would decode a whole case for almost every slice.
    """
    from . import open_dataset  # here: the package imports this module

    return pack(open_dataset(root), out, progress=progress)
