"""BraTS 2020 data: the Kaggle slice files, the official NIfTI volumes, and the phantom."""

from __future__ import annotations

from pathlib import Path

from .base import SliceDataset, locate, resize_sample
from .brats import MASK_CHANNELS, MODALITIES, REGIONS, labels_to_mask
from .contents import channel_flags, tumour_grades
from .kaggle import BraTSSlices, find_slices, list_volumes, read_slice, write_slice
from .nifti import BraTSNifti
from .nifti_cases import NiftiFolderError, check_not_one_case, find_cases
from .normalize import zscore_slice
from .packed import PackedSlices, is_packed
from .packing import pack, pack_folder
from .samples import (BadSampleWarning, BraTSDataError, SkippedSample, announce_skipped,
                      collate_samples)
from .phantom import cached_phantom, make_phantom, make_volume
from .split import VolumeSplit, split_train_val_test, split_volumes


def check_data_folder(root: str | Path) -> None:
    """Raise ``FileNotFoundError`` naming ``root`` unless it is a folder."""
    if Path(root).is_file():
        raise FileNotFoundError(f"{root}: is a file; give the folder that holds the data")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such data folder")


def open_dataset(root: str | Path, volumes=None, image_size: int | None = None,
                 on_error: str = "skip"):
    """A dataset over ``root`` in whichever format it holds: a packed folder
    (:class:`PackedSlices`), Kaggle slices (:class:`BraTSSlices`) or NIfTI cases
    (:class:`BraTSNifti`), tried in that order.

    Args:
        root: the data folder.
        volumes: the volume numbers to include; ``None`` takes all.
        image_size: items resized to ``image_size × image_size``; ``None`` keeps them.
        on_error: an unusable slice: ``"skip"`` (warn, and yield a :class:`SkippedSample`)
            or ``"raise"``.

    Returns:
        A :class:`~unet_lib.data.base.SliceDataset` of ``(image (4, S, S), mask (3, S, S))``
        float32 tensors: channels FLAIR, T1, T1ce, T2 and NCR/NET, ED, ET.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds none of the three formats (or
            none of ``volumes``).
        BraTSDataError: naming a file of the folder's format that cannot be used to list it
            (a damaged pack's manifest, NIfTI cases none of which is usable).
    """
    check_data_folder(root)
    if is_packed(root):
        return PackedSlices(root, volumes=volumes, image_size=image_size, on_error=on_error)
    try:
        return BraTSSlices(root, volumes=volumes, image_size=image_size, on_error=on_error)
    except FileNotFoundError as kaggle_error:
        try:
            return BraTSNifti(root, volumes=volumes, image_size=image_size, on_error=on_error)
        except NiftiFolderError:  # NIfTI cases, none usable: said as it is
            raise
        except FileNotFoundError as nifti_error:
            if volumes is not None:  # the folder may hold one format, but none of the volumes
                for error, listed in ((kaggle_error, find_slices), (nifti_error, find_cases)):
                    if _holds_any(listed, root):
                        raise error from None
            check_not_one_case(Path(root))
            raise FileNotFoundError(f"{root}: neither Kaggle slice files "
                                    f"(volume_<v>_slice_<s>.h5) nor NIfTI case folders "
                                    f"(BraTS20_Training_XXX) found") from kaggle_error


def _holds_any(listed, root) -> bool:
    """Whether ``listed(root)`` (:func:`find_slices` or :func:`find_cases`) finds anything
    (a case folder that lacks a file is something found, in the NIfTI format)."""
    try:
        listed(root)
    except FileNotFoundError:
        return False
    except BraTSDataError:
        pass
    return True


__all__ = ["BadSampleWarning", "BraTSDataError", "BraTSNifti", "BraTSSlices", "SkippedSample",
           "SliceDataset", "locate", "resize_sample",
           "cached_phantom", "channel_flags", "check_data_folder", "tumour_grades",
           "announce_skipped", "collate_samples", "MASK_CHANNELS", "MODALITIES",
           "REGIONS", "find_cases", "find_slices", "labels_to_mask", "list_volumes",
           "make_phantom", "make_volume", "open_dataset", "PackedSlices", "is_packed", "pack",
           "pack_folder", "read_slice", "split_train_val_test", "split_volumes", "VolumeSplit",
           "write_slice", "zscore_slice"]
