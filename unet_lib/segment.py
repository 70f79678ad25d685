"""Segment BraTS cases that have no segmentation yet, and write BraTS label maps.

What a BraTS submission is: for each case folder ``<ID>/<ID>_{flair,t1,t1ce,t2}.nii(.gz)``
(the challenge's validation and test cases come without ``_seg``), one file ``<ID>.nii.gz``
holding labels 0 (no tumour), 1 (NCR/NET), 2 (ED) and 4 (ET) on the input's voxel grid, with
its affine. :func:`segment_folder` writes those; ``unet-lib segment`` is its command.

Each axial slice is read as the NIfTI reader reads it for training (:mod:`unet_lib.data.nifti`:
z-scored per channel), resized to the size the model learnt at, predicted, and its
probabilities resized back (bilinear) before they are cut at the threshold, each channel on
its own as :func:`unet_lib.inference.evaluate` cuts them. The model's three sigmoid channels
may overlap, a label map may not: a voxel is labelled ET (4) where the ET channel is cut in,
else NCR/NET (1), else ED (2). The regions of that map (WT = any label, TC = 1 or 4, ET = 4)
are then exactly the regions that ``evaluate`` scores (:func:`unet_lib.metrics.to_regions`
of the cut channels), so a submission scores as ``evaluate`` said it would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import check_batch_size, check_threshold
from .data import check_data_folder
from .data.base import resize_image
from .data.brats import CHANNEL_LABELS, NIFTI_MODALITIES
from .data.nifti import case_slice, load_modalities
from .data.nifti_cases import RELEASE_FOLDERS, check_not_one_case, find_case_file
from .data.samples import BraTSDataError
from .inference import predict, probabilities_on_grid, threshold_of
from .postprocess import keep_largest_component
from .runtime import resolve_device


def labels_from_probabilities(probs: torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """(3, ...) channel probabilities (NCR/NET, ED, ET) → uint8 BraTS labels (...).

    Each channel is cut at ``threshold`` on its own; a voxel is 4 (ET) where the ET channel
    is in, else 1 where NCR/NET is, else 2 where ED is, else 0. The order follows the nested
    regions ET ⊂ TC ⊂ WT: the map's regions are those of the cut channels, voxel for voxel.
    """
    check_threshold(threshold)  # 50 would write empty maps, -0.5 all ET
    probs = torch.as_tensor(probs, dtype=torch.float32).cpu()  # a GPU's too: the map is NumPy
    if probs.shape[0] != len(CHANNEL_LABELS):
        raise ValueError(f"expected 3 channels (NCR/NET, ED, ET) first, got shape "
                         f"{tuple(probs.shape)}")
    necrotic, oedema, enhancing = (probs > threshold).unbind(0)
    labels = torch.zeros(probs.shape[1:], dtype=torch.uint8)
    labels[oedema] = 2  # the weakest claim first: each later one wins where both hold
    labels[necrotic] = 1
    labels[enhancing] = 4
    return labels.numpy()


def find_unlabelled_cases(root: str | Path) -> dict[str, dict[str, Path | None]]:
    """``{case ID: {modality: path}}`` for every sub-folder ``<ID>`` of ``root`` with any of the
    four files ``<ID>_{flair,t1,t1ce,t2}.nii(.gz)`` (a ``_seg`` file, if any, is not needed).
    A modality the folder lacks is ``None``: :func:`segment_case` reports that case, and
    :func:`segment_folder` skips it and writes the others. Where ``root`` holds no case folder,
    the release's own folder under it is read (``MICCAI_BraTS2020_ValidationData``, else the
    training data's), as ``train`` does.

    Raises:
        FileNotFoundError: ``root`` is no folder, or holds no such case.
    """
    root = Path(root)
    check_data_folder(root)
    check_not_one_case(root)
    cases = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {key: find_case_file(folder, key) for key in NIFTI_MODALITIES}
        if all(path is None for path in files.values()):
            continue  # not a case folder
        cases[folder.name] = files
    for inner in RELEASE_FOLDERS["validation"] + RELEASE_FOLDERS["training"]:
        if not cases and (root / inner).is_dir():  # the release's own folder, as train looks
            return find_unlabelled_cases(root / inner)
    if not cases:
        slices = next(root.glob("volume_*_slice_*.h5"), None) or (root / "packed.json").is_file()
        raise FileNotFoundError(
            f"{root}: no case folders holding <ID>_flair/_t1/_t1ce/_t2 .nii(.gz) files"
            + ("; it holds slices (the Kaggle h5 release, a phantom or a packed copy), which "
               "have segmentations: unet-lib evaluate --data scores a model on them, segment "
               "takes NIfTI cases without one" if slices else ""))
    return cases


def segment_case(model: nn.Module, files: dict[str, Path | None], image_size: int | None = None,
                 threshold: float | None = None, batch_size: int = 32,
                 device: torch.device | str | None = None, keep_largest: bool = False
                 ) -> tuple[np.ndarray, object]:
    """The label map of one case and the NIfTI image its grid comes from (FLAIR's).

    Args:
        files: ``{modality: path}`` as :func:`find_unlabelled_cases` gives.
        image_size: the size the model learnt at (slices are resized to it and the
            probabilities back); ``None``: ``model.trained_image_size`` where the model knows
            it (one from :func:`unet_lib.checkpoint.load_model`), else the case's own size.
        threshold: each channel's cut; ``None``: the model's own
            (:func:`unet_lib.inference.threshold_of`: as trained, else 0.5).
        keep_largest: keep only the largest connected piece of the tumour (any label; voxels
            sharing a face join, across slices too) and set every voxel outside it to 0, as
            :func:`unet_lib.postprocess.keep_largest_tumour` does.

    Returns:
        ``(labels uint8 (H, W, D), flair nibabel image)``.

    Raises:
        BraTSDataError: a modality's file is missing (``None``), or as
            :func:`unet_lib.data.nifti.load_modalities`.
    """
    missing = [key for key, path in files.items() if path is None]
    if missing:
        found = [path for path in files.values() if path is not None]
        folder = found[0].parent if found else Path("this case")
        raise BraTSDataError(folder, f"missing {', '.join(missing)} file(s); expected "
                                     f"{folder.name}_<flair|t1|t1ce|t2>.nii(.gz)")
    if image_size is None:
        image_size = getattr(model, "trained_image_size", None)
    threshold = threshold_of(model, threshold)  # checked before the case is read
    stacked, reference = load_modalities(files)  # (H, W, D, 4), as training reads a case
    height, width, depth, _ = stacked.shape
    slices = torch.stack([torch.from_numpy(case_slice(stacked, s)) for s in range(depth)])
    slices = resize_image(slices, image_size)  # as the training data were resized
    probs = predict(model, slices, batch_size=batch_size, device=device)  # (D, 3, S, S)
    probs = probabilities_on_grid(probs, (height, width))
    labels = labels_from_probabilities(probs.permute(1, 2, 3, 0), threshold)  # (H, W, D)
    if keep_largest:  # on (D, H, W), as evaluate cleans: pieces of equal size tie alike
        kept = keep_largest_component((labels > 0).transpose(2, 0, 1)).transpose(1, 2, 0)
        labels[~kept] = 0
    return labels, reference


def segment_folder(model: nn.Module, data: str | Path, out: str | Path,
                   image_size: int | None = None, threshold: float | None = None,
                   batch_size: int = 32, device: torch.device | str | None = None,
                   report=print, missing_only: bool = False, keep_largest: bool = False
                   ) -> tuple[list[Path], list[str]]:
    """Write ``out/<ID>.nii.gz`` (BraTS labels on the input's grid) for every case of ``data``.

    Nothing is overwritten: the files it would write are checked before any case is
    predicted; with ``missing_only`` the cases whose label map exists already are left out
    instead (a second run after a case was mended). A case whose files cannot be read is
    reported and skipped; the others are written. ``keep_largest``: as :func:`segment_case`.

    Returns:
        ``(written, skipped)``: the written paths in case order, and the IDs of the cases that
        could not be read.

    Raises:
        FileExistsError: naming the first output that exists already (without
            ``missing_only``).
    """
    import nibabel as nib

    device = resolve_device(device)  # the arguments checked before anything is read or made
    check_batch_size(batch_size)
    threshold = threshold_of(model, threshold)
    cases = find_unlabelled_cases(data)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: is a file; give a folder for the label maps")
    targets = {case: out / f"{case}.nii.gz" for case in cases}
    existing = [case for case, path in targets.items() if path.exists()]
    if existing and not missing_only:
        raise FileExistsError(f"{targets[existing[0]]} exists already ({len(existing)} of the "
                              f"{len(targets)} label maps would replace files); choose "
                              f"another --out, move them, or add --missing-only")
    if existing:
        report(f"{len(existing)} of the {len(targets)} label maps exist already: kept")
        targets = {case: path for case, path in targets.items() if case not in existing}
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.partial.nii.gz"):  # left by a run killed mid-write
        stale.unlink()
    written, skipped = [], []
    for number, (case, target) in enumerate(targets.items(), start=1):
        try:
            labels, reference = segment_case(model, cases[case], image_size, threshold,
                                             batch_size, device, keep_largest)
        except BraTSDataError as error:  # one broken case does not cost the others
            skipped.append(case)
            report(f"{number}/{len(targets)} skipped: {error}")
            continue
        header = reference.header.copy()  # FLAIR's grid and orientation; not its display
        header.set_data_dtype(np.uint8)
        header["cal_min"], header["cal_max"] = 0, 4  # a viewer's range: the labels'
        header["descrip"] = b"unet_lib: BraTS labels 0, 1 NCR/NET, 2 ED, 4 ET"
        partial = target.with_name(f".{case}.partial.nii.gz")  # complete, or not there
        nib.save(nib.Nifti1Image(labels, reference.affine, header), partial)
        partial.replace(target)
        written.append(target)
        counts = {label: int((labels == label).sum()) for label in CHANNEL_LABELS}
        report(f"{number}/{len(targets)} {target}: voxels labelled 1 (NCR/NET) "
               f"{counts[1]}, 2 (ED) {counts[2]}, 4 (ET) {counts[4]}")
    if skipped:
        report(f"{len(skipped)} case(s) could not be read and have no label map: "
               f"{', '.join(skipped)}; mend them and run again with --missing-only")
    return written, skipped
