"""The attention gates' maps in pictures (chapter 8): each gate's coefficients α coloured over
a faint FLAIR, inside the head only, with the true tumour's outline drawn on top, so that where
α is high and where the tumour lies can be told apart (over a full-strength FLAIR, the bright
tumour showed through low α as if the gate passed it). The outline is a white line edged in
black on both sides, seen on the map's darkest and palest colours and by every eye (a cyan
line vanished on the pale yellow, for a colour-blind reader too): a drawn line in figures, and
in the slider's pictures pixels of a grid twice as fine as the slice's.
:func:`show_attention` draws one slice's gates as a figure; :func:`attention_slider` every
slice and gate as a static slider."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from unet_lib.attention import attention_inside_outside, brain_mask
from unet_lib.inference import mask_on_grid
from unet_lib.metrics import to_regions
from unet_lib.outlines import surface

from .frames import as_numpy, figure_pixels, grey_picture, mask_to_rgb, no_ticks
from .mask_colours import colours_in_words

#: the smallest range of attention coefficients that ``stretch`` spreads over the colour map
MIN_STRETCH = 0.05
#: the colour's share over FLAIR: FLAIR stays faint, so that its bright tumour is not read as α
OVERLAY_ALPHA = 0.8
#: the true tumour's (WT) outline over the maps: a white line ...
OUTLINE_COLOUR = (1.0, 1.0, 1.0)
#: ... edged in black on both sides, so that it shows where α is dark and where it is pale
HALO_COLOUR = (0.0, 0.0, 0.0)
#: a picture with an outline is drawn this many times the slice's size (each pixel a block),
#: so that the line and its edges take part of a pixel, not whole pixels of the map
OUTLINE_SCALE = 2


class Outline(NamedTuple):
    """Where a tumour's outline is drawn, on a grid :data:`OUTLINE_SCALE` times finer than
    the slice's (S = OUTLINE_SCALE): ``line`` (S·H, S·W) bool, the tumour's edge, in
    :data:`OUTLINE_COLOUR`; ``halo`` (S·H, S·W) bool, the pixels around the line, inside and
    outside the tumour, in :data:`HALO_COLOUR`."""

    line: np.ndarray
    halo: np.ndarray


def stretched(attention) -> bool:
    """Whether a map's range is wide enough (:data:`MIN_STRETCH`) to stretch its colours."""
    values = as_numpy(attention)
    return float(values.max() - values.min()) >= MIN_STRETCH


def head_values(attention, brain=None) -> np.ndarray:
    """The coefficients of a gate's map (h, w) that lie inside the head: ``brain`` (H, W)
    bool (:func:`unet_lib.attention.brain_mask`) taken to the map's grid by nearest pixel;
    all of them when ``brain`` is ``None`` or empty. Their range is what a picture drawn
    inside the head stretches its colours over, and what its title and colour bar give."""
    values = torch.as_tensor(as_numpy(attention), dtype=torch.float32)
    values = values.reshape(values.shape[-2:])
    if brain is None or not bool(torch.as_tensor(as_numpy(brain)).any()):
        return values.flatten().numpy()
    head = mask_on_grid(torch.as_tensor(as_numpy(brain)), values.shape)
    return values[head].numpy() if head.any() else values.flatten().numpy()


def tumour_outline(target) -> Outline:
    """The outline of the whole tumour (WT) of a (3, H, W) label mask, on the finer grid: the
    edge (:func:`unet_lib.outlines.surface`) of the tumour enlarged :data:`OUTLINE_SCALE`
    times, and the pixels that touch it (by a side or a corner) on either side."""
    from scipy import ndimage

    line = surface(_enlarged(whole_tumour(target)))
    return Outline(line, ndimage.binary_dilation(line, np.ones((3, 3), bool)) & ~line)


def whole_tumour(target) -> np.ndarray:
    """The whole tumour (WT) of a (3, H, W) label mask: (H, W) bool."""
    return to_regions(torch.as_tensor(as_numpy(target))[None] > 0.5)[0, 0].numpy()


