"""Writing a packed copy of a BraTS folder (:func:`pack`), volume by volume in parallel; the
format and its reader are in :mod:`unet_lib.data.packed`."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..parallel import default_workers, map_in_processes
from ..progress import progress_bar
from .base import first_usable, rows_by_volume, slice_depths
from .packed import (ARRAYS, CHANNEL_BITS, FLOAT16_MAX, PACKED_FORMAT, PACKED_META, is_packed,
                     sha256_of)
from .samples import BadSampleWarning, BraTSDataError, SkippedSample


def pack(source: Dataset, out: str | Path, progress: bool = True,
         workers: int | None = None) -> Path:
    """Write every usable sample of ``source`` (e.g. a :class:`BraTSSlices`) to ``out``.

    ``source`` must yield ``(image (4, H, W), mask (3, H, W))`` and have a ``slices`` list of
    ``(volume, slice, ...)`` entries, as the BraTS datasets do. Samples that cannot be used —
    unreadable files, a size other than the first usable slice's, pixel values too large for
    float16 — are skipped and listed in ``packed.json``. ``out`` may be a new or empty folder
    or an earlier pack, which is replaced only once the new one is complete. Returns ``out``.

    Volumes are packed by ``workers`` processes, each writing its volumes' rows in place;
    ``None``: one per usable CPU core, up to 8 (:func:`unet_lib.parallel.default_workers`),
    for a source of BraTS size (:data:`PARALLEL_FROM_PIXELS`), one for a small one. The files
    are byte-identical whatever the number.

    Raises:
        FileExistsError: ``out`` holds other files (they are left alone).
        BraTSDataError: no sample of ``source`` is usable.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and (is_packed(out) or not any(out.iterdir()))):
        raise FileExistsError(f"{out}: exists and is not a packed folder; pack into a new or "
                              f"empty folder (nothing was written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.packing-*"):  # left by a killed pack
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.packing-"))
    # mkdtemp's 0700 would hide the pack from a shared group; setgid (inherited) is kept
    work.chmod(work.stat().st_mode & 0o7000 | 0o777 & ~_umask())
    try:
        _write_pack(source, work, progress, workers)
        _swap_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _write_pack(source: Dataset, folder: Path, progress: bool, workers: int | None) -> None:
    """Write the arrays, volume by volume (in ``workers`` processes), then the manifest last,
    into ``folder``."""
    n = len(source)
    first = first_usable(source, tries=n)  # its size is the pack's
    if first is not None:  # allocated here, filled in place by whoever packs each volume
        shape = height, width = tuple(first[0].shape[-2:])
        np.lib.format.open_memmap(folder / "images.npy", "w+", np.float16, (n, 4, *shape))
        np.lib.format.open_memmap(folder / "masks.npy", "w+", np.uint8, (n, *shape))
        groups = list(rows_by_volume(source.slices).values())
        if workers is None:
            workers = default_workers(len(groups), n * height * width >= PARALLEL_FROM_PIXELS)
        jobs = [(folder, rows, shape) for rows in groups]
        try:
            packed = progress_bar(map_in_processes(_pack_rows, jobs, workers, _receive,
                                                   (source,)),
                                  progress, total=len(jobs),
                                  desc=f"packing {n} slices of {len(jobs)} volumes")
            done = [entry for volume in packed for entry in volume]
        finally:
            _receive(None)  # packed here (one worker): let the dataset go
    else:
        done = [(row, str(source[row])) for row in range(n)]
    index = sorted(entry for entry in done if isinstance(entry[1], tuple))
    skipped = [message for _, message in sorted(e for e in done if isinstance(e[1], str))]
    cases_left_out = list(getattr(source, "skipped", []))  # NIfTI cases without any row
    slices_skipped = len(skipped)
    skipped = cases_left_out + skipped
    if not index:
        raise BraTSDataError(getattr(source, "root", folder),
                             f"nothing to pack: all {n} slice(s) are unusable"
                             + (f", e.g. {skipped[0]}" if skipped else ""))
    index = [(*entry, row) for row, entry in index]
    np.save(folder / "index.npy", np.array(index, np.int32).reshape(-1, 3))
    unique_skipped = list(dict.fromkeys(skipped))  # a broken NIfTI case skips all its slices
    meta = {"format": PACKED_FORMAT, "source": str(getattr(source, "root", "")),
            "slices": len(index), "rows": n, "height": int(height), "width": int(width),
            "image_dtype": "float16", "mask_dtype": "uint8 bits",
            "files": {name: (folder / name).stat().st_size for name in ARRAYS},
            "index_sha256": sha256_of(folder / "index.npy"),
            "skipped_slices": slices_skipped, "skipped_cases": len(cases_left_out),
            "skipped": unique_skipped,
            "depths": _source_depths(source)}
    extents = getattr(source, "extents_mm", None)  # a NIfTI source's voxel sizes, kept
    if extents:
        meta["extents_mm"] = {str(volume): list(extent) for volume, extent in
                              sorted(extents.items())}
    case_ids = getattr(source, "case_ids", None)  # the BraTS case IDs, kept
    if case_ids:
        meta["case_ids"] = {str(volume): name for volume, name in sorted(case_ids.items())}
    (folder / PACKED_META).write_text(json.dumps(meta, indent=1))


