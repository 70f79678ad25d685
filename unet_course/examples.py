"""Choosing which slices a chapter shows, and naming them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from unet_lib.data import SkippedSample, locate


def tumour_slices(dataset, count: int = 4, scan: int = 400, min_gap: int = 4,
                  every_label: bool = False) -> list[int]:
    """Indices of up to ``count`` slices of ``dataset`` with the most tumour, from at most
    ``scan`` evenly spaced slices (a real BraTS split is large); with ``every_label`` only
    slices that show all three labels (NCR/NET, ED and ET), to show what each looks like, or,
    when none does (low-grade volumes only), any slices with tumour.

    Slices of different volumes come first; when there are fewer volumes than ``count``, more
    slices of the same volumes are added, at least ``min_gap`` slices apart. Returns indices,
    largest tumour first within each round.
    """
    step = max(1, math.ceil(len(dataset) / scan))  # at most scan slices read
    areas = []
    for index in range(0, len(dataset), step):
        sample = dataset[index]
        if isinstance(sample, SkippedSample):
            continue
        mask = sample[1]
        if not every_label or bool(mask.flatten(1).any(1).all()):
            areas.append((float(mask.amax(0).sum()), index))
    areas = sorted((a for a in areas if a[0] > 0), reverse=True)
    if every_label and not areas:
        return tumour_slices(dataset, count, scan, min_gap)
    chosen: list[int] = []
    where = {index: locate(dataset, index) for _, index in areas}
    for distinct_volumes in (True, False):
        for _, index in areas:
            if len(chosen) == count:
                return chosen
            volume, slice_index = where[index]
            same = [where[c][1] for c in chosen if where[c][0] == volume]
            if distinct_volumes and same:
                continue
            if index not in chosen and all(abs(slice_index - s) >= min_gap for s in same):
                chosen.append(index)
    return chosen


def slice_name(dataset, index: int) -> str:
    """``"volume 7, slice 80"`` for item ``index`` of a BraTS dataset (``"slice <index>"`` for
    a dataset without that information)."""
    volume, slice_index = locate(dataset, index)
    return f"slice {index}" if volume is None else f"volume {volume}, slice {slice_index}"


def hardest_slice(probs_by_model: dict, targets, threshold: float = 0.5,
                  least_tumour: int = 20) -> int:
    """Index of the slice the models get most wrong: the lowest mean (over models) tumour-core
    Dice among slices whose tumour core (NCR/NET ∪ ET) has at least ``least_tumour`` pixels
    (a core of two pixels at a tumour's edge would be a trivial "failure").

    Args:
        probs_by_model: ``{model name: (N, 3, H, W) probabilities}``.
        targets: (N, 3, H, W) binary ground truth.

    Raises:
        ValueError: no slice has a core of ``least_tumour`` pixels.
    """
    import torch

    from unet_lib.data.brats import REGIONS
    from unet_lib.metrics import binarize, dice, to_regions

    targets = torch.as_tensor(targets)
    truth = to_regions(targets)
    core = REGIONS.index("TC")
    mean = torch.stack([dice(to_regions(binarize(torch.as_tensor(probs), threshold,
                                                  logits=False)), truth, per_image=True)[:, core]
                        for probs in probs_by_model.values()]).mean(0)
    big = truth[:, core].flatten(1).sum(1) >= least_tumour
    if not big.any():
        raise ValueError(f"none of the {len(truth)} slices has a tumour core (NCR/NET and ET) "
                         f"of {least_tumour} pixels or more, the least judged (least_tumour)")
    mean[~big] = float("inf")
    return int(mean.argmin())


@dataclass
class Showcase:
    """Slices to compare models on (:func:`showcase`), the hardest last.

    Attributes:
        indices: the slices' indices into the dataset; ``names`` their names.
        images: (N, 4, H, W); truths: (N, 3, H, W); probs: model name → (N, 3, H, W).
        hardest_model: the model with the lowest tumour-core Dice on the last slice;
            hardest_tc: that Dice; problem: what went wrong there (:func:`what_went_wrong`).
    """

    indices: list
    names: list
    images: object
    truths: object
    probs: dict
    hardest_model: str
    hardest_tc: float
    problem: str


def showcase(models: dict, dataset, count: int = 3, search: int = 48) -> Showcase:
    """``count`` of the slices of ``dataset`` with the most tumour (one per patient, as
    :func:`tumour_slices` gives them), then the slice the ``models`` (name → model) get most
    wrong on average (:func:`hardest_slice`), chosen among the ``search`` slices with the most
    tumour; each predicted by every model.

    Raises:
        ValueError: no slice has tumour, or none has a tumour core of 20 pixels or more (the
            smallest :func:`hardest_slice` judges).
    """
    import torch

    from unet_lib.inference import predict

    candidates = tumour_slices(dataset, count=search, min_gap=1)
    if not candidates:
        raise ValueError(f"no slice of the {len(dataset)} given has any tumour, so there is "
                         f"nothing to show: give held-out slices of volumes with tumour")
    images = torch.stack([dataset[i][0] for i in candidates])
    truths = torch.stack([dataset[i][1] for i in candidates])
    probs = {name: predict(model, images) for name, model in models.items()}
    hardest = candidates[hardest_slice(probs, truths)]
    shown = [i for i in candidates[:count + 1] if i != hardest][:count] + [hardest]
    rows = [candidates.index(i) for i in shown]
    last = rows[-1]
    core = {name: slice_scores(p[last], truths[last])["TC"] for name, p in probs.items()}
    worst = min(core, key=core.get)
    return Showcase(shown, [slice_name(dataset, i) for i in shown], images[rows], truths[rows],
                    {name: p[rows] for name, p in probs.items()}, worst, core[worst],
                    what_went_wrong(probs[worst][last], truths[last], region="TC"))


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


def holes_reading(shown: Showcase, threshold: float = 0.5, least: int = 10) -> str:
    """A sentence for the book on the largest hole :func:`hole_pixels` finds among the
    ``shown`` predictions (``least`` pixels or more), with what the truth holds there; or
    that there is none."""
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


def slice_scores(probs, target, threshold: float = 0.5) -> dict[str, float]:
    """Dice of the regions WT, TC, ET of one slice: (3, H, W) probabilities against its
    (3, H, W) binary truth, binarized at ``threshold``."""
    import torch

    from unet_lib.data.brats import REGIONS
    from unet_lib.metrics import binarize, dice, to_regions

    binary = binarize(torch.as_tensor(probs)[None], threshold, logits=False)
    values = dice(to_regions(binary), to_regions(torch.as_tensor(target)[None])).tolist()
    return dict(zip(REGIONS, values))
