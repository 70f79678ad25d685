"""The course's figure style: larger lettering than matplotlib's default.

The book shows a figure at the width of its text column, about 840 pixels; the chapters'
multi-panel figures are 1100-1500 pixels wide, so they are shown at 55-75 % of their size, and
matplotlib's 10-point default became 6-7 pixel tick labels. These sizes keep them readable.
"""

from __future__ import annotations

import matplotlib

#: font sizes in points, applied by :func:`apply` (matplotlib's defaults: 10, titles 12)
FONT_SIZES = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12,
              "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11,
              "legend.title_fontsize": 11, "figure.titlesize": 14}


def apply() -> None:
    """Use the course's sizes for every figure drawn from now on in this process."""
    matplotlib.rcParams.update(FONT_SIZES)
