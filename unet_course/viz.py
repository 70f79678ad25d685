"""The course's pictures, in plain matplotlib. Every function returns a ``Figure``.

Masks are shown as RGB images: red = NCR/NET, green = ED, blue = ET (the three label channels
in order), so overlapping predictions mix colours; :func:`use_palette` ``("colour-blind")``
swaps them for colours whose every mix stays apart for a colour-blind eye
(:mod:`unet_course.mask_colours`). Images are channels-first tensors or arrays
as the datasets yield them: image (4, H, W), mask or probabilities (3, H, W).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unet_lib.data.brats import MASK_CHANNELS, MODALITIES

from .comparisons import (compare_models, learning_pace, overfitting_verdict, plot_training,
                          slowest_learner, whole_epochs)
from .attention_pictures import (attention_overlay, attention_slider, head_values,
                                 show_attention, stretched)
from .frames import (LOSS_STYLES, SLIDER_THRESHOLDS, as_numpy, grey_picture,
                     label_log_axis, legend_handles, mask_to_rgb, model_style, no_ticks,
                     overlap_caption, records_of, region_style, score_axis_floor,
                     threshold_slider)
from .mask_colours import (channel_colours, colours_in_words, mask_combinations, palette_name,
                           use_palette)

__all__ = ["SLIDER_THRESHOLDS", "attention_overlay", "attention_slider",
           "channel_colours", "compare_models", "draw_unet", "grey_picture", "head_values",
           "learning_pace", "mask_to_rgb", "overfitting_verdict", "plot_histories", "plot_history",
           "plot_training", "score_axis_floor", "show_attention", "show_colour_key",
           "show_modalities", "show_prediction", "slowest_learner", "stretched", "threshold_slider",
           "use_palette"]


def show_modalities(image, mask=None, title: str | None = None) -> Figure:
    """The four MRI channels (FLAIR, T1, T1ce, T2) of one (4, H, W) slice, and its mask."""
    image = as_numpy(image)
    n = 4 + (mask is not None)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3.2), constrained_layout=True)
    for ax, channel, name in zip(axes, image, MODALITIES):
        ax.imshow(grey_picture(channel), cmap="gray", vmin=0, vmax=1)  # as the sliders show it
        ax.set_title(name)
    if mask is not None:
        axes[-1].imshow(mask_to_rgb(mask))
        axes[-1].set_title("mask")
        axes[-1].set_xlabel(colours_in_words(mixes=False).replace(" · ", "\n"),
                            fontsize="small")
    no_ticks(axes)
    if title:
        fig.suptitle(title)
    return fig


def show_prediction(image, target, probs, threshold: float | None = None,
                    title: str | None = None) -> Figure:
    """FLAIR, the ground-truth mask and the prediction as RGB, side by side.

    Args:
        image: (4, H, W) input slice (FLAIR is shown).
        target: (3, H, W) binary ground truth.
        probs: (3, H, W) predicted probabilities.
        threshold: if given, also show the prediction binarized at this probability.
    """
    from unet_lib.data.brats import REGIONS
    from unet_lib.metrics import binarize, dice, to_regions

    panels = [("FLAIR", grey_picture(as_numpy(image)[0]), None),
              ("ground truth", mask_to_rgb(target), None),
              ("prediction (probabilities)", mask_to_rgb(probs), None)]
    if threshold is not None:
        binary = binarize(torch.as_tensor(as_numpy(probs)), threshold, logits=False)
        truth = torch.as_tensor(as_numpy(target))[None]
        labels = dice(binary[None], truth).tolist()
        regions = dice(to_regions(binary[None]), to_regions(truth)).tolist()
        panels.append((f"binarized at {threshold:.2f}", mask_to_rgb(binary),
                       "Dice per label:\n" + ", ".join(f"{n} {v:.2f}" for n, v in
                                                       zip(MASK_CHANNELS, labels))
                       + "\nper region:\n" + ", ".join(f"{n} {v:.2f}" for n, v in
                                                       zip(REGIONS, regions))
                       # the mixed colours in words (a colour-blind eye cannot tell them),
                       # in lines no wider than the panel
                       + "\n" + "\n".join(textwrap.fill(part, 30) for part in
                                           overlap_caption(binary).split("; "))))
    # the binarized panel's lines of scores under it: room for them, not smaller pictures (a
    # figure too short for them let the layout give up, and the title covered the panels')
    lines = 0 if threshold is None else panels[-1][2].count("\n") + 1
    height = 3.6 + 0.3 * lines
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), height),
                             layout="compressed")
    for ax, (name, picture, caption) in zip(axes, panels):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1)  # FLAIR's grey levels; RGB masks
        ax.set_title(name, fontsize="medium")
        if caption:
            ax.set_xlabel(caption)
    # below the pictures, where it hides no pixel of the masks
    fig.legend(handles=legend_handles(), loc="outside lower center", ncols=3, fontsize="small",
               frameon=False)
    no_ticks(axes)
    if title:
        fig.suptitle(title)
    return fig


def show_colour_key(palette: str | None = None) -> Figure:
    """The eight colours a binarized mask's pixel can take in ``palette`` (default: the one in
    use), in two rows: no channel and each channel alone, then the mixes of two and of all
    three, each named under its swatch."""
    name = palette or palette_name()
    rows = mask_combinations(name)  # none, 3 singles, 3 pairs, all three
    fig, axes = plt.subplots(2, 4, figsize=(6.4, 3.4), layout="compressed")
    for ax, (label, colour) in zip(axes.flat, rows):
        ax.imshow(np.array(colour, dtype=np.float32)[None, None])
        ax.set_xlabel(label.replace(" + ", " +\n"), fontsize="medium")  # two lines: no overlap
        for spine in ax.spines.values():  # a frame, so that black and white swatches show
            spine.set_edgecolor("0.5")
    no_ticks(axes)
    fig.suptitle(f"Mask colours ({name} palette): a pixel in several channels\n"
                 "takes the sum of their colours", fontsize="medium")
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


def draw_unet(model, image_size: int = 240, title: str | None = None) -> Figure:
    """The U shape of ``model``: one box per encoder/decoder level, labelled with its
    channels and size, arrows for max-pool (down), transposed convolution (up) and skips
    (``concat``, ``add``, or ``gate`` for attention)."""
    from unet_lib.summary import level_table

    rows = {row["stage"]: row for row in level_table(model, image_size)}
    depth = model.depth
    fig, ax = plt.subplots(figsize=(11, 4.6), constrained_layout=True)
    boxes = {}
    for level in range(depth + 1):
        name = "bottleneck" if level == depth else f"encoder {level}"
        boxes[("enc", level)] = (level, -level, rows[name]["shape"])
        if level < depth:
            boxes[("dec", level)] = (2 * depth - level, -level, rows[f"decoder {level}"]["shape"])
    for (kind, level), (x, y, (c, h, w)) in boxes.items():
        colour = "#f0b27a" if level == depth else ("#aed6f1" if kind == "enc" else "#a9dfbf")
        ax.add_patch(plt.Rectangle((x - 0.42, y - 0.3), 0.84, 0.6, color=colour, ec="k"))
        ax.text(x, y, f"{c} ch\n{h}×{w}", ha="center", va="center", fontsize=11)
    skip = "gate" if model.attention else ("add" if model.additive_skips else "concat")
    arrow = dict(arrowstyle="->", lw=1.5)
    for level in range(depth):
        ax.annotate("", xy=(level + 1, -level - 1 + 0.3), xytext=(level, -level - 0.3),
                    arrowprops=dict(arrow, color="#c0392b"))
        ax.annotate("", xy=(2 * depth - level, -level - 0.3),
                    xytext=(2 * depth - level - 1, -level - 1 + 0.3),
                    arrowprops=dict(arrow, color="#27ae60"))
        ax.annotate("", xy=(2 * depth - level - 0.42, -level), xytext=(level + 0.42, -level),
                    arrowprops=dict(arrow, color="grey", ls="--"))
        if model.attention:  # the gate on the skip, driven by the coarser decoder level (g)
            gate_x = 2 * depth - level - 1
            ax.annotate("", xy=(gate_x, -level - 0.1), xytext=(gate_x, -level - 1 + 0.3),
                        arrowprops=dict(arrow, color="#8e44ad", ls=":"))
            ax.plot(gate_x, -level, marker="D", ms=9, color="#8e44ad")
            ax.text(gate_x + 0.06, -level - 0.5, "g", color="#8e44ad", fontsize=11)
            if level == 0:  # the deeper skips are too short for the words
                ax.text(depth, 0.08, "skip → gate → concat", ha="center", va="bottom",
                        color="grey", fontsize=11)
        else:
            ax.text(depth, -level + 0.08, skip, ha="center", va="bottom", color="grey",
                    fontsize=11)
    ax.text(0, 0.55, f"input {model.in_channels} ch", ha="center")
    ax.text(2 * depth, 0.55, f"1×1 head → {model.out_channels} ch", ha="center")
    handles = [Patch(fc="#aed6f1", ec="k", label="encoder level"),
               Patch(fc="#f0b27a", ec="k", label="bottleneck"),
               Patch(fc="#a9dfbf", ec="k", label="decoder level"),
               Patch(color="#c0392b", label="2×2 max-pool"),
               Patch(color="#27ae60", label="2×2 transposed conv"),
               Patch(color="grey", label=f"skip ({skip})")]
    if model.attention:
        handles.append(Patch(color="#8e44ad", label="attention gate, gated by the level below (g)"))
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.set_xlim(-0.7, 2 * depth + 0.7)
    ax.set_ylim(-depth - 0.6, 0.9)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig


def plot_histories(histories: dict, metric: str = "mean", title: str | None = None,
                   chosen: dict | None = None) -> Figure:
    """Validation loss and validation Dice per epoch, for several models: ``{name: History or
    records}``. ``metric``: ``"mean"``, the mean Dice over WT, TC and ET on which ``fit`` keeps
    its best epoch (:func:`unet_lib.metrics.regions_mean_dice`), or one channel or region.
    ``chosen`` (``{name: epoch}``) marks each model's kept epoch with a hollow ring of its
    colour on both curves. Where every value is above 0.5, the Dice axis starts below the
    lowest (:func:`~unet_course.frames.score_axis_floor`) and says where: curves that all lie
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

