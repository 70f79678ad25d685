"""Dice, precision and recall for binary masks, per channel and per BraTS region.

All three come from pixel counts of true positives (TP), false positives (FP) and false
negatives (FN):

* Dice      = 2·TP / (2·TP + FP + FN)  = 2|X∩Y| / (|X| + |Y|)
* precision = TP / (TP + FP)
* recall    = TP / (TP + FN)

**Empty masks (the BraTS convention).** Where a ratio is 0/0 — nothing predicted and/or
nothing to find — the value is 1 if prediction and target are both empty, else 0. So a
correct "no tumour here" scores 1 on all three; predicting tumour on an empty slice scores
0 on all three, and so does predicting nothing where there is tumour. MONAI's ``DiceMetric``
returns NaN there and torchmetrics' precision/recall return 0; numbers from this module are
therefore not interchangeable with theirs on empty slices.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

from .config import check_threshold
from .data.brats import MASK_CHANNELS, REGION_CHANNELS, REGIONS
# HD95 lives with the other outline distances; imported from here too, as it always was
from .outlines import HD95_ONE_EMPTY, hausdorff95, surface  # noqa: F401
from .runtime import float64_home


def binarize(logits_or_probs: torch.Tensor, threshold: float = 0.5, *, logits: bool
             ) -> torch.Tensor:
    """Binary mask (same shape, float 0/1) from logits or probabilities at ``threshold``.

    ``threshold`` is a probability in [0, 1]. ``logits=True``: raw model outputs, passed
    through a sigmoid first; ``logits=False``: probabilities. Always said, never guessed from
    the values: logits that all happen to lie in [0, 1] would pass for probabilities.
    """
    threshold = check_threshold(threshold)
    probs = torch.sigmoid(logits_or_probs) if logits else logits_or_probs
    return (probs > threshold).float() if threshold < 1 else (probs >= 1).float()


def to_regions(mask: torch.Tensor) -> torch.Tensor:
    """BraTS evaluation regions from the three label channels.

    (N, 3, H, W) channels NCR/NET, ED, ET → (N, 3, H, W) channels WT = NCR∪ED∪ET,
    TC = NCR∪ET, ET. Works on binary targets and binarized predictions alike.
    """
    if mask.dim() != 4 or mask.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) channels NCR/NET, ED, ET, got {tuple(mask.shape)}")
    m = mask > 0.5
    # unions of single channels (m[:, c]): a list index would copy it from the host each time
    regions = [functools.reduce(torch.logical_or, (m[:, c] for c in REGION_CHANNELS[region]))
               for region in REGIONS]
    return torch.stack(regions, dim=1).to(mask.dtype)


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, per_image: bool = False
                     ) -> dict[str, torch.Tensor]:
    """TP, FP, FN counts of binary (N, C, H, W) masks: each (C,), or (N, C) with ``per_image``."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) masks, got {tuple(pred.shape)}")
    p, t = float64_home(pred > 0.5), float64_home(target > 0.5)  # counted in float64
    dims = (2, 3) if per_image else (0, 2, 3)
    return {"tp": (p & t).sum(dims).double(), "fp": (p & ~t).sum(dims).double(),
            "fn": (~p & t).sum(dims).double()}


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor, both_empty: torch.Tensor
           ) -> torch.Tensor:
    """numerator / denominator, with 0/0 → 1 where ``both_empty`` else 0."""
    value = numerator / denominator.clamp(min=1)
    return torch.where(denominator == 0, both_empty.double(), value)


def scores_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
    """Dice, precision and recall (float64, same shape as the counts) under the BraTS rule."""
    both_empty = (tp + fp + fn) == 0
    return {"dice": _ratio(2 * tp, 2 * tp + fp + fn, both_empty),
            "precision": _ratio(tp, tp + fp, both_empty),
            "recall": _ratio(tp, tp + fn, both_empty)}


def check_binary(**masks: torch.Tensor) -> None:
    """Refuse a mask that is not binary (0/1 or bool), naming its argument
    (``check_binary(pred=pred)``): logits or probabilities would count every value that is not
    0 as tumour without a word."""
    for name, mask in masks.items():
        if mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
            raise ValueError(f"{name} must be a binary mask (0/1 or bool), but it holds other "
                             f"values (logits or probabilities?): cut it first with "
                             f"binarize(..., threshold, logits=...)")


def _binary_counts(pred: torch.Tensor, target: torch.Tensor, per_image: bool
                   ) -> dict[str, torch.Tensor]:
    """:func:`confusion_counts`, after refusing masks that are not binary."""
    check_binary(pred=pred, target=target)
    return confusion_counts(pred, target, per_image)


