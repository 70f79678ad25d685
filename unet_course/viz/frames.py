"""Pictures as arrays, for the static sliders (:mod:`unet_course.viz.slider`): masks in RGB, grey
modalities and the square that holds the head, the chapters' styles, chapter 5's threshold
slider and how it writes a score, and what the figures share (no ticks, a score axis's floor,
a label placed clear of a figure's curves). The figures (matplotlib) that use them are in
the other modules of :mod:`unet_course.viz`."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from matplotlib.path import Path
from matplotlib.text import Text

from .mask_colours import channel_colours, colours_in_words, mask_to_rgb

#: curve colours of the channels and regions, from the slides' mask colours (whatever the
#: palette of the masks): a channel its own colour (red
#: NCR/NET, green ED, blue ET), the tumour core (NCR/NET + ET) red + blue = purple, the whole
#: tumour black (the loss curves' black and grey are drawn in a panel of their own)
REGION_COLOURS = {"NCR/NET": "tab:red", "ED": "tab:green", "ET": "tab:blue", "TC": "tab:purple",
                  "WT": "black"}
#: and a marker and line of their own, so that no curve is told apart by colour alone (TC
#: and ET look alike to a red-green colour-blind eye)
REGION_STYLES = {"WT": dict(marker="o", ls="-"), "TC": dict(marker="s", ls="--"),
                 "ET": dict(marker="^", ls="-."), "NCR/NET": dict(marker="D", ls=":"),
                 "ED": dict(marker="v", ls=(0, (6, 2)))}
#: the same for the models, whose curves take matplotlib's colour cycle
MODEL_STYLES = {"classic": dict(marker="o", ls="-"), "improved": dict(marker="s", ls="--"),
                "attention": dict(marker="^", ls="-.")}


#: a curve of another name: crosses on a dotted line, like none of the above
OTHER_STYLE = dict(marker="x", ls=(0, (1, 1)))


def region_style(name: str) -> dict:
    """Colour, marker and line of channel or region ``name``'s curves."""
    return {"color": REGION_COLOURS.get(name), **REGION_STYLES.get(name, OTHER_STYLE)}


def model_style(name: str) -> dict:
    """Marker and line of model ``name``'s curves: ``"classic"``, ``"Classic U-Net"`` and
    ``"improved-nchw-depthwise"`` take their model's."""
    return MODEL_STYLES.get(name.lower().replace("-", " ").split(" ")[0], OTHER_STYLE)


#: the loss curves: training dashed with hollow dots, validation solid with squares
LOSS_STYLES = {"training": dict(color="0.35", ls="--", marker="o", mfc="none"),
               "validation": dict(color="black", ls="-", marker="s")}


def legend_handles() -> list:
    """Legend entries for the masks, in the palette in use: NCR/NET, ED, ET (red, green, blue
    in the slides')."""
    from matplotlib.patches import Patch

    from unet_lib.data.brats import MASK_CHANNELS

    return [Patch(color=c, label=n) for c, n in zip(channel_colours(), MASK_CHANNELS)]


