"""What the sign-flip test can say with so many patients (:func:`verdict_room`, chapters 7
and 9), and what chapter 7's sign-flip figure counts (:func:`read_sign_flips`): how many sign
patterns the patients' paired differences make, the smallest p they allow, and the
differences that flip to themselves or too little to see (the figure is
:func:`unet_course.viz.chance.sign_flip_figure`; the test
:func:`unet_lib.comparison.paired_sign_flip`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from unet_lib.comparison import EXACT_UP_TO, SIGN_FLIP_RESAMPLES

from ..notebook import counted

#: up to this many patients a verdict needs one side to win on nearly every patient
FEW_PATIENTS = 10


def verdict_room(patients: int, smallest_p: float, winner: str = "model") -> str:
    """What the smallest p the sign-flip test can give ``patients`` patients
    (:func:`unet_lib.comparison.smallest_sign_flip_p`) leaves room for, following "the smallest
    possible p is …, ": no verdict at p < 0.05; one only for a ``winner`` that wins on nearly
    every patient (:data:`FEW_PATIENTS` or fewer); or no obstacle."""
    if smallest_p >= 0.05:
        return ('so at p < 0.05 "cannot tell" is the only verdict these patients can give, '
                "however consistent a ranking looks")
    if patients <= FEW_PATIENTS:
        return f"so a verdict needs a {winner} that wins on nearly every patient"
    return "which is no obstacle with this many patients: the differences decide"


def read_sign_flips(first, second, patients: Sequence) -> str:
    """What the sign-flip figure counts, in a sentence for the book: how many sign patterns the
    patients' differences make, and the smallest p they allow; a difference of exactly 0
    (both models score alike) flips to itself, so it halves the patterns that differ; a
    difference that is not 0 but small moves the mean too little to see apart when flipped,
    which the reading names (its patterns' dots sit just beside the observed lines)."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    zero = [label for label, d in zip(patients, differences) if d == 0]
    n, k = len(differences), len(zero)
    if n > EXACT_UP_TO:
        return (f"With {n} patients the test draws {SIGN_FLIP_RESAMPLES:,} of the 2^{n} sign "
                f"patterns at random instead of all of them, and the figure shows their means")
    if k == n:
        return ("Every difference is exactly 0 (the two models score alike on every patient): "
                "every pattern's mean is 0, as far out as the observed one, p = 1")
    if zero:
        reading = (f"{counted('Patient', zero)} show{'s' if k == 1 else ''} a difference of "
                   f"exactly 0 (both models score the same), and flipping the sign of 0 "
                   f"changes nothing: the {2 ** n} patterns come in identical groups of "
                   f"{2 ** k}, and the smallest p these patients could give here is "
                   f"{2 ** (k + 1)}/{2 ** n} = {2 ** (k + 1) / 2 ** n:.3f}, not "
                   f"{2 / 2 ** n:.3f}")
    else:
        reading = (f"Each of the {n} patients' differences can take either sign, so {2 ** n} "
                   f"patterns; a clean sweep would leave only itself and its mirror image as "
                   f"far out, p = 2/{2 ** n}")
    # a difference that is small, not 0: its flip moves the mean too little to see apart
    observed = differences.mean()
    small = [(abs(d), label, d) for label, d in zip(patients, differences)
             if d != 0 and 2 * abs(d) / n < 0.05 * abs(observed)]
    if small:
        size, label, d = min(small)
        where = ("grey dots sit just inside the lines, nearer 0 by that little"
                 if np.sign(d) == np.sign(observed) else  # flipped, it adds to the mean
                 "dots sit just outside the lines, farther from 0 by that little, and count "
                 "as far as the observed one")
        reading += (f". Patient {label}'s difference is only {d:+.3f}: flipping it alone "
                    f"moves the mean by {2 * size / n:.3f}, so those patterns' {where}")
    return reading
