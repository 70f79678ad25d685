"""The BraTS-like phantom as a data folder: its volumes (:mod:`unet_lib.data.phantom_volume`)
cut into axial slices and written in the Kaggle format, with ``meta_data.csv``, in parallel
over volumes and byte-identical whatever the number of processes; :func:`cached_phantom`
makes one on first use under a course or run's data folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..parallel import default_workers, map_in_processes
from .brats import labels_to_mask
from .kaggle import metadata_row, slice_file_name, write_metadata, write_slice
from .phantom_folder import MARKER, check_writable_into, readable
from .phantom_volume import PhantomVolume, make_volume  # noqa: F401  (importable from here)


def make_phantom(root: str | Path, n_volumes: int = 20, image_size: int = 240,
                 n_slices: int = 155, seed: int = 0, first_volume: int = 1,
                 workers: int | None = None) -> Path:
    """Write a phantom dataset in the Kaggle format, with ``meta_data.csv``.

    Args:
        root: folder to write into (created if needed).
        n_volumes: number of synthetic brains.
        image_size: slice height and width in pixels (240 as BraTS; 64 or 96 for quick CPU
            runs).
        n_slices: axial slices per volume (155 as BraTS; fewer for quick runs).
        seed: the same seed gives byte-identical files; volume ``v`` depends only on
            ``(seed, v)``, so a larger ``n_volumes`` extends a smaller phantom.
        first_volume: number of the first volume (files ``volume_<v>_slice_<s>.h5``).
        workers: processes making volumes in parallel; ``None``: one per CPU core for a
            phantom of at least :data:`PARALLEL_FROM_VOXELS` voxels, and one (no process
            start-up cost) for a smaller one. The files are byte-identical whatever the
            number.

    Returns:
        ``root`` as a ``Path``.

    Raises:
        FileExistsError: ``root`` holds anything but this very phantom (nothing is written).
    """
    if n_volumes < 1 or image_size < 16 or n_slices < 1 or seed < 0:
        raise ValueError(f"need n_volumes ≥ 1, image_size ≥ 16, n_slices ≥ 1 and seed ≥ 0; "
                         f"got n_volumes={n_volumes}, image_size={image_size}, "
                         f"n_slices={n_slices}, seed={seed}")
    root = Path(root)
    made_as = {"n_volumes": n_volumes, "size": image_size, "n_slices": n_slices, "seed": seed,
               "first_volume": first_volume}
    check_writable_into(root, made_as)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps(made_as))  # first: a folder cut short is still ours
    volumes = range(first_volume, first_volume + n_volumes)
    if workers is None:
        workers = default_workers(n_volumes,
                                  n_volumes * image_size ** 2 * n_slices >= PARALLEL_FROM_VOXELS,
                                  most=None)  # a volume is made in a few hundred MB
    jobs = [(root, volume, seed, image_size, n_slices) for volume in volumes]
    rows = map_in_processes(_write_volume, jobs, workers)
    write_metadata(root, [row for volume_rows in rows for row in volume_rows])
    return root


#: a phantom of at least this many voxels in all (about one 240×240×155 volume, or four of
#: 128×128×155) is made in parallel by default; a smaller one in this process, as starting
#: the processes (a couple of seconds) would cost more than they save. Measured on 2 cores
#: (2026-11-28), one process against two: 4 volumes of 96×96×155 3.8 s and 4.4 s; of
#: 128×128×155 6.3 s and 6.2 s; 2 volumes of 240×240×155 19.6 s and 12.2 s
PARALLEL_FROM_VOXELS = 10_000_000


def _write_volume(root: Path, volume: int, seed: int, image_size: int, n_slices: int
                  ) -> list[dict]:
    """Make volume ``volume`` and write its slices; returns its ``meta_data.csv`` rows.

    Made on one thread: torch's multi-threaded reductions add in an order that depends on the
    thread count, so only a fixed count gives the same bytes in every process."""
    rng = np.random.default_rng([seed, volume])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        phantom = make_volume(rng, image_size=image_size, n_slices=n_slices)
    finally:
        torch.set_num_threads(threads)
    masks = labels_to_mask(phantom.labels)
    rows = []
    for s in range(n_slices):
        name = slice_file_name(volume, s)
        write_slice(root / name, phantom.image[s], masks[s])
        rows.append(metadata_row(name, volume, s, masks[s]))
    return rows


def cached_phantom(phantom_home: str | Path, image_size: int, n_volumes: int, n_slices: int,
                   seed: int = 0) -> Path:
    """The phantom of these settings under ``phantom_home``, made on first use.

    Its folder is ``phantom_home/phantom-<size>px-<volumes>x<slices>-seed<seed>``; a folder
    without ``meta_data.csv`` (the last file written) is incomplete and made again. One
    process makes it while others asking for it wait (``torchrun``'s processes, two
    notebooks on one course home), holding ``phantom_home/.<folder name>.lock``.
    """
    from ..runfolder import exclusively

    root = Path(phantom_home) / f"phantom-{image_size}px-{n_volumes}x{n_slices}-seed{seed}"
    if (root / "meta_data.csv").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with exclusively(root.parent / f".{root.name}.lock", on_wait=lambda: print(
            f"another process is making the phantom in {readable(root)}: waiting for it",
            flush=True)):
        if not (root / "meta_data.csv").is_file():  # made while this process waited?
            print(f"making a {n_volumes}-volume phantom ({image_size}×{image_size}, "
                  f"{n_slices} slices) in {readable(root)} ...", flush=True)
            make_phantom(root, n_volumes=n_volumes, image_size=image_size, n_slices=n_slices,
                         seed=seed)
    return root
