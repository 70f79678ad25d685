"""What chapter 8 reads off an attention gate: what its contrast says (:func:`gate_reading`;
which slices it was measured on is :func:`~unet_course.readings.slices.slices_searched`).
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
