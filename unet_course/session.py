"""The course's notebook session: the scale setting, the data, and trained models.

Every chapter starts with ``setup = course.setup()``. The scale is one visible setting:

* ``"quick"`` — a laptop CPU: the quick recipe of :data:`unet_lib.recipe.SCALES` (96×96 slices
  of a 16-volume phantom, :meth:`TrainConfig.quick`). Two to three minutes per model on 2 cores.
* ``"full"`` — the slides: 240×240 slices, batch 32, 20 epochs, 32 first filters; a GPU.
* ``"auto"`` (the default) — ``"full"`` when a CUDA GPU is present, else ``"quick"``.

The environment variable ``UNET_COURSE_SCALE`` overrides the notebook's choice (CI sets it to
``quick``), and ``BRATS_DIR`` points the course at a real BraTS 2020 download (Kaggle slices,
a packed copy or the NIfTI release) instead of the phantom.

Trained models are cached (:meth:`CourseSetup.trained`): the first chapter that needs a model
trains it and later chapters load it, so each notebook runs on its own, in any order. Each
model is one run of :mod:`unet_lib.run`, in a folder named by its recipe's key — the
settings and what the data *is*, not where it lies — so a moved checkout keeps its models, a
changed setting trains anew, and ``unet-lib evaluate --checkpoint <run>/last.pt`` scores a
course model on its validation volumes.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from unet_lib.checkpoint import CheckpointError, model_from_checkpoint, read_checkpoint
from unet_lib.config import TrainConfig
from unet_lib.data.phantom_folder import readable
from unet_lib.models import MODELS, UNet, count_parameters
from unet_lib.recipe import SCALES, RunRecipe
from unet_lib.results import SCORED_ON, held_out_scores, read_results, record_results
from unet_lib.run import PreparedRun, split_of, train_run
from unet_lib.runfolder import RunFolderBusy, claim, wait_while_busy
from unet_lib.runtime import pick_device, threads_within_usable_cores
from unet_lib.train import History

from .settings import (DATA_VARIABLE, HOME_VARIABLE, SCALE_VARIABLE, course_home,  # noqa: F401
                       resolve_scale, warn_if_torch_is_older)


@dataclass
class TrainedModel:
    """A trained course model with its training record.

    Attributes:
        name: ``"classic"``, ``"improved"`` or ``"attention"``.
        model: the network of the epoch with the best mean validation Dice over WT, TC and ET
            (``best.pt``), in eval mode, on the CPU.
        best_epoch: that epoch.
        history: per-epoch losses and validation scores (:class:`unet_lib.train.History`).
        seconds: training time summed over epochs (data loading and validation included).
        from_cache: loaded from an earlier run rather than trained now.
        checkpoint: the ``last.pt`` it came from.
        run: its run (recipe, folder, data, split), for :meth:`test_scores`.
    """

    name: str
    model: UNet
    history: History
    seconds: float
    from_cache: bool
    checkpoint: Path
    best_epoch: int
    run: PreparedRun | None = None

    @property
    def parameters(self) -> int:
        """The model's trainable parameters."""
        return count_parameters(self.model)

    @property
    def chosen(self) -> dict:
        """The validation scores of the epoch whose model this is (:attr:`best_epoch`)."""
        return self.history.records[self.best_epoch - 1]["val"]

    def test_scores(self, threshold: float = 0.5) -> dict:
        """The model's scores on the held-out test volumes
        (:func:`unet_lib.results.held_out_scores`: all pixels and per patient), computed once per
        checkpoint and threshold and kept in the run folder's ``results.json``."""
        key = f"test at {threshold:g}"
        saved = read_results(self.run.folder)
        if (saved.get("epoch") == self.best_epoch and key in saved
                and saved[key].get("scored on") == SCORED_ON):
            return saved[key]
        scores = held_out_scores(self.run, self.model, threshold)
        self.record(**{key: scores})
        return scores

    def record(self, **entries) -> None:
        """Keep figures measured on this model (e.g. its attention contrast) in the run
        folder's ``results.json``, beside its test scores, for the tests and for later."""
        try:
            record_results(self.run.folder, self.best_epoch, **entries)
        except OSError as error:  # e.g. a shared course home that students can only read
            warnings.warn(f"could not keep {', '.join(entries)} in {self.run.folder} "
                          f"({error.strerror or error}): computed again next time",
                          RuntimeWarning, stacklevel=2)


