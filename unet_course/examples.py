"""Choosing which slices a chapter shows, and naming them."""

from __future__ import annotations

from unet_lib.data import locate


def tumour_slices(dataset, count: int = 4, scan: int = 400, min_gap: int = 4) -> list[int]:
    """Indices of up to ``count`` slices of ``dataset`` with the most tumour, from at most
    ``scan`` evenly spaced slices (a real BraTS split is large).

    Slices of different volumes come first; when there are fewer volumes than ``count``, more
    slices of the same volumes are added, at least ``min_gap`` slices apart. Returns indices,
    largest tumour first within each round.
    """
    step = max(1, len(dataset) // scan)
    areas = []
    for index in range(0, len(dataset), step):
        sample = dataset[index]
        if isinstance(sample, tuple):
            areas.append((float(sample[1].amax(0).sum()), index))
    areas = sorted((a for a in areas if a[0] > 0), reverse=True)
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
    """
    import torch

    from unet_lib.metrics import binarize, dice, to_regions

    targets = torch.as_tensor(targets)
    scores = []
    for probs in probs_by_model.values():
        binary = to_regions(binarize(torch.as_tensor(probs), threshold, logits=False))
        truth = to_regions(targets)
        scores.append(torch.stack([dice(binary[i:i + 1], truth[i:i + 1])[1]
                                   for i in range(len(truth))]))
    mean = torch.stack(scores).mean(0)
    core = targets[:, [0, 2]].amax(1)  # NCR/NET ∪ ET
    big = core.flatten(1).sum(1) >= least_tumour
    mean[~big] = float("inf")
    return int(mean.argmin())


def what_went_wrong(probs, target, threshold: float = 0.5) -> str:
    """One sentence on the largest error of one slice's prediction: per channel, the pixels
    missed (false negatives) and marked wrongly (false positives), the largest named.

    Args:
        probs: (3, H, W) probabilities; target: (3, H, W) binary ground truth.
    """
    import torch

    from unet_lib.data.brats import MASK_CHANNELS

    binary = torch.as_tensor(probs) > threshold
    truth = torch.as_tensor(target) > 0.5
    errors = []
    for c, name in enumerate(MASK_CHANNELS):
        missed = int((truth[c] & ~binary[c]).sum())
        extra = int((binary[c] & ~truth[c]).sum())
        size = int(truth[c].sum())
        errors.append((missed, f"missed {missed} of the {size} {name} pixels"))
        errors.append((extra, f"marked {extra} pixels as {name} that are not"))
    errors.sort(key=lambda e: -e[0])
    if errors[0][0] == 0:
        return "no pixel is wrong"
    return "; ".join(text for count, text in errors[:2] if count > 0)


def slice_scores(probs, target, threshold: float = 0.5) -> dict[str, float]:
    """Dice of the regions WT, TC, ET of one slice: (3, H, W) probabilities against its
    (3, H, W) binary truth, binarized at ``threshold``."""
    import torch

    from unet_lib.data.brats import REGIONS
    from unet_lib.metrics import binarize, dice, to_regions

    binary = binarize(torch.as_tensor(probs)[None], threshold, logits=False)
    values = dice(to_regions(binary), to_regions(torch.as_tensor(target)[None])).tolist()
    return dict(zip(REGIONS, values))
