"""Self-checks of chapter 9, on reading probabilities as chances: the calibration error of a
few bins by hand, and what a temperature does to one pixel's probability. (Re-exported by
:mod:`unet_course.labs`, where the notebooks call them; how the checks answer is
:mod:`unet_course.checking`.)"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from unet_lib.calibration import Reliability
from unet_lib.data.brats import MASK_CHANNELS
from unet_lib.temperature import TemperatureScaled

from .checking import NotYet, asked, check, is_number, plain, unanswered

#: four probability bins of one channel (ED), from 0.1 up, for exercise 9.1:
#: (pixels, their mean predicted probability, the share of them in the channel)
FOUR_BINS = ((600, 0.15, 0.05), (200, 0.45, 0.30), (100, 0.75, 0.55), (100, 0.95, 0.80))


def four_bins() -> Reliability:
    """:data:`FOUR_BINS` as a :class:`~unet_lib.calibration.Reliability` of ten bins 0.1
    wide: the ED channel holds them, the other channels nothing."""
    edges = np.linspace(0.0, 1.0, 11)
    count, probability_sum, positive_count = (np.zeros((3, 10)) for _ in range(3))
    ed = MASK_CHANNELS.index("ED")
    for pixels, mean, share in FOUR_BINS:
        which = min(int(mean * 10), 9)
        count[ed, which] += pixels
        probability_sum[ed, which] += pixels * mean
        positive_count[ed, which] += pixels * share
    return Reliability(edges, count, probability_sum, positive_count)


def check_calibration_error_by_hand(error, calls_it) -> None:
    """Exercise 9.1. The calibration error of :data:`FOUR_BINS` (the count-weighted mean gap
    between each bin's mean probability and its share in the channel, as
    :meth:`~unet_lib.calibration.Reliability.calibration_error` takes it), and whether the
    model calls the channel ``"more"`` or ``"less"`` often than it is there."""
    binned = four_bins()
    expected_error = binned.calibration_error(0.1)["ED"]
    ed = MASK_CHANNELS.index("ED")
    over = binned.probability_sum[ed].sum() > binned.positive_count[ed].sum()
    expected_side = "more" if over else "less"
    asked("9.1", "(the calibration error, more or less often)",
          (round(expected_error, 4), expected_side))
    if any(unanswered(a) for a in (error, calls_it)):
        return
    gaps = [abs(mean - share) for _, mean, share in FOUR_BINS]
    error = plain(error)
    if is_number(error) and math.isclose(error, sum(gaps) / len(gaps), rel_tol=1e-3):
        raise NotYet("Not yet: that is the mean of the four gaps, each bin counted once. "
                     "Hint: a bin of 600 pixels weighs six times one of 100: weigh each gap "
                     "by its pixels and divide by all the pixels (labs.reveal(\"9.1\") gives "
                     "the answer)")
    check(error, round(expected_error, 4), "the calibration error", "per bin, the gap |mean "
          "probability − share in the channel|; weigh each by the bin's pixels, add them up "
          "and divide by all the pixels", tolerance=1e-2, exercise="9.1")
    if calls_it not in ("more", "less"):
        raise NotYet(f"Not yet: answer \"more\" or \"less\" for how often the model calls the "
                     f"channel, not {calls_it!r}")
    check(calls_it, expected_side, "how often the model calls the channel", "in each bin, "
          "compare the share of pixels in the channel with the mean probability: which is "
          "larger? (on the diagram: is the point below the diagonal or above it?)",
          exercise="9.1")


class _ConstantLogits(nn.Module):
    """A stand-in model that gives every image the same logits, one per channel."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits.view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(images), -1, *images.shape[-2:])


def scaled_probability(probability: float, temperature: float) -> float:
    """The probability ``probability`` of the ED channel becomes once the model's logits are
    divided by ``temperature``, as :class:`~unet_lib.temperature.TemperatureScaled` does."""
    logits = torch.logit(torch.full((len(MASK_CHANNELS),), probability, dtype=torch.float64))
    model = TemperatureScaled(_ConstantLogits(logits), float(temperature)).double()
    out = torch.sigmoid(model(torch.zeros(1, 4, 1, 1, dtype=torch.float64)))
    return float(out[0, MASK_CHANNELS.index("ED"), 0, 0])


def check_temperature_on_a_pixel(answer, temperature: float, probability: float = 0.99
                                 ) -> None:
    """Exercise 9.2. The probability of a pixel the model gives ``probability`` in ED, once
    its logits are divided by ``temperature`` (the one the validation patients chose for ED)."""
    if not (is_number(temperature) and temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature = {temperature!r}: give the positive temperature the "
                         f"chapter fitted for ED (fitted.by_channel()[\"ED\"])")
    expected = scaled_probability(probability, temperature)
    what = f"the probability of a pixel at {probability} once divided by T = {temperature:.2f}"
    if unanswered(answer, "9.2", what, round(expected, 4)):
        return
    answer, z = plain(answer), math.log(probability / (1 - probability))
    wrong_turns = {
        "is the probability as trained: the temperature changes it (unless T = 1)": probability,
        "multiplies the logit by T: divide it": 1 / (1 + math.exp(-z * temperature)),
        "divides the probability by T: divide the logit z = log(p / (1 − p)) instead, then "
        "take the sigmoid": probability / temperature}
    for said, value in wrong_turns.items():
        if (is_number(answer) and not math.isclose(value, expected, rel_tol=1e-3)
                and math.isclose(answer, value, rel_tol=1e-3)):
            raise NotYet(f"Not yet: your answer {said} (labs.reveal(\"9.2\") gives the answer)")
    check(answer, round(expected, 4), what, "first the logit z = log(p / (1 − p)), then σ(z / T) = "
          "1 / (1 + exp(−z / T))", tolerance=1e-2, exercise="9.2")
