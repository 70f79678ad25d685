"""One slice in pictures: its four modalities, a prediction beside the ground truth (one
model's, or several models' side by side), and the key to the masks' colours. Every function
returns a ``Figure``.

Masks are shown as RGB images: red = NCR/NET, green = ED, blue = ET (the three label channels
in order), so overlapping predictions mix colours; :func:`~unet_course.viz.use_palette`
``("colour-blind")`` swaps them for colours whose every mix stays apart for a colour-blind eye
(:mod:`unet_course.viz.mask_colours`). Images are channels-first tensors or arrays
as the datasets yield them: image (4, H, W), mask or probabilities (3, H, W).
"""

from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from unet_lib.data.brats import MASK_CHANNELS, MODALITIES

from .frames import (as_numpy, grey_picture, legend_handles, mask_to_rgb, no_ticks,
                     overlap_caption)
from .mask_colours import colours_in_words, mask_combinations, palette_name


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


def compare_models(images, targets, probs_by_model: dict, names: Sequence[str],
                   threshold: float = 0.5, notes: Sequence[str] | None = None) -> Figure:
    """The same slices predicted by several models: a row per slice with FLAIR, the ground
    truth and each model's prediction binarized at ``threshold`` (in the palette in use: in the
    slides', red NCR/NET, green ED, blue ET), each captioned with its Dice of the regions
    WT/TC/ET on that slice.

    Args:
        images: (N, 4, H, W); targets: (N, 3, H, W) binary.
        probs_by_model: ``{model name: (N, 3, H, W) probabilities}``.
        names: a title per slice (e.g. ``"volume 3, slice 12"``).
        notes: an optional line per slice under its name (e.g. what went wrong).
    """
    from unet_lib.metrics import binarize

    from ..examples import slice_scores

    rows, columns = len(names), 2 + len(probs_by_model)
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.45 * rows),
                             constrained_layout=True, squeeze=False)
    for row in range(rows):
        line = axes[row]
        line[0].imshow(grey_picture(as_numpy(images[row])[0]), cmap="gray", vmin=0, vmax=1)
        line[1].imshow(mask_to_rgb(targets[row]))
        line[0].set_ylabel(names[row], fontsize="small")
        if notes and notes[row]:  # under the picture, wrapped to the width of the first two
            line[0].set_xlabel(textwrap.fill(notes[row], 44), fontsize="small", loc="left")
        for ax, (model, probs) in zip(line[2:], probs_by_model.items()):
            probs_row = torch.as_tensor(as_numpy(probs[row]))
            scores = slice_scores(probs_row, torch.as_tensor(as_numpy(targets[row])), threshold)
            ax.imshow(mask_to_rgb(binarize(probs_row, threshold, logits=False)))
            ax.set_xlabel("WT {WT:.2f} TC {TC:.2f} ET {ET:.2f}".format(**scores))
            if row == 0:
                ax.set_title(model)
    axes[0, 0].set_title("FLAIR")
    axes[0, 1].set_title("ground truth")
    no_ticks(axes)
    fig.legend(handles=legend_handles(),
               loc="outside lower center", ncols=3, fontsize="small")
    return fig