@dataclass
class CourseSetup:
    """The scale, recipe and data of one notebook run.

    Attributes:
        scale: ``"quick"`` or ``"full"``.
        recipe: the run recipe (:class:`unet_lib.recipe.RunRecipe`); its model is set per
            model by :meth:`trained`.
        data_root: the dataset folder (the phantom unless ``$BRATS_DIR`` is set).
        real_data: ``True`` for a real BraTS download.
        train_volumes, val_volumes, test_volumes: the split, by volume. Validation chooses
            each model's checkpoint and any threshold; the test volumes give the headline
            figures.
        home: where phantoms (``data/``) and models (``runs/course/``) are kept.
        changes: the changes to the scale's settings this setup was made with; each model's
            recipe is the scale's for that model (:meth:`RunRecipe.for_scale`) with them.
    """

    scale: str
    recipe: RunRecipe
    data_root: Path
    real_data: bool
    train_volumes: list[int]
    val_volumes: list[int]
    test_volumes: list[int]
    home: Path
    changes: dict = dataclasses.field(default_factory=dict)

    @property
    def config(self) -> TrainConfig:
        """The training settings of every model of this setup."""
        return self.recipe.config

    @property
    def device(self) -> torch.device:
        """Where the chapters compute: the configured device, ``"auto"`` a GPU if there is
        one (:func:`unet_lib.runtime.pick_device`)."""
        return pick_device(self.config.device)

    def run(self, name: str) -> PreparedRun:
        """The run of model ``name``: its recipe, folder, data and split."""
        return PreparedRun(self.recipe_of(name), self.run_dir(name), self.data_root,
                           self.train_volumes, self.val_volumes, self.test_volumes)

    def recipe_of(self, name: str) -> RunRecipe:
        """Model ``name``'s recipe: the scale's settings for it, with this setup's changes."""
        if name not in MODELS:
            raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(MODELS)}")
        changes = {"max_volumes": self.recipe.max_volumes, **self.changes}
        recipe = RunRecipe.for_scale(self.scale, model=name, data=self.recipe.data, **changes)
        # the data this setup trains on, whatever the changes (another seed keeps its phantom)
        return dataclasses.replace(recipe, phantom=self.recipe.phantom)

    def datasets(self):
        """``(train, val)`` datasets of ``(image (4, S, S), mask (3, S, S))`` float tensors,
        S = ``config.image_size``."""
        return self.run("classic").datasets()

    def test_dataset(self):
        """The held-out test volumes as a dataset, like :meth:`datasets`."""
        return self.run("classic").dataset("test")

    def variant(self, **changes) -> "CourseSetup":
        """This setup with ``changes`` to its training settings (e.g. ``loss="bce+dice"``):
        the same data and split; its models are cached apart."""
        config = dataclasses.replace(self.config, **changes)
        return dataclasses.replace(self, recipe=dataclasses.replace(self.recipe, config=config)
                                   .validate(), changes={**self.changes, **changes})

    def describe(self) -> str:
        """What the chapter runs with: the scale's settings, data, split and course home."""
        c = self.config
        data = ("real BraTS at " if self.real_data else "the phantom at ") + _shown(
            self.data_root, self.home)
        if self.real_data and self.recipe.max_volumes:
            data += f" (its first {self.recipe.max_volumes} volumes: max_volumes)"
        epochs = {name: self.recipe_of(name).config.epochs for name in MODELS}
        shown = (str(c.epochs) if len(set(epochs.values())) == 1 else
                 " / ".join(f"{n} {name}" for name, n in epochs.items()))
        return (f"scale {self.scale!r} on {self.device}: {c.image_size}×{c.image_size} slices, "
                f"{c.base_filters} first filters, {shown} epochs, batch {c.batch_size}, "
                f"lr {c.lr:g}, weight decay {c.weight_decay:g} ({c.optimizer}), "
                f"γ {c.lr_gamma}, loss {c.loss}, tumour share {c.tumour_share}, "
                f"pos_weight {c.pos_weight}, seed {c.seed}\n"
                f"data: {data}; {len(self.train_volumes)} training, "
                f"{len(self.val_volumes)} validation and {len(self.test_volumes)} test volumes\n"
                f"course home: {readable(self.home)} (${HOME_VARIABLE}): phantoms in data/, "
                f"trained models in runs/course/")

    def __repr__(self) -> str:
        return f"CourseSetup({self.describe()})"

    def run_dir(self, name: str) -> Path:
        """The cache folder of model ``name``: one per recipe (settings, data, model)."""
        key = self.recipe_of(name).key()
        return self.home / "runs" / "course" / f"{name}-{self.scale}-{key}"

    def trained(self, name: str, progress: bool | str = "epochs", retrain: bool = False
                ) -> TrainedModel:
        """Model ``name`` trained with this setup: loaded from the cache when a finished run is
        there, else trained now (an interrupted run resumes from its last epoch).

        Args:
            name: ``"classic"``, ``"improved"`` or ``"attention"``.
            progress: ``"epochs"`` prints one line per epoch; ``True`` adds a progress bar
                per epoch; ``False`` prints only the line that says it trains now (see
                :func:`unet_lib.train.fit`): on a small GPU a model can take many minutes.
            retrain: train it again from the start; the cached run's checkpoints are
                deleted first (where another process is training it now, the model it
                finishes is loaded instead).
        """
        run = self.run(name)  # an unknown name is refused here (recipe_of)
        last = run.folder / "last.pt"
        while True:  # until this process trains it, or finds it trained by another
            # in a shared course home a classmate's notebook may be training it now; the
            # model it finishes is a fresh one, to load rather than train again
            if wait_while_busy(run.folder, on_wait=lambda: print(
                    f"another process is training the {name} U-Net in "
                    f"{_shown(run.folder, self.home)}: waiting for it to finish, then loading "
                    f"its model", flush=True)):
                retrain = False
            if last.is_file() and not retrain:
                try:
                    payload = read_checkpoint(last)
                except CheckpointError as error:
                    raise CheckpointError(f"{error}. To train this course model again "
                                          f"instead, call trained({name!r}, retrain=True)"
                                          ) from None
                if payload["epoch"] >= run.recipe.config.epochs:
                    return _loaded(name, run, payload, from_cache=True)
            epochs, loss = run.recipe.config.epochs, run.recipe.config.loss
            with_loss = "" if loss == TrainConfig.loss else f" with the {loss} loss"
            print(f"training the {name} U-Net{with_loss} for {epochs} epoch{'s' * (epochs != 1)} "
                  f"on {self.device} (checkpoints in {_shown(run.folder, self.home)})", flush=True)
            try:
                with claim(run.folder):  # decided and trained under one hold (re-entrant)
                    # no last.pt: a run stopped in its first epoch, whose files start again
                    resume = last.is_file() and not retrain
                    train_run(run, resume=resume, overwrite=not resume, progress=progress,
                              report=lambda *args, **kwargs: None)
            except RunFolderBusy:  # another process started it since the wait above: the
                retrain = False  # model it finishes is a fresh one, even if it ends at once
                continue
            finally:  # the GPU memory training cached (held data, activations) back to the
                if torch.cuda.is_available():  # driver: a shared lab GPU, other notebooks
                    torch.cuda.empty_cache()
            return _loaded(name, run, read_checkpoint(last), from_cache=False)


