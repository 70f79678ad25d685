"""Chapter 9: do a model's probabilities mean what they say? Reliability diagrams of several
models (:class:`unet_lib.calibration.Reliability`), one panel per channel, with the pixels
each bin holds under them (:func:`show_reliability`); the table of their calibration errors
(:func:`calibration_table`); what a temperature fitted on the validation patients does
(:func:`temperature_table`). What they say in words is :mod:`unet_course.readings.calibration`'s."""

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
