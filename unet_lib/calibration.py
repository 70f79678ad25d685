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
(:func:`reliability_of`). Over a BraTS dataset the bins are kept per patient as well, so
that how much a bin's frequency or the calibration error would move with other patients can
be told: :meth:`Reliability.frequency_band` and :meth:`Reliability.calibration_error_band`
resample the patients (a bootstrap; pixels of one patient are not independent draws).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .calibration_bootstrap import BOOTSTRAP_RESAMPLES, by_channel, central_interval, resampled_sums
from .config import check_batch_size, check_whole_number
from .data import SliceDataset
from .data.base import batches_by_volume, items_by_volume
from .data.brats import MASK_CHANNELS
from .inference import logit_batches, nothing_to_score
from .runtime import float64_home, resolve_device, tally_device


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
        patients: the volumes whose pixels were binned, where the data told them.
        patient_counts: (patients, 3 tallies, 3, bins) the same three counts per patient,
            in ``patients``' order (``None`` where the data did not tell the patients); the
            totals above are their sums.
    """

    edges: np.ndarray
    count: np.ndarray
    probability_sum: np.ndarray
    positive_count: np.ndarray
    skipped: tuple = ()
    patients: tuple = ()
    patient_counts: np.ndarray | None = None

    def __post_init__(self):
        if self.patient_counts is not None and len(self.patient_counts) != len(self.patients):
            raise ValueError(f"patient_counts holds {len(self.patient_counts)} patients' bins "
                             f"for {len(self.patients)} patients named")

    @property
    def patients_per_bin(self) -> np.ndarray:
        """(3, bins) how many patients have pixels in each bin (0s where not kept per
        patient)."""
        if self.patient_counts is None:
            return np.zeros_like(self.count, dtype=np.int64)
        return (self.patient_counts[:, 0] > 0).sum(axis=0)

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
        errors = _calibration_errors(self.count, self.probability_sum, self.positive_count,
                                     self._from(from_probability))
        return dict(zip(MASK_CHANNELS, errors.tolist()))

    def calibration_error_band(self, from_probability: float = 0.0, level: float = 0.95,
                               resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
                               ) -> dict[str, tuple[float, float]]:
        """Per channel, the central ``level`` interval of :meth:`calibration_error` over
        ``resamples`` draws of as many patients as were binned, with replacement (a
        percentile bootstrap over patients; draws whose patients have no pixel from
        ``from_probability`` up are left out). It shows how far the error moves with other
        patients, but is not centred on it: an error is never negative, and each redrawn set
        of patients brings gaps of its own, so the draws lean high. With four patients there
        are only 35 different draws: the band is rough, and still more honest than none."""
        return by_channel(self.calibration_error_draws(from_probability, resamples, seed),
                          level)

    def calibration_error_draws(self, from_probability: float = 0.0,
                                resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
        """(resamples, 3) :meth:`calibration_error` of each bootstrap draw of the patients;
        the same ``seed`` draws the same patients for another model binned on the same ones,
        so that two models' draws can be subtracted
        (:func:`~unet_lib.calibration_bootstrap.calibration_difference_band`)."""
        count, probability_sum, positive_count = self._resampled(resamples, seed)
        return _calibration_errors(count, probability_sum, positive_count,
                                   self._from(from_probability))

    def frequency_band(self, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(3, bins) low and high ends of the central ``level`` interval of each bin's
        :attr:`frequency` over ``resamples`` bootstrap draws of the patients. NaN where fewer
        than two patients have pixels in the bin: every draw that fills it would give the one
        patient's frequency, a band of no width that would read as certainty."""
        count, _, positive_count = self._resampled(resamples, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            low, high = central_interval(np.where(count > 0, positive_count / count, np.nan),
                                         level)
        few = self.patients_per_bin < 2
        return np.where(few, np.nan, low), np.where(few, np.nan, high)

    def _resampled(self, resamples: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three tallies, each (resamples, 3, bins), of patients drawn with replacement."""
        if self.patient_counts is None or len(self.patient_counts) < 2:
            raise ValueError(f"a band over patients needs the bins of two patients or more; "
                             f"this reliability holds "
                             f"{0 if self.patient_counts is None else len(self.patient_counts)}"
                             f" (bin a BraTS dataset, which says each slice's patient)")
        totals = resampled_sums(self.patient_counts, resamples, seed)
        return totals[:, 0], totals[:, 1], totals[:, 2]

    def _from(self, from_probability: float) -> np.ndarray:
        """The bins whose lower edge is at least ``from_probability``."""
        return self.edges[:-1] >= _probability(from_probability, "from_probability") - 1e-12

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
        entry = {"bins": len(self.edges) - 1, "count": self.count.tolist(),
                 "probability_sum": self.probability_sum.tolist(),
                 "positive_count": self.positive_count.tolist()}
        if self.patient_counts is not None:
            entry |= {"patients": list(self.patients),
                      "patient_counts": self.patient_counts.tolist()}
        return entry

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
        patients, per_patient = tuple(entry.get("patients", ())), None
        if "patient_counts" in entry:
            per_patient = np.asarray(entry["patient_counts"], dtype=np.float64)
            if per_patient.shape != (len(patients), 3, len(MASK_CHANNELS), bins):
                raise ValueError(f"per-patient calibration counts of shape {per_patient.shape}"
                                 f": expected ({len(patients)}, 3, {len(MASK_CHANNELS)}, "
                                 f"{bins}) for {len(patients)} patients")
        return cls(np.linspace(0, 1, bins + 1), *counts, patients=patients,
                   patient_counts=per_patient)

    @staticmethod
    def _shares(part: np.ndarray, whole: np.ndarray) -> dict[str, float]:
        with np.errstate(invalid="ignore", divide="ignore"):
            return dict(zip(MASK_CHANNELS, np.where(whole > 0, part / whole, np.nan).tolist()))


def _calibration_errors(count: np.ndarray, probability_sum: np.ndarray,
                        positive_count: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(..., 3) count-weighted mean |mean probability − frequency| over the ``kept`` bins of
    tallies (..., 3, bins); NaN where no pixel is in them."""
    count, probability_sum, positive_count = (x[..., kept] for x in
                                              (count, probability_sum, positive_count))
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.abs(np.where(count > 0, (probability_sum - positive_count) / count, 0.0))
        return (count * gap).sum(axis=-1) / count.sum(axis=-1)


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
        three float64 tensors (3, bins) on ``probs``' device (the CPU for Apple MPS: no
        float64 there). The counts are exact; on a GPU the probability sums are added
        atomically, in no set order, and may differ in their last bits (about 1e-16).
    """
    if probs.shape != targets.shape or probs.ndim != 4 or probs.shape[1] != 3:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} must "
                         f"both be (N, 3, H, W)")
    bins = check_bins(bins)
    if torch.isnan(probs).any():
        raise ValueError("probs holds NaN: the model's output is not a number there (an "
                         "overflow in mixed precision?)")
    channels = probs.shape[1]
    p = float64_home(probs.detach()).double().clamp(0, 1).transpose(0, 1).reshape(channels, -1)
    t = float64_home(targets.detach()).double().transpose(0, 1).reshape(channels, -1)
    which = (p * bins).long().clamp(max=bins - 1)  # p = 1 in the last bin
    which = (which + bins * torch.arange(channels, device=p.device)[:, None]).flatten()

    def per_bin(weights: torch.Tensor) -> torch.Tensor:  # index_add_: no wait for the GPU
        totals = torch.zeros(channels * bins, dtype=torch.float64, device=p.device)
        return totals.index_add_(0, which, weights.flatten()).reshape(channels, bins)

    return per_bin(torch.ones_like(p)), per_bin(p), per_bin(t)


def check_bins(bins: int) -> int:
    """``bins`` as a whole number of at least 2, or a ValueError naming it."""
    check_whole_number("bins", bins, least=2)
    return int(bins)


def reliability_of(probs: torch.Tensor, targets: torch.Tensor, bins: int = 10) -> Reliability:
    """:class:`Reliability` of probabilities (N, 3, H, W) against masks (N, 3, H, W)."""
    return _as_reliability(bin_counts(probs, targets, bins), bins)


@torch.no_grad()
def reliability(model: nn.Module, data: Dataset, bins: int = 10, batch_size: int = 32,
                device: torch.device | str | None = None, amp: bool = True) -> Reliability:
    """:class:`Reliability` of ``model``'s probabilities on every pixel of ``data`` (a dataset
    of (image, mask) samples), in one pass, batch by batch; unusable samples are left out and
    listed in its ``skipped``, as the scores leave them out. A BraTS dataset (which knows
    each slice's patient) is read one patient's slices at a time, and the bins are kept per
    patient too (:attr:`Reliability.patient_counts`); another dataset (a ``Subset`` of one
    too) is binned as a whole."""
    device = resolve_device(device)
    bins = check_bins(bins)
    check_batch_size(batch_size)
    tally = tally_device(device)
    batches = owners = None
    if isinstance(data, SliceDataset):  # it knows the patients: cut the batches by patient
        batches, owners = batches_by_volume(items_by_volume(data), batch_size)
    by_owner, skipped = {}, []  # {patient (None if unknown): its three tallies}
    # closed however the loop ends: the model goes back even while a notebook keeps the error
    with closing(logit_batches(model, data, batch_size, device, amp, on_device=tally == device,
                               batches=batches)) as passes:
        for batch, (logits, masks, bad) in enumerate(passes):
            skipped.extend(str(sample) for sample in bad)
            if logits is None:
                continue
            if masks is None:
                raise ValueError("data holds images only: a reliability needs their masks")
            owner = None if owners is None else owners[batch]
            counts = bin_counts(torch.sigmoid(logits), masks, bins)
            so_far = by_owner.get(owner)
            by_owner[owner] = (counts if so_far is None
                               else tuple(a + b for a, b in zip(so_far, counts)))
    if not by_owner:
        raise nothing_to_score(data, skipped)
    per_owner = torch.stack([torch.stack(counts) for counts in by_owner.values()]).cpu()
    totals = per_owner.sum(dim=0).numpy()  # (3 tallies, 3, bins)
    patients = () if owners is None else tuple(by_owner)
    return Reliability(np.linspace(0, 1, bins + 1), *totals, skipped=tuple(skipped),
                       patients=patients,
                       patient_counts=per_owner.numpy() if patients else None)


def _as_reliability(counts, bins: int) -> Reliability:
    count, probability_sum, positive_count = (c.cpu().numpy() for c in counts)
    return Reliability(np.linspace(0, 1, bins + 1), count, probability_sum, positive_count)
