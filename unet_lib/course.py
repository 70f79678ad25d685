"""What the course's notebooks share: the scale setting, the data, and trained models.

Every chapter starts with ``setup = course.setup()``. The scale is one visible setting:

* ``"quick"`` — a laptop CPU: 64×64 slices of a 12-volume phantom, :meth:`TrainConfig.quick`
  (16 first filters, 8 epochs, batch 8). About a minute per model on two CPU cores.
* ``"full"`` — the slides: 240×240 slices, batch 32, 20 epochs, 32 first filters; a GPU.
* ``"auto"`` (the default) — ``"full"`` when a CUDA GPU is present, else ``"quick"``.

The environment variable ``UNET_COURSE_SCALE`` overrides the notebook's choice (CI sets it to
``quick``), and ``BRATS_DIR`` points the course at a real BraTS 2020 download (Kaggle slices,
a packed copy or the NIfTI release) instead of the phantom.

Trained models are cached (:meth:`CourseSetup.trained`): the first chapter that needs a model
trains it and later chapters load it, so each notebook runs on its own, in any order. The cache
key covers the configuration, the data and the split, so a changed setting trains anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import CheckpointError, model_from_checkpoint, read_checkpoint
from .data import cached_phantom, open_dataset, split_volumes
from .models import MODELS, UNet, build_model, count_parameters
from .train import History, TrainConfig, fit, pick_device, seed_everything

SCALES = ("quick", "full")
SCALE_VARIABLE = "UNET_COURSE_SCALE"
DATA_VARIABLE = "BRATS_DIR"
HOME_VARIABLE = "UNET_COURSE_HOME"

#: phantom size per scale: (image size, volumes, slices per volume)
PHANTOMS = {"quick": (64, 12, 32), "full": (240, 20, 155)}


def resolve_scale(scale: str = "auto") -> str:
    """``"quick"`` or ``"full"`` from a notebook's ``scale`` and ``$UNET_COURSE_SCALE``.

    The environment variable wins, so that CI can force the quick scale on any notebook.
    """
    chosen = os.environ.get(SCALE_VARIABLE) or scale
    if chosen == "auto":
        return "full" if torch.cuda.is_available() else "quick"
    if chosen not in SCALES:
        source = f"${SCALE_VARIABLE}" if os.environ.get(SCALE_VARIABLE) else "scale"
        raise ValueError(f"{source} = {chosen!r}: choose 'auto', 'quick' or 'full'")
    return chosen


def course_home() -> Path:
    """Folder for the course's phantom data and trained models.

    ``$UNET_COURSE_HOME`` if set; else the repository root when ``unet_lib`` runs from a
    checkout (``data/`` and ``runs/`` beside the book, both ignored by git); else
    ``~/.cache/unet_lib``.
    """
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and os.access(checkout, os.W_OK):
        return checkout
    return Path.home() / ".cache" / "unet_lib"


@dataclass
class TrainedModel:
    """A trained course model with its training record.

    Attributes:
        name: ``"classic"``, ``"improved"`` or ``"attention"``.
        model: the network after the last epoch, in eval mode, on the CPU.
        history: per-epoch losses and validation scores (:class:`unet_lib.train.History`).
        seconds: training time summed over epochs (data loading and validation included).
        from_cache: loaded from an earlier run rather than trained now.
        checkpoint: the ``last.pt`` it came from.
    """

    name: str
    model: UNet
    history: History
    seconds: float
    from_cache: bool
    checkpoint: Path

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)

    @property
    def final(self) -> dict:
        """The last epoch's validation: ``{"dice": {...}, "precision": {...}, ...}``."""
        return self.history.records[-1]["val"]


