"""A packed copy of a BraTS folder: one memory-mapped array per field, read at memory speed.

Reading the Kaggle release means opening 57,195 small gzip-compressed HDF5 files per epoch,
which starves a GPU. :func:`~unet_lib.data.packing.pack` reads every slice once (through the
same checks as training) and writes a folder::

    images.npy   float16 (N, 4, H, W)   z-scored channels (|values| < 65,504: float16 is enough)
    masks.npy    uint8   (N, H, W)      the three mask channels as bits: NCR/NET 1, ED 2, ET 4
    index.npy    int32   (K, 3)         (volume, slice, row) of each usable slice (K ≤ N; rows
                                        of skipped files stay zero and are never read)
    packed.json  the manifest: source folder, shapes, dtypes, the size of each file, a SHA-256
                 of the index, and the files skipped as unusable

The pack is written into a hidden temporary folder beside ``out`` and renamed into place when
complete, so a reader never sees a half-written pack, and a failed or killed re-pack leaves the
previous one as it was. :class:`PackedSlices` refuses a folder whose arrays do not match its
manifest, naming the file, and reads it as a dataset identical to :class:`BraTSSlices` (up to
float16 rounding of the images, about 1e-3 relative).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import numpy as np

from .base import SliceDataset
from .samples import BraTSDataError

PACKED_META = "packed.json"
PACKED_FORMAT = "unet_lib-packed-2"
ARRAYS = ("images.npy", "masks.npy", "index.npy")
CHANNEL_BITS = np.arange(3, dtype=np.uint8)[:, None, None]  # channel c is bit c of a mask byte
FLOAT16_MAX = float(np.finfo(np.float16).max)


def is_packed(root: str | Path) -> bool:
    """Whether ``root`` is a folder written by :func:`pack`."""
    return (Path(root) / PACKED_META).is_file()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(root: str | Path) -> dict:
    """``packed.json`` of a packed folder, checked against the arrays beside it.

    Raises:
        FileNotFoundError: ``root`` is not a packed folder.
        BraTSDataError: naming the file that is unreadable or does not match the manifest.
    """
    root = Path(root)
    meta_path = root / PACKED_META
    if not meta_path.is_file():
        raise FileNotFoundError(f"{root}: not a packed folder (no {PACKED_META}); make one "
                                f"with `unet-lib pack`")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as error:
        raise BraTSDataError(meta_path, f"cannot be read as a pack's manifest ({error}); pack "
                                        f"the data again") from None
    _check_manifest_fields(meta, meta_path)
    for name, size in meta.get("files", {}).items():
        path = root / name
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            found = "is missing" if actual is None else f"has {actual:,} bytes"
            raise BraTSDataError(path, f"{found}, the manifest says {size:,}: a damaged or "
                                       f"half-written pack; pack the data again")
    if "index_sha256" in meta and sha256_of(root / "index.npy") != meta["index_sha256"]:
        raise BraTSDataError(root / "index.npy", "does not match the checksum in the manifest: "
                                                 "a damaged pack; pack the data again")
    return meta


def _check_manifest_fields(meta: dict, meta_path: Path) -> None:
    """Refuse a manifest of another format, or one lacking what a reader needs, by name."""
    if meta.get("format", PACKED_FORMAT) != PACKED_FORMAT:
        raise BraTSDataError(meta_path, f"is a pack of format {meta['format']!r}; this unet_lib "
                                        f"reads {PACKED_FORMAT!r}: pack the data again")
    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    files = meta.get("files", {})  # since format 2
    wanted = {"height": whole(meta.get("height")) and meta["height"] > 0,
              "width": whole(meta.get("width")) and meta["width"] > 0,
              "files": isinstance(files, dict) and all(map(whole, files.values()))}
    extents = meta.get("extents_mm", {})  # a NIfTI source's sizes in mm, since 2026-12-06
    wanted["extents_mm"] = isinstance(extents, dict) and all(
        isinstance(e, list) and len(e) == 3 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in e)
        for e in extents.values())
    case_ids = meta.get("case_ids", {})
    wanted["case_ids"] = isinstance(case_ids, dict) and all(
        isinstance(name, str) for name in case_ids.values())
    for key, fine in wanted.items():
        if not fine:
            expected = {"extents_mm": "three positive numbers per volume",
                        "case_ids": "one name per volume"}.get(key, "whole numbers")
            raise BraTSDataError(meta_path, f"lacks {key!r} or holds a wrong one ({expected} "
                                            f"expected): not a manifest written by `unet-lib "
                                            f"pack`, or damaged; pack the data again")


def _open_array(path: Path, dtype, shape_tail: tuple, rows: int | None) -> np.ndarray:
    """Memory-map a ``.npy`` file, checking its dtype and shape, with errors naming it."""
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:
        raise BraTSDataError(path, f"cannot be read as a NumPy array (truncated or "
                                   f"damaged?): {error}; pack the data again") from None
    if array.dtype != dtype or array.shape[1:] != shape_tail or (
            rows is not None and array.shape[0] != rows):
        raise BraTSDataError(path, f"holds {array.dtype} {array.shape}, expected {np.dtype(dtype)} "
                                   f"({rows if rows is not None else 'N'}, "
                                   f"{', '.join(map(str, shape_tail))}); pack the data again")
    return array


class PackedSlices(SliceDataset):
    """A folder written by :func:`pack` as a dataset of ``(image, mask)`` float32 tensors.

    Args:
        root: the packed folder.
        volumes: volume numbers to include; ``None`` takes all.
        image_size: resize to ``image_size × image_size``; ``None`` keeps the packed size.
        on_error: a row with NaN or infinite values (a damaged file): ``"skip"`` (warn and
            yield a :class:`SkippedSample`) or ``"raise"``.

    The arrays are memory-mapped: opening is instant, each item is two array slices, and
    DataLoader workers share the operating system's page cache. Opening checks the arrays
    against the manifest and the index against the arrays.
    """

    def __init__(self, root: str | Path, volumes: Iterable[int] | None = None,
                 image_size: int | None = None, on_error: str = "skip"):
        super().__init__(root, image_size, on_error)
        self.meta = read_manifest(self.root)
        height, width = self.meta["height"], self.meta["width"]
        images = _open_array(self.root / "images.npy", np.float16, (4, height, width),
                             self.meta.get("rows"))
        _open_array(self.root / "masks.npy", np.uint8, (height, width), len(images))
        index = _open_array(self.root / "index.npy", np.int32, (3,), None)
        index = np.asarray(index)
        if len(index) and (index[:, 2].min() < 0 or index[:, 2].max() >= len(images)):
            raise BraTSDataError(self.root / "index.npy",
                                 f"has rows outside 0..{len(images) - 1} of images.npy: a "
                                 f"damaged pack; pack the data again")
        if volumes is not None:
            index = index[np.isin(index[:, 0], list(volumes))]
        self.slices = [(int(v), int(s), int(row)) for v, s, row in index]
        self.depths = {int(v): int(d) for v, d in self.meta.get("depths", {}).items()}
        self.extents_mm = {int(v): tuple(float(x) for x in extent)  # from NIfTI headers
                           for v, extent in self.meta.get("extents_mm", {}).items()}
        self.case_ids = {int(v): name for v, name in self.meta.get("case_ids", {}).items()}
        self._images = self._masks = None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None:  # opened lazily: each DataLoader worker maps its own view
            self._images = np.load(self.root / "images.npy", mmap_mode="r")
            self._masks = np.load(self.root / "masks.npy", mmap_mode="r")
        return self._images, self._masks

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        images, masks = self._arrays()
        volume, slice_index, row = self.slices[index]
        image = images[row].astype(np.float32)
        if not np.isfinite(image).all():
            raise BraTSDataError(self.root / "images.npy",
                                 f"row {row} (volume {volume}, slice {slice_index}) has NaN or "
                                 f"infinite values")
        return image, ((masks[row] >> CHANNEL_BITS) & 1).astype(np.float32)

    def channel_flags(self) -> np.ndarray:
        """``(N, 3)`` bool: whether item ``i`` has any NCR/NET, ED, ET pixel."""
        _, masks = self._arrays()
        rows = np.array([row for _, _, row in self.slices], dtype=np.int64)
        flags = np.zeros((len(rows), 3), dtype=bool)
        for start in range(0, len(rows), 1024):  # a block of rows at a time: bounded memory
            block = np.asarray(masks[rows[start:start + 1024]])[:, None]  # (B, 1, H, W)
            flags[start:start + 1024] = ((block >> CHANNEL_BITS) & 1).any(axis=(2, 3))
        return flags

    def __getstate__(self) -> dict:  # workers re-open the maps instead of pickling them
        return {**self.__dict__, "_images": None, "_masks": None}
