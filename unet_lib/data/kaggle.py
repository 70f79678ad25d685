"""The Kaggle slice release of BraTS 2020: one HDF5 file per axial slice.

Layout of a folder (what :func:`unet_lib.data.make_phantom` writes too)::

    volume_<v>_slice_<s>.h5     v = 1..369, s = 0..154
        image  float64 (H, W, 4)  FLAIR, T1, T1ce, T2, each z-scored over the slice
        mask   uint8   (H, W, 3)  NCR/NET (label 1), ED (label 2), ET (label 4); values {0, 1}
    meta_data.csv               optional: slice_path, target, volume, slice, label0_pxl_cnt, ...

The stored arrays are channels-last; :class:`BraTSSlices` yields channels-first float32
tensors, the layout PyTorch models take.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from .base import SliceDataset, slice_depths
from .brats import MASK_CHANNELS, MODALITIES
from .phantom_folder import MARKER as PHANTOM_MARKER
from .samples import BraTSDataError

SLICE_NAME = re.compile(r"^volume_(\d+)_slice_(\d+)\.h5$")
METADATA_NAME = "meta_data.csv"
#: the metadata tables whose pixel counts say which slices hold which label, in the order
#: looked for (the release ships both; its meta_data.csv may lack the counts)
METADATA_NAMES = (METADATA_NAME, "BraTS20 Training Metadata.csv")
METADATA_COLUMNS = ("slice_path", "target", "volume", "slice", "label0_pxl_cnt",
                    "label1_pxl_cnt", "label2_pxl_cnt", "background_ratio")


def slice_file_name(volume: int, slice_index: int) -> str:
    """``volume_<v>_slice_<s>.h5``, the Kaggle release's name for one slice."""
    return f"volume_{volume}_slice_{slice_index}.h5"


def write_slice(path: str | Path, image: np.ndarray, mask: np.ndarray) -> None:
    """Write one slice in the Kaggle schema.

    Args:
        image: (H, W, 4) FLAIR, T1, T1ce, T2; stored as float64.
        mask: (H, W, 3) NCR/NET, ED, ET in {0, 1}; stored as uint8.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != len(MODALITIES):
        raise ValueError(f"image must be (H, W, 4), got {image.shape}")
    if mask.shape != image.shape[:2] + (len(MASK_CHANNELS),):
        raise ValueError(f"mask must be (H, W, 3) matching image {image.shape}, got {mask.shape}")
    with h5py.File(path, "w") as f:
        f.create_dataset("image", data=image.astype(np.float64), compression="gzip",
                         compression_opts=4, shuffle=True)
        f.create_dataset("mask", data=mask.astype(np.uint8), compression="gzip",
                         compression_opts=4, shuffle=True)


def read_slice(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one slice file.

    Returns:
        image float32 (4, H, W) and mask float32 (3, H, W), channels first.

    Raises:
        BraTSDataError: naming the file, if it is not HDF5, lacks ``image`` or ``mask``, has
            the wrong shapes, non-finite pixels, or mask values other than 0 and 1.
    """
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in ("image", "mask") if key not in f]
            if missing:
                raise BraTSDataError(path, f"missing dataset(s) {missing}; the file has "
                                           f"{sorted(f.keys())}, expected 'image' and 'mask'")
            image, mask = f["image"][()], f["mask"][()]
    except BraTSDataError:
        raise
    except (OSError, KeyError, ValueError) as error:
        raise BraTSDataError(path, f"cannot be read as HDF5 (truncated or not an .h5 file?): "
                                   f"{error}") from error
    return check_sample(path, image, mask)


