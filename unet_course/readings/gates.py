"""Sentences chapter 8 reads off the attention gates: what a gate's contrast says
(:func:`gate_reading`) and which test slices it was measured on (:func:`contrast_searched`).
A gate's contrast is its mean α inside the whole tumour minus in the rest of the brain
(:func:`unet_lib.attention.attention_contrast`)."""

from __future__ import annotations

#: a contrast within this of 0 treats tumour and the rest of the brain alike
ALIKE = 0.05


def gate_reading(contrast: float, alike: float = ALIKE) -> str:
    """What a gate with this ``contrast`` does, e.g. ``"passes the tumour and damps the
    rest"``."""
    if contrast > alike:
        return "passes the tumour and damps the rest"
    if contrast < -alike:
        return "damps the tumour and passes the rest"
    return "treats tumour and the rest alike"


def contrast_searched(found: int, slices: int, scanned: int, count: int) -> str:
    """Which test slices a contrast was measured on: ``found`` slices with tumour, chosen by
    :func:`unet_course.examples.tumour_slices` (at most ``count``) from ``scanned`` of the
    split's ``slices``; every slice that holds tumour when it read them all and kept all it
    found."""
    if scanned == slices and found < count:
        return f"every test slice that holds tumour, {found} of the {slices:,}"
    if scanned == slices:
        return f"the {found} test slices with the most tumour"
    return (f"the {found} test slices with the most tumour among {scanned:,} evenly spaced ones "
            f"of the {slices:,}")
