"""What every BraTS dataset of this library is: axial slices of volumes, yielded as
``(image (4, S, S), mask (3, S, S))`` float32 tensors, with one skip-or-raise rule.

:class:`SliceDataset` holds the shared part — the folder, the ``(volume, slice, ...)`` entry
of every item, resizing, and the ``on_error`` policy — and a subclass says only how to read
one item (:meth:`SliceDataset.read`). The Kaggle slices (:class:`~unet_lib.data.BraTSSlices`),
the NIfTI cases (:class:`~unet_lib.data.BraTSNifti`) and the packed copy
(:class:`~unet_lib.data.PackedSlices`) are the three readers.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .brats import BRATS_SHAPE_MM
from .samples import BraTSDataError, SkippedSample, check_on_error, skip_or_raise


def resize_sample(image: torch.Tensor, mask: torch.Tensor, size: int | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize (C, H, W) image (antialiased bilinear) and mask (nearest) to ``size × size``.

    The mask uses ``nearest-exact``, which samples each output pixel's centre as bilinear
    does; plain ``nearest`` floors the source position and shifts the mask about half an
    output pixel down and right of its image (0.4 px at 96 from 240)."""
    if size is None or tuple(image.shape[-2:]) == (size, size):
        return image, mask
    return resize_image(image, size), resize_mask(mask, size)


def resize_mask(mask: torch.Tensor, size: int | tuple[int, int] | None) -> torch.Tensor:
    """(C, H, W) ``mask`` resized to ``size × size`` (or to ``(height, width)``) by nearest
    pixel centre, as :func:`resize_sample` resizes it; ``None`` keeps it."""
    shape = (size, size) if isinstance(size, int) else size
    if shape is None or tuple(mask.shape[-2:]) == tuple(shape):
        return mask
    return torch.nn.functional.interpolate(mask[None], size=tuple(shape),
                                           mode="nearest-exact")[0]


def resize_image(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """(C, H, W) or (N, C, H, W) ``image`` resized to ``size × size`` (antialiased bilinear),
    as :func:`resize_sample` resizes it; ``None`` keeps it."""
    if size is None or tuple(image.shape[-2:]) == (size, size):
        return image
    batch = image if image.dim() == 4 else image[None]
    resized = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear",
                                              antialias=True, align_corners=False)
    return resized if image.dim() == 4 else resized[0]


