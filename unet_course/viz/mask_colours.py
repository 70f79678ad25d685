"""The colours of the masks in every picture of the course: one colour per channel (NCR/NET,
ED, ET), added where channels overlap.

Two palettes:

* ``"slides"`` (the default): red, green and blue, as on the course's slides, so that a pixel's
  (r, g, b) *are* its three values. Single labels stay apart for a red-green colour-blind eye,
  but not every mix: under protanopia the smallest difference between two of the eight
  combinations is ΔE76 8.3 (CIELAB): ED and NCR/NET + ED look alike, and ED + ET and all three.
* ``"colour-blind"`` (or ``"color-blind"``): a raspberry red, a green and a bright blue chosen
  so that all eight combinations, mixed the same way, stay at least ΔE76 32 apart (CIELAB) for
  normal vision and for protanopia, deuteranopia and tritanopia alike (simulated as Machado et
  al. 2009, severity 1, in linear RGB). The mixes keep the slides' sense: red + green gives a
  tan, green + blue a sky blue, red + blue a lilac, all three white.

The palette is chosen in a notebook with :func:`use_palette`, or for every notebook (a
JupyterHub's spawner, ``make book``) with ``$UNET_COURSE_PALETTE``; a notebook's choice wins.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
from matplotlib.colors import to_rgb

PALETTE_VARIABLE = "UNET_COURSE_PALETTE"

#: each palette's colours of NCR/NET, ED and ET
PALETTES = {"slides": ("#ff0000", "#00ff00", "#0000ff"),
            "colour-blind": ("#a6326f", "#72932b", "#0d3bfa")}

#: other spellings of the palettes' names
ALIASES = {"color-blind": "colour-blind"}

#: each palette's colours in words, by the channels mixed (0 NCR/NET, 1 ED, 2 ET)
COLOUR_NAMES = {
    "slides": {(0,): "red", (1,): "green", (2,): "blue", (0, 1): "yellow", (0, 2): "magenta",
               (1, 2): "cyan", (0, 1, 2): "white"},
    "colour-blind": {(0,): "raspberry", (1,): "green", (2,): "bright blue", (0, 1): "tan",
                     (0, 2): "lilac", (1, 2): "sky blue", (0, 1, 2): "white"}}

_chosen: str | None = None  # set by use_palette, for this Python process


def _checked(name: str, source: str) -> str:
    """``name`` as a key of :data:`PALETTES` (an alias resolved); a name that is none of them
    is refused with the choices, ``source`` saying where it came from."""
    name = ALIASES.get(name, name)
    if name not in PALETTES:
        raise ValueError(f"{source} = {name!r}: choose one of "
                         f"{', '.join(repr(p) for p in PALETTES)}")
    return name


def use_palette(name: str | None) -> None:
    """Draw every mask from now on in palette ``name`` (``"slides"`` or ``"colour-blind"``);
    ``None`` goes back to ``$UNET_COURSE_PALETTE``, or the slides' colours without it."""
    global _chosen
    _chosen = None if name is None else _checked(name, "palette")


def palette_name() -> str:
    """The palette in use: :func:`use_palette`'s, else ``$UNET_COURSE_PALETTE``'s, else
    ``"slides"``."""
    if _chosen is not None:
        return _chosen
    from_environment = os.environ.get(PALETTE_VARIABLE)
    if from_environment:
        return _checked(from_environment, f"${PALETTE_VARIABLE}")
    return "slides"


def channel_colours(palette: str | None = None) -> tuple[str, str, str]:
    """The colours (``"#rrggbb"``) of NCR/NET, ED and ET in ``palette`` (default: the one in
    use)."""
    return PALETTES[_checked(palette, "palette") if palette else palette_name()]


def colours_in_words(palette: str | None = None, mixes: bool = True) -> str:
    """``"red NCR/NET · green ED · blue ET (overlaps mix: red + green = yellow, …)"``: the
    colours of ``palette`` (default: the one in use), for a caption; ``mixes=False`` leaves
    the overlaps out (a ground truth has none)."""
    names = COLOUR_NAMES[_checked(palette, "palette") if palette else palette_name()]
    channels = f"{names[0,]} NCR/NET · {names[1,]} ED · {names[2,]} ET"
    if not mixes:
        return channels
    pairs = ", ".join(f"{names[a,]} + {names[b,]} = {names[a, b]}"
                      for a, b in ((0, 1), (1, 2), (0, 2)))
    return f"{channels} (overlaps mix: {pairs}, all three {names[0, 1, 2]})"


def mask_to_rgb(mask, palette: str | None = None) -> np.ndarray:
    """(3, H, W) mask or probabilities in [0, 1] (a tensor on any device, or an array) →
    (H, W, 3) float32 RGB picture: each channel's
    colour weighted by its value, the three added and clipped to [0, 1]. In the slides'
    palette the picture's (r, g, b) are the mask's three values."""
    import torch

    if isinstance(mask, torch.Tensor):
        mask = mask.detach().float().cpu().numpy()
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 3 or mask.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) mask, got shape {mask.shape}")
    colours = np.array([to_rgb(c) for c in channel_colours(palette)], dtype=np.float32)
    mixed = np.einsum("chw,ck->hwk", np.clip(mask, 0, 1), colours)  # (H, W, 3)
    return np.clip(mixed, 0, 1)


def mask_combinations(palette: str | None = None
                      ) -> list[tuple[str, tuple[float, float, float]]]:
    """The eight ways a binarized pixel can be marked, each named (``"none"``, ``"NCR/NET"``,
    ``"NCR/NET + ED"``, …, ``"all three"``) with its colour (r, g, b) in ``palette``: no
    channel first, then one, two and three channels."""
    from unet_lib.data.brats import MASK_CHANNELS

    rows = []
    for count in range(4):
        for marked in itertools.combinations(range(3), count):
            mask = np.zeros((3, 1, 1), dtype=np.float32)
            mask[list(marked)] = 1
            name = ("none" if count == 0 else "all three" if count == 3 else
                    " + ".join(MASK_CHANNELS[c] for c in marked))
            rows.append((name, tuple(float(v) for v in mask_to_rgb(mask, palette)[0, 0])))
    return rows
