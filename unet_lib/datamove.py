"""Recognising a run's data in another place: a run may resume on its data moved (another
disk, another machine), never on other data that happens to use the same volume numbers.

:func:`split_layout` is recorded in ``run.json`` when a run is prepared; a folder given later
for the same run must give the same value.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import ConfigError


def split_layout(dataset, volumes) -> str:
    """A hash of what ``volumes`` hold in ``dataset`` (a data folder opened at its stored size,
    :func:`unet_lib.data.open_dataset`): every (volume, slice) and the slices' stored size.
    Not where the folder lies: a moved copy gives the same value; another phantom, release or
    size does not."""
    from torch.utils.data import Subset

    from .data.base import first_usable

    wanted = set(volumes)
    rows = [i for i in range(len(dataset)) if dataset.locate(i)[0] in wanted]
    entries = sorted(list(dataset.locate(i)) for i in rows)
    sample = first_usable(Subset(dataset, rows))
    size = list(sample[0].shape[-2:]) if sample is not None else None
    text = json.dumps({"slices": entries, "size": size})
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def checked_new_place(run, data: Path) -> Path:
    """``data`` if it holds ``run``'s data (a :class:`~unet_lib.run.PreparedRun`): the same
    layout of the split's volumes (runs recorded before layouts were: the same volume
    numbers).

    Raises:
        ConfigError: naming ``--data``, with why the folder is not the run's data.
    """
    from .data import open_dataset

    record = run.folder / "run.json"
    volumes = set(run.train_volumes) | set(run.val_volumes) | set(run.test_volumes)
    try:
        dataset = open_dataset(data)  # listed once, for both checks
        missing = sorted(volumes - set(dataset.volumes))
        if missing:
            why = (f"it lacks volumes {missing[:8]} of the run's split ({record}), so it is "
                   f"not the run's data moved")
        elif run.data_layout and split_layout(dataset, volumes) != run.data_layout:
            why = (f"its volumes {sorted(volumes)[:8]}… hold other slices or another size "
                   f"than the run's ({record}), so it is not the run's data moved")
        else:
            why = ""
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        why = str(error)
    if why:
        raise ConfigError("data", f"cannot change to {data} when resuming {run.folder}: {why}; "
                                  f"drop --data, or start a new run")
    return data
