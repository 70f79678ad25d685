"""The official BraTS 2020 NIfTI release, read as the same (image, mask) slices.

Layout::

    MICCAI_BraTS2020_TrainingData/BraTS20_Training_XXX/
        BraTS20_Training_XXX_{flair,t1,t1ce,t2,seg}.nii(.gz)     240×240×155, labels {0,1,2,4}

Slice ``s`` is ``volume[:, :, s]`` (no transpose), z-scored per channel as in the Kaggle
release, so models trained on either format see the same inputs. BraTS 2021's cases
(``BraTS2021_XXXXX/BraTS2021_XXXXX_{flair,t1,t1ce,t2,seg}.nii.gz``, the same labels) read the
same way.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np

from .base import SliceDataset
from .brats import BRATS_LABELS, CHANNEL_LABELS, NIFTI_MODALITIES, labels_to_mask
from .nifti_cases import find_cases
from .normalize import zscore_slice
from .samples import BraTSDataError, skip_or_raise


def _read_nifti(path: Path):
    import nibabel as nib

    try:
        image = nib.load(str(path))
        return image, np.asarray(image.dataobj, dtype=np.float32)
    except Exception as error:  # nibabel raises many kinds on a broken file
        raise BraTSDataError(path, f"cannot be read as NIfTI: {error}") from error


def load_modalities(files: dict[str, Path]) -> tuple[np.ndarray, object]:
    """The four modalities of a case, checked: ``(H, W, D, 4)`` float32 (FLAIR, T1, T1ce, T2)
    and FLAIR's nibabel image (its grid: affine and header).

    Raises:
        BraTSDataError: naming the file that cannot be read, is not 3-D, differs in shape or
            grid (affine) from FLAIR's, or holds NaN or infinite values.
    """
    reference, arrays = None, []
    for key in NIFTI_MODALITIES:
        image, array = _read_nifti(files[key])
        reference = image if reference is None else reference
        check_fits_flair(files[key], image, reference)
        if not np.isfinite(array).all():
            raise BraTSDataError(files[key], "contains NaN or infinite values")
        arrays.append(array)
    return np.stack(arrays, axis=-1), reference


def check_fits_flair(path: Path, image, flair) -> None:
    """Raise unless the NIfTI ``image`` (its header: no voxel is read) is 3-D, of ``flair``'s
    shape and on its grid, naming ``path``."""
    if len(image.shape) != 3:
        raise BraTSDataError(path, f"has shape {image.shape}, expected a 3-D volume "
                                   f"(240, 240, 155)")
    if image.shape != flair.shape:
        raise BraTSDataError(path, f"shape {image.shape} differs from FLAIR's {flair.shape}")
    check_same_grid(path, image, flair)


def check_same_grid(path: Path, image, reference) -> None:
    """Raise unless ``image`` lies on ``reference``'s voxel grid (affines equal to 1e-3 mm):
    a case's BraTS files share one grid; a re-oriented or resampled file would put another
    place of the head under each voxel."""
    if np.allclose(image.affine, reference.affine, atol=1e-3):
        return
    import nibabel as nib

    axes, flair_axes = ("".join(nib.aff2axcodes(x.affine)) for x in (image, reference))
    if axes != flair_axes:
        how = f"re-oriented? Its axes read {axes}, FLAIR's {flair_axes}"
    else:  # the same orientation: moved or resampled
        shift = np.abs(image.affine[:3, 3] - reference.affine[:3, 3]).max()
        zooms = ", ".join(f"{z:g}" for z in image.header.get_zooms()[:3])
        flair_zooms = ", ".join(f"{z:g}" for z in reference.header.get_zooms()[:3])
        how = (f"not co-registered? Its origin lies {shift:g} mm from FLAIR's; its voxels "
               f"measure {zooms} mm, FLAIR's {flair_zooms}")
    raise BraTSDataError(path, f"its grid (affine) differs from FLAIR's: {how}")


def case_slice(modalities: np.ndarray, s: int) -> np.ndarray:
    """Axial slice ``s`` of a case's ``(H, W, D, 4)`` modalities as a model sees it:
    ``(4, H, W)`` float32, z-scored per channel (:func:`~unet_lib.data.normalize.zscore_slice`)."""
    return zscore_slice(modalities[:, :, s, :]).transpose(2, 0, 1).astype(np.float32)


def load_case(files: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Load one case: (H, W, D, 4) float32 modalities and (H, W, D) uint8 labels, checked."""
    modalities, flair = load_modalities(files)
    image, seg = _read_nifti(files["seg"])
    check_same_grid(files["seg"], image, flair)
    if seg.shape != modalities.shape[:3]:
        raise BraTSDataError(files["seg"], f"shape {seg.shape} differs from the modalities' "
                                           f"{modalities.shape[:3]}")
    labels = np.unique(seg)
    unexpected = sorted(set(labels.tolist()) - set(BRATS_LABELS))
    unexpected = [int(v) if float(v).is_integer() else float(v) for v in unexpected]
    if unexpected:
        raise BraTSDataError(files["seg"], f"has labels {unexpected}; BraTS 2020 uses only "
                                           f"{list(BRATS_LABELS)} (BraTS 2023+ numbers ET as 3)")
    return modalities, seg.astype(np.uint8)


