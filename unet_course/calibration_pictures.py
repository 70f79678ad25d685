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
                     min_count: int = 20) -> Figure:
    """One column per channel (NCR/NET, ED, ET): on top, each bin's observed frequency (the
    share of its pixels in the channel) against its mean predicted probability, per model
    (``by_name``: a label and its :class:`Reliability`), beside the diagonal of a calibrated
    model; under it, the pixels per bin (log scale). Bins of fewer than ``min_count`` pixels
    are left out of the top row, the line broken there: a share of a handful of pixels says
    little."""
    if not by_name or len(by_name) > len(STYLES):
        raise ValueError(f"give 1 to {len(STYLES)} models to compare, got {len(by_name)}")
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": (3, 1)})
    for c, channel in enumerate(MASK_CHANNELS):
        top, bottom = axes[0, c], axes[1, c]
        top.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="calibrated")
        for (name, found), style in zip(by_name.items(), STYLES):
            shown = found.count[c] >= min_count  # NaN elsewhere: the line breaks there
            colour = top.plot(np.where(shown, found.mean_probability[c], np.nan),
                              np.where(shown, found.frequency[c], np.nan),
                              label=name, **style)[0].get_color()
            bottom.stairs(np.maximum(found.count[c], 0.5), found.edges, color=colour,
                          ls=style["ls"])
        top.set(title=channel, xlim=(0, 1), ylim=(0, 1), aspect="equal")
        top.set_ylabel("observed frequency" if c == 0 else "")
        bottom.set(yscale="log", xlabel="predicted probability")
        bottom.set_ylabel("pixels" if c == 0 else "")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    if title:
        fig.suptitle(title)
    return fig
