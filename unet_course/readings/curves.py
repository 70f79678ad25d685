"""Sentences chapter 4 reads off the learning curves of several models: how fast each learnt
(:func:`learning_pace`), and how far a curve fell or a loss rose from one epoch to the next
(:func:`jumpiest_reading`, :func:`batch_norm_reading`). Which epoch to keep, and what a rising
validation loss cost, is :mod:`unet_course.readings.overfitting`'s.

``histories``, wherever a function takes it: model name → its
:class:`~unet_lib.history.History` (or its list of per-epoch records, each ``{"epoch",
"train_loss", "val_loss", "val": {"dice": {region: value}}}``), in the order the book names
the models.
"""

from __future__ import annotations

import math
from typing import Sequence

from unet_lib.data import REGIONS

from .words import and_list, number_word

#: the Dice curves chapter 4's figure draws
PLOTTED = (*REGIONS, "NCR/NET")

#: the small regions among them (thin rims and cores), whose Dice swings most easily
SMALL = ("ET", "NCR/NET", "TC")

#: a Dice a curve must have reached before its falls count (the rise before is learning)
FOUND = 0.5

#: a gain of validation Dice over two epochs above which a model is still learning
RISING = 0.02

#: the batch-norm model's largest rise of validation loss must exceed the others' by this
#: factor to be named the largest (×1.58 against ×1.27 is; ×1.30 against ×1.27 is not)
CLEARLY_LARGER = 1.15


def records_of(history) -> list[dict]:
    """The per-epoch records of ``history``: a :class:`~unet_lib.history.History`, or its
    list of records already (each ``{"epoch", "train_loss", "val": {...}, ...}``)."""
    return getattr(history, "records", history)


def _curves(histories: dict, region: str) -> dict[str, list[float]]:
    return {name: [r["val"]["dice"][region] for r in records_of(history)]
            for name, history in histories.items()}


def _first_epochs(curves: dict, level: float) -> dict:
    """Model name → the first epoch (from 1) whose value reached ``level``, or ``None``."""
    return {name: next((i + 1 for i, v in enumerate(curve) if v >= level), None)
            for name, curve in curves.items()}


def slowest_learner(histories: dict, region: str = "TC", level: float = 0.7) -> str:
    """The model (a key of ``histories``) whose validation ``region`` Dice reached ``level``
    last, or never; among models that reached it in the same epoch (or none), the one whose
    last epoch's Dice is the lowest: the furthest behind."""
    curves = _curves(histories, region)
    return _last_to_reach(_first_epochs(curves, level), curves)


def _last_to_reach(first: dict, curves: dict) -> str:
    """The key of ``first`` (:func:`_first_epochs`) with the latest epoch, ``None`` latest;
    on a tie the one whose curve (of ``curves``) ends lowest."""
    return max(first, key=lambda name: (math.inf if first[name] is None else first[name],
                                        -curves[name][-1]))


def learning_pace(histories: dict, region: str = "TC", level: float = 0.7) -> str:
    """A sentence on how fast each model learnt ``region``: the first epoch whose validation
    Dice reached ``level``, and whether the slowest model was still gaining at the end.

    Returns:
        e.g. "validation TC Dice first reached 0.7 in epoch 2 (classic), 4 (improved) and 8
        (attention); the attention U-Net, the slowest, still gained +0.12 over its last two
        epochs: it was stopped while still learning" — worked out from the records.
    """
    curves = _curves(histories, region)
    first = _first_epochs(curves, level)
    epochs = set(first.values())
    if epochs == {None}:
        return (f"no model's validation {region} Dice reached {level:g}: at the last epoch "
                + and_list([f"{curve[-1]:.2f} for the {name} U-Net"
                        for name, curve in curves.items()]))
    if len(epochs) == 1 and len(first) > 1:
        return (f"every model's validation {region} Dice first reached {level:g} in epoch "
                f"{epochs.pop()}: here they learnt it alike")
    reached = [f"{'never' if epoch is None else epoch} ({name})" for name, epoch in first.items()]
    text = f"validation {region} Dice first reached {level:g} in epoch " + and_list(reached)
    slowest = _last_to_reach(first, curves)
    curve = curves[slowest]
    if len(first) == 1 or len(curve) < 3:
        return text
    gain = curve[-1] - curve[-3]
    if gain > RISING:
        return (text + f"; the {slowest} U-Net, the slowest, still gained {gain:+.2f} over its "
                       "last two epochs: it was stopped while still learning")
    return (text + f"; the {slowest} U-Net, the slowest, gained {gain:+.2f} over its last two "
                   "epochs: it had levelled off by the end")


def largest_fall(values: Sequence[float], found: float = FOUND) -> float:
    """The largest drop of ``values`` from one epoch to the next once they first reached
    ``found`` (the rise before that is learning, not noise); 0 if they never fell."""
    start = next((i for i, v in enumerate(values) if v >= found), len(values))
    return max([0.0, *(a - b for a, b in zip(values[start:], values[start + 1:]))])


def largest_falls(histories: dict, regions: Sequence[str] = PLOTTED) -> dict:
    """Model name → ``(fall, region)``: the largest :func:`largest_fall` among its validation
    Dice curves of ``regions``, and whose."""
    by_region = {region: _curves(histories, region) for region in regions}
    return {name: max((largest_fall(curves[name]), region) for region, curves in by_region.items())
            for name in histories}