def check_sample(source: str | Path, image: np.ndarray, mask: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Check channels-last arrays against the schema and return channels-first float32 ones:
    image (H, W, 4) and mask (H, W, 3) in, image (4, H, W) and mask (3, H, W) out.

    Raises:
        BraTSDataError: naming ``source`` and what is wrong (dtype, shape, non-finite values).
    """
    for name, array in (("image", image), ("mask", mask)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise BraTSDataError(source, f"{name} has dtype {array.dtype}, expected numbers "
                                         f"(float64 image, uint8 mask)")
    if image.ndim != 3 or image.shape[-1] != len(MODALITIES):
        raise BraTSDataError(source, f"image has shape {image.shape}, expected (H, W, 4) with "
                                     f"channels {', '.join(MODALITIES)}")
    if mask.shape != image.shape[:2] + (len(MASK_CHANNELS),):
        raise BraTSDataError(source, f"mask has shape {mask.shape}, expected "
                                     f"{image.shape[:2] + (3,)} (NCR/NET, ED, ET)")
    if not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise BraTSDataError(source, f"image has {bad} NaN or infinite pixel value(s)")
    if not np.isin(mask, (0, 1)).all():
        values = np.unique(mask)
        raise BraTSDataError(source, f"mask has values {values[:10].tolist()}, expected only 0 "
                                     f"and 1")
    overlapping = int((mask.sum(axis=-1, dtype=np.int16) > 1).sum())
    if overlapping:  # BraTS labels a pixel once: nested channels are regions, not labels
        raise BraTSDataError(source, f"mask has {overlapping} pixel(s) in more than one channel: "
                                     f"its channels look like the regions WT, TC, ET, which "
                                     f"some copies of the data hold; unet_lib reads the labels "
                                     f"NCR/NET, ED, ET, one per pixel, as the Kaggle release "
                                     f"has them")
    return (np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32),
            np.ascontiguousarray(mask.transpose(2, 0, 1), dtype=np.float32))


def find_slices(root: str | Path, volumes: Iterable[int] | None = None
                ) -> list[tuple[int, int, Path]]:
    """All ``(volume, slice, path)`` in a Kaggle-format folder, sorted by volume then slice.

    Looks in ``root`` and, if nothing is there, in the release's own sub-folders
    (``BraTS2020_training_data/content/data``) so that users may point at the unzipped download.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such data folder")
    wanted = None if volumes is None else {int(v) for v in volumes}
    for folder in (root, root / "data", root / "content" / "data",
                   root / "BraTS2020_training_data" / "content" / "data"):
        found = []
        if folder.is_dir():
            for path in folder.iterdir():
                match = SLICE_NAME.match(path.name)
                if match:
                    volume, index = int(match[1]), int(match[2])
                    if wanted is None or volume in wanted:
                        found.append((volume, index, path))
        if found:
            return sorted(found)
    other = ("; it holds a packed copy" if (root / "packed.json").is_file() else
             "; it holds NIfTI case folders" if any(root.glob("*/*_flair.nii*")) else "")
    raise FileNotFoundError(f"{root}: no slice files named volume_<v>_slice_<s>.h5 here "
                            f"{'for volumes ' + str(sorted(wanted)) if wanted else ''}".rstrip()
                            + (f"{other}: open_dataset reads every format" if other else ""))


def list_volumes(root: str | Path) -> list[int]:
    """Sorted volume numbers present in a Kaggle-format folder (any format:
    ``open_dataset(root).volumes``)."""
    return sorted({volume for volume, _, _ in find_slices(root)})


class BraTSSlices(SliceDataset):
    """A folder of Kaggle-format slices as a torch ``Dataset``.

    Args:
        root: folder holding ``volume_<v>_slice_<s>.h5`` files (or the unzipped release).
        volumes: volume numbers to include (e.g. one side of :func:`split_volumes`);
            ``None`` takes all.
        image_size: resize every slice to ``image_size × image_size``; ``None`` keeps it.
        tumour_only: keep only slices with tumour (from ``meta_data.csv`` where it lists every
            slice, else by reading every mask once; see :meth:`channel_flags`).
        on_error: what to do with a file that cannot be used (not HDF5, truncated, missing
            keys, wrong shapes, NaN pixels, mask values other than 0/1): ``"skip"`` warns
            (:class:`BadSampleWarning`) and yields a :class:`SkippedSample` in its place, which
            :func:`collate_samples` drops and ``fit`` counts and records; ``"raise"`` raises
            :class:`BraTSDataError`.

    Item ``i`` is ``(image, mask)``: float32 tensors (4, H, W) and (3, H, W).
    """

    def __init__(self, root: str | Path, volumes: Iterable[int] | None = None,
                 image_size: int | None = None, tumour_only: bool = False,
                 on_error: str = "skip"):
        super().__init__(root, image_size, on_error)
        self.slices = find_slices(root, volumes)
        self.depths = slice_depths(self.slices)  # before tumour_only filters slices out
        if self.slices and not (self.slices[0][2].parent / PHANTOM_MARKER).exists():
            # the release's volume N is case BraTS20_Training_N (a phantom has no cases)
            self.case_ids = {v: f"BraTS20_Training_{v:03d}" for v in self.depths}
        if tumour_only:
            flags = self.channel_flags()
            self.slices = [entry for entry, has in zip(self.slices, flags.any(axis=1)) if has]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return read_slice(self.slices[index][2])

    def channel_flags(self) -> np.ndarray:
        """``(N, 3)`` bool: whether item ``i`` has any NCR/NET, ED, ET pixel — from
        ``meta_data.csv``'s pixel counts when the folder has one that lists every slice, else
        by reading each mask (an unreadable file counts as empty)."""
        counts = _metadata_counts(self.slices[0][2].parent) if self.slices else {}
        if all(path.name in counts for _, _, path in self.slices):
            return np.array([counts[path.name] for _, _, path in self.slices], dtype=bool)
        return np.array([_channels_present(path) for _, _, path in self.slices],
                        dtype=bool).reshape(len(self.slices), 3)


def _channels_present(path: Path) -> list[bool]:
    """Whether the slice file's mask has any NCR/NET, ED, ET pixel, reading the mask alone
    (an unreadable file counts as empty)."""
    try:
        with h5py.File(path, "r") as f:
            mask = np.asarray(f["mask"][()])
        if mask.ndim != 3 or mask.shape[-1] != len(MASK_CHANNELS):  # unusable: training says
            return [False, False, False]
        return [bool(mask[..., channel].any()) for channel in range(3)]
    except (OSError, KeyError, ValueError, IndexError):
        return [False, False, False]


def _metadata_counts(folder: Path) -> dict[str, list[bool]]:
    """``{slice file name: [has NCR/NET, has ED, has ET]}`` from the first metadata table
    with pixel counts (:data:`METADATA_NAMES`) beside the slices or up to three folders up
    (the Kaggle release keeps ``BraTS20 Training Metadata.csv`` at its top, and a
    ``meta_data.csv`` that may list the slices without counts); ``{}`` when there is none."""
    columns = ("label0_pxl_cnt", "label1_pxl_cnt", "label2_pxl_cnt")
    for candidate in (folder, *list(folder.parents)[:3]):
        for name in METADATA_NAMES:
            path = candidate / name
            if not path.is_file():
                continue
            try:
                with open(path, newline="") as f:
                    return {Path(row["slice_path"]).name: [float(row[c]) > 0 for c in columns]
                            for row in csv.DictReader(f)}
            except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, csv.Error):
                continue  # no counts in this one (or unreadable): the next
    return {}


def write_metadata(root: str | Path, rows: Sequence[dict]) -> Path:
    """Write ``meta_data.csv`` (the release's columns) for the slices described by ``rows``,
    whole: a phantom counts as complete once it is there, so a reader never sees it half
    written, and a kill while writing leaves none."""
    from ..runfolder import write_text_atomic

    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=METADATA_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(Path(root) / METADATA_NAME, text.getvalue())


def metadata_row(path: str | Path, volume: int, slice_index: int, mask: np.ndarray) -> dict:
    """One ``meta_data.csv`` row for a channels-last (H, W, 3) mask."""
    counts = [int(mask[..., c].sum()) for c in range(mask.shape[-1])]
    return {"slice_path": str(path), "target": int(any(counts)), "volume": volume,
            "slice": slice_index, "label0_pxl_cnt": counts[0], "label1_pxl_cnt": counts[1],
            "label2_pxl_cnt": counts[2],
            "background_ratio": 1.0 - sum(counts) / float(mask.shape[0] * mask.shape[1])}
