"""Chapter 9: do a model's probabilities mean what they say? Reliability diagrams of several
models (:class:`unet_lib.calibration.Reliability`), one panel per channel, with the pixels
each bin holds under them (:func:`show_reliability`); the table of their calibration errors
(:func:`calibration_table`) and what the run says in words (:func:`calibration_reading`);
what a temperature fitted on the validation patients does (:func:`temperature_table`,
:func:`temperature_reading`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from unet_lib.calibration import Reliability
from unet_lib.data.brats import MASK_CHANNELS
from unet_lib.summary import markdown_table
from unet_lib.temperature import TemperatureFit

#: each model's line: markers and line styles differ, not only colours
STYLES = ({"marker": "o", "ls": "-"}, {"marker": "s", "ls": "--"}, {"marker": "^", "ls": "-."})


def show_reliability(by_name: dict[str, Reliability], title: str | None = None,
                     min_count: int = 20, band: float | None = 0.95, first_style: int = 0
                     ) -> Figure:
    """One column per channel (NCR/NET, ED, ET): on top, each bin's observed frequency (the
    share of its pixels in the channel) against its mean predicted probability, per model
    (``by_name``: a label and its :class:`Reliability`), beside the diagonal of a calibrated
    model; under it, the pixels per bin (log scale). Bins of fewer than ``min_count`` pixels
    are left out of the top row, the line broken there: a share of a handful of pixels says
    little. Where a model's bins are kept per patient (two or more), each point carries a
    vertical bar: the central ``band`` interval of its frequency over the patients
    resampled (:meth:`Reliability.frequency_band`; ``None``: no bars); a point whose pixels
    come from one patient has none. ``first_style``: the first model's colour and markers
    (0, 1 or 2), so that a model keeps its look from one figure to the next."""
    if not by_name or first_style + len(by_name) > len(STYLES):
        raise ValueError(f"give 1 to {len(STYLES) - first_style} models to compare from style "
                         f"{first_style}, got {len(by_name)}")
    bands = {name: found.frequency_band(band) for name, found in by_name.items()  # one
             if band is not None and len(found.patients) >= 2}  # bootstrap each, all channels
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": (3, 1)})
    for c, channel in enumerate(MASK_CHANNELS):
        top, bottom = axes[0, c], axes[1, c]
        top.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="calibrated")
        for index, (name, found) in enumerate(by_name.items(), start=first_style):
            style = {**STYLES[index], "color": f"C{index}"}
            shown = found.count[c] >= min_count  # NaN elsewhere: the line breaks there
            x = np.where(shown, found.mean_probability[c], np.nan)
            y = np.where(shown, found.frequency[c], np.nan)
            colour = top.plot(x, y, label=name, **style)[0].get_color()
            if name in bands:  # NaN: no bar
                low, high = (np.where(shown, end[c], np.nan) for end in bands[name])
                top.vlines(x, low, high, colors=colour, lw=1, alpha=0.7)
            bottom.stairs(np.maximum(found.count[c], 0.5), found.edges, color=colour,
                          ls=style["ls"])
        top.set(title=channel, xlim=(0, 1), ylim=(0, 1), aspect="equal")
        top.set_ylabel("observed frequency" if c == 0 else "")
        bottom.set(yscale="log", xlabel="predicted probability")
        bottom.set_ylabel("pixels" if c == 0 else "")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    if bands:
        title = (f"{title}\n" if title else "") + (
            f"bars: where {band * 100:g} % of a bin's frequencies fall when the patients are drawn "
            f"again (bootstrap)")
    if title:
        fig.suptitle(title)
    return fig


def calibration_table(by_name: dict[str, Reliability], cut: float = 0.1, level: float = 0.95
                      ) -> str:
    """A Markdown table, one row per model and channel: the calibration error of the pixels
    predicted ``cut`` or more (the background's near-zero pixels would swamp it), the central
    ``level`` interval of it over the patients resampled (where the bins were kept per
    patient; it leans high, :meth:`~Reliability.calibration_error_band`), the share of the
    channel's true pixels given less than ``cut`` (what the cut leaves out: missed with
    confidence) and, of the pixels predicted ``cut`` or more, the share left below
    ``1 - cut`` (undecided)."""
    ece, band = f"ECE, p ≥ {cut:g}", f"ECE of redrawn patients, {level * 100:g} %"
    missed = f"share of channel missed: given < {cut:g}"
    undecided = f"share of p ≥ {cut:g} undecided: below {1 - cut:g}"
    rows = []
    for name, found in by_name.items():
        bands = found.calibration_error_band(cut, level) if len(found.patients) >= 2 else {}
        errors, misses = found.calibration_error(cut), found.missed_share(cut)
        undecideds = found.undecided_share(cut, 1 - cut)
        for channel in found.channels:
            rows.append({"model": name, "channel": channel, ece: errors[channel],
                         band: "{:.3f} to {:.3f}".format(*bands[channel]) if bands else "–",
                         missed: misses[channel], undecided: undecideds[channel]})
    return markdown_table(rows, formats={ece: ".3f", missed: ".3f", undecided: ".3f"},
                          caption=f"Calibration per model and channel: the ECE of the pixels "
                                  f"predicted {cut:g} or more, where {level * 100:g} % of it "
                                  f"falls for redrawn patients, the share of the channel's "
                                  f"true pixels given less than {cut:g}, and the share of the "
                                  f"pixels predicted {cut:g} or more left below {1 - cut:g}")


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


def temperature_table(fitted: TemperatureFit, before: Reliability, after: Reliability,
                      cut: float = 0.1) -> str:
    """A Markdown table, one row per channel: the temperature the validation patients chose
    (``fitted``), their BCE as trained and at it, and the test patients' calibration error
    from ``cut`` up as trained (``before``) and with it (``after``)."""
    ece_before, ece_after = before.calibration_error(cut), after.calibration_error(cut)
    ece = f"test ECE p ≥ {cut:g}, T = 1"
    rows = [{"channel": channel, "T (validation)": t,
             "validation BCE, T = 1": fitted.loss_as_trained[c],
             "validation BCE, at T": fitted.loss[c].min(),
             ece: ece_before[channel], "test ECE, at T": ece_after[channel]}
            for c, (channel, t) in enumerate(fitted.by_channel().items())]
    return markdown_table(rows, formats={"T (validation)": ".2f", "validation BCE, T = 1": ".4f",
                                         "validation BCE, at T": ".4f", ece: ".3f",
                                         "test ECE, at T": ".3f"},
                          caption=f"One temperature per channel, chosen on the validation "
                                  f"patients: their BCE as trained and at it, and the test "
                                  f"patients' ECE from {cut:g} up before and after")


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
