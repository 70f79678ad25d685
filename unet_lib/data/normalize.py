"""Per-slice normalization as in the Kaggle release."""

from __future__ import annotations

import numpy as np


def zscore_slice(image: np.ndarray) -> np.ndarray:
    """Z-score each channel of a channels-last (H, W, C) slice over all of its pixels.

    Background included, population standard deviation (``ddof=0``), as the Kaggle release
    does. A channel with no signal (constant, e.g. a slice outside the brain) becomes all zeros.
    Returns float64 (H, W, C).
    """
    image = np.asarray(image, dtype=np.float64)
    mean = image.mean(axis=(0, 1), keepdims=True)
    std = image.std(axis=(0, 1), keepdims=True)
    flat = std == 0
    out = (image - mean) / np.where(flat, 1.0, std)
    return np.where(flat, 0.0, out)
