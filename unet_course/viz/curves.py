"""Learning curves: one run's loss and validation Dice per epoch (:func:`plot_history`),
several models' side by side (:func:`plot_training`) or on shared axes
(:func:`plot_histories`); and sentences on how fast each learnt (:func:`learning_pace`) and
what a rising validation loss cost (:func:`overfitting_verdict`)."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from unet_lib.data import REGIONS

from .frames import (LOSS_STYLES, label_log_axis, model_style, records_of, region_style,
                     score_axis_floor)


def whole_epochs(*axes) -> None:
    """Tick the epoch axes of ``axes`` at whole epochs only (no epoch 2.5)."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_training(histories: dict, chosen: dict | None = None,
                  regions: Sequence[str] = (*REGIONS, "NCR/NET")) -> Figure:
    """How several models trained, in one figure: a column per model, the loss (training and
    validation) above and the validation Dice of ``regions`` below, on shared axes.

    Args:
        histories: ``{model name: History or its records}``.
        chosen: ``{model name: epoch}`` of the checkpoint kept (``best.pt``), marked by a
            dotted line.
    """
    chosen = chosen or {}
    n = len(histories)
    fig, axes = plt.subplots(2, n, figsize=(3.9 * n, 5.6), constrained_layout=True,
                             sharex=True, sharey="row", squeeze=False)
    for column, (name, history) in enumerate(histories.items()):
        records = records_of(history)
        epochs = [r["epoch"] for r in records]
        top, bottom = axes[0, column], axes[1, column]
        top.plot(epochs, [r["train_loss"] for r in records], ms=3, label="training",
                 **LOSS_STYLES["training"])
        top.plot(epochs, [r["val_loss"] for r in records], ms=3, label="validation",
                 **LOSS_STYLES["validation"])
        top.set(yscale="log", title=f"{name} U-Net")
        label_log_axis(top)
        for region in regions:
            bottom.plot(epochs, [r["val"]["dice"][region] for r in records], ms=4,
                        label=region, **region_style(region))
        # half an epoch of room each side: a kept last epoch's line off the frame's edge
        bottom.set(xlabel="epoch", ylim=(0, 1), xlim=(epochs[0] - 0.5, epochs[-1] + 0.5))
        whole_epochs(top, bottom)
        if name in chosen:
            for ax in (top, bottom):
                ax.axvline(chosen[name], color="0.6", ls=":", lw=1.5)
            bottom.annotate("kept", (chosen[name], 0.03), fontsize="small", color="0.35",
                            ha="right", xytext=(-3, 0), textcoords="offset points")
    axes[0, 0].set_ylabel("loss (log scale)")
    axes[1, 0].set_ylabel("validation Dice")
    axes[0, 0].legend(fontsize="small", loc="upper right")
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(regions),
               fontsize="small")
    return fig


def _curves(histories: dict, region: str) -> dict[str, list[float]]:
    return {name: [r["val"]["dice"][region] for r in records_of(history)]
            for name, history in histories.items()}


def _first_epochs(curves: dict, level: float) -> dict:
    """Model name → the first epoch (from 1) whose value reached ``level``, or ``None``."""
    return {name: next((i + 1 for i, v in enumerate(curve) if v >= level), None)
            for name, curve in curves.items()}


def slowest_learner(histories: dict, region: str = "TC", level: float = 0.7) -> str:
    """The model (a key of ``histories``) whose validation ``region`` Dice reached ``level``
    last, or never (the first such model on a tie)."""
    return _last_to_reach(_first_epochs(_curves(histories, region), level))


def _last_to_reach(first: dict) -> str:
    """The key of ``first`` (:func:`_first_epochs`) with the latest epoch, ``None`` latest."""
    return max(first, key=lambda name: math.inf if first[name] is None else first[name])


def learning_pace(histories: dict, region: str = "TC", level: float = 0.7) -> str:
    """A sentence on how fast each model learnt ``region``: the first epoch whose validation
    Dice reached ``level``, and whether the slowest model was still gaining at the end.

    Args:
        histories: model name → :class:`~unet_lib.train.History` with validation records.

    Returns:
        e.g. "validation TC Dice first reached 0.7 in epoch 2 (classic), 4 (improved) and 8
        (attention); the attention U-Net, the slowest, still gained +0.12 over its last two
        epochs: it was stopped while still learning" — worked out from the records.
    """
    curves = _curves(histories, region)
    first = _first_epochs(curves, level)
    reached = [f"{'never' if epoch is None else epoch} ({name})" for name, epoch in first.items()]
    text = (f"validation {region} Dice first reached {level:g} in epoch "
            + (", ".join(reached[:-1]) + " and " + reached[-1] if len(reached) > 1
               else reached[0]))
    slowest = _last_to_reach(first)
    curve = curves[slowest]
    if len(set(first.values())) == 1 or len(curve) < 3:
        return text
    gain = curve[-1] - curve[-3]
    if gain > RISING:
        return (text + f"; the {slowest} U-Net, the slowest, still gained {gain:+.2f} over its "
                       "last two epochs: it was stopped while still learning")
    return (text + f"; the {slowest} U-Net, the slowest, gained {gain:+.2f} over its last two "
                   "epochs: it had levelled off by the end")