@dataclass
class CourseSetup:
    """The scale, training configuration and data of one notebook run.

    Attributes:
        scale: ``"quick"`` or ``"full"``.
        config: the training configuration (``config.model`` is set per model).
        data_root: the dataset folder (the phantom unless ``$BRATS_DIR`` is set).
        real_data: ``True`` for a real BraTS download.
        train_volumes, val_volumes: the split, by volume.
        home: where phantoms (``data/``) and models (``runs/course/``) are kept.
    """

    scale: str
    config: TrainConfig
    data_root: Path
    real_data: bool
    train_volumes: list[int]
    val_volumes: list[int]
    home: Path

    @property
    def device(self) -> torch.device:
        return pick_device(self.config.device)

    def datasets(self):
        """``(train, val)`` datasets of ``(image (4, S, S), mask (3, S, S))`` float tensors,
        S = ``config.image_size``."""
        size = self.config.image_size
        return (open_dataset(self.data_root, self.train_volumes, size),
                open_dataset(self.data_root, self.val_volumes, size))

    def describe(self) -> str:
        c = self.config
        data = ("real BraTS at " if self.real_data else "the phantom at ") + str(self.data_root)
        return (f"scale {self.scale!r} on {self.device}: {c.image_size}×{c.image_size} slices, "
                f"{c.base_filters} first filters, {c.epochs} epochs, batch {c.batch_size}, "
                f"lr {c.lr:g}, weight decay {c.weight_decay:g} ({c.optimizer}), "
                f"γ {c.lr_gamma}, pos_weight {c.pos_weight}\n"
                f"data: {data}; {len(self.train_volumes)} training and "
                f"{len(self.val_volumes)} validation volumes")

    def __repr__(self) -> str:
        return f"CourseSetup({self.describe()})"

    def build(self, name: str) -> UNet:
        """A freshly initialised model of this setup's width (seeded: the same every time)."""
        seed_everything(self.config.seed)
        return build_model(name, base_filters=self.config.base_filters)

    def run_dir(self, name: str) -> Path:
        """The cache folder of model ``name``: one per configuration, data and split."""
        config = dataclasses.replace(self.config, model=name)
        key = json.dumps({"config": dataclasses.asdict(config), "data": str(self.data_root),
                          "train": self.train_volumes, "val": self.val_volumes}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return self.home / "runs" / "course" / f"{name}-{self.scale}-{digest}"

    def trained(self, name: str, progress: bool | str = "epochs", retrain: bool = False
                ) -> TrainedModel:
        """Model ``name`` trained with this setup: loaded from the cache when a finished run is
        there, else trained now (an interrupted run resumes from its last epoch).

        Args:
            name: ``"classic"``, ``"improved"`` or ``"attention"``.
            progress: ``"epochs"`` prints one line per epoch; ``True`` adds a progress bar
                per epoch; ``False`` trains silently (see :func:`unet_lib.train.fit`).
            retrain: ignore and overwrite a cached run.
        """
        if name not in MODELS:
            raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(MODELS)}")
        config = dataclasses.replace(self.config, model=name)
        folder = self.run_dir(name)
        last = folder / "last.pt"
        if retrain:
            shutil.rmtree(folder, ignore_errors=True)
        elif last.is_file():
            try:
                payload = read_checkpoint(last)
            except CheckpointError as error:
                raise CheckpointError(f"{error}. To train this course model again instead, "
                                      f"call trained({name!r}, retrain=True)") from None
            if payload["epoch"] >= config.epochs:
                history = History(payload["history"])
                return TrainedModel(name, model_from_checkpoint(payload).eval(), history,
                                    _seconds(history), True, last)
        model = self.build(name)
        train_set, val_set = self.datasets()
        if progress:
            print(f"training the {name} U-Net for {config.epochs} epochs on {self.device} "
                  f"(checkpoints in {folder})", flush=True)
        history = fit(model, train_set, val_set, config, checkpoint_dir=folder, resume=True,
                      progress=progress)
        return TrainedModel(name, model.cpu().eval(), history, _seconds(history), False, last)


def glue(name: str, value, display: bool = False) -> None:
    """Make ``value`` quotable in the book's text as ``{glue:text}`name```, with
    ``myst_nb.glue``; does nothing where myst-nb is not installed (e.g. on Colab)."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def _seconds(history: History) -> float:
    return float(sum(record["seconds"] for record in history.records))


def setup(scale: str = "auto", data: str | Path | None = None, **changes) -> CourseSetup:
    """The course setup for one notebook.

    Args:
        scale: ``"auto"``, ``"quick"`` or ``"full"`` (``$UNET_COURSE_SCALE`` overrides it).
        data: a BraTS 2020 folder; ``None`` takes ``$BRATS_DIR``, and without it the phantom
            of the scale (made on first use, about 5 s quick, a few minutes full).
        **changes: fields of :class:`TrainConfig` to change from the scale's configuration
            (e.g. ``epochs=40``); a changed configuration trains and caches its own models.

    Returns:
        A :class:`CourseSetup`; its ``describe()`` says what the figures were made with.
    """
    scale = resolve_scale(scale)
    config = TrainConfig.quick() if scale == "quick" else TrainConfig()
    config = dataclasses.replace(config, **changes)
    home = course_home()
    data = data or os.environ.get(DATA_VARIABLE) or None
    if data is not None:
        root = Path(data).expanduser()
        volumes = open_dataset(root).volumes
    else:
        root = cached_phantom(home / "data", *PHANTOMS[scale], seed=config.seed)
        volumes = open_dataset(root).volumes
    train_volumes, val_volumes = split_volumes(volumes, config.val_fraction, config.seed)
    return CourseSetup(scale, config, root.resolve(), data is not None, train_volumes,
                       val_volumes, home)


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
    where = {index: _volume_and_slice(dataset, index) for _, index in areas}
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


def _volume_and_slice(dataset, index: int) -> tuple[int | None, int]:
    entries = getattr(dataset, "slices", None)
    return (entries[index][0], entries[index][1]) if entries is not None else (None, index)


def slice_name(dataset, index: int) -> str:
    """``"volume 7, slice 80"`` for item ``index`` of a BraTS dataset (``"slice <index>"`` for
    a dataset without that information)."""
    volume, slice_index = _volume_and_slice(dataset, index)
    return f"slice {index}" if volume is None else f"volume {volume}, slice {slice_index}"
