"""Chapter 7: do a model's probabilities mean what they say? Reliability diagrams of several
models (:class:`unet_lib.calibration.Reliability`), one panel per channel, with the pixels
each bin holds under them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from unet_lib.calibration import Reliability
from unet_lib.data.brats import MASK_CHANNELS

#: each model's line: markers and line styles differ, not only colours
STYLES = ({"marker": "o", "ls": "-"}, {"marker": "s", "ls": "--"}, {"marker": "^", "ls": "-."})


def show_reliability(by_name: dict[str, Reliability], title: str | None = None,
                     min_count: int = 20, band: float | None = 0.9) -> Figure:
    """One column per channel (NCR/NET, ED, ET): on top, each bin's observed frequency (the
    share of its pixels in the channel) against its mean predicted probability, per model
    (``by_name``: a label and its :class:`Reliability`), beside the diagonal of a calibrated
    model; under it, the pixels per bin (log scale). Bins of fewer than ``min_count`` pixels
    are left out of the top row, the line broken there: a share of a handful of pixels says
    little. Where a model's bins are kept per patient (two or more), each point carries a
    vertical bar: the central ``band`` interval of its frequency over the patients
    resampled (:meth:`Reliability.frequency_band`; ``None``: no bars)."""
    if not by_name or len(by_name) > len(STYLES):
        raise ValueError(f"give 1 to {len(STYLES)} models to compare, got {len(by_name)}")
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": (3, 1)})
    for c, channel in enumerate(MASK_CHANNELS):
        top, bottom = axes[0, c], axes[1, c]
        top.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="calibrated")
        for (name, found), style in zip(by_name.items(), STYLES):
            shown = found.count[c] >= min_count  # NaN elsewhere: the line breaks there
            x = np.where(shown, found.mean_probability[c], np.nan)
            y = np.where(shown, found.frequency[c], np.nan)
            colour = top.plot(x, y, label=name, **style)[0].get_color()
            if band is not None and len(found.patients) >= 2:
                low, high = (end[c] for end in found.frequency_band(band))
                top.errorbar(x, y, yerr=np.abs([y - low, high - y]), fmt="none", ecolor=colour,
                             elinewidth=1, capsize=2, alpha=0.7)
            bottom.stairs(np.maximum(found.count[c], 0.5), found.edges, color=colour,
                          ls=style["ls"])
        top.set(title=channel, xlim=(0, 1), ylim=(0, 1), aspect="equal")
        top.set_ylabel("observed frequency" if c == 0 else "")
        bottom.set(yscale="log", xlabel="predicted probability")
        bottom.set_ylabel("pixels" if c == 0 else "")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    if band is not None and any(len(found.patients) >= 2 for found in by_name.values()):
        title = (f"{title}\n" if title else "") + (
            f"bars: where {band:.0%} of a bin's frequencies fall when the patients are drawn "
            f"again (bootstrap)")
    if title:
        fig.suptitle(title)
    return fig