def as_numpy(x) -> np.ndarray:
    """A tensor (any device, any float dtype) or array-like as a NumPy array."""
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def no_ticks(axes) -> None:
    """Take the ticks off every axes in ``axes`` (one, or an array of them): pictures, not
    plots, whose pixel numbers say nothing."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def head_window(flair: np.ndarray, margin: int = 2, holding=None) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``: the smallest square of a (D, H, W) volume's slices that
    holds the head on every slice (the pixels above that slice's background value), with
    ``margin`` pixels around it, inside the slice; the whole slice where none does, or where
    a pixel of ``holding`` ((N, 2) rows and columns of what a picture must show) lies outside
    the head's square."""
    flair = np.asarray(flair)
    whole = (0, flair.shape[1], 0, flair.shape[2])
    head = flair > flair.min(axis=(1, 2), keepdims=True)  # each slice's own background
    if not head.any():
        return whole
    rows, cols = np.flatnonzero(head.any(axis=(0, 2))), np.flatnonzero(head.any(axis=(0, 1)))
    side = min(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 + 2 * margin,
               *head.shape[1:])
    top = int(np.clip((rows[0] + rows[-1] + 1 - side) // 2, 0, head.shape[1] - side))
    left = int(np.clip((cols[0] + cols[-1] + 1 - side) // 2, 0, head.shape[2] - side))
    inside = np.empty((0, 2), int) if holding is None else np.asarray(holding).reshape(-1, 2)
    if ((inside < (top, left)) | (inside >= (top + side, left + side))).any():
        return whole
    return top, top + side, left, left + side


def shown_on_slider(value: float) -> str:
    """A score as the threshold slider's caption writes it (2 decimals)."""
    return f"{value:.2f}"


def grey_picture(channel) -> np.ndarray:
    """(H, W) MRI channel → (H, W) grey levels in [0, 1], clipped at the 1st/99.5th
    percentile of the non-background pixels (the z-scored background is the minimum)."""
    channel = as_numpy(channel).astype(np.float32)
    inside = channel[channel > channel.min()]
    if inside.size == 0:
        return np.zeros_like(channel)
    low, high = np.percentile(inside, [1, 99.5])
    return np.clip((channel - low) / max(high - low, 1e-6), 0, 1)


def _dice_caption(binary: torch.Tensor, target: torch.Tensor) -> str:
    """``"WT 0.91, TC 0.84, ET 0.77"``: the regions' Dice of one binarized (3, H, W) slice."""
    from ..examples import slice_scores

    return ", ".join(f"{name} {shown_on_slider(value)}"
                     for name, value in slice_scores(binary, target).items())


def overlap_caption(binary) -> str:
    """``"in two channels: NCR/NET+ED 76 px, ED+ET 28 px"``: the pixels of a binarized
    (3, H, W) prediction marked in more than one channel, by which ones (the colours that
    mix in :func:`mask_to_rgb`, in words: a colour-blind eye cannot tell the slides' yellow
    from green there, nor cyan from white), or ``"no pixel in two channels"``."""
    from unet_lib.data.brats import MASK_CHANNELS

    values = as_numpy(binary)
    if values.ndim != 3 or values.shape[0] != 3 or not np.isin(values, (0, 1)).all():
        raise ValueError(f"expected a binarized (3, H, W) mask of 0s and 1s, got shape "
                         f"{values.shape}: binarize probabilities first "
                         f"(unet_lib.metrics.binarize)")
    on = values.astype(bool)
    pairs = [(f"{MASK_CHANNELS[a]}+{MASK_CHANNELS[b]}", on[a] & on[b] & ~on[3 - a - b])
             for a, b in ((0, 1), (1, 2), (0, 2))]
    two = [f"{name} {int(both.sum())} px" for name, both in pairs if both.any()]
    three = int(on.all(0).sum())
    parts = ([f"in two channels: {', '.join(two)}"] if two else []) + (
        [f"in all three: {three} px"] if three else [])
    return "; ".join(parts) or "no pixel in two channels"


#: the threshold slider's positions, 0.05 to 0.95 by 0.05 (chapters 5 and 6 sweep the same)
SLIDER_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))


def threshold_slider(images, targets, probs, names: Sequence[str],
                     thresholds: Sequence[float] = SLIDER_THRESHOLDS,
                     start_threshold: float = 0.5, title: str | None = None):
    """A static :class:`~unet_course.viz.slider.ImageSlider` over slices and thresholds: FLAIR,
    ground truth, probabilities as RGB, and the prediction binarized at the chosen threshold,
    with the Dice of each region (WT, TC, ET) in the caption.

    Args:
        images: (N, 4, H, W) inputs; targets: (N, 3, H, W) binary masks;
        probs: (N, 3, H, W) predicted probabilities; names: N slice labels.
        thresholds: the slider's positions (19 from 0.05 to 0.95 by default).
        start_threshold: the slider's first position (the closest of ``thresholds``).
    """
    from unet_lib.metrics import binarize
    from .slider import ImageSlider

    images, targets, probs = (torch.as_tensor(as_numpy(x)) for x in (images, targets, probs))
    if not len(images) == len(targets) == len(probs) == len(names):
        raise ValueError(f"images, targets, probs and names must have the same length, got "
                         f"{len(images)}, {len(targets)}, {len(probs)} and {len(names)}")
    thresholds = [float(t) for t in thresholds]
    if any(not 0 <= t <= 1 for t in thresholds):
        raise ValueError(f"thresholds must lie in [0, 1], got {thresholds}")
    start = int(np.argmin([abs(t - start_threshold) for t in thresholds]))
    binary = {}

    def binarized(position):
        if position not in binary:
            i, j = position
            binary[position] = binarize(probs[i], thresholds[j], logits=False)
        return binary[position]

    def pictures(position):
        i, _ = position
        return [grey_picture(images[i, 0]), mask_to_rgb(targets[i]), mask_to_rgb(probs[i]),
                mask_to_rgb(binarized(position))]

    def caption(position):
        i, j = position
        return (f"{names[i]}; threshold {thresholds[j]:.2f}: Dice "
                f"{_dice_caption(binarized(position), targets[i])}; "
                f"{overlap_caption(binarized(position))}")

    return ImageSlider({"slice": list(names), "threshold": [f"{t:.2f}" for t in thresholds]},
                       ["FLAIR", "ground truth", "probabilities as RGB", "binarized"],
                       pictures, caption, start=(0, start), title=title, width=195,
                       note=colours_in_words())


def score_axis_floor(values) -> float:
    """Where an axis of scores in [0, 1] (Dice, precision, recall) starts: at 0 where any
    value is below 0.5, else at the tenth 0.05 to 0.15 below the lowest (0.86 → 0.8,
    0.65 → 0.6), so that values that all lie near 1 are told apart. NaNs (scores not drawn)
    are left out; with none left the axis starts at 0."""
    lowest = min((float(v) for v in values if not math.isnan(v)), default=0.0)
    return 0.0 if lowest < 0.5 else math.floor(round((lowest - 0.05) * 10, 9)) / 10


def label_log_axis(ax) -> None:
    """On ``ax``'s log-scale y axis, label the minor ticks at 2 and 5 times a power of ten only
    (matplotlib labels all eight where the axis spans less than two decades, and they crowd)."""
    from matplotlib.ticker import FuncFormatter

    def label(value, _) -> str:
        exponent = math.floor(math.log10(value))
        mantissa = round(value / 10 ** exponent)
        return rf"${mantissa}\times10^{{{exponent}}}$" if mantissa in (2, 5) else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(label))


def figure_pixels(fig) -> np.ndarray:
    """A matplotlib ``Figure`` (not pyplot's: nothing is shown) drawn as (H, W, 3) floats."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(np.float32) / 255


def place_clear_of_lines(label, ax, places) -> None:
    """Move ``label`` (an annotation in axes fraction) to the first of ``places`` (each
    ``((x, y), horizontal alignment)``) where its text crosses none of ``ax``'s lines as
    drawn (``steps-post`` curves as steps; dotted guides may be crossed) nor another text of
    ``ax``; to the first place when none is clear. Draws the figure once to learn the text's
    size."""
    renderer = ax.figure.canvas.get_renderer()
    ax.figure.draw(renderer)  # the constrained layout settles the axes first
    curves = []
    for line in ax.lines:
        if line.get_linestyle() == ":":  # a guide line: a label may cross it
            continue
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if line.get_drawstyle() == "steps-post":  # every corner of the steps
            x, y = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
        curves.append(Path(ax.transData.transform(np.column_stack([x, y]))))
    others = [Text.get_window_extent(text, renderer) for text in ax.texts if text is not label]
    for place, align in places:
        label.set_position(place)
        label.set_horizontalalignment(align)
        box = Text.get_window_extent(label, renderer).padded(6)  # the text, not its arrow
        if not any(curve.intersects_bbox(box, filled=False) for curve in curves) and not any(
                box.overlaps(other) for other in others):
            return
    label.set_position(places[0][0])
    label.set_horizontalalignment(places[0][1])
