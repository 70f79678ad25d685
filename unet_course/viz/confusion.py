"""Where Dice, precision and recall come from on one slice: each pixel of a region found (true
positive), marked wrongly (false positive) or missed (false negative), drawn on FLAIR.

Chapter 6 defines the three scores from the counts TP, FP and FN; :func:`show_confusion`
shows those pixels for the regions WT, TC and ET of one slice, each panel titled with its
counts and the scores :mod:`unet_lib.metrics` gives them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unet_lib.data.brats import REGIONS
from unet_lib.metrics import binarize, confusion_counts, scores_from_counts, to_regions

from .frames import as_numpy, grey_picture, head_window, no_ticks

#: the three kinds of pixel, on FLAIR dimmed to half: found white, marked wrongly orange,
#: missed pink (Okabe-Ito's reddish purple; apart for colour-blind eyes too; none of them the
#: red, green or blue that the course's masks give NCR/NET, ED and ET)
KINDS = {"TP": ("found (TP)", "#ffffff"), "FP": ("marked wrongly (FP)", "#e69f00"),
         "FN": ("missed (FN)", "#cc79a7")}


def confusion_picture(channel, pred, truth) -> np.ndarray:
    """(H, W, 3) picture: the MRI ``channel`` (H, W) in grey at half brightness, and over it
    the pixels of binary masks ``pred`` and ``truth`` (H, W) in the colours of :data:`KINDS`:
    in both (TP), predicted only (FP), in the truth only (FN)."""
    pred, truth = as_numpy(pred) > 0.5, as_numpy(truth) > 0.5
    if pred.shape != truth.shape or pred.shape != tuple(np.shape(channel)):
        raise ValueError(f"channel {np.shape(channel)}, pred {pred.shape} and truth "
                         f"{truth.shape} must be (H, W) of one size")
    picture = np.repeat(0.5 * grey_picture(channel)[..., None], 3, axis=2)
    for kind, where in (("TP", pred & truth), ("FP", pred & ~truth), ("FN", ~pred & truth)):
        picture[where] = to_rgb(KINDS[kind][1])
    return picture


def show_confusion(image, target, probs, threshold: float = 0.5,
                   title: str | None = None) -> Figure:
    """One slice, a panel per region (WT, TC, ET): its TP, FP and FN pixels at ``threshold``
    on FLAIR (:func:`confusion_picture`), titled with their counts and the region's Dice,
    precision and recall (a 0/0 marked); ``title`` heads the colour key under the panels. The
    panels show the head, or the whole slice where a pixel to count lies outside it.

    Args:
        image: (4, H, W) modalities; target: (3, H, W) labels NCR/NET, ED, ET; probs: (3, H, W)
            probabilities of the labels.
    """
    image = torch.as_tensor(as_numpy(image))
    pred, truth, counts, scores = _by_region(target, probs, threshold)
    fig, axes = plt.subplots(1, len(REGIONS), figsize=(3.6 * len(REGIONS), 5.0),
                             layout="compressed")  # images: no gaps between them
    counted = np.argwhere(((pred > 0.5) | (truth > 0.5)).any(dim=0).numpy())  # (N, 2)
    top, bottom, left, right = head_window(as_numpy(image[0])[None], holding=counted)
    for c, (ax, region) in enumerate(zip(axes, REGIONS)):
        ax.imshow(confusion_picture(image[0], pred[c], truth[c]), interpolation="nearest")
        ax.set(xlim=(left - 0.5, right - 0.5), ylim=(bottom - 0.5, top - 0.5))
        tp, fp, fn = (int(counts[kind][c]) for kind in ("tp", "fp", "fn"))
        shown = {name: _score(scores[name.lower()][c], denominator)
                 for name, denominator in _denominators(tp, fp, fn).items()}
        ax.set_title(f"{region}: TP {tp}, FP {fp}, FN {fn}\n"
                     f"Dice {shown['Dice']} · precision {shown['precision']}\n"
                     f"recall {shown['recall']}", fontsize=12)
    no_ticks(axes)
    # the title goes with the key under the panels (a suptitle above them collided with the
    # panels' three-line titles: the layout does not make room for both)
    fig.legend(handles=[Patch(facecolor=colour, edgecolor="0.4", label=label)
                        for label, colour in KINDS.values()],
               loc="outside lower center", ncols=3, fontsize=11, title=title,
               title_fontsize=12)
    return fig


def confusion_rows(target, probs, threshold: float = 0.5) -> list[dict]:
    """The counts and scores :func:`show_confusion` titles its panels with, as rows of a
    table (one per region WT, TC, ET: ``region``, ``TP``, ``FP``, ``FN``, ``Dice``,
    ``precision``, ``recall``, and ``0/0``: the scores whose ratio is 0/0, which the BraTS
    rule sets, or ``"none"``), for a reader who does not see the picture.

    Args:
        target: (3, H, W) labels NCR/NET, ED, ET; probs: (3, H, W) their probabilities.
    """
    _, _, counts, scores = _by_region(target, probs, threshold)
    rows = []
    for c, region in enumerate(REGIONS):
        tp, fp, fn = (int(counts[kind][c]) for kind in ("tp", "fp", "fn"))
        denominators = _denominators(tp, fp, fn)
        rows.append({"region": region, "TP": tp, "FP": fp, "FN": fn,
                     **{name: float(scores[name.lower()][c]) for name in denominators},
                     "0/0": ", ".join(name for name, d in denominators.items() if d == 0)
                     or "none"})
    return rows


def _by_region(target, probs, threshold: float):
    """Binarized prediction and truth as regions (3, H, W) each, their counts and scores
    (each a (3,) tensor per name, one value per region)."""
    truth = to_regions(torch.as_tensor(as_numpy(target))[None])[0]  # (3, H, W) WT, TC, ET
    pred = to_regions(binarize(torch.as_tensor(as_numpy(probs))[None], threshold,
                               logits=False))[0]
    counts = confusion_counts(pred[None], truth[None])  # each (3,): one per region
    return pred, truth, counts, scores_from_counts(**counts)


def _denominators(tp: int, fp: int, fn: int) -> dict[str, int]:
    """The denominators of Dice, precision and recall from one region's counts (0: a 0/0)."""
    return {"Dice": 2 * tp + fp + fn, "precision": tp + fp, "recall": tp + fn}


def _score(value, denominator: int) -> str:
    """A score as the title shows it: 0/0 marked, as ``unet_lib.metrics`` gives it a value
    by the BraTS rule (1 when prediction and truth are both empty, else 0)."""
    return f"{float(value):.3f}" + (" (0/0)" if denominator == 0 else "")
