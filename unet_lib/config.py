"""Training settings: :class:`TrainConfig`, the slides' configuration and its CPU-sized
variant, checked before any work starts (:meth:`TrainConfig.validate`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .models import MIN_SIZE

#: the optimizers ``TrainConfig.optimizer`` names
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
#: the training losses ``TrainConfig.loss`` names (see :func:`unet_lib.losses.make_loss`)
LOSSES = ("bce", "bce+dice")
MAX_IMAGE_SIZE = 2048


class ConfigError(ValueError):
    """A training setting out of range; ``field`` names it (the CLI shows it as ``--field``)."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass
class TrainConfig:
    """Training settings. The defaults are the course slides' configuration.

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step, for training and validation.
        lr: the optimizer's learning rate.
        weight_decay: weight decay of the optimizer (1e-2, the slides' value), on every
            parameter, biases and batch-norm scales included (many recipes, ConvNeXt's among
            them, leave those out; the slides do not say).
        optimizer: ``"adamw"`` (default) — Adam with *decoupled* weight decay — or ``"adam"``,
            which adds the decay to the gradient as an L2 penalty. At 1e-2 the L2 form swamps
            the small gradients of a rare class: on the phantom a quick Classic U-Net with
            ``"adam"`` still predicted no tumour at all (Dice 0) after 10 epochs, where
            ``"adamw"`` reached whole-tumour Dice 0.83.
        lr_gamma: the learning rate is multiplied by this after every epoch.
        warmup_epochs: over the first ``warmup_epochs`` epochs the learning rate rises linearly,
            step by step, from almost 0 to its scheduled value (0: none, as the slides): the
            first steps from random weights are the least stable.
        image_size: slices are resized to ``image_size × image_size`` (BraTS is 240).
        base_filters: first encoder level's width: the recipe builds the model with it
            (:class:`unet_lib.recipe.RunRecipe`).
        val_fraction: share of *volumes* held out for validation: choosing the checkpoint
            (``best.pt``) and any threshold (the recipe's split).
        test_fraction: share of *volumes* held out for testing: the headline figures, on
            patients that influenced nothing (``0`` for no test set).
        threshold: probability above which a pixel counts as tumour in the metrics.
        loss: ``"bce"`` (the slides: BCE-with-logits) or ``"bce+dice"`` (BCE plus a soft Dice
            loss per channel, as many papers train: Dice weighs a rare region by its own size).
        pos_weight: per-channel weight of tumour pixels in the training loss (BCE-with-logits'
            ``pos_weight``), e.g. 5, 2, 5 for NCR/NET, ED, ET (``--pos-weight 5,2,5``);
            ``None`` (the slides) is plain BCE. The validation loss is the training loss
            (weights and Dice term included), so that the two curves of a run compare; runs
            trained on different losses compare by their Dice. (The Dice term pools each
            batch, so with ``"bce+dice"`` both losses depend a little on the batch size, and
            under ``torchrun`` on each process's share of it.)
        tumour_share: share of each epoch's training slices drawn from those with tumour
            (:mod:`unet_lib.sampling`); ``None`` (the slides) visits every slice once, in a
            shuffled order. The epoch keeps its length; validation is unchanged.
        seed: seeds the order of the batches in :func:`~unet_lib.train.fit`, and in a recipe's
            run (:func:`unet_lib.run.train_run`, the CLI, the course) the model's starting
            weights, the split and a made phantom too. Called alone, ``fit`` does not seed the
            weights: seed before building the model (:func:`~unet_lib.runtime.seed_everything`).
        amp: mixed precision on CUDA (bfloat16 where supported, else float16 with scaling).
        channels_last: keep images and weights in NHWC memory layout. ``None`` (default):
            on for CUDA, where it was measured faster (one H200, bf16: the Classic U-Net
            trained 1.43× faster, the Improved 1.64×, the Attention 1.35×), off elsewhere;
            ``True``/``False`` force it (``unet-lib bench --channels-last`` measures it).
        compile: ``torch.compile`` the model (falls back to eager with a warning where
            compilation is unavailable).
        device: ``"auto"`` (CUDA → MPS → CPU) or a torch device string.
        resident_data: hold the training and validation slices on the device, read once,
            instead of reading them through a loader every epoch (:mod:`unet_lib.resident`):
            ``"auto"`` when they take at most half the free memory (the GPU's, or on the CPU
            the available RAM), else always or never: ``True``/``False`` (on/off).
        num_workers: data-loading processes; ``None`` (none) = 0 on the CPU, up to 8 on a GPU.
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    lr_gamma: float = 0.9
    warmup_epochs: int = 0
    image_size: int = 240
    base_filters: int = 32
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    threshold: float = 0.5
    loss: str = "bce"
    pos_weight: tuple[float, ...] | None = None
    tumour_share: float | None = None
    seed: int = 0
    amp: bool = True
    channels_last: bool | None = None
    compile: bool = False
    device: str = "auto"
    num_workers: int | None = None
    resident_data: bool | str = "auto"

    @classmethod
    def quick(cls, **changes) -> "TrainConfig":
        """A configuration for a laptop CPU: 96×96 images, 16 filters, 10 epochs, batch 8 (small
        batches: more steps for the same CPU time), four slices in five drawn from those with
        tumour (``tumour_share``), channels_last, a quarter of the volumes held out for testing
        (4 of the quick phantom's 16). Why each value, measured:
        :data:`unet_lib.recipe.QUICK_CHANGES`. Any field can be changed.
        """
        return dataclasses.replace(cls(epochs=10, batch_size=8, image_size=96, base_filters=16,
                                       tumour_share=0.8, test_fraction=0.25,
                                       channels_last=True), **changes)

    def validate(self) -> "TrainConfig":
        """Check every setting before any work starts; returns ``self``.

        Raises:
            ConfigError: naming the first setting out of range and what it accepts.
        """
        def need(ok: bool, field: str, problem: str) -> None:
            if not ok:
                raise ConfigError(field, f"{problem}, got {getattr(self, field)!r}")

        for field in ("epochs", "batch_size", "base_filters"):
            need(_is_int(getattr(self, field)) and getattr(self, field) >= 1, field,
                 "must be a whole number of at least 1")
        need(_is_int(self.warmup_epochs) and 0 <= self.warmup_epochs, "warmup_epochs",
             "must be a whole number, 0 or more")
        need(self.warmup_epochs < self.epochs, "warmup_epochs",
             f"must be fewer than the {self.epochs} epochs, or the learning rate never reaches "
             f"its scheduled value")
        need(_is_number(self.lr) and self.lr > 0, "lr", "must be a positive number")
        need(_is_number(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
             "must be 0 or more")
        need(self.optimizer in OPTIMIZERS, "optimizer",
             f"must be one of {', '.join(repr(n) for n in OPTIMIZERS)}")
        need(self.tumour_share is None or (_is_number(self.tumour_share)
                                           and 0 <= self.tumour_share <= 1), "tumour_share",
             "must be a share between 0 and 1, or None for a plain shuffle")
        need(self.resident_data == "auto" or isinstance(self.resident_data, bool),
             "resident_data", 'must be "auto", True or False')
        need(self.channels_last in (True, False, None), "channels_last",
             "must be True, False or None (on for CUDA)")
        need(_is_number(self.lr_gamma) and 0 < self.lr_gamma <= 1, "lr_gamma",
             "must be in (0, 1]: the learning rate is multiplied by it after every epoch")
        need(_is_int(self.image_size) and self.image_size >= MIN_SIZE, "image_size",
             f"must be at least {MIN_SIZE} pixels (BraTS slices are 240)")
        if self.image_size > MAX_IMAGE_SIZE:
            first_level = self.batch_size * self.base_filters * self.image_size ** 2 * 4
            need(False, "image_size",
                 f"is too large: a batch of {self.batch_size} would need about "
                 f"{_bytes(first_level)} for the first level's activations alone (batch × "
                 f"filters × pixels × 4 bytes); BraTS slices are 240, at most "
                 f"{MAX_IMAGE_SIZE} is accepted")
        need(_is_number(self.val_fraction) and 0 < self.val_fraction < 1, "val_fraction",
             "must be in (0, 1): the share of volumes held out to choose the epoch kept (to "
             "train on every volume, call unet_lib.train.fit with val_data=None)")
        need(_is_number(self.test_fraction) and 0 <= self.test_fraction < 1, "test_fraction",
             "must be in [0, 1): the share of volumes held out for testing")
        if self.val_fraction + self.test_fraction >= 1:  # each fine alone: name both
            raise ConfigError("val_fraction", f"{self.val_fraction}, with a test fraction of "
                                              f"{self.test_fraction}, holds out all the "
                                              f"volumes; the two must add up to less than 1")
        need(self.loss in LOSSES, "loss", f"must be one of {', '.join(map(repr, LOSSES))}")
        need(_is_number(self.threshold) and 0 <= self.threshold <= 1, "threshold",
             "must be a probability in [0, 1]")
        if self.pos_weight is not None:
            weights = tuple(self.pos_weight)
            need(len(weights) == 3, "pos_weight",
                 "needs one weight per mask channel (NCR/NET, ED, ET), e.g. 5,2,5")
            need(all(_is_number(w) and w > 0 for w in weights), "pos_weight",
                 "weights must be positive numbers")
        need(_is_int(self.seed) and self.seed >= 0, "seed", "must be a whole number ≥ 0")
        need(self.num_workers is None or (_is_int(self.num_workers) and self.num_workers >= 0),
             "num_workers", "must be 0 or more")
        check_device(self.device)
        return self


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            and math.isfinite(value))


def _bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024


def check_whole_number(name: str, value, least: int = 1) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``value`` is a whole number (not a
    bool, not 10.5) of at least ``least``."""
    if not _is_int(value) or value < least:
        raise ConfigError(name, f"must be a whole number of at least {least}, got {value!r}")


def check_batch_size(batch_size) -> None:
    """Raise :class:`ConfigError` unless ``batch_size`` is a whole number of at least 1."""
    check_whole_number("batch_size", batch_size)


def check_threshold(threshold) -> float:
    """``threshold`` as a float; :class:`ConfigError` (a ``ValueError``) unless it is a
    probability in [0, 1] (a number: not a string, not ``None``)."""
    if isinstance(threshold, (str, bytes, bool, np.bool_)) or threshold is None:
        raise ConfigError("threshold", f"must be a probability in [0, 1], got {threshold!r}")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ConfigError("threshold", f"must be a probability in [0, 1], got "
                                       f"{threshold!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError("threshold", f"must be a probability in [0, 1], got {threshold}")
    return value


def check_device(device: str) -> None:
    """Raise :class:`ConfigError` unless ``device`` is ``"auto"`` or a device present here."""
    if device == "auto":
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ConfigError("device", f"{device!r} is not a device; use auto, cpu, cuda, cuda:N "
                                    f"or mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{device!r}: no CUDA GPU is available here (a CPU build "
                                    f"of PyTorch, or no driver); use auto or cpu")
    index = torch.device(device).index
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ConfigError("device", f"{device!r}: this machine has {torch.cuda.device_count()} "
                                    f"CUDA GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise ConfigError("device", f"{device!r}: Apple's MPS is not available here; use auto "
                                    f"or cpu")


