"""One recipe for a training run: the data (a BraTS folder or a phantom to make), the split,
the settings and the model — and the run folder they name.

``unet-lib train`` and the course build every run from a :class:`RunRecipe`, so the defaults
live here once:

>>> recipe = RunRecipe.for_scale("quick", model="attention")   # the course's CPU scale
>>> recipe.phantom                                              # what data it trains on
PhantomSpec(image_size=96, n_volumes=16, n_slices=32, seed=0)
>>> recipe.key()                   # the same for the same data, wherever the checkout lies
'7c1e...'

A run folder holds ``run.json`` (:meth:`unet_lib.run.PreparedRun.save` writes it): the recipe,
the data folder and the split by volume, so that ``unet-lib evaluate`` and ``--resume`` find
the data and the held-out volumes of any run, the course's included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, TrainConfig

#: how :func:`unet_lib.run.split_of` splits the volumes; part of a run's key, so that a run
#: made with another split is never mistaken for this one
SPLIT_METHOD = "by volume, stratified by enhancing tumour"
#: the models a recipe can name (the presets of :func:`unet_lib.models.build_model`)
MODEL_NAMES = ("classic", "improved", "attention")
#: settings that change how fast a run goes, not what it learns: left out of the run's key
RUNTIME_FIELDS = ("device", "num_workers", "compile", "channels_last", "resident_data")


@dataclass(frozen=True)
class PhantomSpec:
    """A BraTS-like phantom, made on first use (:func:`unet_lib.data.make_phantom`).

    Attributes:
        image_size: slice height and width in pixels (240 as BraTS).
        n_volumes: synthetic brains.
        n_slices: axial slices per brain (155 as BraTS).
        seed: the same spec gives byte-identical files.
    """

    image_size: int
    n_volumes: int
    n_slices: int
    seed: int = 0

    def validate(self) -> "PhantomSpec":
        for name, least in (("image_size", 16), ("n_volumes", 2), ("n_slices", 1), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ConfigError(name, f"must be a whole number of at least {least}, got "
                                        f"{value!r}" + (" (a split needs a training and a "
                                                        "validation volume)"
                                                        if name == "n_volumes" else ""))
        return self

    def folder(self, phantom_home: str | Path) -> Path:
        """The phantom's folder under ``phantom_home``, made there on first use."""
        from .data import cached_phantom

        return cached_phantom(phantom_home, self.image_size, self.n_volumes, self.n_slices,
                              self.seed)


