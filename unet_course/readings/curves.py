"""Sentences chapter 4 reads off the learning curves of several models: how fast each learnt
(:func:`learning_pace`), how far a curve fell from one epoch to the next
(:func:`jumpiest_reading`, :func:`batch_norm_reading`), whether keeping the best epoch mattered
(:func:`kept_reading`), and what a rising validation loss cost (:func:`rising_losses`,
:func:`overfitting_verdict`).

``histories``, wherever a function takes it: model name → its
:class:`~unet_lib.history.History` (or its list of per-epoch records, each ``{"epoch",
"train_loss", "val_loss", "val": {"dice": {region: value}}}``), in the order the book names
the models.
"""

from __future__ import annotations

import math
from typing import Sequence

from unet_lib.data import REGIONS
from unet_lib.metrics import regions_mean_dice

#: the Dice curves chapter 4's figure draws
PLOTTED = (*REGIONS, "NCR/NET")

#: the small regions among them (thin rims and cores), whose Dice swings most easily
SMALL = ("ET", "NCR/NET", "TC")

#: a Dice a curve must have reached before its falls count (the rise before is learning)
FOUND = 0.5

#: a gain of validation Dice over two epochs above which a model is still learning
RISING = 0.02

#: a fall of mean validation Dice from the best epoch to the last that counts as worse masks
WORSE = 0.02

#: a last validation loss this many times its lowest counts as a loss that rose again
LOSS_ROSE = 1.1

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
        return (f"no model's validation {region} Dice reached {level:g} (at the last epoch "
                + _and([f"{curve[-1]:.2f} ({name})" for name, curve in curves.items()]) + ")")
    if len(epochs) == 1 and len(first) > 1:
        return (f"every model's validation {region} Dice first reached {level:g} in epoch "
                f"{epochs.pop()}: here they learnt it alike")
    reached = [f"{'never' if epoch is None else epoch} ({name})" for name, epoch in first.items()]
    text = f"validation {region} Dice first reached {level:g} in epoch " + _and(reached)
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
    return {name: max((largest_fall(curves[name]), region)
                      for region, curves in ((r, _curves(histories, r)) for r in regions))
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
        return fall, (f"the {jumpiest} U-Net's {region}, a large one this time; the small ones "
                      f"never fell once found ({FOUND:g} or more)")
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
                   f"and the other models' never: too little to single batch norm out. ")
    elif rise >= CLEARLY_LARGER * most_other:
        by_loss = (f"its validation loss jumped the most of the {_count(len(histories))}, "
                   f"×{rise:.2f} "
                   f"from epoch {epoch} to {epoch + 1} ({others_rise}). ")
    else:
        by_loss = (f"its validation loss rose by up to ×{rise:.2f} from one epoch to the next, "
                   f"and the models without batch norm "
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


def kept_reading(histories: dict, kept_epochs: dict) -> str:
    """Whether keeping the best epoch (``kept_epochs``: model name → the epoch kept, from 1)
    mattered: the models whose last epoch was 0.01 or more below the kept one in mean
    validation Dice over WT, TC and ET, with the gap; else that it hardly did."""
    gains = {}  # mean validation Dice of the kept epoch above the last one's
    for name, history in histories.items():
        records = records_of(history)
        if kept_epochs[name] != len(records):
            gains[name] = (regions_mean_dice(records[kept_epochs[name] - 1]["val"]["dice"])
                           - regions_mean_dice(records[-1]["val"]["dice"]))
    if not gains:
        return "here each model happened to do best in its last epoch"
    mattered = {name: gain for name, gain in gains.items() if gain >= 0.01}
    if mattered:
        return "here it mattered for the " + " and the ".join(
            f"{name} U-Net, whose last epoch was {gain:.2f} below the kept one in mean Dice"
            for name, gain in mattered.items())
    if len(gains) == 1:
        return (f"here the {next(iter(gains))} U-Net kept an earlier epoch, but its last one was "
                f"less than 0.01 below it in mean Dice: it hardly mattered")
    return (f"here the {' and the '.join(gains)} U-Nets kept an earlier epoch, but the last "
            f"epoch of each was less than 0.01 below the kept one in mean Dice: it hardly "
            f"mattered")


def training_loss_above(histories: dict) -> str:
    """For how many models the last epoch's training loss lay above its validation loss,
    e.g. ``"1 of the 3 models (attention)"``, or ``"none of the models"``."""
    last = {name: records_of(history)[-1] for name, history in histories.items()}
    above = [name for name, r in last.items() if r["train_loss"] > r["val_loss"]]
    return (f"{len(above)} of the {len(histories)} models ({', '.join(above)})" if above
            else "none of the models")


def rising_losses(histories: dict, rose: float = LOSS_ROSE) -> dict[str, float]:
    """Model name → how far its last validation loss lies above its lowest (0.19 for 19 %),
    for the models where that is ``rose`` times the lowest or more."""
    rising = {}
    for name, history in histories.items():
        losses = [r["val_loss"] for r in records_of(history)]
        if losses[-1] > rose * min(losses):
            rising[name] = losses[-1] / min(losses) - 1
    return rising


def rising_reading(rising: dict[str, float], rose: float = LOSS_ROSE) -> str:
    """:func:`rising_losses` in words, for the book's "the sign of overfitting to look for:
    …"."""
    if not rising:
        return (f"here no model's validation loss ended more than {(rose - 1) * 100:.0f} % above "
                f"its lowest")
    return "here the validation loss ended " + ", ".join(
        f"{share * 100:.0f} % above its lowest for the {name} U-Net"
        for name, share in rising.items())


def overfitting_verdict(histories: dict, models: Sequence[str]) -> str:
    """What a rising validation loss cost ``models`` (keys of ``histories``: those whose loss
    rose), judged by the mean validation Dice over WT, TC and ET (as ``best.pt`` is chosen)
    of the last epoch against the best: within :data:`WORSE`, over-confidence rather than
    worse masks; beyond, worse masks, which keeping the best epoch spares. One sentence for
    each kind, the models named together; ``""`` for no model."""
    drops = {}
    for name in models:
        mean_dice = [regions_mean_dice(r["val"]["dice"])
                     for r in records_of(histories[name])]
        drops[name] = max(mean_dice) - mean_dice[-1]
    mild = {name: drop for name, drop in drops.items() if drop < WORSE}
    worse = {name: drop for name, drop in drops.items() if drop >= WORSE}
    sentences = []
    if mild:
        gaps = [f"the {name} U-Net's last epoch is its best" if drop < 0.0005 else
                f"the {name} U-Net's last epoch is {drop:.3f} below its best"
                for name, drop in mild.items()]
        sentences.append(
            f"The {_names(mild)} overfit{'s' if len(mild) == 1 else ''} by the loss, hardly by "
            f"the segmentations: by the mean validation Dice over WT, TC and ET, "
            f"{_and(gaps)}. Over-confident rather than worse.")
    if worse:
        sentences.append(
            f"The {_names(worse)} overfit{'s' if len(worse) == 1 else ''} by the segmentations "
            f"too: the last epoch's mean validation Dice over WT, TC and ET is "
            + _and([f"{drop:.2f} below the best for the {name} U-Net"
                    for name, drop in worse.items()])
            + ", and keeping the best epoch is what spares the later chapters.")
    return " ".join(sentences)


def _count(n: int) -> str:
    """"three" for 3 (up to ten), else the digits."""
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if n < len(words) else str(n)


def _names(models: dict) -> str:
    """"classic U-Net" or "classic and improved U-Nets"."""
    return _and(list(models)) + (" U-Net" if len(models) == 1 else " U-Nets")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
