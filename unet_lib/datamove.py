"""Recognising a run's data in another place: a run may resume on its data moved (another
disk, another machine), never on other data that happens to use the same volume numbers.

:func:`split_layout` is recorded in ``run.json`` when a run is prepared; a folder given later
for the same run must give the same value.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from .config import ConfigError


#: how a layout with the content of a few slices begins (one without is an older run's)
WITH_CONTENT = "v2:"


def split_layout(dataset, volumes, content: bool = True) -> str:
    """A hash of what ``volumes`` hold in ``dataset`` (a data folder opened at its stored size,
    :func:`unet_lib.data.open_dataset`): every (volume, slice), the slices' stored size and,
    with ``content``, the pixels of three slices (:func:`content_digest`). Not where the
    folder lies, nor its format: a moved copy, or its packed copy, gives the same value;
    another phantom (another seed too), release or size does not. Without ``content`` it is
    the value runs recorded before contents were (compared as it was made)."""
    from torch.utils.data import Subset

    from .data.base import first_usable

    wanted = set(volumes)
    rows = [i for i in range(len(dataset)) if dataset.locate(i)[0] in wanted]
    entries = sorted(list(dataset.locate(i)) for i in rows)
    sample = first_usable(Subset(dataset, rows))
    size = list(sample[0].shape[-2:]) if sample is not None else None
    text = json.dumps({"slices": entries, "size": size})
    if not content:
        return hashlib.sha1(text.encode()).hexdigest()[:16]
    text += content_digest(dataset, rows)
    return WITH_CONTENT + hashlib.sha1(text.encode()).hexdigest()[:16]


def content_digest(dataset, rows: list[int]) -> str:
    """A hash of the middle slice of the first, the middle and the last volume among the items
    ``rows`` of ``dataset``: its mask, and its image as float16 (as a packed copy stores it).
    An unusable slice is left out."""
    import numpy as np
    import torch

    from .data.samples import SkippedSample

    by_volume: dict[int, list[tuple[int, int]]] = {}
    for index in rows:
        volume, slice_index = dataset.locate(index)
        by_volume.setdefault(volume, []).append((slice_index, index))
    volumes = sorted(by_volume)
    digest = hashlib.sha1()
    if not volumes:
        return digest.hexdigest()
    for volume in dict.fromkeys((volumes[0], volumes[len(volumes) // 2], volumes[-1])):
        entries = sorted(by_volume[volume])
        with warnings.catch_warnings():  # an unusable file warns where it is trained on
            warnings.simplefilter("ignore")
            item = dataset[entries[len(entries) // 2][1]]
        if isinstance(item, SkippedSample):
            continue
        image, mask = item[:2]
        digest.update(np.asarray(torch.as_tensor(mask) > 0.5).tobytes())
        digest.update(torch.as_tensor(image).to(torch.float16).numpy().tobytes())
    return digest.hexdigest()


def data_difference(run, data: Path) -> tuple[str, str] | None:
    """How the folder ``data`` differs from ``run``'s data (a
    :class:`~unet_lib.run.PreparedRun`): ``("missing", clause)`` when it lacks volumes of the
    run's split (then nothing else can be compared), ``("other", clause)`` when the split's
    volumes hold other slices, another size or other pixels; ``None`` when it holds the run's
    data, in whatever place or format (runs recorded before layouts were: the same volume
    numbers).

    Raises:
        FileNotFoundError, NotADirectoryError, ValueError: ``data`` cannot be read as data.
    """
    from .data import open_dataset

    record = run.folder / "run.json"
    volumes = set(run.train_volumes) | set(run.val_volumes) | set(run.test_volumes)
    dataset = open_dataset(data)  # listed once, for both checks
    missing = sorted(volumes - set(dataset.volumes))
    if missing:
        return "missing", f"it lacks volumes {missing[:8]} of the run's split ({record})"
    if run.data_layout and split_layout(
            dataset, volumes, content=run.data_layout.startswith(WITH_CONTENT)
    ) != run.data_layout:
        return "other", (f"its volumes {sorted(volumes)[:8]}… hold other slices, another size "
                         f"or other pixels than the run's ({record})")
    return None


def reason_not_the_runs_data(run, data: Path) -> str | None:
    """Why the folder ``data`` does not hold ``run``'s data, in a clause
    (:func:`data_difference`, or why it cannot be read); ``None`` when it does."""
    try:
        difference = data_difference(run, data)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        return str(error)
    return None if difference is None else f"{difference[1]}, so it is not the run's data moved"


def holds_the_runs_data(run, data: Path) -> bool:
    """Whether ``data`` is the folder ``run`` trained on, or a copy of it (moved, packed),
    recognised by its pixels: a run recorded before layouts held pixels is recognised by
    its path only (the same volume numbers and slices may be another phantom)."""
    if Path(data).resolve() == Path(run.data_root).resolve():
        return True
    if not (run.data_layout or "").startswith(WITH_CONTENT):
        return False
    return reason_not_the_runs_data(run, data) is None


def checked_new_place(run, data: Path) -> Path:
    """``data`` if it holds ``run``'s data (:func:`reason_not_the_runs_data`).

    Raises:
        ConfigError: naming ``--data``, with why the folder is not the run's data.
    """
    why = reason_not_the_runs_data(run, data)
    if why is not None:
        raise ConfigError("data", f"cannot change to {data} when resuming {run.folder}: {why}; "
                                  f"drop --data, or start a new run")
    return data


def check_still_the_runs_data(run, report=None) -> None:
    """Refuse to go on with ``run``'s recorded data folder when it no longer holds what the run
    trained on (replaced by another phantom, re-packed from other data): scores or epochs
    there would be of other data, said of this run. Checked where the run recorded the pixels
    of its data (:data:`WITH_CONTENT`) and the folder is there. A folder that lost some of the
    run's volumes cannot be compared: ``report`` (default: a line on stderr) says so, and the
    readers of the folder say which volumes they lack. A folder that cannot be read raises its
    reader's own error.

    Raises:
        ConfigError: naming ``--data``, with what differs and how to go on.
    """
    root = Path(run.data_root)
    if not (run.data_layout or "").startswith(WITH_CONTENT) or not root.exists():
        return
    difference = data_difference(run, root)
    if difference is None:
        return
    kind, why = difference
    if kind == "other":
        raise ConfigError("data", f"{root}, which {run.folder} trained on, holds other data now: "
                                  f"{why}; give --data with the run's own data (a moved or "
                                  f"packed copy is recognised)")
    (report or _to_stderr)(f"note: {root} cannot be checked to still hold the data "
                           f"{run.folder} trained on: {why}")


def _to_stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)
