"""Sentences chapter 4 reads off the end of training: whether keeping the best epoch mattered
(:func:`kept_reading`), for which models the training loss lay above the validation loss
(:func:`training_loss_above`), and what a validation loss that rose again cost
(:func:`rising_losses`, :func:`rising_reading`, :func:`overfitting_verdict`).

``histories``: model name → its :class:`~unet_lib.history.History` (or its list of per-epoch
records), as in :mod:`unet_course.readings.curves`.
"""

from __future__ import annotations

from typing import Sequence

from unet_lib.metrics import regions_mean_dice

from .curves import records_of
from .words import and_list, u_nets

#: a fall of mean validation Dice from the best epoch to the last that counts as worse masks
WORSE = 0.02

#: a last validation loss this many times its lowest counts as a loss that rose again
LOSS_ROSE = 1.1


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
            f"The {u_nets(mild)} overfit{'s' if len(mild) == 1 else ''} by the loss, hardly by "
            f"the segmentations: by the mean validation Dice over WT, TC and ET, "
            f"{and_list(gaps)}. Over-confident rather than worse.")
    if worse:
        sentences.append(
            f"The {u_nets(worse)} overfit{'s' if len(worse) == 1 else ''} by the segmentations "
            f"too: the last epoch's mean validation Dice over WT, TC and ET is "
            + and_list([f"{drop:.2f} below the best for the {name} U-Net"
                    for name, drop in worse.items()])
            + ", and keeping the best epoch is what spares the later chapters.")
    return " ".join(sentences)
