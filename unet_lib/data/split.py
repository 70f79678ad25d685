"""Train/validation splits by volume: slices of one brain never land on both sides."""

from __future__ import annotations

from typing import Iterable

import numpy as np


def split_volumes(volumes: Iterable[int], val_fraction: float = 0.2, seed: int = 0
                  ) -> tuple[list[int], list[int]]:
    """Shuffle volume numbers with ``seed`` and cut off ``val_fraction`` of them for validation.

    At least one volume goes to each side when there are two or more. Returns two sorted lists
    ``(train_volumes, val_volumes)`` with no volume in common.
    """
    volumes = sorted({int(v) for v in volumes})
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if len(volumes) < 2:
        raise ValueError(f"need at least 2 volumes to split, got {volumes}")
    n_val = min(max(1, round(val_fraction * len(volumes))), len(volumes) - 1)
    order = np.random.default_rng(seed).permutation(len(volumes))
    val = sorted(volumes[i] for i in order[:n_val])
    train = sorted(set(volumes) - set(val))
    return train, val
