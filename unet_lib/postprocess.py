"""Cleaning a predicted volume after the model: keep its largest connected piece.

A false blob far from the tumour costs Dice little but can set a patient's HD95
(:class:`unet_lib.outlines.OutlineDistances` shows which voxels do). Keeping only the largest
connected piece of each predicted region removes such blobs; it also removes a real second
focus of a multifocal tumour, so whether it helps is for a paired test over patients to say
(:mod:`unet_lib.comparison`).

Two ways to clean the three regions: :func:`keep_largest_per_region` cleans WT, TC and ET each
on its own; :func:`keep_largest_tumour` keeps the largest piece of the whole tumour and cuts
every region to it, so that the regions stay nested (TC inside WT) and a label map can be
written from them. The command line's ``--keep-largest`` (``unet-lib evaluate``, ``segment``)
is the second.

>>> cleaned = keep_largest_per_region(case.pred)     # (3, D, H, W) WT, TC, ET
>>> score_patient(cleaned, case.truth, case.spacing)["hd95"]
>>> evaluate_patients(model, test_set, clean=keep_largest_tumour)   # every patient cleaned
"""

from __future__ import annotations

import numpy as np

from .outlines import as_bool


def keep_largest_component(mask, connectivity: int = 1) -> np.ndarray:
    """The largest connected piece of a binary mask (D, H, W) or (H, W), as a new bool array;
    an empty mask stays empty. Of pieces of equal size, the one met first in the array's
    order (C order) is kept.

    Args:
        connectivity: which neighbours join a piece: 1, voxels sharing a face (6 in 3-D, 4 in
            2-D: ``scipy.ndimage.label``'s default); ``mask.ndim``, also edges and corners
            (26 in 3-D).
    """
    from scipy import ndimage

    mask = as_bool(mask)
    if isinstance(connectivity, bool) or not isinstance(connectivity, int) or not (
            1 <= connectivity <= mask.ndim):
        raise ValueError(f"connectivity must be 1 (faces) to {mask.ndim} (corners too) for a "
                         f"{mask.ndim}-D mask, got {connectivity!r}")
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    pieces, count = ndimage.label(mask, structure=structure)
    if count == 0:
        return mask.copy()
    sizes = np.bincount(pieces.ravel())[1:]  # voxels of pieces 1..count
    return pieces == 1 + int(np.argmax(sizes))


def keep_largest_per_region(pred, connectivity: int = 1) -> np.ndarray:
    """:func:`keep_largest_component` of each channel of ``pred`` (C, D, H, W), e.g. the
    regions WT, TC, ET of :class:`unet_lib.patient_volume.PatientVolume`, each on its own: a
    kept TC piece may then lie outside the kept WT piece (to keep the regions nested, clean WT
    and cut the others to it). Returns bool (C, D, H, W)."""
    return np.stack([keep_largest_component(region, connectivity) for region in as_bool(pred)])


def keep_largest_tumour(pred, connectivity: int = 1) -> np.ndarray:
    """Keep the largest connected piece of the whole tumour and remove everything outside it
    from every channel. ``pred`` is (3, D, H, W): the label channels NCR/NET, ED, ET or the
    regions WT, TC, ET alike (either way their union is the whole tumour), and the result is
    bool (3, D, H, W) of the same kind. Unlike :func:`keep_largest_per_region`, the regions
    stay nested: a TC or ET piece survives only inside the kept whole tumour, whole."""
    pred = as_bool(pred)
    if pred.ndim < 2:
        raise ValueError(f"pred must be (channels, D, H, W) or (channels, H, W), got shape "
                         f"{pred.shape}")
    return pred & keep_largest_component(pred.any(axis=0), connectivity)
