"""The names of BraTS 2020, in one place: input modalities, mask channels, labels, regions.

* Inputs, in the Kaggle release's channel order: FLAIR, T1, T1ce, T2.
* Mask channels, one per label of the segmentation, not overlapping: NCR/NET (label 1),
  ED (label 2), ET (label 4). BraTS 2023 and later number ET as 3.
* Evaluation regions, unions of labels: WT = 1 ∪ 2 ∪ 4 (whole tumour), TC = 1 ∪ 4 (tumour
  core), ET = 4 (enhancing tumour).
"""

from __future__ import annotations

import numpy as np

#: input channels, in the Kaggle release's order
MODALITIES = ("FLAIR", "T1", "T1ce", "T2")
#: the same modalities as the official NIfTI files name them
NIFTI_MODALITIES = ("flair", "t1", "t1ce", "t2")
#: mask channels, one per segmentation label
MASK_CHANNELS = ("NCR/NET", "ED", "ET")
#: the segmentation label of each mask channel
CHANNEL_LABELS = (1, 2, 4)
#: every label a BraTS 2020 segmentation may hold (0 = no tumour)
BRATS_LABELS = (0,) + CHANNEL_LABELS
#: the regions the challenge scores, each a union of mask channels (indices into MASK_CHANNELS)
REGIONS = ("WT", "TC", "ET")
REGION_CHANNELS = {"WT": (0, 1, 2), "TC": (0, 2), "ET": (2,)}
#: a BraTS volume's extent in mm (slices, rows, columns): 155 slices and 240 × 240 pixels of
#: 1 mm; the extent assumed for data that do not record their voxel size (the Kaggle slices)
BRATS_SHAPE_MM = (155.0, 240.0, 240.0)


def labels_to_mask(labels: np.ndarray) -> np.ndarray:
    """BraTS labels {0, 1, 2, 4} of any shape (...) → channels-last uint8 mask (..., 3):
    NCR/NET, ED, ET."""
    return np.stack([labels == label for label in CHANNEL_LABELS], axis=-1).astype(np.uint8)
