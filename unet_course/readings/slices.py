"""Sentences the book reads off predictions on slices (chapter 5): what went wrong on one
slice (:func:`what_went_wrong`), where a prediction leaves black holes inside its tumour
(:func:`holes_reading`, over the slices a :class:`~unet_course.examples.Showcase` shows), and
which test slices a search kept (:func:`slices_searched`, chapters 5 and 8)."""

from __future__ import annotations


def hole_pixels(probs, threshold: float = 0.5):
    """(H, W) bool NumPy array: the pixels of one slice's binarized prediction that no channel
    marks although the prediction's tumour surrounds them: black holes and rings inside the
    predicted whole tumour, where the model hesitated between labels and left each below
    ``threshold``.

    Args:
        probs: (3, H, W) probabilities."""
    import torch
    from scipy import ndimage

    tumour = (torch.as_tensor(probs) > threshold).any(0).cpu().numpy()
    return ndimage.binary_fill_holes(tumour) & ~tumour


def holes_reading(shown, threshold: float = 0.5, least: int = 10) -> str:
    """A sentence for the book on the largest hole :func:`hole_pixels` finds among the
    ``shown`` predictions (``least`` pixels or more), with what the truth holds there; or
    that there is none. ``shown``: the :class:`~unet_course.examples.Showcase` a chapter
    draws."""
    import torch

    holes = {(name, row): torch.as_tensor(hole_pixels(p[row], threshold))
             for name, p in shown.probs.items() for row in range(len(shown.names))}
    found = {key: int(hole.sum()) for key, hole in holes.items()}
    (name, row), n = max(found.items(), key=lambda item: item[1])
    if n < least:
        return (f"No prediction above leaves a hole of {least} pixels or more inside its "
                f"tumour: where the model hesitates between two labels, one of them still "
                f"passes {threshold:g}")
    hole = holes[name, row]
    others = sum(1 for key, k in found.items() if k >= least and key != (name, row))
    also = ("" if not others else "; one other prediction above has one too" if others == 1
            else f"; {others} other predictions above have such holes too")
    truth = (torch.as_tensor(shown.truths[row]) > 0.5).any(0)
    missed = int((hole & truth).sum())  # a hole where the truth is background is right
    return (f"Look for black inside a predicted tumour: the {name} U-Net leaves "
            f"{n} pixels black inside its tumour on {shown.names[row]} (row {row + 1}{also}), "
            f"where the truth has "
            f"{_labels_at(torch.as_tensor(shown.truths[row]), hole)}. A pixel is black "
            f"when no channel passes {threshold:g}: between two labels the model hesitated, "
            f"and each stayed below. The whole tumour's Dice counts those in the true tumour "
            f"as missed, {missed} of its {int(truth.sum())} pixels here, so it hardly shows "
            f"them. Where both labels sit only a little below {threshold:g}, a lower "
            f"threshold fills such a hole")


def what_went_wrong(probs, target, threshold: float = 0.5, region: str = "TC") -> str:
    """One sentence on the errors of one slice's prediction in ``region`` (WT, TC or ET): the
    region's pixels missed, with what the model took them for, and the pixels it marked as
    the region that are not, with what they truly are.

    Args:
        probs: (3, H, W) probabilities; target: (3, H, W) binary ground truth.

    Example: ``"missed 94 of the 291 TC pixels (took 80 for ED, 14 for background) and marked 73
    pixels as TC where the truth is ED"`` (with two kinds: ``"is ED (60) or background (13)"``).
    """
    import torch

    from unet_lib.data.brats import REGIONS
    from unet_lib.metrics import to_regions

    binary = torch.as_tensor(probs) > threshold
    truth = torch.as_tensor(target) > 0.5
    r = REGIONS.index(region)
    predicted_region = to_regions(binary[None].float())[0, r] > 0.5
    true_region = to_regions(truth[None].float())[0, r] > 0.5
    missed, extra = true_region & ~predicted_region, predicted_region & ~true_region
    parts = []
    if missed.any():  # a pixel may be marked in two channels: name the likelier one
        taken = torch.where(binary, torch.as_tensor(probs), torch.zeros(()))
        parts.append(f"missed {int(missed.sum())} of the {int(true_region.sum())} {region} "
                     f"pixels (took {_labels_at(taken, missed, 'for ')})")
    if extra.any():
        truths = _label_counts(truth.float(), extra)
        where = (truths[0][1] if len(truths) == 1  # one kind: the count is the total's
                 else " or ".join(f"{name} ({n})" for n, name in truths))
        parts.append(f"marked {int(extra.sum())} pixels as {region} where the truth is {where}")
    return " and ".join(parts) or f"no {region} pixel is wrong"


def _labels_at(scores, where, joint: str = "") -> str:
    """``"80 ED, 14 background"`` (with ``joint`` "for ": ``"80 for ED, 14 for background"``):
    :func:`_label_counts` as words."""
    return ", ".join(f"{n} {joint}{name}" for n, name in _label_counts(scores, where))


def _label_counts(scores, where) -> list[tuple[int, str]]:
    """``[(80, "ED"), (14, "background")]``: how many of the ``where`` pixels (H, W) each label
    takes, largest first, none left out but those with no pixel. Each pixel has one label: the
    channel of ``scores`` (3, H, W) highest there, or background where all are 0."""
    import torch

    from unet_lib.data.brats import MASK_CHANNELS

    label = torch.where(scores.amax(0) > 0, scores.argmax(0), len(MASK_CHANNELS))
    names = [*MASK_CHANNELS, "background"]
    counts = [(int((where & (label == c)).sum()), name) for c, name in enumerate(names)]
    return [(n, name) for n, name in sorted(counts, key=lambda c: -c[0]) if n]


def slices_searched(found: int, wanted: int, scanned: int, slices: int) -> str:
    """Which test slices a search kept, for the book: up to ``wanted`` slices with the most
    tumour (:func:`unet_course.examples.tumour_slices`), ``found`` of them, from ``scanned``
    evenly spaced slices of the split's ``slices`` (every one of a small split). E.g. ``"every
    test slice that holds tumour, 41 of the 128"`` or ``"the 256 test slices with the most
    tumour among 956 evenly spaced ones of the 11,470"``."""
    among = "" if scanned == slices else f" among {scanned:,} evenly spaced ones of the {slices:,}"
    if found >= wanted:
        return f"the {found} test slices with the most tumour{among}"
    if not among:
        return f"every test slice that holds tumour, {found} of the {slices:,}"
    return f"the {found} test slices that hold tumour{among}, all it found"
