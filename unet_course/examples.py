"""Choosing which slices a chapter shows, and naming them."""

from __future__ import annotations

from unet_lib.data import locate


def tumour_slices(dataset, count: int = 4, scan: int = 400, min_gap: int = 4) -> list[int]:
    """Indices of up to ``count`` slices of ``dataset`` with the most tumour, from at most
    ``scan`` evenly spaced slices (a real BraTS split is large).

    Slices of different volumes come first; when there are fewer volumes than ``count``, more
    slices of the same volumes are added, at least ``min_gap`` slices apart. Returns indices,
    largest tumour first within each round.
    """
    step = max(1, len(dataset) // scan)
    areas = []
    for index in range(0, len(dataset), step):
        sample = dataset[index]
        if isinstance(sample, tuple):
            areas.append((float(sample[1].amax(0).sum()), index))
    areas = sorted((a for a in areas if a[0] > 0), reverse=True)
    chosen: list[int] = []
    where = {index: locate(dataset, index) for _, index in areas}
    for distinct_volumes in (True, False):
        for _, index in areas:
            if len(chosen) == count:
                return chosen
            volume, slice_index = where[index]
            same = [where[c][1] for c in chosen if where[c][0] == volume]
            if distinct_volumes and same:
                continue
            if index not in chosen and all(abs(slice_index - s) >= min_gap for s in same):
                chosen.append(index)
    return chosen


def slice_name(dataset, index: int) -> str:
    """``"volume 7, slice 80"`` for item ``index`` of a BraTS dataset (``"slice <index>"`` for
    a dataset without that information)."""
    volume, slice_index = locate(dataset, index)
    return f"slice {index}" if volume is None else f"volume {volume}, slice {slice_index}"
