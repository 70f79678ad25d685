"""Scoring as the BraTS challenge does: per patient, in 3-D, for the regions WT, TC and ET.

The slides score Dice, precision and recall over all validation pixels at once, so a large
tumour outweighs a small one. The challenge, and the papers a student reads next, stack each
patient's slices back into a volume, score every patient separately with Dice and the 95th
percentile Hausdorff distance (:func:`unet_lib.outlines.hausdorff95`), and report the mean,
median and spread over patients. Whether one model beats another on those patients:
:mod:`unet_lib.comparison`.

>>> scores = evaluate_patients(model, test_set)          # one volume in memory at a time
>>> scores.rows[0]["dice"]["WT"], scores.summary()["hd95"]["ET"]["median"]
"""

from __future__ import annotations

import csv
import warnings
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .config import check_batch_size
from .data import SliceDataset
from .data.base import batches_by_volume, items_by_volume
from .data.brats import BRATS_SHAPE_MM, REGIONS
from .metrics import (SegmentationScores, binarize, check_binary, scores_from_counts,
                      to_regions)
from .outlines import hausdorff95
from .inference import logit_batches, probabilities_on_grid, threshold_of
from .runtime import float64_home, resolve_device

PATIENT_METRICS = ("dice", "precision", "recall", "hd95")


