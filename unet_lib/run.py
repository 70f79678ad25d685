"""A run folder made from a :class:`~unet_lib.recipe.RunRecipe`: its data, its split, its
training, and how it is resumed.

``run.json`` in the folder records the recipe, the data folder and the split by volume. It is
written when the run starts (atomically, under the folder's lock) and again when a resumed
run starts, with its settings, so it always says what ran. Both front doors use
:func:`train_run`: ``unet-lib train`` and the course's model cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import runfolder
from .config import ConfigError
from .recipe import RunRecipe
from .results import RESULTS_FILE

RUN_FILE = "run.json"

#: what a recipe's run writes beside ``run.json``: fit's files and the results recorded later
RECIPE_RUN_OUTPUTS = runfolder.RUN_OUTPUTS + (RESULTS_FILE,)


@dataclass
class PreparedRun:
    """A recipe resolved to data on disk and a split, in its run folder.

    Attributes:
        recipe: what the run is.
        folder: where its checkpoints and ``run.json`` are.
        data_root: the data folder (the phantom's, when the recipe names one).
        train_volumes, val_volumes, test_volumes: the split, by volume: no brain on two
            sides. Validation chooses the checkpoint (``best.pt``) and any threshold; the
            test volumes influence nothing and give the headline figures.
        data_layout: what the split's volumes hold (:func:`unet_lib.datamove.split_layout`),
            by which a moved copy of the data is recognised; ``None`` in older runs.
    """

    recipe: RunRecipe
    folder: Path
    data_root: Path
    train_volumes: list[int]
    val_volumes: list[int]
    test_volumes: list[int] = dataclasses.field(default_factory=list)
    data_layout: str | None = None

    def datasets(self):
        """``(train, val)`` datasets of ``(image (4, S, S), mask (3, S, S))`` float tensors,
        S = ``recipe.config.image_size``."""
        return self.dataset("train"), self.dataset("val")

    def dataset(self, side: str):
        """The dataset of one side of the split: ``"train"``, ``"val"`` or ``"test"``."""
        from .data import open_dataset

        sides = {"train": self.train_volumes, "val": self.val_volumes, "test": self.test_volumes}
        if side not in sides:
            raise ValueError(f"side must be 'train', 'val' or 'test', got {side!r}")
        volumes = sides[side]
        if not volumes:
            raise ValueError(f"{self.folder}: the run has no {side} volumes (its "
                             f"{side}_fraction is 0)")
        if not self.data_root.is_dir():
            how = ("unet-lib train --resume --out FOLDER --data NEW" if side == "train" else
                   f"unet-lib evaluate --data NEW --split {side}")
            raise FileNotFoundError(f"{self.data_root}: no such data folder, where "
                                    f"{self.folder / RUN_FILE} says the run's data are; if they "
                                    f"moved, give their new place ({how})")
        return open_dataset(self.data_root, volumes, self.recipe.config.image_size)

    def to_json(self) -> dict:
        return {"recipe": self.recipe.to_json(), "data_root": str(self.data_root.resolve()),
                "train_volumes": self.train_volumes, "val_volumes": self.val_volumes,
                "test_volumes": self.test_volumes, "image_size": self.recipe.config.image_size,
                "data_layout": self.data_layout}

    def save(self) -> Path:
        """Write ``run.json`` atomically (a symlink there is replaced, not followed)."""
        return runfolder.write_text_atomic(self.folder / RUN_FILE,
                                           json.dumps(self.to_json(), indent=1))


def split_of(recipe: RunRecipe, data_root: Path, dataset=None):
    """The recipe's seeded split of the data's volumes: a
    :class:`~unet_lib.data.VolumeSplit` ``(train, val, test)``, stratified by kind of tumour
    (volumes with and without an enhancing tumour in proportion on every side,
    :func:`unet_lib.data.tumour_grades`). ``dataset``: ``data_root`` already opened."""
    from .data import open_dataset, split_train_val_test, tumour_grades

    dataset = dataset if dataset is not None else open_dataset(data_root)
    volumes = dataset.volumes
    if recipe.max_volumes:
        volumes = volumes[: recipe.max_volumes]
    config = recipe.config
    return split_train_val_test(volumes, config.val_fraction, config.test_fraction, config.seed,
                                groups=tumour_grades(dataset))


def prepare_run(recipe: RunRecipe, folder: str | Path, phantom_home: str | Path = "data"
                ) -> PreparedRun:
    """Resolve ``recipe`` (making its phantom under ``phantom_home`` if needed) and split it."""
    from .data import open_dataset
    from .datamove import split_layout

    data_root = recipe.data_root(phantom_home)
    dataset = open_dataset(data_root)  # listed once: for the split and its layout
    split = split_of(recipe, data_root, dataset)
    return PreparedRun(recipe, Path(folder), Path(data_root), *split,
                       data_layout=split_layout(dataset, [v for side in split for v in side]))


def read_run(folder: str | Path) -> PreparedRun:
    """The run recorded in ``folder/run.json``.

    Raises:
        FileNotFoundError, ValueError: naming ``run.json`` when it is missing or unreadable.
    """
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing, so the run's data and split are unknown")
    try:
        saved = json.loads(path.read_text())
        root = Path(saved["data_root"])
        train, val = list(saved["train_volumes"]), list(saved["val_volumes"])
        test = list(saved.get("test_volumes", []))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as a run record ({error!r})") from None
    recipe = RunRecipe.from_json(saved.get("recipe", {}), path)  # its errors name the file
    return PreparedRun(recipe, Path(folder), root, train, val, test, saved.get("data_layout"))


def resumed_run(folder: str | Path, changes: dict, data: str | Path | None = None,
                model: str | None = None, max_volumes: int | None = None,
                n_volumes: int | None = None, n_slices: int | None = None) -> PreparedRun:
    """The run in ``folder`` with ``changes`` to its settings (fields of ``TrainConfig``).

    The data and the split stay as they were: a ``max_volumes``, ``n_volumes`` or
    ``n_slices`` that differs from the run's is refused. ``data`` may name
    another folder only when it holds the run's data, moved
    (:func:`unet_lib.datamove.checked_new_place`); ``run.json`` records the new place at once.
    Settings that would re-split the data are refused here too, and a ``model`` other than
    the run's; all before ``run.json`` is touched.

    Raises:
        ConfigError: naming the option that cannot change.
        TypeError: ``changes`` names a field ``TrainConfig`` does not have.
    """
    run = read_run(folder)
    phantom = run.recipe.phantom
    saved = {"max_volumes": run.recipe.max_volumes, "n_volumes": phantom and phantom.n_volumes,
             "n_slices": phantom and phantom.n_slices}
    if model is not None and model != run.recipe.model:
        raise ConfigError("model", f"cannot change from {run.recipe.model!r} to {model!r} "
                                   f"when resuming {folder}; use another --out")
    moved = data is not None and Path(data).resolve() != run.data_root.resolve()
    data_changes = {"max_volumes": max_volumes, "n_volumes": n_volumes, "n_slices": n_slices}
    for name, value in data_changes.items():
        if value is not None and value != saved[name]:
            raise ConfigError(name, f"cannot change from {saved[name]!r} to {value!r} when "
                                    f"resuming {folder}: the run keeps its data and split "
                                    f"({RUN_FILE}); drop the option or start a new run")
    config = dataclasses.replace(run.recipe.config, **changes).validate()
    from .resume import settings_changed_on_resume  # refused here, before any work is shown

    settings_changed_on_resume(dataclasses.asdict(run.recipe.config), config,
                               run.folder / "last.pt")
    if not moved:
        from .datamove import check_still_the_runs_data

        check_still_the_runs_data(run)
    else:
        from .datamove import checked_new_place

        run.data_root = checked_new_place(run, Path(data).resolve())
        if run.recipe.data is not None:
            run.recipe = dataclasses.replace(run.recipe, data=run.data_root)
        from .distributed import is_main_process

        if is_main_process():
            run.save()  # the data's place, before any training: the old one is gone
    run.recipe = dataclasses.replace(run.recipe, config=config)
    return run


def train_run(run: PreparedRun, resume: bool = False, progress: bool | str = True,
              trust_checkpoint: bool = False, report: Callable[..., None] = print,
              datasets: tuple | None = None, overwrite: bool = False):
    """Train the run's model in its folder; returns ``(model, history)``.

    The folder is held for the whole run (:func:`unet_lib.runfolder.claim`); ``run.json`` is
    written before training, a resumed run's settings included, so that it says what ran even
    when the run is stopped; a resumed run that fails or is stopped before it writes
    ``last.pt`` (a refused resume among them) puts the earlier ``run.json`` back.
    ``datasets``: the run's ``(train, val)`` already opened, e.g. held on the device once for
    several models trained on one split (:func:`unet_lib.resident.hold_on_device`); default
    :meth:`PreparedRun.datasets`. A new run (or a ``resume`` without ``last.pt``) into a folder
    that holds any of :data:`RECIPE_RUN_OUTPUTS` is refused (``FileExistsError``, before
    ``run.json`` is touched) unless ``overwrite``: that deletes them first.
    """
    from .distributed import is_main_process
    from .models import build_model, count_parameters
    from .runtime import pick_device, randomness_kept, seed_everything
    from .train import fit

    recipe, config = run.recipe, run.recipe.config
    main = is_main_process()  # under torchrun, rank 0 alone holds the folder and writes
    with runfolder.claim(run.folder) if main else contextlib.nullcontext(run.folder):
        if main and runfolder.is_fresh(run.folder, resume):
            runfolder.make_room(run.folder, RECIPE_RUN_OUTPUTS, overwrite)
            run.save()
        train_set, val_set = datasets or run.datasets()
        with randomness_kept():  # seeded for the run; the caller's streams as they were after
            seed_everything(config.seed)
            model = build_model(recipe.model, base_filters=config.base_filters)
            report(f"{recipe.model} U-Net, {count_parameters(model):,} parameters, on "
                   f"{pick_device(config.device)}; {len(train_set)} training slices from "
                   f"{_volumes(run.train_volumes)}, {len(val_set)} validation slices from "
                   f"{_volumes(run.val_volumes)} ({_volumes(run.test_volumes, 'test ')} held "
                   f"out); checkpoints in {run.folder}", flush=True)
            with _recorded_while_resuming(run, main and resume):
                history = fit(model, train_set, val_set, config, checkpoint_dir=run.folder,
                              resume=resume, progress=progress,
                              trust_checkpoint=trust_checkpoint)
    return model, history


@contextlib.contextmanager
def _recorded_while_resuming(run: PreparedRun, resuming: bool):
    """``run.json`` with the resumed run's settings while it trains; the earlier one back if
    ``last.pt`` did not change (no epoch ran with them): the block failed, or every epoch was
    trained already. A failure to put it back (a full disk) never hides the error that
    stopped the run."""
    if not resuming:
        yield
        return
    path, last = run.folder / RUN_FILE, run.folder / "last.pt"
    earlier = path.read_bytes() if path.is_file() else None

    def stamp():
        return (last.stat().st_ino, last.stat().st_mtime_ns) if last.exists() else None

    def put_back_if_nothing_trained():
        if earlier is not None and stamp() == before:
            runfolder.write_bytes_atomic(path, earlier)

    before = stamp()
    run.save()
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            put_back_if_nothing_trained()
        raise
    put_back_if_nothing_trained()  # every epoch trained already: the record stays


def _volumes(volumes: list, kind: str = "") -> str:
    """``"1 volume"``, ``"3 test volumes"``."""
    return f"{len(volumes)} {kind}volume{'' if len(volumes) == 1 else 's'}"
