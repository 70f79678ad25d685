"""Learning curves: one run's loss and validation Dice per epoch (:func:`plot_history`),
several models' side by side (:func:`plot_training`) or on shared axes
(:func:`plot_histories`). What the book reads off them, in words, is
:mod:`unet_course.readings.curves`."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from unet_lib.data import REGIONS

from ..readings.curves import records_of
from .frames import LOSS_STYLES, label_log_axis, model_style, region_style, score_axis_floor


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