@dataclass
class PatientScores:
    """Per-patient scores: ``rows``, one per volume, each ``{"volume": v, "slices": n,
    "dice"|"precision"|"recall"|"hd95": {"WT": .., "TC": .., "ET": ..}, "empty": [regions
    absent from the reference]}`` and, where the data know it, ``"case"``: the BraTS case ID
    (:meth:`SliceDataset.case_id`); and the ``skipped`` items."""

    rows: list[dict] = field(default_factory=list)
    #: the unusable items left out, as ``"path: problem"``
    skipped: list[str] = field(default_factory=list)

    def values(self, metric: str, region: str) -> np.ndarray:
        """One value per patient."""
        return np.array([row[metric][region] for row in self.rows], dtype=np.float64)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{metric: {region: {"mean", "median", "std", "n"}}}`` over patients (population
        standard deviation)."""
        return {metric: {region: _describe(self.values(metric, region)) for region in REGIONS}
                for metric in PATIENT_METRICS}

    @property
    def named(self) -> bool:
        """Whether the rows carry case IDs (the table and the CSV then give them)."""
        return any("case" in row for row in self.rows)

    def table(self) -> str:
        """The rows and the summary as aligned text, as ``unet-lib evaluate`` prints them."""
        named = self.named
        head = f"{'volume':>8s}" + "".join(f"{f'{m} {r}':>13s}" for m in ("dice", "hd95")
                                            for r in REGIONS) + ("  case" if named else "")
        lines = [head]
        for row in self.rows:
            lines.append(f"{row['volume']:>8d}" + "".join(
                f"{row[m][r]:>13.3f}" if m == "dice" else f"{row[m][r]:>13.2f}"
                for m in ("dice", "hd95") for r in REGIONS)
                + (f"  {row.get('case', '')}" if named else ""))
        summary = self.summary()
        for statistic in ("mean", "median", "std"):
            lines.append(f"{statistic:>8s}" + "".join(
                f"{summary[m][r][statistic]:>13.3f}" if m == "dice"
                else f"{summary[m][r][statistic]:>13.2f}" for m in ("dice", "hd95")
                for r in REGIONS))
        return "\n".join(lines)

    def to_csv(self, path: str | Path) -> Path:
        """One line per patient: volume, slices, then every metric × region, the regions empty
        in the reference, and the case ID where the data know it."""
        path = Path(path)
        columns = [f"{metric}_{region}" for metric in PATIENT_METRICS for region in REGIONS]
        named = self.named
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["volume", "slices", *columns, "empty_in_reference"]
                            + (["case"] if named else []))
            for row in self.rows:
                writer.writerow([row["volume"], row["slices"],
                                 *[f"{row[m][r]:.6g}" for m in PATIENT_METRICS for r in REGIONS],
                                 " ".join(row["empty"])] + ([row.get("case", "")] if named else []))
        return path


def _describe(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": float("nan"), "median": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "std": float(values.std()), "n": len(values)}


def score_patient(pred: torch.Tensor, target: torch.Tensor, spacing) -> dict:
    """Dice, precision, recall and HD95 of one patient's regions.

    Args:
        pred, target: binary (3, D, H, W) masks (tensors or arrays) of the regions WT, TC, ET.
        spacing: voxel size (depth, height, width) in mm.

    Returns:
        ``{"dice"|"precision"|"recall"|"hd95": {"WT": .., "TC": .., "ET": ..}, "empty": [..]}``.
        A region absent from both prediction and reference scores Dice, precision and recall
        1 and HD95 0; absent from one only, 0 and 373.13 mm (the BraTS convention).
    """
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)  # NumPy arrays too
    if pred.shape != target.shape or pred.dim() != 4 or pred.shape[0] != len(REGIONS):
        raise ValueError(f"pred and target must both be (3, D, H, W) masks of the regions WT, "
                         f"TC, ET; got {tuple(pred.shape)} and {tuple(target.shape)}")
    check_binary(pred=pred, target=target)
    p, t = float64_home(pred.bool().flatten(1)), float64_home(target.bool().flatten(1))
    _check_nested(t)
    counts = {"tp": (p & t).sum(1).double(), "fp": (p & ~t).sum(1).double(),
              "fn": (~p & t).sum(1).double()}
    scores = {metric: dict(zip(REGIONS, values.tolist()))
              for metric, values in scores_from_counts(**counts).items()}
    scores["hd95"] = dict(zip(REGIONS, hausdorff95(pred, target, spacing).tolist()))
    scores["empty"] = [region for region, present in zip(REGIONS, t.any(1).tolist())
                       if not present]
    return scores


def _check_nested(regions: torch.Tensor) -> None:
    """Refuse a target (3, voxels) that is not the regions WT, TC, ET, which are nested
    (ET ⊆ TC ⊆ WT): the label channels NCR/NET, ED, ET have the same shape, and scored as
    regions would give wrong numbers without a word."""
    whole, core, enhancing = regions
    outside = int((core & ~whole).sum()) + int((enhancing & ~core).sum())
    if outside:
        raise ValueError(f"target must be the regions WT, TC, ET, each inside the one before, "
                         f"but {outside} voxels of TC or ET lie outside WT or TC: were the "
                         f"label channels NCR/NET, ED, ET given? Their regions are "
                         f"to_regions(labels.transpose(0, 1)).transpose(0, 1) "
                         f"(unet_lib.metrics)")


class PartialVolumeWarning(UserWarning):
    """A patient was scored in 3-D on some of its slices only (the message says which way)."""


def evaluate_patients(model: nn.Module, dataset: Dataset, threshold: float | None = None,
                      batch_size: int = 32, device: torch.device | str | None = None,
                      amp: bool = True, spacing: tuple[float, float, float] | None = None,
                      pixels: SegmentationScores | None = None,
                      native_size: bool = True, clean=None) -> PatientScores:
    """Score ``model`` on every patient (volume) of ``dataset``, in 3-D.

    The slices of each volume are predicted in slice order, stacked into (3, D, H, W),
    binarized at ``threshold`` (default: the model's own,
    :func:`~unet_lib.inference.threshold_of`) and turned into the regions WT, TC, ET; one
    volume is held in memory at a time. A model that works at a smaller size than the data's
    (a dataset whose ``image_size`` resizes the slices) is scored as BraTS scores: its
    probabilities are resized to the slices' own grid
    (:func:`~unet_lib.inference.probabilities_on_grid`) and compared with the masks as stored,
    not with masks shrunk to its size. Unusable slices count empty in prediction and truth,
    each in its place, as a packed copy of the data stacks them (``slices`` counts those
    used). The whole pass is one loader, its batches cut volume by volume, so that on a GPU
    its reading processes start once.

    Args:
        spacing: voxel size (depth, height, width) in mm. Default: the volume's size in mm
            (:meth:`SliceDataset.extent_mm`: from the NIfTI header's voxel size, else a BraTS
            volume's 155 × 240 × 240 mm) over the stacked voxels, ``D`` the number of slices
            the volume has where stored (:meth:`SliceDataset.depth_of`: also those
            ``tumour_only`` left out). That is 1 mm for BraTS at its own size, and the
            phantom's proportions are BraTS's.
        pixels: scores that every volume is added to as well: the all-pixel Dice, precision
            and recall of the same pass (:meth:`SegmentationScores.compute`), read once.
        native_size: ``False`` scores at the model's size, against the resized masks.
        clean: a clean-up of each patient's prediction before it is scored (``pixels`` too):
            a function of its bool (3, D, H, W) label channels NCR/NET, ED, ET (a NumPy
            array, unusable slices in place) returning the same shape, e.g.
            :func:`unet_lib.postprocess.keep_largest_tumour`. It gets label channels, not the
            regions WT, TC, ET: :func:`~unet_lib.postprocess.keep_largest_per_region` here
            would clean NCR/NET, ED and ET one by one (clean regions on
            :func:`~unet_lib.patient_volume.predict_patient`'s volumes instead).

    Returns:
        :class:`PatientScores`.
    """
    device = resolve_device(device)
    check_batch_size(batch_size)
    threshold = threshold_of(model, threshold)
    if native_size and isinstance(dataset, SliceDataset) and dataset.image_size is not None:
        dataset = dataset.with_native_masks()
    order = items_by_volume(dataset)
    batches, owners = batches_by_volume(order, batch_size)  # each batch one volume's
    result = PatientScores()
    slice_of = {index: s for entries in order.values() for s, index in entries}
    current = None  # the volume being predicted
    # closed however the loop ends: the model goes back even while a notebook keeps the error
    with closing(logit_batches(model, dataset, batch_size, device, amp, batches=batches)) as passes:
        for (logits, masks, skipped), volume, batch in zip(passes, owners, batches):
            result.skipped.extend(str(sample) for sample in skipped)
            if current is None or current.volume != volume:  # the previous volume is complete
                _score_volume(current, order, spacing, result, dataset, pixels, clean)
                current = _VolumeSoFar(volume)
            if logits is None:
                continue
            left_out = {sample.index for sample in skipped}
            if None in left_out:  # a skipped file of unknown place: the slices go unplaced
                current.slices.extend([None] * len(logits))
            else:
                current.slices.extend(slice_of[i] for i in batch if i not in left_out)
            current.preds.append(binarized_on_grid(logits, masks, threshold).bool())
            current.targets.append(masks > 0.5)
    _score_volume(current, order, spacing, result, dataset, pixels, clean)
    return result


@dataclass
class _VolumeSoFar:
    """One volume's batches as they are predicted: binary predictions and truths, each
    (n, 3, H, W), and the slice number of each usable slice (``None`` where unknown)."""

    volume: int
    preds: list[torch.Tensor] = field(default_factory=list)
    targets: list[torch.Tensor] = field(default_factory=list)
    slices: list[int | None] = field(default_factory=list)


def _score_volume(current: _VolumeSoFar | None, order: dict, spacing, result: PatientScores,
                  dataset: SliceDataset, pixels: SegmentationScores | None, clean) -> None:
    """Score ``current`` (if any slice of it was usable) into ``result`` (and ``pixels``),
    cleaned by ``clean`` if given."""
    if current is None or not current.preds:
        return
    volume, slices = current.volume, current.slices
    pred = torch.cat(current.preds).permute(1, 0, 2, 3)  # (3, N, H, W) channels, as scored
    target = torch.cat(current.targets).permute(1, 0, 2, 3)
    known = [s for s, _ in order[volume]]  # the dataset's slices of it, in order
    depth = dataset.depth_of(volume)
    scored = pred.shape[1]
    placed = None not in slices  # each scored slice's number is known
    if scored < depth:
        warnings.warn(f"per-patient scores: volume {volume}: {scored} of its {depth} "
                      f"slices scored "
                      + ("(each in its place, the rest counted empty in prediction and "
                         "truth: " + ("not in the dataset)" if scored == len(known) else
                                      "unusable files, or not in the dataset)")
                         if placed else
                         "(unusable files left out: the rest stacked as neighbours)"),
                      PartialVolumeWarning, stacklevel=3)
    if placed and scored < depth:  # tumour slices only, unusable files: each in its place
        pred, target = (placed_in_volume(x, slices, depth) for x in (pred, target))
    if clean is not None:
        pred = _cleaned(clean, pred)
    if pixels is not None:  # the slices added in place are empty in both: no TP, FP, FN
        pixels.update(pred.transpose(0, 1), target.transpose(0, 1))
    pred, target = (to_regions(x.transpose(0, 1)).transpose(0, 1) for x in (pred, target))
    voxel = spacing or voxel_size(depth, *pred.shape[-2:], extent=_extent(dataset, volume))
    row = {"volume": volume, "slices": scored, **score_patient(pred, target, voxel)}
    case = dataset.case_id(volume) if hasattr(dataset, "case_id") else None
    if case:
        row["case"] = case
    result.rows.append(row)


def _cleaned(clean, pred: torch.Tensor) -> torch.Tensor:
    """``clean(pred)`` of a bool (3, D, H, W) tensor, as a bool tensor where ``pred`` is; a
    result of another shape is refused."""
    cleaned = torch.as_tensor(np.asarray(clean(pred.cpu().numpy())) > 0.5)
    if cleaned.shape != pred.shape:
        raise ValueError(f"clean must return the (3, D, H, W) shape it was given, "
                         f"{tuple(pred.shape)}; got {tuple(cleaned.shape)}")
    return cleaned.to(pred.device)


def binarized_on_grid(logits: torch.Tensor, masks: torch.Tensor, threshold: float
                      ) -> torch.Tensor:
    """A batch's (N, 3, h, w) ``logits`` as binary labels on its (N, 3, H, W) ``masks``' grid:
    the probabilities resized to the stored size, as BraTS scores them, then thresholded."""
    return binarize(probabilities_on_grid(torch.sigmoid(logits), masks.shape[-2:]), threshold,
                    logits=False)


def voxel_size(depth: int, height: int, width: int, extent=BRATS_SHAPE_MM
               ) -> tuple[float, float, float]:
    """The voxel size (depth, height, width) in mm of a volume stacked at this size: the
    volume's ``extent`` in mm (slices, rows, columns) over the voxels. By default BraTS's
    155 × 240 × 240 mm: 1 mm at BraTS's own size, 4.84 × 2.5 × 2.5 mm for 32 slices of
    96 × 96 from BraTS-proportioned data (the phantom)."""
    return tuple(float(size) / n for size, n in zip(extent, (depth, height, width)))


def _extent(dataset, volume: int) -> tuple[float, float, float]:
    """``dataset.extent_mm(volume)``, or BraTS's extent for a dataset without that method."""
    return dataset.extent_mm(volume) if hasattr(dataset, "extent_mm") else BRATS_SHAPE_MM


def placed_in_volume(stack: torch.Tensor, slices: list[int], depth: int) -> torch.Tensor:
    """(C, N, H, W) ``stack`` of ``slices`` put at their places in (C, depth, H, W) zeros."""
    placed = stack.new_zeros((stack.shape[0], depth, *stack.shape[2:]))
    placed[:, slices] = stack
    return placed
