"""Choosing which slices a chapter shows, naming them, and their Dice per region (what went
wrong on them is put in words by :mod:`unet_course.readings`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from unet_lib.data import SkippedSample, locate

from .readings.slices import what_went_wrong


#: the most slices :func:`tumour_slices` reads, evenly spaced (a real BraTS split is large)
SCAN = 400


def _scanned(dataset, scan: int = SCAN) -> range:
    """The indices of the slices :func:`tumour_slices` reads: every one of a small dataset, at
    most ``scan`` evenly spaced ones of a large one."""
    return range(0, len(dataset), max(1, math.ceil(len(dataset) / scan)))


def scanned_slices(dataset, scan: int = SCAN) -> int:
    """How many slices of ``dataset`` :func:`tumour_slices` reads to choose from."""
    return len(_scanned(dataset, scan))


def tumour_slices(dataset, count: int = 4, scan: int = SCAN, min_gap: int = 4,
                  every_label: bool = False) -> list[int]:
    """Indices of up to ``count`` slices of ``dataset`` with the most tumour, from at most
    ``scan`` evenly spaced slices (a real BraTS split is large); with ``every_label`` only
    slices that show all three labels (NCR/NET, ED and ET), to show what each looks like, or,
    when none does (low-grade volumes only), any slices with tumour.

    Slices of different volumes come first; when there are fewer volumes than ``count``, more
    slices of the same volumes are added, at least ``min_gap`` slices apart. Returns indices,
    largest tumour first within each round.
    """
    areas = []
    for index in _scanned(dataset, scan):
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
        searched: how many slices with tumour the last one was chosen among (``search`` of
            :func:`showcase`, or fewer where fewer slices hold tumour); scanned: how many
            slices of the dataset were read to find them (:func:`scanned_slices`: all of a
            small split, an evenly spaced sample of a large one).
    """

    indices: list
    names: list
    images: object
    truths: object
    probs: dict
    hardest_model: str
    hardest_tc: float
    problem: str
    searched: int
    scanned: int


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
                    what_went_wrong(probs[worst][last], truths[last], region="TC"),
                    len(candidates), scanned_slices(dataset))


def slice_scores(probs, target, threshold: float = 0.5) -> dict[str, float]:
    """Dice of the regions WT, TC, ET of one slice: (3, H, W) probabilities against its
    (3, H, W) binary truth, binarized at ``threshold``."""
    import torch

    from unet_lib.data.brats import REGIONS
    from unet_lib.metrics import binarize, dice, to_regions

    binary = binarize(torch.as_tensor(probs)[None], threshold, logits=False)
    values = dice(to_regions(binary), to_regions(torch.as_tensor(target)[None])).tolist()
    return dict(zip(REGIONS, values))
