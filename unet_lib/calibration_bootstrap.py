"""How far a model's calibration figures (:mod:`unet_lib.calibration`) would move with other
patients. The pixels of one patient are not independent draws (a patient whose tumour the
model finds hard makes many of its pixels wrong at once), so the patients are what is drawn
again: as many as were binned, with replacement, each bringing all its pixels' bins (a
bootstrap over patients). With the four test patients of a course run there are only 35
different draws: the intervals are rough, and narrower than the truth; still more honest than
none.
"""

from __future__ import annotations

import warnings

import numpy as np

from .comparison import BOOTSTRAP_RESAMPLES
from .config import check_whole_number
from .data.brats import MASK_CHANNELS


def resampled_sums(per_patient: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``per_patient`` (patients, ...) summed over ``resamples`` draws of as many patients,
    with replacement: (resamples, ...). The same ``seed`` and number of patients draw the same
    patients, so that two models binned on the same patients are resampled in pairs."""
    check_whole_number("resamples", resamples)
    patients = len(per_patient)
    draws = np.random.default_rng(seed).integers(patients, size=(resamples, patients))
    times = np.zeros((resamples, patients))  # how often each draw took each patient
    np.add.at(times, (np.arange(resamples)[:, None], draws), 1)
    sums = times @ per_patient.reshape(patients, -1)  # no (resamples, patients, ...) copy
    return sums.reshape(resamples, *per_patient.shape[1:])


def central_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The low and high ends of the central ``level`` interval (0.9: from the 5th to the 95th
    percentile) over the first axis of ``draws``, NaNs left out (NaN where every draw is)."""
    if not 0 < level < 1:
        raise ValueError(f"level = {level!r}: give the interval's coverage, between 0 and 1 "
                         f"(0.9 for 90 %)")
    tail = 50 * (1 - level)
    with warnings.catch_warnings():  # a column of NaN only gives NaN, as it should
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    return low, high


def by_channel(draws: np.ndarray, level: float) -> dict[str, tuple[float, float]]:
    """``{channel: (low, high)}``: the central ``level`` interval of (resamples, 3) ``draws``
    per channel (NCR/NET, ED, ET)."""
    low, high = central_interval(draws, level)
    return {channel: (lo, hi) for channel, lo, hi in zip(MASK_CHANNELS, low.tolist(),
                                                           high.tolist())}


def calibration_difference_band(first, second, from_probability: float = 0.0,
                                level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                                seed: int = 0
                                ) -> dict[str, dict[str, float]]:
    """Per channel, ``first``'s calibration error minus ``second``'s (two
    :class:`~unet_lib.calibration.Reliability`) and the central ``level`` interval of that
    difference over ``resamples`` draws of the patients, the same patients drawn for both
    models in each (a paired bootstrap, as :func:`unet_lib.comparison.paired_bootstrap` does
    for per-patient scores, with its defaults: a patient hard for one model is usually hard
    for the other). An interval that holds 0 leaves the order of the two open. Both must
    have been binned on the same patients.

    Returns:
        ``{channel: {"difference", "low", "high"}}``.
    """
    if first.patients != second.patients:
        raise ValueError(f"the two reliabilities were binned on other patients "
                         f"({list(first.patients)} and {list(second.patients)}): a paired "
                         f"comparison needs the same ones")
    draws = [found.calibration_error_draws(from_probability, resamples, seed)
             for found in (first, second)]
    observed = [found.calibration_error(from_probability) for found in (first, second)]
    return {channel: {"difference": observed[0][channel] - observed[1][channel],
                      "low": low, "high": high}
            for channel, (low, high) in by_channel(draws[0] - draws[1], level).items()}
