"""Whether a model's probabilities mean what they say: of the pixels it gives about 0.8, are
about 80 % in the channel? A model that is right this way is *calibrated*.

The pixels are binned by predicted probability (ten bins 0.1 wide by default), per channel;
each bin's mean probability against the share of its pixels that are in the channel is a
reliability diagram, and their count-weighted mean gap the expected calibration error (ECE,
Guo et al. 2017). On a brain slice about 99 % of the pixels are background predicted near 0,
which a plain ECE mostly counts: :meth:`Reliability.calibration_error` can leave out the bins
below a probability (0.1 in the course), and then measures the pixels the model calls possibly
in the channel; what that leaves out, the channel's pixels given less,
:meth:`Reliability.missed_share` counts.

One pass over a dataset, batch by batch (:func:`reliability`), or on tensors at hand
(:func:`reliability_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .data.brats import MASK_CHANNELS
from .inference import logit_batches, nothing_to_score
from .runtime import resolve_device, tally_device


@dataclass(frozen=True)
class Reliability:
    """Binned probabilities of the three channels (NCR/NET, ED, ET).

    Attributes:
        edges: (bins + 1,) bin edges from 0 to 1; the last bin includes 1.
        count: (3, bins) pixels per channel and bin.
        probability_sum: (3, bins) sum of their predicted probabilities.
        positive_count: (3, bins) how many of them are in the channel.
        skipped: the samples left out as unusable (as :func:`unet_lib.inference.evaluate`
            lists them).
    """

    edges: np.ndarray
    count: np.ndarray
    probability_sum: np.ndarray
    positive_count: np.ndarray
    skipped: tuple = ()

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels' names, in the rows' order: NCR/NET, ED, ET."""
        return tuple(MASK_CHANNELS)

    @property
    def mean_probability(self) -> np.ndarray:
        """(3, bins) each bin's mean predicted probability (NaN where a bin is empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.probability_sum / self.count, np.nan)

    @property
    def frequency(self) -> np.ndarray:
        """(3, bins) the share of each bin's pixels that are in the channel (NaN where empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.positive_count / self.count, np.nan)

    def calibration_error(self, from_probability: float = 0.0) -> dict[str, float]:
        """Per channel, the count-weighted mean of |mean probability − frequency| over the bins
        whose lower edge is at least ``from_probability`` (0: every pixel, the plain ECE; 0.1:
        the pixels predicted 0.1 or more); NaN for a channel with no pixel there."""
        kept = self.edges[:-1] >= _probability(from_probability, "from_probability") - 1e-12
        count = self.count[:, kept]
        gap = np.abs(np.nan_to_num(self.mean_probability[:, kept] - self.frequency[:, kept]))
        with np.errstate(invalid="ignore", divide="ignore"):
            errors = (count * gap).sum(axis=1) / count.sum(axis=1)
        return dict(zip(MASK_CHANNELS, errors.tolist()))

    def missed_share(self, below: float = 0.1) -> dict[str, float]:
        """Per channel, the share of its pixels predicted below ``below`` (bins by their upper
        edge): the ones it misses with confidence, which a calibration error from ``below`` up
        does not see (NaN for a channel with no pixel)."""
        kept = self.edges[1:] <= _probability(below, "below") + 1e-12
        return self._shares(self.positive_count[:, kept].sum(axis=1),
                            self.positive_count.sum(axis=1))

    def undecided_share(self, low: float = 0.1, high: float = 0.9) -> dict[str, float]:
        """Per channel, of the pixels predicted ``low`` or more, the share predicted below
        ``high`` (bins by their edges): how many of the pixels it considers the model leaves
        between the two rather than deciding (NaN where none is predicted ``low`` or more)."""
        lower, upper = self.edges[:-1], self.edges[1:]
        considered = lower >= _probability(low, "low") - 1e-12
        undecided = considered & (upper <= _probability(high, "high") + 1e-12)
        return self._shares(self.count[:, undecided].sum(axis=1),
                            self.count[:, considered].sum(axis=1))

    def to_json(self) -> dict:
        """The counts as plain lists, for a results bundle (:meth:`from_json` reads them); the
        skipped samples are not kept (a bundle lists the run's own)."""
        return {"bins": len(self.edges) - 1, "count": self.count.tolist(),
                "probability_sum": self.probability_sum.tolist(),
                "positive_count": self.positive_count.tolist()}

    @classmethod
    def from_json(cls, entry: dict) -> "Reliability":
        """A :class:`Reliability` from :meth:`to_json`'s dict; counts of another shape than
        (3, bins) are refused, naming them."""
        bins = check_bins(entry["bins"])
        counts = [np.asarray(entry[key], dtype=np.float64)
                  for key in ("count", "probability_sum", "positive_count")]
        if any(c.shape != (len(MASK_CHANNELS), bins) for c in counts):
            raise ValueError(f"calibration counts of shapes {[c.shape for c in counts]}: "
                             f"expected ({len(MASK_CHANNELS)}, {bins}) each")
        return cls(np.linspace(0, 1, bins + 1), *counts)

    @staticmethod
    def _shares(part: np.ndarray, whole: np.ndarray) -> dict[str, float]:
        with np.errstate(invalid="ignore", divide="ignore"):
            return dict(zip(MASK_CHANNELS, np.where(whole > 0, part / whole, np.nan).tolist()))