def jumpiest_reading(histories: dict) -> tuple[float, str]:
    """``(fall, whose)``: the largest fall of any curve chapter 4 draws (:data:`PLOTTED`), and
    whose it was, e.g. ``"the attention U-Net's ET, a small region"``; when a large region
    fell most, the words add the small regions' largest fall (:data:`SMALL`)."""
    falls = largest_falls(histories)
    jumpiest = max(falls, key=falls.get)
    fall, region = falls[jumpiest]
    if fall == 0:
        return fall, "none did: every curve only rose once found"
    if region in SMALL:
        return fall, f"the {jumpiest} U-Net's {region}, a small region"
    small = largest_falls(histories, SMALL)
    small_name = max(small, key=small.get)
    small_fall, small_region = small[small_name]
    if small_fall == 0:
        found = any(value >= FOUND for region in SMALL
                    for curve in _curves(histories, region).values() for value in curve)
        return fall, (f"the {jumpiest} U-Net's {region}, a large one this time; the small ones "
                      + ("never fell once found" if found else
                         f"never reached a Dice of {FOUND:g}"))
    return fall, (f"the {jumpiest} U-Net's {region}, a large one this time; the small ones "
                  f"fell by up to {small_fall:.2f}, the {small_name} U-Net's {small_region}")


def loss_rises(history) -> tuple[float, int]:
    """``(factor, epoch)``: the largest rise of the validation loss from one epoch to the next
    (the next epoch's loss ÷ this one's) and the epoch (from 1) it rose from; ``(1.0, 0)``
    when it never rose (or there are fewer than two epochs)."""
    losses = [r["val_loss"] for r in records_of(history)]
    return max(((after / before, epoch) for epoch, (before, after)
                in enumerate(zip(losses, losses[1:]), start=1) if 0 < before < after),
               default=(1.0, 0))


def batch_norm_reading(histories: dict, with_batch_norm: str = "improved",
                       tumour_share: float | None = None) -> str:
    """Sentences on whether the model with batch norm (``with_batch_norm``, a key of
    ``histories``; the others have none) had the jumpiest curves: by Dice (the largest fall)
    and by validation loss (the largest rise, named the largest only if
    :data:`CLEARLY_LARGER` times the others'), and why batch norm can move them — with the
    share of tumour slices the training batches were drawn with (``tumour_share``, the run's
    :attr:`~unet_lib.config.TrainConfig.tumour_share`; ``None``: a plain shuffle)."""
    falls = largest_falls(histories)
    jumpiest = max(falls, key=falls.get)
    fall, region = falls[with_batch_norm]
    rise, epoch = loss_rises(histories[with_batch_norm])
    others = {name: loss_rises(history)[0] for name, history in histories.items()
              if name != with_batch_norm}
    others_rise = ", ".join(f"the {name} U-Net's at most ×{jump:.2f}" if jump > 1 else
                            f"the {name} U-Net's never" for name, jump in others.items())
    without = ("the model without batch norm" if len(others) == 1 else
               "the models without batch norm")
    most_other = max(others.values(), default=1.0)  # 1: none of them rose
    model = f"the {with_batch_norm.capitalize()} U-Net, the one model with batch norm"
    if falls[jumpiest][0] == 0:
        by_dice = f"No Dice curve fell once found, not even those of {model}; "
    elif jumpiest == with_batch_norm:
        by_dice = f"{model[0].upper()}{model[1:]}, had the largest fall; "
    else:
        by_dice = (f"By Dice {model}, was not the jumpiest here (" + (
            f"its largest fall {fall:.2f}, {region}); " if fall > 0 else
            "none of its curves fell once found); "))
    if rise == 1:
        by_loss = ("its validation loss never rose from one epoch to the next"
                   + (f" ({others_rise}). " if others else ". "))
    elif not others:
        by_loss = f"its validation loss rose by up to ×{rise:.2f} from one epoch to the next. "
    elif most_other == 1 and rise < CLEARLY_LARGER:
        by_loss = (f"its validation loss rose by up to ×{rise:.2f} from one epoch to the next "
                   f"and that of {without} never: too little to single batch norm out. ")
    elif rise >= CLEARLY_LARGER * most_other:
        by_loss = (f"its validation loss jumped the most of the {number_word(len(histories))}, "
                   f"×{rise:.2f} "
                   f"from epoch {epoch} to {epoch + 1} ({others_rise}). ")
    else:
        by_loss = (f"its validation loss rose by up to ×{rise:.2f} from one epoch to the next, "
                   f"and {without} "
                   f"{'nearly as much' if most_other < rise else 'about as much or more'} "
                   f"({others_rise}): these curves cannot single batch norm out. ")
    drawn = ("" if tumour_share is None else
             f" and come from batches in which {_share_words(tumour_share)} of the slices hold "
             f"tumour")
    return (by_dice + by_loss + "Batch norm can move validation curves by itself: in "
            "evaluation it uses running averages of its training batches' statistics, which "
            f"lag behind weights that still change fast{drawn} (exercise 2.3).")


def _share_words(share: float) -> str:
    """"four in five" for 0.8, "half" for 0.5, else a percentage ("35 %")."""
    words = {0.8: "four in five", 0.75: "three in four", 0.5: "half", 1.0: "all"}
    return words.get(round(share, 2), f"{share * 100:.0f} %")