def outline_on(ax, tumour: np.ndarray | None) -> None:
    """Draw ``tumour``'s outline ((H, W) bool, :func:`whole_tumour`) over a picture of the
    slice on ``ax`` as a line, white on a black stroke: a figure is shown smaller or larger
    than its pixels, and a line stays sharp where one drawn into the pixels would blur."""
    if tumour is None or not tumour.any():
        return
    from matplotlib import patheffects

    ax.contour(tumour.astype(float), levels=[0.5], colors=[OUTLINE_COLOUR], linewidths=1.0,
               path_effects=[patheffects.withStroke(linewidth=2.8, foreground=HALO_COLOUR)])


def draw_outline(picture: np.ndarray, outline: Outline) -> np.ndarray:
    """``picture`` (H, W, 3) enlarged :data:`OUTLINE_SCALE` times, with ``outline``
    (:func:`tumour_outline` of the same slice) drawn on it: (S·H, S·W, 3).

    Raises:
        TypeError: ``outline`` is not an :class:`Outline` (a bool mask of the edge, say).
        ValueError: it was found for a slice of another size.
    """
    if not isinstance(outline, Outline):
        raise TypeError(f"outline must be an Outline, as tumour_outline(target) gives, got "
                        f"{type(outline).__name__}")
    fine = _enlarged(picture)
    if fine.shape[:2] != outline.line.shape:
        raise ValueError(f"the outline was found for a {_slice_size(outline.line)} slice, "
                         f"the picture is {picture.shape[0]}×{picture.shape[1]}")
    fine[outline.halo] = HALO_COLOUR
    fine[outline.line] = OUTLINE_COLOUR
    return fine


def _enlarged(picture: np.ndarray) -> np.ndarray:
    """(H, W, ...) → (S·H, S·W, ...): each pixel an S × S block (S = OUTLINE_SCALE)."""
    return np.repeat(np.repeat(picture, OUTLINE_SCALE, axis=0), OUTLINE_SCALE, axis=1)


def _slice_size(fine: np.ndarray) -> str:
    return f"{fine.shape[0] // OUTLINE_SCALE}×{fine.shape[1] // OUTLINE_SCALE}"


def attention_overlay(channel, attention, alpha: float = OVERLAY_ALPHA, stretch: bool = False,
                      brain=None, outline=None) -> np.ndarray:
    """A gate's coefficients (h, w), upsampled bilinearly to the (H, W) channel's size and
    blended over it with the ``inferno`` colour map → (H, W, 3) RGB in [0, 1].

    ``stretch`` maps the coefficients' own min…max (rather than 0…1) to the colour map when
    they span at least :data:`MIN_STRETCH`; a flatter map is drawn on the 0…1 scale, so that
    noise is not blown up into a pattern. ``brain`` (H, W) bool
    (:func:`unet_lib.attention.brain_mask`): colour only the head; the air around it stays
    black (blended over black, a bright colour would look like a dim one). ``outline``
    (:func:`tumour_outline`): drawn on top (:func:`draw_outline`), in a picture
    :data:`OUTLINE_SCALE` times as large."""
    import torch.nn.functional as F

    grey = grey_picture(channel)
    attention = torch.as_tensor(as_numpy(attention), dtype=torch.float32)
    attention = attention.reshape(1, 1, *attention.shape[-2:])
    up = F.interpolate(attention, size=grey.shape, mode="bilinear", align_corners=False)
    up = up[0, 0].clamp(0, 1)
    shown = head_values(attention, brain)  # the colours' range: the pixels drawn
    if stretched(shown) and stretch:
        low, high = float(shown.min()), float(shown.max())
        up = (up - low) / (high - low)
    colours = matplotlib.colormaps["inferno"](up.clamp(0, 1).numpy())[..., :3]
    picture = (1 - alpha) * grey[..., None] + alpha * colours
    if brain is not None:
        picture = np.where(as_numpy(brain).astype(bool)[..., None], picture, grey[..., None])
    return picture if outline is None else draw_outline(picture, outline)


