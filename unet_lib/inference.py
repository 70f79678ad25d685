"""Running a trained model: scores over a dataset, probabilities, threshold sweeps (the
attention gates' maps and statistics are in :mod:`unet_lib.attention`). Every function runs in
eval mode without gradients, batch by batch, so a whole BraTS split never has to fit in
memory."""

from __future__ import annotations

import copy
import warnings
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from . import distributed
from .config import check_batch_size, check_threshold
from .data.base import resize_mask
from .data.samples import BraTSDataError, announce_skipped, collate_samples
from .metrics import SegmentationScores, binarize
from .resident import ResidentBatches, ResidentSlices
from .runtime import (autocast, layout_of, moved, resolve_device, running_on, same_device,
                      tally_device, tuned_for_full_batches)
from .sampling import scoring_workers


#: what a course or a researcher calls; the other functions serve the library's modules and
#: the course's pictures (mask_on_grid)
__all__ = ["evaluate", "predict", "threshold_sweep", "threshold_of", "TrainedSizeWarning"]


@torch.no_grad()
def logit_batches(model: nn.Module, data: Dataset | torch.Tensor, batch_size: int,
                  device: torch.device, amp: bool, on_device: bool = False,
                  num_workers: int | None = None, batches: list[list[int]] | None = None):
    """Yield ``(logits float32, masks or None, skipped)`` over ``data`` in eval mode, in order,
    one per batch; unusable samples are left out of a batch and listed in ``skipped``.
    ``batches`` (a dataset only) gives the items of each batch, e.g. one volume's slices
    per batch; by default they are consecutive runs of ``batch_size`` items.

    ``data`` is a dataset of (image, mask) samples or an image tensor (N, C, H, W). Logits and
    masks come on the CPU, or with ``on_device`` on ``device``: then nothing waits for the GPU
    batch by batch (a copy to the CPU does), and whoever sums the scores reads them once.
    The model runs on ``device`` and goes back to where it was afterwards, so that the
    caller's next ``model(images)`` finds it where they left it. A dataset read from files is
    read by ``num_workers`` processes (default :func:`~unet_lib.sampling.scoring_workers`: up to 8
    for a CUDA GPU, which one process reading compressed h5 files cannot feed; else none).
    """
    device = resolve_device(device)  # a name works too
    check_batch_size(batch_size)
    with running_on(model, device):
        yield from _logits_on(model, data, batch_size, device, amp, on_device, num_workers,
                              batches)


def _logits_on(model: nn.Module, data: Dataset | torch.Tensor, batch_size: int,
               device: torch.device, amp: bool, on_device: bool, num_workers: int | None,
               batches: list[list[int]] | None):
    """:func:`logit_batches` with the model already on ``device``."""
    if isinstance(data, np.ndarray):  # images as NumPy (float64 too): a float32 tensor
        data = torch.as_tensor(data, dtype=torch.float32)
    if isinstance(data, torch.Tensor):
        if batches is not None:
            raise TypeError("logit_batches: batches= needs a dataset, not an image tensor")
        loader = ((images, None, []) for images in data.split(batch_size))
    elif (held := _held_rows(data)) is not None:  # a rank's share, a split of held data
        held_data, rows = held
        batches = batches or _consecutive(len(rows), batch_size)
        loader = ResidentBatches(held_data, [[rows[i] for i in b] for b in batches])
    elif isinstance(data, ResidentSlices):  # already on the device: no loader, no pinning
        loader = ResidentBatches(data, batches or _consecutive(len(data), batch_size))
    else:
        batches = batches or _consecutive(len(data), batch_size)
        if num_workers is None:
            num_workers = scoring_workers(device, len(batches))
        loader = DataLoader(data, batch_sampler=batches, num_workers=num_workers,
                            pin_memory=device.type == "cuda", collate_fn=collate_samples)
    landing = device if on_device else torch.device("cpu")
    layout = layout_of(model)  # NHWC images for a model trained in NHWC
    learnt = getattr(model, "trained_image_size", None)  # set by fit and load_model
    for images, masks, skipped in loader:
        announce_skipped(skipped)
        if images is None:
            yield None, None, skipped
            continue
        if learnt and tuple(images.shape[-2:]) != (learnt, learnt):
            warn_other_size(learnt, tuple(images.shape[-2:]))
            learnt = None  # once per pass
        with tuned_for_full_batches(len(images), batch_size), autocast(device, amp):
            logits = model(moved(images, device, layout))
        if masks is not None:
            masks = moved(masks, landing)
        yield logits.float().to(landing), masks, skipped


class TrainedSizeWarning(UserWarning):
    """A model loaded from a checkpoint is given slices of another size than it learnt at."""


