"""Read every slice of a BraTS folder once, before a long run: what it holds and what is wrong
with it (``unet-lib check``).

A download of 57,195 files or 369 cases can hold a truncated file, a case without a modality,
a copy whose masks were rewritten as regions, or volumes without any tumour label. Training
skips what it cannot use and goes on; this says all of it up front, without training or
writing anything:

>>> found = survey("data/BraTS2020_training_data")
>>> print("\\n".join(found.report()))
data/BraTS2020_training_data: Kaggle slices, 369 volumes, 57,195 slices of 240×240 ...
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..parallel import default_workers, map_in_processes, spawn_works
from . import open_dataset
from .base import SliceDataset, rows_by_volume, slice_depths
from .samples import BraTSDataError

#: what each reader reads, in a reader's words
KINDS = {"BraTSSlices": "Kaggle slices", "BraTSNifti": "NIfTI cases",
         "PackedSlices": "a packed copy"}

#: a folder of at least this many slices is read by one process per core (up to 8)
PARALLEL_FROM_SLICES = 300


@dataclass
class DataSurvey:
    """What :func:`survey` found.

    Attributes:
        root: the folder read.
        kind: ``"Kaggle slices"``, ``"NIfTI cases"`` or ``"a packed copy"``.
        slices: the slices listed (``len`` of the dataset).
        size: ``(height, width)`` of the first usable slice; ``None`` when none is usable.
        unusable: ``"<file>: <problem>"`` for each case left out whole, then each slice that
            cannot be read, in order.
        labels: ``{volume: (NCR/NET, ED, ET)}``, whether any usable slice of the volume has
            a pixel of that label; a volume without a usable slice is not in it.
        unreadable: the volumes listed with no usable slice at all.
        gaps: ``"volume V lacks slice(s) ..."`` or ``"... ends at slice S where most volumes
            have D"``: slices missing from the listing, as a download or an unzip cut short
            leaves it (:func:`slice_gaps`).
        seconds: how long reading took; ``workers``: the processes that read.
    """

    root: Path
    kind: str
    slices: int
    size: tuple[int, int] | None
    unusable: list[str] = field(default_factory=list)
    labels: dict[int, tuple[bool, bool, bool]] = field(default_factory=dict)
    unreadable: list[int] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    def report(self) -> list[str]:
        """The survey as lines of text: the data, the tumour labels per volume, what is
        unusable (the first 20), and what to do next."""
        size = f" of {self.size[0]}×{self.size[1]}" if self.size else ""
        enhancing = sum(flags[2] for flags in self.labels.values())
        empty = [v for v, flags in self.labels.items() if not any(flags)]
        unreadable = (f" ({len(self.unreadable)} of them without a usable slice)"
                      if self.unreadable else "")
        lines = [f"{self.root}: {self.kind}, {len(self.labels) + len(self.unreadable)} volumes"
                 f"{unreadable}, {self.slices:,} slices{size}; every slice read in "
                 f"{self.seconds:.0f} s ({self.workers} process{'es' * (self.workers != 1)})",
                 f"tumour: {enhancing} volumes with enhancing tumour, "
                 f"{len(self.labels) - enhancing - len(empty)} without (as BraTS's low-grade "
                 f"cases), {len(empty)} without any tumour label"
                 + (f" (volumes {', '.join(map(str, empty[:10]))}"
                    f"{', ...' if len(empty) > 10 else ''}: every BraTS case has a tumour)"
                    if empty else "")]
        if self.gaps:
            lines.append(f"missing slices: {len(self.gaps)} volume(s):")
            lines += [f"  {entry}" for entry in self.gaps[:20]]
            if len(self.gaps) > 20:
                lines.append(f"  ... and {len(self.gaps) - 20} more")
        if not self.unusable:
            lines.append("unusable: none")
        else:
            lines.append(f"unusable: {len(self.unusable)} (training and scoring leave them "
                         f"out; mend or re-download them to use them):")
            lines += [f"  {entry}" for entry in self.unusable[:20]]
            if len(self.unusable) > 20:
                lines.append(f"  ... and {len(self.unusable) - 20} more")
        return lines


def survey(root: str | Path, workers: int | None = None) -> DataSurvey:
    """Read every slice of the BraTS folder ``root`` (any format :func:`open_dataset` reads)
    once, volume by volume in ``workers`` processes (default: one per usable core, up to 8,
    for a folder of :data:`PARALLEL_FROM_SLICES` slices or more; else this one).

    Raises:
        FileNotFoundError: ``root`` holds no BraTS data (the message says what it holds).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1 (1: read in this process), got {workers}")
    start = time.perf_counter()
    with warnings.catch_warnings():  # cases left out on opening are listed, not warned about
        warnings.simplefilter("ignore")
        dataset = open_dataset(root, on_error="skip")
    groups = rows_by_volume(dataset.slices)
    if workers is None:
        workers = default_workers(len(groups), len(dataset) >= PARALLEL_FROM_SLICES)
    workers = min(workers, len(groups)) if len(groups) > 1 and spawn_works() else 1
    # left out before reading: NIfTI cases without a file; a pack's slices skipped when packed
    left_out = getattr(dataset, "skipped", None) or getattr(dataset, "meta", {}).get("skipped")
    found = DataSurvey(Path(root), KINDS.get(type(dataset).__name__, type(dataset).__name__),
                       len(dataset), None, list(left_out or []), workers=workers,
                       gaps=slice_gaps(dataset.slices))
    jobs = [(volume, rows) for volume, rows in groups.items()]
    try:
        for volume, flags, size, problems in map_in_processes(_read_volume, jobs, workers,
                                                              _receive, (dataset,)):
            if size is None:  # no slice of it could be read: its labels are unknown
                found.unreadable.append(volume)
            else:
                found.labels[volume] = flags
            found.size = found.size or size
            found.unusable += problems
    finally:
        _receive(None)  # read here (one process): let the dataset go
    found.seconds = time.perf_counter() - start
    return found