def _as_written(name: str, value):
    """A setting's value as the key hashes it: a whole number given for a float setting as
    that float (``pos_weight=(5, 2, 5)`` and ``(5.0, 2.0, 5.0)`` are one recipe, which JSON
    would write apart)."""
    if "float" not in str(_FIELD_TYPES[name]):
        return value
    if isinstance(value, (list, tuple)):
        return [_as_written(name, item) for item in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


@dataclass(frozen=True)
class Scale:
    """A named size of the course: its training settings, the phantom it trains on, and
    settings that differ for one model (``per_model``: model → changes to ``config``)."""

    config: TrainConfig
    phantom: PhantomSpec
    per_model: dict = field(default_factory=dict)


#: ``"full"``: the slides (240×240, 20 epochs, batch 32, 32 filters) on a 20-volume phantom;
#: ``"quick"``: a laptop CPU (:meth:`TrainConfig.quick`) on a 16-volume 96×96 phantom, of
#: which 4 are held out for testing and 3 for validation
SCALES = {
    "full": Scale(TrainConfig(), PhantomSpec(image_size=240, n_volumes=20, n_slices=155)),
    "quick": Scale(TrainConfig.quick(), PhantomSpec(image_size=96, n_volumes=16, n_slices=32)),
}

#: Where the quick scale departs from the slides, and why, in a clause each (the table of
#: chapter 4); :data:`QUICK_EVIDENCE` gives the measurements behind each reason.
QUICK_CHANGES = {
    "epochs": "10 instead of 20: minutes on a laptop CPU, enough for the Classic and Improved "
              "U-Nets to find every region (test Dice about 0.85 or more on WT, TC and ET); the "
              "Attention U-Net learnt slowest in the runs measured (below) and gained most from "
              "more (exercise 4.4 trains this build's slowest longer)",
    "batch_size": "8 instead of 32: four times the optimizer steps for the same CPU time",
    "image_size": "96 instead of 240: at 96 px the enhancing rim of a small tumour is more "
                  "than a pixel wide (at 64 px, about one)",
    "base_filters": "16 instead of 32: a quarter of the arithmetic per layer, and of the "
                    "parameters (chapters 1-3 count them at 32)",
    "tumour_share": "0.8 instead of a plain shuffle: a short training sees enough tumour",
    "test_fraction": "0.25 instead of 0.2: 4 test patients of 16, so that no single one decides "
                     "the headline figures",
    "channels_last": "on: a faster memory layout for the Improved and Attention U-Nets on a CPU",
}

#: What was measured for each of :data:`QUICK_CHANGES`: the quick phantom's 4 test volumes
#: (Dice at threshold 0.5 of the checkpoint chosen on validation; 2 CPU cores, 2026-11-27 and -28;
#: figures measured before the split was stratified by tumour kind, or before the models started
#: from the U-Net paper's weights, are marked). Only "epochs" was measured with ``best.pt``
#: chosen as today, on the mean validation Dice over WT, TC and ET; the others on five scores.
QUICK_EVIDENCE = {
    "epochs": "Each model trains in 1 to 3.5 minutes on 2 cores, by the machine's load. Test "
              "Dice WT/TC/ET after "
              "10 epochs (models of 2026-11-28; the book's own, trained again at each build with "
              "the code of the day, differ by a few hundredths: chapter 7 scores them): "
              "Classic 0.94/0.91/0.86, Improved 0.93/0.91/0.88, Attention "
              "0.90/0.79/0.70. Trained 16 epochs, the Attention U-Net reached 0.89/0.84/0.75 "
              "(kept epoch 16); trained 24, it kept epoch 16 again: its validation Dice "
              "(mean of WT, TC, ET) stayed at 0.88-0.89 from epoch 12 on. Seed 0 is its worst "
              "of five on TC and ET: over seeds 0-4 at 10 epochs it averaged 0.91/0.86/0.81, "
              "the Classic 0.93/0.88/0.82 (benchmarks/attention-seeds-cpu.md). From PyTorch's "
              "default start instead of the U-Net paper's (UNet.reset_weights), the Classic "
              "found the tumour core only in epoch 7 of 12 (test TC 0.75).",
    "image_size": "At 64 px the enhancing rim of a small tumour is about one pixel wide, and the "
                  "Classic U-Net's test ET Dice stayed at 0.25-0.35; at 96 px it reached 0.83 "
                  "(unstratified split, PyTorch's default start).",
    "tumour_share": "35 % of the quick phantom's slices hold tumour (179 of 512; 40 % at full "
                    "size, data card); drawing 80 % from them shows a "
                    "short training enough enhancing rim. Weighting tumour pixels in the loss "
                    "instead (pos_weight 5, 2, 5) makes the Classic mark more: test WT recall "
                    "0.98 against 0.90, precision 0.87 against 0.96 (ED precision 0.74 against "
                    "0.93), Dice WT 0.92 against 0.93, ET 0.85 both (2026-11-28; the same "
                    "again on 2026-12-07). Before the split "
                    "was stratified, from PyTorch's default start, it also made false alarms of "
                    "ET on the tumours without one: ET Dice 0.40 against 0.83.",
    "channels_last": "One training step of 8 images of 96×96 took 0.30 s instead of 0.55 s for "
                     "the Improved U-Net on this CPU, 0.26 s instead of 0.31 s for the Attention "
                     "U-Net; the Classic's about the same.",
}


@dataclass
class RunRecipe:
    """What one training run is made of.

    Attributes:
        model: ``"classic"``, ``"improved"`` or ``"attention"``.
        config: the training settings (:class:`TrainConfig`).
        data: a BraTS folder (Kaggle slices, NIfTI cases or a packed copy); ``None`` trains
            on ``phantom``.
        phantom: the phantom to make when ``data`` is ``None``; its images are
            ``config.image_size`` pixels wide unless given otherwise.
        max_volumes: use only the first N volumes of the data.
    """

    model: str = "classic"
    config: TrainConfig = field(default_factory=TrainConfig)
    data: Path | None = None
    phantom: PhantomSpec | None = None
    max_volumes: int | None = None

    @classmethod
    def for_scale(cls, scale: str = "full", model: str = "classic",
                  data: str | Path | None = None, max_volumes: int | None = None,
                  n_volumes: int | None = None, n_slices: int | None = None,
                  **changes) -> "RunRecipe":
        """The recipe of a named scale (:data:`SCALES`) for ``model`` (with the scale's own
        settings for that model, e.g. more epochs), with ``changes`` to its settings (fields of
        :class:`TrainConfig`, which win) and to its phantom's size."""
        if scale not in SCALES:
            raise ConfigError("scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
        if data is not None and not str(data).strip():
            raise ConfigError("data", "is empty: give a BraTS folder, or None for the phantom")
        for name, count in (("n_volumes", n_volumes), ("n_slices", n_slices)):
            if data is not None and count is not None:
                raise ConfigError(name, "shapes the phantom, which data replaces (fewer "
                                        "volumes of your data: max_volumes)")
        preset = SCALES[scale]
        config = dataclasses.replace(preset.config, **{**preset.per_model.get(model, {}),
                                                       **changes})
        phantom = None
        if data is None:
            phantom = PhantomSpec(
                config.image_size,
                preset.phantom.n_volumes if n_volumes is None else n_volumes,
                preset.phantom.n_slices if n_slices is None else n_slices, config.seed)
        return cls(model, config, None if data is None else Path(data).expanduser(), phantom,
                   max_volumes).validate()

    def validate(self) -> "RunRecipe":
        """Check every part before any work starts; returns ``self``.

        Raises:
            ConfigError: naming the part out of range, or ``data`` when the recipe has both
                data and a phantom, or neither.
        """
        if (self.data is None) == (self.phantom is None):
            raise ConfigError("data", "a recipe trains on a BraTS folder (data) or on a phantom "
                                      "(phantom), one of the two: got "
                                      + ("both" if self.data is not None else "neither"))
        if self.model not in MODEL_NAMES:
            raise ConfigError("model", f"must be one of {', '.join(MODEL_NAMES)}, got "
                                       f"{self.model!r}")
        self.config.validate()
        if self.phantom is not None:
            self.phantom.validate()
        # each side of the split needs a volume: training, validation, and test if asked for
        sides = ("training", "validation") + (("test",) if self.config.test_fraction else ())
        phrase = "a " + ", a ".join(sides[:-1]) + " and a " + sides[-1]
        counts = (("n_volumes", self.phantom and self.phantom.n_volumes),
                  ("max_volumes", self.max_volumes))
        for name, count in counts:
            if count is not None and count < len(sides):
                raise ConfigError(name, f"must be at least {len(sides)}, got {count} (a split "
                                        f"needs {phrase} volume"
                                        + (f"; test_fraction is {self.config.test_fraction}"
                                           if len(sides) == 3 else "") + ")")
        return self

    def data_root(self, phantom_home: str | Path = "data") -> Path:
        """The data folder: ``data``, or the phantom's folder under ``phantom_home`` (made now if
        it does not exist yet)."""
        if self.data is not None:
            return self.data
        return self.phantom.folder(phantom_home)

    def identity(self) -> dict:
        """What the run is, independent of where anything lies: the model, the settings
        that change what it learns, the data's spec (a phantom) or the data's fingerprint
        (:func:`data_fingerprint`), the volume limit, the split method and how the weights
        start (:data:`unet_lib.models.unet.WEIGHT_INIT`)."""
        from .models.unet import WEIGHT_INIT  # models import torch; recipes need not

        config = {k: _as_written(k, v) for k, v in dataclasses.asdict(self.config).items()
                  if k not in RUNTIME_FIELDS}
        data = (dataclasses.asdict(self.phantom) if self.data is None
                else {"fingerprint": data_fingerprint(self.data)})
        return {"model": self.model, "config": config, "data": data,
                "max_volumes": self.max_volumes, "split": SPLIT_METHOD, "init": WEIGHT_INIT}

    def key(self) -> str:
        """A short hash of :meth:`identity`: the same recipe gives the same key on any machine
        and in any checkout."""
        text = json.dumps(self.identity(), sort_keys=True, default=list)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def to_json(self) -> dict:
        """The recipe as plain data (``run.json``); :meth:`from_json` reads it back."""
        return {"model": self.model, "config": dataclasses.asdict(self.config),
                "data": str(self.data.resolve()) if self.data is not None else None,
                "phantom": dataclasses.asdict(self.phantom) if self.phantom else None,
                "max_volumes": self.max_volumes}

    @classmethod
    def from_json(cls, saved: dict, source: str | Path = "run.json") -> "RunRecipe":
        """The recipe :meth:`to_json` wrote; ``source`` names the file in errors."""
        try:
            known = {f.name for f in dataclasses.fields(TrainConfig)}
            config = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in saved["config"].items() if k in known}
            phantom = PhantomSpec(**saved["phantom"]) if saved.get("phantom") else None
            data = Path(saved["data"]) if saved.get("data") else None
            if (data is None) == (phantom is None):
                raise KeyError("data or phantom (one of the two)")
            return cls(saved["model"], TrainConfig(**config), data, phantom,
                       saved.get("max_volumes"))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{source}: not a run recipe ({type(error).__name__}: {error}); "
                             f"was it written by an older unet_lib?") from None


def data_fingerprint(root: str | Path) -> str:
    """A hash of what a BraTS folder holds — its format, and the (volume, slice) of every
    item — not of where it lies: a moved or re-downloaded copy gives the same value."""
    from .data import open_dataset

    dataset = open_dataset(root)
    entries = [list(dataset.locate(i)) for i in range(len(dataset))]
    text = json.dumps({"format": type(dataset).__name__, "slices": entries})
    return hashlib.sha1(text.encode()).hexdigest()[:16]