def warn_other_size(learnt: int, given: tuple[int, int]) -> None:
    warnings.warn(f"the model learnt on {learnt}×{learnt} slices and is given "
                  f"{given[0]}×{given[1]} ones: its filters then see the anatomy at another "
                  f"scale, and it scores lower. Open the data at its size, e.g. "
                  f"open_dataset(root, image_size={learnt}), as unet-lib evaluate does",
                  TrainedSizeWarning, stacklevel=4)


def threshold_of(model: nn.Module, threshold: float | None = None) -> float:
    """The threshold to score ``model`` at, checked: ``threshold`` where given, else the one
    it was trained and validated at (``model.trained_threshold``, set by
    :func:`~unet_lib.train.fit` and :func:`~unet_lib.checkpoint.load_model`), else 0.5."""
    if threshold is None:  # a model in DistributedDataParallel: the one it wraps
        threshold = getattr(getattr(model, "module", model), "trained_threshold", None)
    return check_threshold(0.5 if threshold is None else threshold)


def evaluate(model: nn.Module, data: Dataset, threshold: float | None = None,
             batch_size: int = 32,
             device: torch.device | str | None = None, amp: bool = True,
             context: distributed.Context | None = None, num_workers: int | None = None,
             loss_fn: nn.Module | None = None) -> dict:
    """The mean loss per batch image and Dice/precision/recall over all of ``data`` (counts
    summed first), read by ``num_workers`` processes (see :func:`logit_batches`), with pixels
    marked above ``threshold`` (default: the model's own, :func:`threshold_of`).

    ``loss_fn`` (mean-reduced, as :func:`unet_lib.losses.make_loss` makes them; a copy of it
    is scored beside the logits where its weights are elsewhere) is BCE-with-logits by default;
    :func:`~unet_lib.train.fit` passes its training loss, so that the validation loss is the
    same function as the training loss.

    Returns:
        ``{"loss": float, "dice": {name: float}, "precision": {...}, "recall": {...},
        "skipped": ["path: problem", ...]}`` with names NCR/NET, ED, ET and the regions WT, TC
        (see :mod:`unet_lib.metrics`); ``skipped`` lists unusable files left out. Under
        ``torchrun`` (``context`` from :func:`fit`) each process scores every ``world``-th
        sample and the counts are summed over processes.

    Raises:
        BraTSDataError: ``data`` gave no sample to score (empty, or every file unusable):
            with no count at all every score would read a perfect 1.
        TypeError: ``data`` is an image tensor or array (no masks to score against).
        ValueError: a mask is not (3, H, W) of its image's size; or, as ConfigError, the
            threshold is not a probability.
    """
    device = resolve_device(device)  # the batch size: checked by logit_batches
    threshold = threshold_of(model, threshold)  # before any batch is predicted
    if isinstance(data, (torch.Tensor, np.ndarray)):
        raise TypeError("evaluate scores (image, mask) samples: give a dataset (open_dataset, "
                        "or a list of (image (4, H, W), mask (3, H, W)) pairs), not an image "
                        "tensor (predict takes those)")
    context = context or distributed.Context()
    if context.active:
        data = Subset(data, range(context.rank, len(data), context.world))
    # on a GPU the loss and the counts are summed there and read once, at the end
    tally = tally_device(device)
    scores = SegmentationScores(device=tally)
    loss_sum = torch.zeros((), dtype=torch.float64, device=tally)
    seen, skipped = 0, []
    if loss_fn is None:
        loss_fn = nn.BCEWithLogitsLoss()
    elif isinstance(loss_fn, nn.Module) and any(b.device != same_device(tally)
                                                for b in loss_fn.buffers()):
        loss_fn = copy.deepcopy(loss_fn).to(tally)  # its weights beside the logits; the
        # caller's loss stays where it is (make_loss puts them on the CPU by default)
    for logits, masks, bad in logit_batches(model, data, batch_size, device, amp,
                                            on_device=tally == device, num_workers=num_workers):
        skipped.extend(str(sample) for sample in bad)
        if logits is None:
            continue
        if masks.shape != logits.shape:
            raise ValueError(f"each mask must be (3, H, W) as the model's output for its image, "
                             f"got masks {tuple(masks.shape[1:])} for "
                             f"{tuple(logits.shape[1:])}")
        loss_sum += loss_fn(logits, masks).double() * len(masks)
        seen += len(masks)
        scores.update(binarize(logits, threshold, logits=True), masks)
    totals = torch.stack([loss_sum] + [torch.full((), n, dtype=torch.float64, device=tally)
                                       for n in (seen, scores.batches)])
    if context.active:  # on the device: NCCL sums GPU tensors only
        for counts in (*scores.counts.values(), scores.overlapping):  # every process raises
            distributed.all_sum(counts, context)
        distributed.all_sum(totals, context)  # a process's share may be empty, not the sum
    loss_sum, seen, batches = totals.tolist()
    if seen == 0:  # no count at all would score a perfect 1 everywhere (the BraTS empty rule)
        raise nothing_to_score(data, skipped)
    scores.batches = int(batches)  # the counts are now every process's
    return {"loss": loss_sum / seen, **scores.compute(), "skipped": skipped}


