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

from ..checking import (NotYet, asked, check, direction, is_number, plain, reveal_hint,
                       shown_value, unanswered)

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
    :meth:`~unet_lib.calibration.Reliability.calibration_error` takes it; to three decimals),
    and whether the model calls the channel ``"more"`` or ``"less"`` often than it is there:
    over all four bins, does it expect more pixels in the channel (each bin's pixels × mean
    probability, added up) than there are (pixels × share)? These bins never tie."""
    binned = four_bins()
    expected_error = round(binned.calibration_error(0.1)["ED"], 4)
    ed = MASK_CHANNELS.index("ED")
    over = binned.probability_sum[ed].sum() > binned.positive_count[ed].sum()
    expected_side = "more" if over else "less"
    asked("9.1", "(the calibration error, more or less often)", (expected_error, expected_side))
    if any(unanswered(a) for a in (error, calls_it)):
        return
    gaps = [abs(mean - share) for _, mean, share in FOUR_BINS]
    error, ask = plain(error), reveal_hint("9.1")
    if is_number(error) and math.isclose(error, sum(gaps) / len(gaps), rel_tol=1e-3):
        raise NotYet("Not yet: that is the mean of the four gaps, each bin counted once. "
                     "Hint: a bin of 600 pixels weighs six times one of 100: weigh each gap "
                     "by its pixels and divide by all the pixels" + ask)
    check(error, expected_error, "the calibration error (to three decimals)", "per bin, the "
          "gap |mean probability − share in the channel|; weigh each by the bin's pixels, add "
          "them up and divide by all the pixels", tolerance=5e-3, exercise="9.1", share=True)
    said = str(plain(calls_it)).strip().strip('"').lower()
    if said not in ("more", "less"):
        raise NotYet(f"Not yet: answer \"more\" or \"less\" for how often the model calls the "
                     f"channel, not {calls_it!r}. Hint: one word, as a string")
    check(said, expected_side, "how often the model calls the channel", "add up each bin's "
          "pixels × mean probability (the pixels the model expects in the channel) and its "
          "pixels × share (those that are): which is larger? (on the diagram: are the points "
          "below the diagonal or above it?)", exercise="9.1")


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


def _same_probability(answer: float, expected: float) -> bool:
    """Whether two probabilities in (0, 1) agree to 1 % of their logit (on the probability
    itself, 1 % would let 0.98 pass for 0.99, or 1.0 for 0.997)."""
    logit = (lambda p: math.log(p / (1 - p)))
    return 0 < answer < 1 and math.isclose(logit(answer), logit(expected), rel_tol=1e-2,
                                           abs_tol=1e-3)


def check_temperature_on_a_pixel(answer, temperature: float, probability: float = 0.99
                                 ) -> None:
    """Exercise 9.2. The probability of a pixel the model gives ``probability`` (strictly
    between 0 and 1) in ED, once its logits are divided by ``temperature`` (the one the
    validation patients chose for ED). An answer counts when its logit is within 1 % of the
    expected one's."""
    temperature, probability = plain(temperature), plain(probability)
    if not (is_number(temperature) and temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature = {temperature!r}: give the positive temperature the "
                         f"chapter fitted for ED (fitted.by_channel()[\"ED\"])")
    if not (is_number(probability) and 0 < probability < 1):
        raise ValueError(f"probability = {probability!r}: give one strictly between 0 and 1")
    expected = scaled_probability(probability, temperature)
    what = f"the probability of a pixel at {probability} once divided by T = {temperature:.2f}"
    if unanswered(answer, "9.2", what, round(expected, 4)):
        return
    answer, z = plain(answer), math.log(probability / (1 - probability))
    ask = reveal_hint("9.2")
    hint = "first the logit z = log(p / (1 − p)), then σ(z / T) = 1 / (1 + exp(−z / T))"
    if not is_number(answer) or not 0 < answer < 1:
        raise NotYet(f"Not yet: your answer {answer!r} is not a probability strictly between "
                     f"0 and 1, as σ of any finite number is. Hint: {hint}{ask}")
    wrong_turns = {
        "is the probability as trained: the temperature changes it (unless T = 1)": probability,
        "multiplies the logit by T: divide it": 1 / (1 + math.exp(-z * temperature)),
        "divides the probability by T: divide the logit instead": probability / temperature}
    for said, value in wrong_turns.items():
        if (0 < value < 1 and not _same_probability(value, expected)
                and _same_probability(answer, value)):
            raise NotYet(f"Not yet: your answer {said}. Hint: {hint}{ask}")
    if not _same_probability(answer, expected):
        if round(expected, 2) == answer:  # the right value rounded to two decimals
            raise NotYet(f"Not yet: your answer {answer!r} has too few decimals: near 0 and 1 "
                         f"the probabilities of different temperatures differ in the third. "
                         f"Hint: give three or more{ask}")
        raise NotYet(f"Not yet: your answer for {what} {direction(answer, expected)}. "
                     f"Hint: {hint}{ask}")
    print(f"Right: {what} is {shown_value(expected)}.")