#: a source of at least this many pixels per channel (300 BraTS slices, two volumes) is packed
#: by one process per core by default; a smaller one here, as the second or two a process
#: takes to start would outweigh what it saves. Measured on 2 cores, a 240×240 phantom
#: (2026-11-28): 2 volumes 4.1 s in one process, 3.7 s in two; 4 volumes 8.2 s and 5.4 s;
#: 6 volumes 12.1 s and 7.4 s
PARALLEL_FROM_PIXELS = 300 * 240 * 240


def _source_depths(source: Dataset) -> dict[str, int]:
    """``{volume: slices}`` of each volume at the source, for per-patient scoring's voxel
    depth (:meth:`SliceDataset.depth_of`): what a filter left out counts, and so do the
    slices that could not be packed."""
    depths = getattr(source, "depths", None) or {}
    listed = slice_depths(source.slices)
    return {str(volume): int(max(depth, depths.get(volume, 0)))
            for volume, depth in sorted(listed.items())}


_SOURCE: Dataset | None = None  # the dataset being packed, in a packing process


def _receive(source: Dataset | None) -> None:
    """A packing process's start: keep the dataset it was sent once. In a worker process, a
    NIfTI reader keeps one decoded case (its volumes come one at a time) and unusable files
    are not warned about (they are listed in ``packed.json`` and counted by the command)."""
    global _SOURCE
    _SOURCE = source
    if source is not None and multiprocessing.parent_process() is not None:
        if hasattr(source, "cache_volumes"):
            source.cache_volumes = 1
        warnings.simplefilter("ignore", BadSampleWarning)


def _pack_rows(folder: Path, rows: list[int], shape: tuple[int, int]) -> list[tuple]:
    """Write ``rows`` of the source into the pack's arrays in ``folder``.

    Returns:
        ``(row, (volume, slice))`` for each row written, ``(row, "where: why")`` for each
        row skipped (unusable, another size, values too large for float16).
    """
    source = _SOURCE
    images = np.load(folder / "images.npy", mmap_mode="r+")
    masks = np.load(folder / "masks.npy", mmap_mode="r+")
    done = []
    for row in rows:
        sample = source[row]
        if isinstance(sample, SkippedSample):
            done.append((row, str(sample)))
            continue
        image, mask = sample[0].numpy(), sample[1].numpy()
        where = _sample_path(source, row)
        if image.shape[-2:] != shape:
            done.append((row, f"{where}: size {image.shape[-2]}×{image.shape[-1]} differs from "
                              f"the pack's {shape[0]}×{shape[1]} (set by the first usable "
                              f"slice)"))
            continue
        with np.errstate(over="ignore"):
            half = image.astype(np.float16)
        if not np.isfinite(half).all():
            done.append((row, f"{where}: pixel values up to {np.abs(image).max():.3g} do not "
                              f"fit float16 (at most {FLOAT16_MAX:.0f})"))
            continue
        images[row] = half
        masks[row] = (mask.astype(np.uint8) << CHANNEL_BITS).sum(axis=0)
        done.append((row, tuple(int(x) for x in source.slices[row][:2])))
    images.flush()
    masks.flush()
    return done


def _umask() -> int:
    """This process's umask (read by setting it, then setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sample_path(source: Dataset, row: int) -> str:
    entry = source.slices[row]
    if len(entry) > 2 and isinstance(entry[2], (str, Path)):
        return str(entry[2])
    return f"{getattr(source, 'root', 'source')} (volume {entry[0]}, slice {entry[1]})"


def _swap_into_place(work: Path, out: Path) -> None:
    """Rename the finished ``work`` folder to ``out``, replacing an earlier pack there."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, out)


def pack_folder(root: str | Path, out: str | Path, progress: bool = True,
                workers: int | None = None) -> Path:
    """Pack a BraTS folder, Kaggle slices or the NIfTI release (see :func:`pack`).

    The NIfTI release is read case by case, in order, so each volume is decoded once; a
    shuffled training loader over NIfTI would decode a whole case for almost every slice.
    """
    from . import open_dataset  # here: the package imports this module

    if Path(out).resolve() == Path(root).resolve():
        raise FileExistsError(f"{out}: is the data folder itself; pack into another folder")
    return pack(open_dataset(root), out, progress=progress, workers=workers)
