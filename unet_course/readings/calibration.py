"""What chapter 9 reads off calibration, in words: which of two models' probabilities are the
closer to frequencies and whether the test patients can tell (:func:`calibration_reading`),
what a temperature fitted on the validation patients did on the test patients
(:func:`temperature_reading`), and where a reliability curve lies against the diagonal
(:func:`curve_shape`). The diagrams and tables are :mod:`unet_course.viz.calibration`'s."""

from __future__ import annotations

import numpy as np

from unet_lib.calibration import Reliability
from unet_lib.data.brats import MASK_CHANNELS
from unet_lib.temperature import TemperatureFit


def calibration_reading(first: tuple[str, Reliability], second: tuple[str, Reliability],
                        difference: dict[str, dict[str, float]], cut: float = 0.1
                        ) -> dict[str, str]:
    """What two models' calibration says, in words for the chapter's text (its glue names):
    ``"calibration_reading"``, which is the closer to frequencies from ``cut`` up and how many
    pixels ``second`` and ``first`` leave undecided or miss (means over the three channels);
    ``"calibration_difference"``, the interval of ``difference`` per channel (what
    :func:`~unet_lib.calibration_bootstrap.calibration_difference_band` returns);
    ``"calibration_settled"``, whether they hold 0."""
    def mean(found: Reliability, measure: str) -> float:  # over the three channels
        values = (found.calibration_error(cut) if measure == "ece" else
                  found.missed_share(cut) if measure == "missed" else
                  found.undecided_share(cut, 1 - cut))
        return float(np.nanmean(list(values.values())))

    (name_a, a), (name_b, b) = first, second
    closer, further = sorted((first, second), key=lambda item: mean(item[1], "ece"))
    settled = [channel for channel, found in difference.items()
               if found["low"] > 0 or found["high"] < 0]
    return {
        "calibration_reading":
            f"the {closer[0]} model's probabilities from {cut:g} up are the closer to "
            f"frequencies (ECE {mean(closer[1], 'ece'):.3f} against "
            f"{mean(further[1], 'ece'):.3f}, the mean over the three channels); with "
            f"{name_b}, {mean(b, 'undecided'):.2f} of the pixels from {cut:g} up are left "
            f"between {cut:g} and {1 - cut:g} ({name_a}: {mean(a, 'undecided'):.2f}), and "
            f"{mean(b, 'missed'):.2f} of a channel's true pixels are given less than {cut:g} "
            f"({name_a}: {mean(a, 'missed'):.2f})",
        "calibration_difference": ", ".join(
            f"{found['low']:+.3f} and {found['high']:+.3f} for {channel}".replace("-", "−")
            for channel, found in difference.items()),
        "calibration_settled":
            "holds 0 in every channel: these patients cannot order the two models"
            if not settled else "excludes 0 in every channel" if len(settled) == len(difference)
            else f"excludes 0 for {' and '.join(settled)} only"}


def temperature_reading(fitted: TemperatureFit, before: Reliability, after: Reliability,
                        cut: float = 0.1) -> str:
    """The temperatures chosen and what they did to the test patients' calibration error
    from ``cut`` up, channel by channel, in words for the chapter's text; for a channel whose
    error did not fall, what its curve shows after the temperature (:func:`curve_shape`)."""
    temperatures = fitted.by_channel()
    chosen = ", ".join(f"{t:.2f} for {channel}" for channel, t in temperatures.items())
    errors = [found.calibration_error(cut) for found in (before, after)]
    moves = ", ".join(f"{errors[0][channel]:.3f} to {errors[1][channel]:.3f} for {channel}"
                      for channel in MASK_CHANNELS)
    words = (f"the validation patients chose T = {chosen}; on the test patients the ECE from "
             f"{cut:g} up went from {moves}")
    for row, channel in enumerate(MASK_CHANNELS):
        before_error, after_error = (round(e[channel], 3) for e in errors)  # as printed
        if after_error >= before_error:
            what = "did not help" if after_error == before_error else "made it worse"
            words += (f". For {channel} the temperature {what}: after T = "
                      f"{temperatures[channel]:.2f} {curve_shape(after, row, cut)}")
    return words


#: what each shape of a reliability curve says, in the chapter's words
SHAPES = {
    "under": "its curve is steeper than the diagonal, below it at low probabilities and above "
             "it at high ones: under-confident, the validation patients chose too high a "
             "temperature for the test patients",
    "over": "its curve is still flatter than the diagonal, above it at low probabilities and "
            "below it at high ones: over-confident, the validation patients chose too low a "
            "temperature for the test patients",
    "below": "its curve stays below the diagonal: it calls the channel too often at every "
             "level, which a temperature cannot mend (a shift can: Platt scaling, below)",
    "above": "its curve stays above the diagonal: it calls the channel too seldom at every "
             "level, which a temperature cannot mend (a shift can: Platt scaling, below)",
    "near": "its curve lies near the diagonal: the change is within what these few patients' "
            "pixels can tell",
    "unclear": "too few of its bins hold pixels to tell its shape",
}


def curve_shape(found: Reliability, row: int, cut: float = 0.1, min_count: int = 20) -> str:
    """Where channel ``row``'s reliability curve lies against the diagonal, from ``cut`` up,
    read as one of :data:`SHAPES`: a straight line through the bins the figure draws (``min_count``
    pixels or more, each bin one point) steeper than the diagonal by 15 % is under-confident
    where its bins cross the diagonal from below to above, flatter by 15 % over-confident
    where they cross from above to below (with where, between two bins); otherwise the bins'
    mean gap (frequency − probability) says below, above or near. The line leaves out bins
    whose frequency is 0 or 1 where three or more others span 0.3: an under-confident curve
    reaches 1 before its probabilities do, and its top bins, which can rise no further, would
    flatten the line."""
    kept = (found.edges[:-1] >= cut - 1e-12) & (found.count[row] >= min_count)
    probability, frequency = found.mean_probability[row][kept], found.frequency[row][kept]
    if kept.sum() < 3 or np.ptp(probability) < 0.3:
        return SHAPES["unclear"]
    inside = (frequency > 0) & (frequency < 1)
    fitted = (inside if inside.sum() >= 3 and np.ptp(probability[inside]) >= 0.3
              else slice(None))  # else every bin
    slope = np.polyfit(probability[fitted], frequency[fitted], 1)[0]
    gaps = frequency - probability
    if abs(slope - 1) > 0.15:  # steeper or flatter: where do the bins cross the diagonal?
        sign = 1 if slope > 1 else -1  # under-confident: from below to above it
        for i in range(len(gaps) - 1):
            if sign * gaps[i] < 0 <= sign * gaps[i + 1]:
                share = gaps[i] / (gaps[i] - gaps[i + 1])
                crossing = probability[i] + share * (probability[i + 1] - probability[i])
                return (SHAPES["under" if slope > 1 else "over"]
                        + f" (it crosses the diagonal near {crossing:.2f})")
    gap = float(np.mean(gaps))
    return SHAPES["below" if gap < -0.03 else "above" if gap > 0.03 else "near"]