def _probability(value: float, name: str) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} = {value!r}: give a probability in [0, 1]")
    return float(value)


def bin_counts(probs: torch.Tensor, targets: torch.Tensor, bins: int = 10
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per channel and bin: pixels, sum of their probabilities, pixels in the channel.

    Args:
        probs: (N, 3, H, W) probabilities in [0, 1]; targets: (N, 3, H, W) masks of 0s and 1s.
    Returns:
        three float64 tensors (3, bins) on ``probs``' device.
    """
    if probs.shape != targets.shape or probs.ndim != 4 or probs.shape[1] != 3:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} must "
                         f"both be (N, 3, H, W)")
    bins = check_bins(bins)
    if torch.isnan(probs).any():
        raise ValueError("probs holds NaN: the model's output is not a number there (an "
                         "overflow in mixed precision?)")
    channels = probs.shape[1]
    p = probs.detach().double().clamp(0, 1).transpose(0, 1).reshape(channels, -1)
    t = targets.detach().double().transpose(0, 1).reshape(channels, -1)
    which = (p * bins).long().clamp(max=bins - 1)  # p = 1 in the last bin
    which = (which + bins * torch.arange(channels, device=p.device)[:, None]).flatten()

    def per_bin(weights: torch.Tensor) -> torch.Tensor:  # index_add_: deterministic on a GPU
        totals = torch.zeros(channels * bins, dtype=torch.float64, device=p.device)
        return totals.index_add_(0, which, weights.flatten()).reshape(channels, bins)

    return per_bin(torch.ones_like(p)), per_bin(p), per_bin(t)


def check_bins(bins: int) -> int:
    """``bins`` as a whole number of at least 2, or a ValueError naming it."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins = {bins!r}: give a whole number of bins, at least 2")
    return int(bins)


def reliability_of(probs: torch.Tensor, targets: torch.Tensor, bins: int = 10) -> Reliability:
    """:class:`Reliability` of probabilities (N, 3, H, W) against masks (N, 3, H, W)."""
    return _as_reliability(bin_counts(probs, targets, bins), bins)


@torch.no_grad()
def reliability(model: nn.Module, data: Dataset, bins: int = 10, batch_size: int = 32,
                device: torch.device | str | None = None, amp: bool = True) -> Reliability:
    """:class:`Reliability` of ``model``'s probabilities on every pixel of ``data`` (a dataset
    of (image, mask) samples), in one pass, batch by batch; unusable samples are left out and
    listed in its ``skipped``, as the scores leave them out."""
    device = resolve_device(device)
    bins = check_bins(bins)
    tally = tally_device(device)
    totals, skipped = None, []
    for logits, masks, bad in logit_batches(model, data, batch_size, device, amp,
                                            on_device=tally == device):
        skipped.extend(str(sample) for sample in bad)
        if logits is None:
            continue
        if masks is None:
            raise ValueError("data holds images only: a reliability needs (image, mask) samples")
        counts = bin_counts(torch.sigmoid(logits), masks, bins)
        totals = counts if totals is None else tuple(a + b for a, b in zip(totals, counts))
    if totals is None:
        raise nothing_to_score(data, skipped)
    return _as_reliability(totals, bins, skipped)


def _as_reliability(counts, bins: int, skipped=()) -> Reliability:
    count, probability_sum, positive_count = (c.cpu().numpy() for c in counts)
    return Reliability(np.linspace(0, 1, bins + 1), count, probability_sum, positive_count,
                       tuple(skipped))