def _grid(files: dict[str, Path]) -> tuple[int, tuple[float, float, float] | None]:
    """A case's number of axial slices and its size in mm (slices, rows, columns; ``None``
    where the header gives no positive voxel size), from the headers of its five files alone,
    checked as reading the case checks them (each 3-D, of FLAIR's shape, on FLAIR's grid), so
    that a case none of whose slices could be read is left out before a split counts it.

    Raises:
        BraTSDataError: naming the first file that cannot be read or does not fit FLAIR's.
    """
    import nibabel as nib

    images = {}
    for key in (*NIFTI_MODALITIES, "seg"):
        try:
            images[key] = nib.load(str(files[key]))  # the header: no voxel is read
        except Exception as error:  # nibabel raises many kinds on an empty or broken file
            raise BraTSDataError(files[key], f"cannot be read as NIfTI: {error}") from None
    for key, image in images.items():
        check_fits_flair(files[key], image, images["flair"])
    # the voxel size from the affine, which check_same_grid compares (nibabel reads a zero
    # pixdim as 1); slice s is volume[:, :, s]: rows along the first axis, columns the second
    shape, zooms = images["seg"].shape, nib.affines.voxel_sizes(images["seg"].affine)
    extent = tuple(float(n * z) for n, z in zip((shape[2], shape[0], shape[1]),
                                                 (zooms[2], zooms[0], zooms[1])))
    return shape[2], extent if all(np.isfinite(extent)) and min(extent) > 0 else None


class BraTSNifti(SliceDataset):
    """Axial slices of official BraTS NIfTI cases, as ``(image, mask)`` like :class:`BraTSSlices`.

    Args:
        root: folder of ``BraTS20_Training_XXX`` case folders.
        volumes: case numbers to include; ``None`` takes all.
        image_size: resize slices to ``image_size × image_size``; ``None`` keeps 240.
        cache_volumes: how many decoded cases to keep in memory (reading is per case).
        on_error: ``"skip"`` (warn and skip every slice of a case that cannot be used: broken
            file, NaN values, labels outside {0, 1, 2, 4}) or ``"raise"``; as in
            :class:`unet_lib.data.BraTSSlices`.

    Each case's size in mm comes from its segmentation's header (:attr:`extents_mm`), so that
    per-patient distances are in the case's own millimetres. Item ``i`` is
    ``(image float32 (4, H, W), mask float32 (3, H, W))``. A case whose files' headers show
    it unusable (a file empty or unreadable, not 3-D, of another shape or grid than FLAIR's)
    is left out whole when skipping, with a warning, and listed in ``skipped``, before any
    split counts it; what only its voxels show (NaN, labels outside {0, 1, 2, 4}) is found
    when its slices are read.
    """

    def __init__(self, root: str | Path, volumes: Iterable[int] | None = None,
                 image_size: int | None = None, cache_volumes: int = 2,
                 on_error: str = "skip"):
        super().__init__(root, image_size, on_error)
        self.skipped: list[str] = []  # cases left out whole: a file missing, or their seg
        self.cases = find_cases(root, volumes, on_error, self.skipped)  # cannot say its depth
        self.cache_volumes = cache_volumes
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._broken: dict[int, BraTSDataError] = {}  # read once, reported for every slice
        self.slices = []
        for number, files in list(self.cases.items()):
            try:
                depth, extent = _grid(files)
            except BraTSDataError as error:
                self.skipped.append(str(skip_or_raise(error, self.on_error)))
                del self.cases[number]
                continue
            self.slices.extend((number, s) for s in range(depth))
            self.case_ids[number] = files["seg"].parent.name  # the case folder's name
            if extent is not None:  # per-patient scores measure HD95 in these mm
                self.extents_mm[number] = extent

    @property
    def volumes(self) -> list[int]:
        return sorted(self.cases)

    def _case(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        if number in self._broken:
            raise self._broken[number]
        if number not in self._cache:
            try:
                self._cache[number] = load_case(self.cases[number])
            except BraTSDataError as error:
                self._broken[number] = error
                raise
            while len(self._cache) > self.cache_volumes:
                self._cache.popitem(last=False)
        self._cache.move_to_end(number)
        return self._cache[number]

    def __getstate__(self) -> dict:  # a worker process decodes its own cases
        return {**self.__dict__, "_cache": OrderedDict()}

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        number, s = self.slices[index]
        modalities, seg = self._case(number)
        mask = labels_to_mask(seg[:, :, s]).transpose(2, 0, 1)
        return case_slice(modalities, s), mask.astype(np.float32)

    def channel_flags(self) -> np.ndarray:
        """``(N, 3)`` bool: whether item ``i`` has any NCR/NET, ED, ET pixel, from the
        segmentation files alone (one read per case; an unreadable one counts as empty)."""
        import nibabel as nib

        flags = np.zeros((len(self.slices), 3), dtype=bool)
        present: dict[int, np.ndarray] = {}
        for index, (number, s) in enumerate(self.slices):
            if number not in present:
                try:
                    seg = np.asarray(nib.load(str(self.cases[number]["seg"])).dataobj)
                    present[number] = np.stack([(seg == label).any(axis=(0, 1))
                                                for label in CHANNEL_LABELS], axis=1)
                except Exception:  # nibabel raises many kinds; reading reports it properly
                    present[number] = np.zeros((0, 3), dtype=bool)
            if s < len(present[number]):
                flags[index] = present[number][s]
        return flags
