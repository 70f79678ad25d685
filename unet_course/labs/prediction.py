"""Self-checks of chapter 5, on reading a prediction: which channels a pixel's colour marks
(exercise 5.1) and the best threshold of one slice (5.2). (Re-exported by
:mod:`unet_course.labs`, where the notebooks call them; how the checks answer is
:mod:`unet_course.checking`.)"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from unet_lib.data.brats import MASK_CHANNELS
from unet_lib.metrics import best_threshold_of_slice, binarize, whole_tumour_dice

from ..checking import NotYet, check, is_number, plain, reveal_hint, unanswered
from ..viz.frames import shown_on_slider


def check_mask_channels(answer, colour: Sequence[float] = (0, 1, 1),
                        threshold: float | None = None) -> None:
    """Exercise 5.1. Which channels (a set of names from ``MASK_CHANNELS``) a pixel has set,
    given its ``colour`` (r, g, b) in the slides' palette, whichever palette the pictures are
    drawn in (there a pixel's (r, g, b) are its values of NCR/NET, ED and ET): a pixel of the
    binarized picture (each value 0 or 1) or, with ``threshold``, a pixel of the probabilities
    picture, binarized at ``threshold`` as :func:`unet_lib.metrics.binarize` does."""
    values = [float(v) for v in plain(colour)]
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise ValueError(f"colour {tuple(colour)}: give (r, g, b), each in [0, 1]")
    if threshold is None and any(v not in (0, 1) for v in values):
        raise ValueError(f"colour {tuple(colour)} is not a binarized pixel's (each 0 or 1): "
                         f"give the threshold that binarizes it")
    pixel = torch.tensor(values).reshape(3, 1, 1)
    marked = pixel if threshold is None else binarize(pixel, threshold, logits=False)
    expected = {name for name, v in zip(MASK_CHANNELS, marked.flatten().tolist()) if v}
    what = (f"the channels of a pixel coloured {tuple(colour)}" if threshold is None else
            f"the channels marked at threshold {threshold} in a pixel of probabilities "
            f"{tuple(colour)}")
    if unanswered(answer, "5.1", what, expected):
        return
    if not isinstance(answer, (str, set, frozenset, list, tuple)):
        raise NotYet(f"Not yet: give the channels as a set of their names, e.g. {{\"ED\"}} or "
                     f"{{\"NCR/NET\", \"ET\"}}, not {type(answer).__name__} {answer!r}")
    answer = {answer} if isinstance(answer, str) else set(answer)
    if answer != expected:
        raise NotYet(f"Not yet: {_what_is_off(answer, expected, values, threshold)}. Hint: a "
                     f"pixel's (r, g, b) in the slides' palette are its values of NCR/NET, ED "
                     f"and ET (red, green, blue), and the colours add{reveal_hint('5.1')}.")
    print(f"Right: {what} are {sorted(expected)}.")


def _what_is_off(answer: set, expected: set, values: list[float],
                 threshold: float | None) -> str:
    """Exercise 5.1's hint: what a wrong set of channels gets wrong."""
    unknown = answer - set(MASK_CHANNELS)
    if unknown:
        return (f"{sorted(unknown, key=str)} are not channel names "
                f"({', '.join(MASK_CHANNELS)}, as strings)")
    if threshold is None:
        return ("a channel is missing: this colour mixes more than those" if answer < expected
                else "channels too many: this colour mixes fewer" if answer > expected
                else "that set is not it")
    if answer == {name for name, v in zip(MASK_CHANNELS, values) if v > 0}:
        return (f"not every channel with some colour is marked: binarizing keeps a channel "
                f"only where its probability is above {threshold}")
    if answer < expected:
        return f"a channel is missing: every probability above {threshold} is marked"
    if answer > expected:
        return f"channels too many: a probability at or below {threshold} is not marked"
    return "that set is not it"


def check_best_threshold(answer, probs: torch.Tensor, target: torch.Tensor,
                         thresholds: Sequence[float]) -> None:
    """Exercise 5.2. A threshold (one of ``thresholds``) with the best whole-tumour Dice on a
    slice; one whose Dice the slider shows the same (:func:`shown_on_slider`) counts too."""
    best = best_threshold_of_slice(probs, target, thresholds)
    what = "the threshold with the best whole-tumour Dice on this slice"
    if unanswered(answer, "5.2", what, best):
        return
    answer = plain(answer)
    if not is_number(answer):
        raise NotYet(f"Not yet: {what} is a number, one of the slider's thresholds, not "
                     f"{type(answer).__name__}.")
    matched = [t for t in thresholds if math.isclose(answer, t, rel_tol=1e-6)]  # float32 too
    if not matched:
        raise NotYet(f"Not yet: {answer} is not one of the slider's thresholds "
                     f"({min(thresholds):g} to {max(thresholds):g} in its steps). Hint: move "
                     f"the slider and read the WT Dice in the caption.")
    answer = float(matched[0])  # np.float32(0.55) is the slider's 0.55 from here on
    shown = shown_on_slider(whole_tumour_dice(probs, target, best))
    if (not math.isclose(answer, best)
            and shown_on_slider(whole_tumour_dice(probs, target, answer)) == shown):
        print(f"Right: at {answer} the slider shows the whole-tumour Dice {shown}, as at {best}, "
              f"the best on this slice (to more decimals).")
        return
    check(answer, best, what, "move the slider and read the WT Dice in the caption",
          tolerance=1e-6, exercise="5.2")