def nothing_to_score(data, skipped: list) -> BraTSDataError:
    """The error for data that gave no sample to score: empty, or every file unusable."""
    root = getattr(getattr(data, "dataset", data), "root", "the data to score")
    why = (f"all {len(skipped)} were skipped as unusable, e.g. {skipped[0]}" if skipped
           else "it holds no sample")
    return BraTSDataError(root, f"no sample to score: {why}")


def _held_rows(data: Dataset) -> tuple[ResidentSlices, list[int]] | None:
    """For a ``Subset`` (of a ``Subset`` ...) of a :class:`ResidentSlices`: the held data and
    the row of each item, read by index where the data is (no loader, no copy); else ``None``."""
    rows = None
    while isinstance(data, Subset):
        rows = list(data.indices) if rows is None else [data.indices[i] for i in rows]
        data = data.dataset
    return (data, rows) if rows is not None and isinstance(data, ResidentSlices) else None


def _consecutive(count: int, batch_size: int) -> list[list[int]]:
    """Items ``0 .. count-1`` in batches of ``batch_size`` (the last may be smaller)."""
    return [list(range(start, min(start + batch_size, count)))
            for start in range(0, count, batch_size)]


def predict(model: nn.Module, data: Dataset | torch.Tensor | np.ndarray, batch_size: int = 32,
            device: torch.device | str | None = None, amp: bool = True) -> torch.Tensor:
    """Probabilities (N, 3, H, W) float32 on the CPU, channels NCR/NET, ED, ET (each its own
    sigmoid: they may overlap), for a dataset or images (N, 4, H, W: FLAIR, T1, T1ce, T2) as
    a tensor or a NumPy array; empty data is refused (``BraTSDataError``). Binarize them with
    :func:`unet_lib.metrics.binarize` (``logits=False``); the regions WT, TC, ET come from
    :func:`unet_lib.metrics.to_regions`."""
    if len(data) == 0:
        raise nothing_to_score(data, [])
    probabilities = []  # logit_batches checks the device and the batch size
    for logits, _, skipped in logit_batches(model, data, batch_size, device, amp):
        if skipped:  # a gap would shift every later prediction off its index
            raise BraTSDataError(skipped[0].path, f"cannot predict: {skipped[0].problem}")
        probabilities.append(torch.sigmoid(logits))
    return torch.cat(probabilities)


def threshold_sweep(model: nn.Module, data: Dataset, thresholds: Iterable[float],
                    batch_size: int = 32, device: torch.device | str | None = None,
                    amp: bool = True) -> dict[float, dict]:
    """Dice, precision and recall of ``model`` on ``data`` at several thresholds, in one pass
    (the probabilities are never all held in memory, so a real BraTS split is fine).

    Returns:
        ``{threshold: {"dice": {name: float}, "precision": {...}, "recall": {...}}}`` with the
        channel and region names of :class:`~unet_lib.metrics.SegmentationScores`.
    """
    device = resolve_device(device)  # the batch size: checked by logit_batches
    tally = tally_device(device)
    thresholds = [thresholds] if np.isscalar(thresholds) else list(thresholds)
    if not thresholds:
        raise ValueError("thresholds is empty: give the thresholds to try, e.g. [0.3, 0.5]")
    # every threshold checked before any batch is predicted
    scores = {check_threshold(t): SegmentationScores(device=tally) for t in thresholds}
    seen, skipped = 0, []
    for logits, masks, bad in logit_batches(model, data, batch_size, device, amp,
                                            on_device=tally == device):
        skipped.extend(str(sample) for sample in bad)
        if logits is None:
            continue
        seen += len(masks)
        for threshold, accumulator in scores.items():
            accumulator.update(binarize(logits, threshold, logits=True), masks)
    if seen == 0:
        raise nothing_to_score(data, skipped)
    return {threshold: accumulator.compute() for threshold, accumulator in scores.items()}


def probabilities_on_grid(probs: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) probabilities of a model that saw resized slices, on the slices' own
    (H, W) grid: bilinear, as a BraTS submission is made (``unet-lib segment``) and scored."""
    if tuple(probs.shape[-2:]) == tuple(shape):
        return probs
    return F.interpolate(probs, size=tuple(shape), mode="bilinear", align_corners=False)


def mask_on_grid(mask, shape) -> torch.Tensor:
    """A (H, W) mask resized to a gate's (h, w) grid by nearest pixel, as bool."""
    return resize_mask(torch.as_tensor(mask)[None].float(), tuple(shape))[0] > 0.5