def colour_key(low: float, high: float, width: int = 200) -> np.ndarray:
    """The attention overlays' colour key as a (h, ``width``, 3) picture: the colour map from
    ``low`` (left) to ``high`` (right), each written under its end, blended over mid-grey as
    the overlays are blended over FLAIR."""
    strip = ((1 - OVERLAY_ALPHA) * 0.5
             + OVERLAY_ALPHA * matplotlib.colormaps["inferno"](np.linspace(0, 1, 128))[:, :3])
    fig = Figure(figsize=(width / 100, 0.55), dpi=100)
    ax = fig.add_axes((0.03, 0.5, 0.94, 0.45))
    ax.imshow(strip[None], aspect="auto")
    ax.set_axis_off()
    for x, value, side in ((0.03, low, "left"), (0.97, high, "right")):
        fig.text(x, 0.04, f"{value:.2f}", ha=side, va="bottom", fontsize=11)
    return figure_pixels(fig)


def show_attention(image, maps: Sequence, title: str | None = None, *, target=None,
                   stretch: bool = True) -> Figure:
    """Attention coefficients of each gate over the input's FLAIR channel.

    The top row draws every map on one 0…1 scale, so that the gates can be compared: the
    brighter, the more of the skip passes. With ``stretch`` a second row draws each map
    stretched over its own range inside the head (its title and colour bar give it): a gate may
    vary by a few hundredths over the brain, a pattern the common scale hides. A map spanning
    less than :data:`MIN_STRETCH` stays on 0…1 there too.

    Args:
        image: (4, H, W) input slice.
        maps: the gates' maps for this slice, each (1, h, w) or (h, w): slice ``i`` of each
            (N, 1, h, w) map that ``model(x, return_attention=True)`` returns for an Attention
            U-Net (deepest gate first).
        target: the slice's (3, H, W) label mask: the whole tumour's outline is drawn over
            FLAIR and every map (white, edged in black: :func:`outline_on`).

    Returns:
        The figure; its axes are the panels row by row (FLAIR first), then the colour bars.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    image = as_numpy(image)
    head = brain_mask(image)
    tumour = None if target is None else whole_tumour(target)
    rows, columns = 1 + bool(stretch), len(maps) + 1
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 3.4 * rows + 0.7),
                             constrained_layout=True, squeeze=False)
    if title:
        fig.suptitle(title)
    axes[0, 0].imshow(grey_picture(image[0]), cmap="gray", vmin=0, vmax=1)
    outline_on(axes[0, 0], tumour)
    axes[0, 0].set_title("FLAIR")
    for column, attention in enumerate(maps, start=1):
        values = as_numpy(attention).reshape(np.shape(attention)[-2:])
        h, w = values.shape
        inside = head_values(values, head)  # the pixels drawn: their range is the titles'
        axes[0, column].imshow(attention_overlay(image[0], values, stretch=False, brain=head))
        outline_on(axes[0, column], tumour)
        axes[0, column].set_title(f"gate at {h}×{w}\nα {inside.min():.2f} – {inside.max():.2f}")
        if stretch:
            spread = stretched(inside)
            axes[1, column].imshow(attention_overlay(image[0], values, stretch=True, brain=head))
            outline_on(axes[1, column], tumour)
            axes[1, column].set_title("stretched" if spread else "flat: 0…1 scale")
            scale = (Normalize(float(inside.min()), float(inside.max())) if spread
                     else Normalize(0, 1))
            bar = fig.colorbar(ScalarMappable(scale, "inferno"), ax=axes[1, column],
                               orientation="horizontal", fraction=0.06, pad=0.03)
            bar.ax.tick_params(labelsize="small")
            # three ticks at most, none at the ends, where they would meet the next bar's
            bar.locator = MaxNLocator(nbins=3, prune="both")
    # under the whole row: a bar under part of a row upsets constrained layout's margins
    common = fig.colorbar(ScalarMappable(Normalize(0, 1), "inferno"), ax=axes[0, :],
                          orientation="horizontal", fraction=0.06, pad=0.03, aspect=70)
    common.set_label("α on one scale for every gate (0: suppressed, 1: passed)"
                     + ("; white line edged in black: the true tumour's outline"
                        if tumour is not None else ""), labelpad=2)
    if stretch:
        axes[1, 0].axis("off")
        axes[1, 0].text(0, 0.5, "this row: each map\nstretched over its\nown range inside\n"
                        "the head (its bar),\nfor the pattern\nwithin one gate", va="center")
    no_ticks(axes)
    return fig


def gate_names(maps: Sequence) -> list[str]:
    """The gates' names on the slider: each map's size, ``"12×12 (deepest)"`` for the
    coarsest, ``"96×96 (shallowest)"`` for the finest, by their sizes whatever their order
    (no word where all are one size)."""
    areas = [m.shape[-2] * m.shape[-1] for m in maps]
    words = {} if min(areas) == max(areas) else {areas.index(min(areas)): " (deepest)",
                                                  areas.index(max(areas)): " (shallowest)"}
    return [f"{m.shape[-2]}×{m.shape[-1]}{words.get(g, '')}" for g, m in enumerate(maps)]


def attention_slider(images, targets, maps: Sequence, names: Sequence[str],
                     title: str | None = None, start_gate: int = -1):
    """A static slider over slices and gate levels: FLAIR, the ground truth, and one gate's
    attention coefficients over FLAIR with the whole tumour's outline, and the mean
    coefficient inside and outside the whole tumour in the caption.

    Args:
        images: (N, 4, H, W); targets: (N, 3, H, W);
        maps: one (N, 1, h, w) tensor per gate, deepest first (as the model returns them);
        names: N slice labels.
        start_gate: the gate shown first (index into ``maps``; default the last,
            full-resolution one).
    """
    from .slider import ImageSlider

    images, targets = torch.as_tensor(as_numpy(images)), torch.as_tensor(as_numpy(targets))
    maps = [torch.as_tensor(as_numpy(m)) for m in maps]
    levels = gate_names(maps)
    heads = [brain_mask(image) for image in images]  # each slice's once, for every gate
    outlines = [tumour_outline(target) for target in targets]  # each slice's once
    head_values_at = {}

    def shown_values(position):  # the α drawn (inside the head), for the key and the caption
        if position not in head_values_at:
            i, g = position
            head_values_at[position] = head_values(maps[g][i], heads[i])
        return head_values_at[position]

    def pictures(position):
        i, g = position
        shown = shown_values(position)
        low, high = (shown.min(), shown.max()) if stretched(shown) else (0.0, 1.0)
        return [grey_picture(images[i, 0]), mask_to_rgb(targets[i]),
                attention_overlay(images[i, 0], maps[g][i], stretch=True, brain=heads[i],
                                  outline=outlines[i]),
                colour_key(low, high)]

    def caption(position):
        i, g = position
        inside, outside = attention_inside_outside(maps[g][i], targets[i], heads[i])
        shown = shown_values(position)
        scale = ("colours stretched to this range" if stretched(shown)
                 else "too flat to stretch: colours on the 0…1 scale")
        return (f"{names[i]}; gate at {levels[g]}: α in the head from {shown.min():.2f} to "
                f"{shown.max():.2f} ({scale}); mean inside the tumour {inside:.3f}, "
                f"in the rest of the brain {outside:.3f}")

    return ImageSlider({"slice": list(names), "gate": levels},
                       ["FLAIR", "ground truth", "attention α over FLAIR",
                        "colour key: α"],
                       pictures, caption, title=title, start=(0, start_gate % len(maps)),
                       note=f"ground truth: {colours_in_words(mixes=False)}. α over a faint "
                            "FLAIR, inside the head: near-black = the map's lowest α, yellow = "
                            "its highest (the key gives both: a stretched map's darkest may "
                            "still pass half the skip); white line edged in black: the true "
                            "tumour's outline")
