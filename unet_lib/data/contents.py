"""What a dataset's masks contain, per slice and per volume, without training on them: which
sub-regions each slice shows (for the tumour sampler) and which volumes have an enhancing
tumour (for a stratified split: on real BraTS most low-grade gliomas have none, so it stands
in for the grade, which the slices do not record)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import locate
from .samples import SkippedSample

#: the two kinds of tumour a stratified split keeps in proportion: BraTS's high-grade gliomas
#: mostly have an enhancing part (ET), its low-grade ones mostly none; the phantom makes one
#: tumour in four without
ENHANCING, NOT_ENHANCING = "with enhancing tumour", "without enhancing tumour"


def channel_flags(dataset: Dataset) -> np.ndarray:
    """``(N, 3)`` bool: whether item ``i`` has any NCR/NET, ED, ET pixel.

    A dataset with a ``channel_flags()`` method answers from what it keeps beside the images
    (Kaggle's ``meta_data.csv``, a pack's mask bits); any other is read item by item once. An
    unusable item counts as empty (training skips it anyway).
    """
    own = getattr(dataset, "channel_flags", None)
    if callable(own):
        return np.asarray(own(), dtype=bool).reshape(len(dataset), 3)
    flags = np.zeros((len(dataset), 3), dtype=bool)
    for index in range(len(dataset)):
        sample = dataset[index]
        if not isinstance(sample, SkippedSample):
            flags[index] = torch.as_tensor(sample[1]).flatten(1).any(dim=1).cpu().numpy()
    return flags


def tumour_grades(dataset: Dataset) -> dict[int, str]:
    """``{volume: ENHANCING or NOT_ENHANCING}``: whether any slice of the volume has an
    enhancing-tumour pixel — the groups of a stratified split
    (:func:`unet_lib.data.split_train_val_test`)."""
    flags = channel_flags(dataset)
    grades: dict[int, str] = {}
    for index in range(len(dataset)):
        volume = locate(dataset, index)[0]
        if flags[index, 2]:
            grades[volume] = ENHANCING
        else:
            grades.setdefault(volume, NOT_ENHANCING)
    return grades