class SliceDataset(Dataset):
    """Axial slices of BraTS volumes as ``(image, mask)`` float32 tensors.

    Attributes:
        root: the data folder.
        slices: one entry per item, ``(volume, slice, ...)``; what follows the first two is
            the subclass's own (a file path, a row of an array).
        depths: ``{volume: slices it has where stored}``, where items were filtered out
            (see :meth:`depth_of`); empty otherwise.
        image_size: items are resized to ``image_size × image_size``; ``None`` keeps them.
        on_error: ``"skip"``: an unusable item warns (:class:`BadSampleWarning`) and yields a
            :class:`SkippedSample`, which the training loop leaves out and reports;
            ``"raise"``: it raises :class:`BraTSDataError`.
        mask_size: ``(height, width)`` that masks are resized to, not to ``image_size``,
            where it is set (see :meth:`with_native_masks`).
        extents_mm: ``{volume: (slices, rows, columns) in mm}`` where the format records its
            voxel size (NIfTI headers, and a pack made from them); see :meth:`extent_mm`.
        case_ids: ``{volume: BraTS case ID}`` (``"BraTS20_Training_003"``) where known: the
            NIfTI case folders' names, the Kaggle release's volume numbers (not a phantom's),
            and a pack made from either.

    Item ``i`` is ``(image float32 (4, S, S), mask float32 (3, S, S))`` or a
    :class:`SkippedSample`; with ``mask_size`` (H, W), the mask is (3, H, W).
    """

    mask_size: tuple[int, int] | None = None

    def __init__(self, root: str | Path, image_size: int | None = None,
                 on_error: str = "skip"):
        self.root = Path(root)
        if image_size is not None and (isinstance(image_size, bool) or not isinstance(
                image_size, (int, np.integer)) or image_size < 1):
            raise ValueError(f"image_size must be a whole number of pixels (or None to keep "
                             f"the stored size), got {image_size!r}")
        self.image_size = None if image_size is None else int(image_size)
        self.on_error = check_on_error(on_error)
        self.slices: list[tuple] = []
        self.depths: dict[int, int] = {}  # set by a subclass that filters slices out
        self.extents_mm: dict[int, tuple[float, float, float]] = {}  # where recorded
        self.case_ids: dict[int, str] = {}  # where known

    def read(self, index: int) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Item ``index`` at its stored size: image (4, H, W) and mask (3, H, W), float32.

        Raises:
            BraTSDataError: naming the file, when the item cannot be used.
        """
        raise NotImplementedError

    @property
    def volumes(self) -> list[int]:
        """Sorted volume numbers in this dataset."""
        return sorted({entry[0] for entry in self.slices})

    def depth_of(self, volume: int) -> int:
        """How many axial slices volume ``volume`` has where it is stored: also those a filter
        (``tumour_only``) left out of the items (``depths``), else its highest slice + 1."""
        return self.depths.get(volume) or slice_depths(self.slices)[volume]

    def extent_mm(self, volume: int) -> tuple[float, float, float]:
        """The size in mm (slices, rows, columns) of volume ``volume`` as stored: from its
        voxel size where the format records one (:attr:`extents_mm`), else a BraTS volume's
        155 × 240 × 240 mm (1 mm voxels at BraTS's own size; the phantom keeps those
        proportions). Divided by a stacked volume's voxels, it gives their size in mm
        (:func:`unet_lib.patients.voxel_size`)."""
        return tuple(self.extents_mm.get(volume, BRATS_SHAPE_MM))

    def case_id(self, volume: int) -> str | None:
        """The BraTS case ID of volume ``volume`` (:attr:`case_ids`), or ``None``."""
        return self.case_ids.get(volume)

    def locate(self, index: int) -> tuple[int, int]:
        """``(volume, slice)`` of item ``index``."""
        volume, slice_index = self.slices[index][:2]
        return int(volume), int(slice_index)

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | SkippedSample:
        try:
            image, mask = self.read(index)
        except BraTSDataError as error:
            return skip_or_raise(error, self.on_error, index)
        image, mask = (torch.as_tensor(x, dtype=torch.float32) for x in (image, mask))
        if self.mask_size is not None:  # the image as the model sees it, the truth as stored
            return resize_image(image, self.image_size), resize_mask(mask, self.mask_size)
        return resize_sample(image, mask, self.image_size)

    def at_stored_size(self) -> "SliceDataset":
        """A view of this dataset whose images and masks keep the size they are stored at
        (``image_size`` and ``mask_size`` unset)."""
        stored = copy.copy(self)
        stored.image_size = stored.mask_size = None
        return stored

    def with_native_masks(self) -> "SliceDataset":
        """A view of this dataset whose images are resized to ``image_size`` (what a model
        trained at that size takes) and whose masks keep the size they are stored at (what
        BraTS scores against: a model's probabilities are resized to it). The stored size is
        the first usable slice's; a slice stored at another size has its mask resized to it,
        so that every batch stacks."""
        first = first_usable(self.at_stored_size())
        view = copy.copy(self)
        view.mask_size = None if first is None else tuple(first[1].shape[-2:])
        return view

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.root)!r}, {len(self.volumes)} volumes, "
                f"{len(self)} slices)")


def first_usable(dataset, tries: int = 16) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first ``(image (4, H, W), mask (3, H, W))`` of ``dataset`` among its first ``tries``
    items that is not a :class:`SkippedSample`; ``None`` when none is. Unusable files are not
    warned about here: they warn where they are trained on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index in range(min(len(dataset), tries)):
            item = dataset[index]
            if not isinstance(item, SkippedSample):
                return item
    return None


def slice_size(dataset) -> int | None:
    """The side ``S`` of the ``(4, S, S)`` images ``dataset`` yields (:func:`first_usable`)."""
    item = first_usable(dataset)
    return None if item is None else int(item[0].shape[-1])


def rows_by_volume(slices: list[tuple]) -> dict[int, list[int]]:
    """``{volume: [item, ...]}`` from a dataset's ``slices`` (``(volume, slice, ...)``
    entries), volumes in order of first appearance: the work of one process each, which reads
    a NIfTI case once (packing, :mod:`~unet_lib.data.survey`)."""
    groups: dict[int, list[int]] = {}
    for row, entry in enumerate(slices):
        groups.setdefault(entry[0], []).append(row)
    return groups


def slice_depths(slices: list[tuple]) -> dict[int, int]:
    """``{volume: its highest slice number + 1}`` from ``(volume, slice, ...)`` entries."""
    depths: dict[int, int] = {}
    for volume, slice_index, *_ in slices:
        depths[volume] = max(depths.get(volume, 0), int(slice_index) + 1)
    return depths


def locate(dataset, index: int) -> tuple[int | None, int]:
    """``(volume, slice)`` of item ``index`` of any dataset: a :class:`SliceDataset` knows;
    for another dataset, ``(None, index)``."""
    if isinstance(dataset, SliceDataset):
        return dataset.locate(index)
    return None, index


def items_by_volume(dataset) -> dict[int, list[tuple[int, int]]]:
    """``{volume: [(slice, index), ...]}`` sorted by volume and slice, from the dataset's own
    lookup; a dataset that does not know its items' volumes (not a :class:`SliceDataset`) is
    refused."""
    volumes: dict[int, list[tuple[int, int]]] = {}
    for index in range(len(dataset)):
        volume, slice_index = locate(dataset, index)
        if volume is None:
            raise ValueError("grouping by patient needs a BraTS dataset that knows each item's "
                             "volume and slice (a SliceDataset)")
        volumes.setdefault(volume, []).append((slice_index, index))
    return {volume: sorted(entries) for volume, entries in sorted(volumes.items())}


def batches_by_volume(order: dict[int, list[tuple[int, int]]], batch_size: int
                      ) -> tuple[list[list[int]], list[int]]:
    """The items of each batch, cut volume by volume from :func:`items_by_volume`'s ``order``
    (no batch holds two patients), and the volume each batch belongs to."""
    batches, owners = [], []
    for volume, entries in order.items():
        indices = [index for _, index in entries]
        for start in range(0, len(indices), batch_size):
            batches.append(indices[start:start + batch_size])
            owners.append(volume)
    return batches, owners