def dice(pred: torch.Tensor, target: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """Dice of binary (N, C, H, W) masks (0/1 or bool): float64 (C,) over the batch, or (N, C)
    with ``per_image``."""
    return scores_from_counts(**_binary_counts(pred, target, per_image))["dice"]


def precision(pred: torch.Tensor, target: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """Precision TP/(TP+FP) of binary (N, C, H, W) masks: float64 (C,), or (N, C) with
    ``per_image``."""
    return scores_from_counts(**_binary_counts(pred, target, per_image))["precision"]


def recall(pred: torch.Tensor, target: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """Recall TP/(TP+FN) of binary (N, C, H, W) masks: float64 (C,), or (N, C) with
    ``per_image``."""
    return scores_from_counts(**_binary_counts(pred, target, per_image))["recall"]


class SegmentationScores:
    """Sums TP/FP/FN over a whole data loader, for the label channels and the BraTS regions.

    Example:
        >>> scores = SegmentationScores()
        >>> for pred, target in batches:           # binary (N, 3, H, W): NCR/NET, ED, ET
        ...     scores.update(pred, target)
        >>> scores.compute()["dice"]  # {"NCR/NET": .., "ED": .., "ET": .., "WT": .., "TC": ..}

    The counts are kept on ``device`` (a GPU's: then nothing waits for it batch by batch).
    """

    #: the regions scored besides the label channels, by their index in ``REGIONS``: WT and TC
    #: (ET is both a label channel and a region, the same mask, and is scored once)
    _extra_regions = [i for i, region in enumerate(REGIONS) if region not in MASK_CHANNELS]
    #: the names of the scored masks: the label channels, then WT and TC
    names = MASK_CHANNELS + tuple(REGIONS[i] for i in _extra_regions)

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Zero the counts: ``counts[key]`` (len(names),) float64 on ``device``."""
        self.counts = {key: torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
                       for key in ("tp", "fp", "fn")}
        self.batches = 0  # updates since the last reset
        # target pixels with more than one label channel on (regions passed for labels?)
        self.overlapping = torch.zeros((), dtype=torch.int64, device=self.device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of binary (N, C, H, W) predictions and targets (on any device: the
        counts are moved to ``device``; on the same device nothing waits)."""
        if pred.dim() == 4 and pred.shape[1] != len(MASK_CHANNELS):
            raise ValueError(f"pred has {pred.shape[1]} channels, but these scores are of "
                             f"{len(MASK_CHANNELS)}: {', '.join(MASK_CHANNELS)}")
        self.batches += 1
        if target.dim() == 4:  # label channels never overlap; counted here, said by compute()
            self.overlapping += ((target > 0.5).sum(1) > 1).sum().to(self.device)
        pred, target = self._with_extra_regions(pred), self._with_extra_regions(target)
        for key, value in confusion_counts(pred, target).items():
            self.counts[key] += value.to(self.device)

    def _with_extra_regions(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, C + extra regions, H, W). The regions are cut out one by one
        (``[:, i:i + 1]``): indexing with a Python list would copy that list to the mask's
        device, and on a GPU such a copy from host memory makes the CPU wait for the GPU."""
        regions = to_regions(mask)
        return torch.cat([mask] + [regions[:, i:i + 1] for i in self._extra_regions], dim=1)

    def compute(self) -> dict[str, dict[str, float]]:
        """``{"dice"|"precision"|"recall": {name: value}}`` for each channel and region.

        Raises:
            ValueError: nothing was scored (no :meth:`update` since the last reset): the
                empty-mask rule would otherwise report a perfect 1 for everything; or the
                targets' channels overlap, so they are not the label channels (the nested
                regions WT, TC, ET, scored as NCR/NET, ED, ET, would give wrong numbers).
        """
        if not self.batches:
            raise ValueError("no masks were scored: no batch since the last reset (were all "
                             "the samples skipped?)")
        overlapping = int(self.overlapping)
        if overlapping:
            raise ValueError(f"the targets have {overlapping} pixels in more than one channel, "
                             f"but these scores take the label channels "
                             f"{', '.join(MASK_CHANNELS)}, which never overlap: were the "
                             f"regions WT, TC, ET given (to_regions)? Give the label channels")
        scores = scores_from_counts(**self.counts)
        return {metric: dict(zip(self.names, values.tolist()))
                for metric, values in scores.items()}


def regions_mean_dice(dice: dict[str, float]) -> float:
    """The mean of ``dice`` (``{name: value}``, as :meth:`SegmentationScores.compute` gives)
    over the BraTS regions WT, TC and ET, the three the challenge ranks on.

    >>> regions_mean_dice({"NCR/NET": 0.2, "ED": 0.4, "ET": 0.5, "WT": 1.0, "TC": 0.75})
    0.75
    """
    return float(np.mean([dice[region] for region in REGIONS]))


def whole_tumour_dice(probs: torch.Tensor, target: torch.Tensor, threshold: float) -> float:
    """Dice of the whole tumour (WT) of one slice: ``probs`` and ``target`` (3, H, W)."""
    truth = to_regions(target[None])[:, :1]
    return dice(to_regions(binarize(probs[None], threshold, logits=False))[:, :1], truth).item()


def best_threshold(sweep: dict[float, dict], region: str = "WT", metric: str = "dice") -> float:
    """The threshold of a sweep (``{threshold: {"dice": {name: value}, ...}}``, as
    :func:`unet_lib.inference.threshold_sweep` returns) with the highest ``metric`` of
    ``region``; the lowest such threshold on a tie."""
    thresholds = sorted(sweep)
    if not thresholds:
        raise ValueError("the sweep is empty: threshold_sweep was given no thresholds")
    missing = [t for t in thresholds if region not in sweep[t].get(metric, {})]
    if missing:
        held = "; ".join(f"{name} of {', '.join(values)}"
                         for name, values in sweep[missing[0]].items())
        raise ValueError(f"the sweep has no {metric!r} of {region!r} at threshold {missing[0]}: "
                         f"it holds {held}")
    return max(thresholds, key=lambda t: (sweep[t][metric][region], -t))


def best_threshold_of_slice(probs: torch.Tensor, target: torch.Tensor,
                            thresholds: Sequence[float]) -> float:
    """The threshold among ``thresholds`` with the highest whole-tumour Dice on one slice
    (``probs``, ``target``: (3, H, W)); the lowest such threshold on a tie."""
    sweep = {float(t): {"dice": {"WT": whole_tumour_dice(probs, target, t)}} for t in thresholds}
    return best_threshold(sweep)
