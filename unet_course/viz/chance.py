"""Chance, drawn: what chapter 7's sign-flip test counts for one comparison of two models.

:func:`unet_lib.comparison.paired_sign_flip` gives a p-value; :func:`sign_flip_figure` shows
where it comes from: each patient's paired difference, and the mean difference under every way
of flipping their signs (:func:`unet_lib.comparison.sign_flip_means`), those as far from 0 as
the observed one marked. Their share is the p-value;
:func:`unet_course.readings.chance.read_sign_flips` says it in a sentence.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from unet_lib.comparison import (EXACT_UP_TO, as_far_as_observed, paired_sign_flip,
                                 sign_flip_means)

#: the flips as far from 0 as the observed mean (they make the p-value), and the others
AS_FAR, NEARER = "tab:orange", "0.6"
#: the most patients whose 2^n sign patterns are drawn one dot each (beyond: a histogram)
MOST_DOTS = 8


def sign_flip_figure(first, second, patients: Sequence, names: Sequence[str] = ("A", "B"),
                     what: str = "score") -> Figure:
    """Two panels for the paired scores ``first`` and ``second`` (one per patient, in the order
    of ``patients``, their labels): left, each patient's difference ``first - second``; right,
    the mean difference under every sign pattern (a dot each up to :data:`MOST_DOTS`
    patients, else a histogram), the observed mean and its mirror image marked, the patterns
    as far from 0 in orange. A pyplot figure, as the rest of :mod:`unet_course.viz`."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    differences = first - second
    if len(patients) != len(differences):
        raise ValueError(f"patients: {len(patients)} labels for the scores of "
                         f"{len(differences)} patients; give one label per patient")
    means = sign_flip_means(first, second)
    far = as_far_as_observed(means, first, second)
    p = paired_sign_flip(first, second)["p"]
    fig, (each, flips) = plt.subplots(1, 2, figsize=(11, 3.8), width_ratios=(1, 1.5),
                                      layout="constrained")
    rows = np.arange(len(differences))
    each.hlines(rows, 0, differences, color="0.4", lw=2)
    each.plot(differences, rows, "o", color="black", ms=7)
    each.axvline(0, color="0.3", lw=0.8)
    each.set(yticks=rows, yticklabels=[f"patient {label}" for label in patients],
             ylim=(-0.6, rows[-1] + 0.6), xlabel=f"{what}: {names[0]} − {names[1]}",
             title="each patient's difference")
    each.invert_yaxis()
    observed = differences.mean()
    flips.axvline(observed, color="black", lw=1.2, label=f"observed mean {observed:+.3f}")
    flips.axvline(-observed, color="black", ls="--", lw=1.2,
                  label=f"as far on the other side, {-observed:+.3f}")
    _draw_means(flips, means, far)
    exact = len(differences) <= EXACT_UP_TO  # every pattern drawn, not a sample
    flips.set(xlabel=f"mean {what} difference with the signs flipped", yticks=[],
              title=(f"the {len(means)} ways to flip the signs: {int(far.sum())} at least as "
                     f"far from 0 → p = {p:.3f}" if exact else
                     f"{len(means)} random sign flips: p = {p:.3f}"))
    return fig


def _draw_means(ax, means: np.ndarray, far: np.ndarray) -> None:
    """One dot per mean up to 2^MOST_DOTS, stacked where they would overlap
    (:func:`stacked_heights`); else a histogram."""
    if len(means) <= 2 ** MOST_DOTS:
        heights = stacked_heights(means, far)
        for colour, chosen, label in ((NEARER, ~far, "nearer 0"),
                                      (AS_FAR, far, "at least as far from 0 as observed")):
            ax.plot(means[chosen], heights[chosen], "o", color=colour, ms=9, mec="black",
                    mew=0.5, label=label)
        ax.set_ylim(-0.8, int(heights.max()) + 0.8)
        ax.set_ylabel("patterns with this mean,\nstacked")
    else:
        bins = np.histogram_bin_edges(means, bins=40)
        counts, _, _ = ax.hist([means[~far], means[far]], bins=bins, stacked=True,
                               color=[NEARER, AS_FAR],
                               label=["nearer 0", "at least as far from 0 as observed"])
        ax.set_ylabel("patterns")
    # below the figure: above the dots it ran into the observed mean's line
    ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4,
                     fontsize=10, frameon=False)


def stacked_heights(means: np.ndarray, far: np.ndarray, closer_than: float = 0.015
                    ) -> np.ndarray:
    """(len(means),) int: the row of each mean's dot, so that dots closer than
    ``closer_than`` of the means' span stack instead of overlapping: in ascending order, a mean
    joins the stack of the one before it when it lies that close to the stack's first, and in
    each stack the ``far`` ones come lowest."""
    order = np.argsort(means, kind="stable")
    reach = closer_than * max(float(np.ptp(means)), 1e-12)
    stacks: list[list[int]] = []
    for index in order:
        if stacks and means[index] - means[stacks[-1][0]] < reach:
            stacks[-1].append(int(index))
        else:
            stacks.append([int(index)])
    heights = np.empty(len(means), dtype=int)
    for stack in stacks:
        for row, index in enumerate(sorted(stack, key=lambda i: (not far[i], means[i]))):
            heights[index] = row
    return heights