def _loaded(name: str, run: PreparedRun, last: dict, from_cache: bool) -> TrainedModel:
    """The model of ``best.pt`` (chosen on validation) with the history of ``last.pt``."""
    best = run.folder / "best.pt"
    payload = read_checkpoint(best) if best.is_file() else last
    history = History(last["history"])
    return TrainedModel(name, model_from_checkpoint(payload).eval(), history,
                        _seconds(history), from_cache, run.folder / "last.pt",
                        int(payload["epoch"]), run)


def _shown(path: Path, home: Path) -> str:
    """``path`` relative to the course home where it lies under it (no absolute build paths
    in the published pages)."""
    try:
        return str(Path("<course home>") / Path(path).resolve().relative_to(home.resolve()))
    except ValueError:
        return str(path)


#: how many volumes of real BraTS the quick scale trains and scores on: the quick phantom's
#: count. Each has 155 slices against the phantom's 32, so a model takes about 5× as long.
QUICK_REAL_VOLUMES = SCALES["quick"].phantom.n_volumes


def _seconds(history: History) -> float:
    return float(sum(record["seconds"] for record in history.records))


def setup(scale: str = "auto", data: str | Path | None = None, **changes) -> CourseSetup:
    """The course setup for one notebook.

    Args:
        scale: ``"auto"``, ``"quick"`` or ``"full"`` (``$UNET_COURSE_SCALE`` overrides it).
        data: a BraTS 2020 folder; ``None`` takes ``$BRATS_DIR``, and without it the phantom
            of the scale (made on first use, about 5 s quick, a few minutes full). At the
            quick scale only its first :data:`QUICK_REAL_VOLUMES` volumes are used, as many
            as the quick phantom has, unless ``max_volumes`` says otherwise.
        **changes: fields of :class:`TrainConfig` to change from the scale's configuration
            (e.g. ``epochs=40``), ``n_volumes``/``n_slices`` of the phantom, or
            ``max_volumes`` of real data; a changed recipe trains and caches its own models.

    Returns:
        A :class:`CourseSetup`; its ``describe()`` says what the figures were made with.
    """
    warn_if_torch_is_older()  # a --no-deps install keeps the runtime's own PyTorch
    threads_within_usable_cores()  # a JupyterHub pod's CPU limit: no more threads than cores
    scale = resolve_scale(scale)
    data = data or os.environ.get(DATA_VARIABLE) or None
    if data is not None and scale == "quick" and "max_volumes" not in changes:
        changes = {**changes, "max_volumes": QUICK_REAL_VOLUMES}  # not 369 volumes on a CPU
    recipe = RunRecipe.for_scale(scale, data=data, **changes)
    home = course_home()
    data_root = recipe.data_root(home / "data")
    split = split_of(recipe, data_root)
    return CourseSetup(scale, recipe, Path(data_root).resolve(), data is not None, split.train,
                       split.val, split.test, home, dict(changes))