def slice_gaps(slices: list[tuple]) -> list[str]:
    """The volumes of a dataset's ``slices`` (``(volume, slice, ...)`` entries) whose slice
    numbers have holes below their last one, or that end sooner than most volumes do."""
    listed: dict[int, set[int]] = {}
    for volume, slice_index, *_ in slices:
        listed.setdefault(volume, set()).add(slice_index)
    depths = Counter(slice_depths(slices).values())
    usual = depths.most_common(1)[0][0] if depths else 0
    said = []
    for volume, numbers in sorted(listed.items()):
        missing = sorted(set(range(max(numbers) + 1)) - numbers)
        parts = ([f"lacks slice(s) {', '.join(map(str, missing[:8]))}"
                  f"{', ...' if len(missing) > 8 else ''}"] if missing else [])
        if max(numbers) + 1 < usual:
            parts.append(f"ends at slice {max(numbers)} where most volumes have {usual}")
        if parts:
            said.append(f"volume {volume} " + " and ".join(parts))
    return said


_DATASET: SliceDataset | None = None  # the dataset being read, in a reading process


def _receive(dataset: SliceDataset | None) -> None:
    global _DATASET
    _DATASET = dataset


def _read_volume(volume: int, rows: list[int]
                 ) -> tuple[int, tuple[bool, bool, bool], tuple[int, int] | None, list[str]]:
    """Read the slices ``rows`` of ``volume``: its labels present, a usable slice's size and
    the problems, ``"<file>: <problem>"`` (a NIfTI case's one problem said once)."""
    present, size, problems = np.zeros(3, dtype=bool), None, []
    for row in rows:
        try:
            _, mask = _DATASET.read(row)
        except BraTSDataError as error:
            problems.append(f"{error.path}: {error.problem}")
            continue
        mask = np.asarray(mask)
        present |= mask.reshape(3, -1).any(axis=1)
        size = size or tuple(int(n) for n in mask.shape[-2:])
    return volume, tuple(bool(x) for x in present), size, list(dict.fromkeys(problems))