#: a gain of validation Dice over two epochs above which a model is still learning
RISING = 0.02

#: a fall of mean validation Dice from the best epoch to the last that counts as worse masks
WORSE = 0.02


def overfitting_verdict(histories: dict, models: Sequence[str]) -> str:
    """What a rising validation loss cost ``models`` (keys of ``histories``: those whose loss
    rose), judged by the mean validation Dice over WT, TC and ET (as ``best.pt`` is chosen)
    of the last epoch against the best: within :data:`WORSE`, over-confidence rather than
    worse masks; beyond, worse masks, which keeping the best epoch spares. One sentence for
    each kind, the models named together; ``""`` for no model."""
    from unet_lib.metrics import regions_mean_dice

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


def _names(models: dict) -> str:
    """"classic U-Net" or "classic and improved U-Nets"."""
    return _and(list(models)) + (" U-Net" if len(models) == 1 else " U-Nets")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plot_history(history, title: str | None = None) -> Figure:
    """Training and validation loss, and validation Dice per channel/region, per epoch.

    ``history`` is a :class:`unet_lib.train.History` or a list of its records.
    """
    records = records_of(history)
    epochs = [r["epoch"] for r in records]
    with_val = all("val" in r for r in records) and records
    fig, axes = plt.subplots(1, 2 if with_val else 1, figsize=(11 if with_val else 5.5, 3.8),
                             constrained_layout=True, squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, [r["train_loss"] for r in records], label="training",
            **LOSS_STYLES["training"])
    if with_val:
        ax.plot(epochs, [r["val_loss"] for r in records], label="validation",
                **LOSS_STYLES["validation"])
    ax.set(xlabel="epoch", ylabel="loss (log scale)", yscale="log", title="loss")
    label_log_axis(ax)
    ax.legend()
    if with_val:
        ax = axes[0, 1]
        for name in records[0]["val"]["dice"]:
            ax.plot(epochs, [r["val"]["dice"][name] for r in records], label=name,
                    **region_style(name))
        ax.set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title="validation Dice")
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    whole_epochs(*axes.flat)
    if title:
        fig.suptitle(title)
    return fig


def plot_histories(histories: dict, metric: str = "mean", title: str | None = None,
                   chosen: dict | None = None) -> Figure:
    """Validation loss and validation Dice per epoch, for several models: ``{name: History or
    records}``. ``metric``: ``"mean"``, the mean Dice over WT, TC and ET on which ``fit`` keeps
    its best epoch (:func:`unet_lib.metrics.regions_mean_dice`), or one channel or region.
    ``chosen`` (``{name: epoch}``) marks each model's kept epoch with a hollow ring of its
    colour on both curves. Where every value is above 0.5, the Dice axis starts below the
    lowest (:func:`~unet_course.viz.frames.score_axis_floor`) and says where: curves that all lie
    near 1 are told apart. The loss panel compares runs trained on the same loss only (each
    run's validation loss is its own training loss)."""
    from unet_lib.metrics import regions_mean_dice

    def dice_of(record: dict) -> float:
        scores = record["val"]["dice"]
        return regions_mean_dice(scores) if metric == "mean" else scores[metric]

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    lowest = 1.0
    for name, history in histories.items():
        records = records_of(history)
        epochs = [r["epoch"] for r in records]
        curves = ([r["val_loss"] for r in records], [dice_of(r) for r in records])
        lowest = min(lowest, *curves[1])
        for ax, values in zip(axes, curves):
            line, = ax.plot(epochs, values, label=name, **model_style(name))
            if chosen and name in chosen:
                kept = epochs.index(chosen[name])
                ax.plot(epochs[kept], values[kept], "o", ms=13, mfc="none", mew=2,
                        color=line.get_color(),
                        label=f"{name}: kept epoch {chosen[name]}" if ax is axes[1] else None)
    floor = score_axis_floor([lowest])
    what = "mean of WT, TC, ET" if metric == "mean" else metric
    axes[0].set(xlabel="epoch", ylabel="loss (log scale)", yscale="log",
                title="validation loss")
    label_log_axis(axes[0])
    axes[1].set(xlabel="epoch", ylim=(floor, 1), title=f"validation Dice, {what}",
                ylabel="Dice" + (f" (axis from {floor:.1f})" if floor > 0 else ""))
    for ax in axes:
        ax.legend()
    whole_epochs(*axes)
    if title:
        fig.suptitle(title)
    return fig
