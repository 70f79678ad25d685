"""One patient in 3-D as a model sees it: the MRI, the truth and the prediction, stacked.

:func:`unet_lib.patients.evaluate_patients` scores every patient and keeps the numbers only.
:func:`predict_patient` keeps one patient's volumes, stacked exactly as they were scored, for
pictures of where a score comes from: :meth:`PatientVolume.outlines` gives the surface
distances behind its HD95 (:class:`unet_lib.outlines.OutlineDistances`).

>>> case = predict_patient(model, test_set, volume=5)
>>> case.scores()["hd95"]["WT"] == case.outlines("WT").hd95
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .config import check_batch_size
from .data import SliceDataset, SkippedSample
from .data.base import items_by_volume
from .data.brats import REGIONS
from .inference import logit_batches, threshold_of
from .metrics import to_regions
from .outlines import OutlineDistances
from .patients import (_extent, binarized_on_grid, placed_in_volume,
                       score_patient, voxel_size)
from .runtime import resolve_device


@dataclass
class PatientVolume:
    """One patient's volume on the grid its masks are stored at.

    Attributes:
        volume: the volume (patient) number.
        image: (4, D, H, W) float32, the modalities as the dataset gives them (FLAIR, T1,
            T1ce, T2); zeros at slices the dataset does not hold.
        truth, pred: (3, D, H, W) bool, the regions WT, TC, ET.
        spacing: the voxel size (depth, height, width) in mm.
        slices: the slice numbers that were predicted; the others count empty in both.
    """

    volume: int
    image: np.ndarray
    truth: np.ndarray
    pred: np.ndarray
    spacing: tuple[float, float, float]
    slices: list[int]

    def scores(self) -> dict:
        """Dice, precision, recall and HD95 per region, as :func:`evaluate_patients` gives."""
        return score_patient(self.pred, self.truth, self.spacing)

    def outlines(self, region: str = "WT") -> OutlineDistances:
        """The surface distances between prediction and truth of ``region`` (WT, TC or ET),
        both ways; both must hold some of it."""
        if region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
        channel = REGIONS.index(region)
        return OutlineDistances.between(self.pred[channel], self.truth[channel], self.spacing)


def predict_patient(model: nn.Module, dataset: Dataset, volume: int,
                    threshold: float | None = None,
                    batch_size: int = 32, device: torch.device | str | None = None,
                    amp: bool = True, spacing: tuple[float, float, float] | None = None
                    ) -> PatientVolume:
    """Predict every slice of patient ``volume`` of ``dataset`` and stack them as
    :func:`~unet_lib.patients.evaluate_patients` does (same threshold, same grid, same
    ``spacing`` default, unusable slices empty in their places), so that
    :meth:`PatientVolume.scores` are that patient's scores.

    Args:
        model: any of the U-Nets (or a model of their inputs and outputs).
        dataset: a :class:`~unet_lib.data.SliceDataset` (or one whose items say their volume
            and slice); with ``image_size`` set the model sees resized slices, and the volumes
            are stacked on the grid the masks are stored at, as BraTS scores them.
        volume: the patient's volume number.
        spacing: voxel size (depth, height, width) in mm; default as ``evaluate_patients``.

    Returns:
        :class:`PatientVolume`: image (4, D, H, W), truth and pred (3, D, H, W) on the stored
        grid (an image stored at another size than the first slice's is resized to it).

    Raises:
        ValueError: naming the volumes the dataset holds, when ``volume`` is not one of them;
            when none of its slices can be read, or the dataset's unusable items do not say
            which they are (``evaluate_patients`` then stacks the rest as neighbours).
    """
    device = resolve_device(device)
    check_batch_size(batch_size)
    threshold = threshold_of(model, threshold)
    stored = dataset
    if isinstance(dataset, SliceDataset):
        stored = dataset.at_stored_size()
        if dataset.image_size is not None:
            dataset = dataset.with_native_masks()
    order = items_by_volume(dataset)
    if volume not in order:
        raise ValueError(f"volume {volume!r} is not in the dataset: it holds volumes "
                         f"{', '.join(map(str, order))}")
    slice_of = {index: s for s, index in order[volume]}
    items = list(slice_of)
    batches = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
    preds, truths, images, slices = [], [], [], []
    for (logits, masks, skipped), batch in zip(
            logit_batches(model, dataset, batch_size, device, amp, batches=batches), batches):
        if logits is None:
            continue
        left_out = {sample.index for sample in skipped}
        used = [index for index in batch if index not in left_out]
        pictures = [stored[index] for index in used]
        if len(used) != len(logits) or any(isinstance(p, SkippedSample) for p in pictures):
            raise ValueError(f"volume {volume}: cannot tell which of its slices were unusable "
                             f"(the dataset's unusable items do not say their index)")
        slices.extend(slice_of[index] for index in used)
        images.append(torch.stack([_on_grid(image, masks.shape[-2:]) for image, _ in pictures]))
        preds.append(to_regions(binarized_on_grid(logits, masks, threshold)).bool())
        truths.append(to_regions(masks).bool())
    if not preds:
        raise ValueError(f"volume {volume}: none of its slices could be read")
    image, pred, truth = (torch.cat(parts).permute(1, 0, 2, 3)
                          for parts in (images, preds, truths))
    depth = dataset.depth_of(volume) if isinstance(dataset, SliceDataset) else len(slices)
    if len(slices) < depth:  # the rest count empty, each slice in its place
        image, pred, truth = (placed_in_volume(x, slices, depth) for x in (image, pred, truth))
    return PatientVolume(volume, image.numpy().astype(np.float32), truth.numpy(), pred.numpy(),
                         tuple(spacing or voxel_size(depth, *pred.shape[-2:],
                                                     extent=_extent(dataset, volume))), slices)


def _on_grid(image: torch.Tensor, shape) -> torch.Tensor:
    """(4, h, w) ``image`` resized (bilinear) to the masks' (H, W) grid where it differs."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    return torch.nn.functional.interpolate(image[None], size=tuple(shape), mode="bilinear",
                                           antialias=True, align_corners=False)[0]
