"""Training, evaluation and prediction with the slides' settings.

>>> config = TrainConfig()                    # 20 epochs, AdamW(2e-3, wd 1e-2), γ=0.9, batch 32
>>> history = fit(model, train_set, val_set, config, checkpoint_dir="runs/classic")
>>> evaluate(model, val_set)["dice"]          # {"NCR/NET": .., "ED": .., "ET": .., "WT": .., "TC": ..}

``fit`` picks the device (CUDA, then Apple MPS, else CPU), uses mixed precision on CUDA,
shows a tqdm bar, records a per-epoch history, writes ``last.pt`` (and ``best.pt``, the best
mean validation Dice) after every epoch and resumes from ``last.pt`` with ``resume=True``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from . import distributed
from . import runfolder
from .checkpoint import (CheckpointError, check_same_architecture, check_training_state,
                         read_checkpoint, save_checkpoint)
from .data.samples import BraTSDataError, collate_samples
from .metrics import SegmentationScores, binarize
from .models import MIN_SIZE
from .progress import progress_bar

#: training steps between two reads of the running loss (each read waits for the GPU)
SYNC_EVERY = 25
#: the largest image side :meth:`TrainConfig.validate` accepts (BraTS slices are 240)
MAX_IMAGE_SIZE = 2048
#: settings a resumed run cannot change: they decide the data, the split or the optimizer
RESUME_FIXED = ("model", "base_filters", "image_size", "val_fraction", "seed", "optimizer")


class ConfigError(ValueError):
    """A training setting out of range; ``field`` names it (the CLI shows it as ``--field``)."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass
class TrainConfig:
    """Training settings. The defaults are the course slides' configuration.

    Attributes:
        model: ``"classic"``, ``"improved"`` or ``"attention"`` (used by the CLI).
        epochs: passes over the training set.
        batch_size: images per step, for training and validation.
        lr: the optimizer's learning rate.
        weight_decay: weight decay of the optimizer (1e-2, the slides' value).
        optimizer: ``"adamw"`` (default) — Adam with *decoupled* weight decay — or ``"adam"``,
            which adds the decay to the gradient as an L2 penalty. At 1e-2 the L2 form swamps
            the small gradients of a rare class: on the phantom a quick Classic U-Net with
            ``"adam"`` still predicted no tumour at all (Dice 0) after 10 epochs, where
            ``"adamw"`` reached whole-tumour Dice 0.83.
        lr_gamma: the learning rate is multiplied by this after every epoch.
        image_size: slices are resized to ``image_size × image_size`` (BraTS is 240).
        base_filters: first encoder level's width (used by the CLI to build the model).
        val_fraction: share of *volumes* held out for validation (CLI split).
        threshold: probability above which a pixel counts as tumour in the metrics.
        pos_weight: per-channel weight of tumour pixels in the training loss (BCE-with-logits'
            ``pos_weight``), e.g. ``(5, 2, 5)`` for NCR/NET, ED, ET; ``None`` (the slides) is
            plain BCE. The validation loss is always plain BCE, so runs stay comparable.
        seed: seeds weights (via the CLI), split, shuffling and the phantom.
        amp: mixed precision on CUDA (bfloat16 where supported, else float16 with scaling).
        channels_last: keep images and weights in NHWC memory layout (faster convolutions on
            recent GPUs with mixed precision; off by default so that each speed-up can be
            measured alone with ``unet-lib bench``).
        compile: ``torch.compile`` the model (falls back to eager with a warning where
            compilation is unavailable).
        device: ``"auto"`` (CUDA → MPS → CPU) or a torch device string.
        num_workers: data-loading processes; ``None`` = 0 on the CPU, up to 8 on a GPU.
    """

    model: str = "classic"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    lr_gamma: float = 0.9
    image_size: int = 240
    base_filters: int = 32
    val_fraction: float = 0.2
    threshold: float = 0.5
    pos_weight: tuple[float, ...] | None = None
    seed: int = 0
    amp: bool = True
    channels_last: bool = False
    compile: bool = False
    device: str = "auto"
    num_workers: int | None = None

    @classmethod
    def quick(cls, **changes) -> "TrainConfig":
        """A small configuration for a laptop CPU: 64×64 images, 16 filters, 8 epochs, batch 8
        (small batches: more steps for the same CPU time), tumour pixels weighted (5, 2, 5).

        Without the weights a quick Classic U-Net learns the whole tumour but not its rare
        parts: on the quick phantom (``unet-lib train --quick``), validation Dice after 8
        epochs was ET 0.00, TC 0.41, WT 0.90 with plain BCE, and ET 0.65, TC 0.67, WT 0.83 with
        the weights, which raise recall (to about 0.99) at the cost of precision (0.5–0.7).
        Any field can be changed.
        """
        return dataclasses.replace(cls(epochs=8, batch_size=8, image_size=64, base_filters=16,
                                       pos_weight=(5.0, 2.0, 5.0)), **changes)

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
        need(_is_number(self.lr) and self.lr > 0, "lr", "must be a positive number")
        need(_is_number(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
             "must be 0 or more")
        need(self.optimizer in OPTIMIZERS, "optimizer",
             f"must be one of {', '.join(repr(n) for n in OPTIMIZERS)}")
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
        need(_is_number(self.val_fraction) and 0 <= self.val_fraction < 1, "val_fraction",
             "must be in [0, 1): the share of volumes held out")
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
    if kind == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise ConfigError("device", f"{device!r}: Apple's MPS is not available here; use auto "
                                    f"or cpu")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class OutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message says how much was asked and what to lower."""


def _out_of_memory_message(error: Exception, batch_size: int, shape) -> str:
    asked = re.search(r"Tried to allocate ([\d.]+ [KMGT]iB)", str(error))
    return (f"the GPU ran out of memory at batch size {batch_size} (images {tuple(shape)})"
            + (f" while allocating {asked[1]}" if asked else "")
            + f". Lower the batch size, e.g. to {max(1, batch_size // 2)} "
              f"(TrainConfig(batch_size=...) or --batch-size), or the image size.")


def pick_device(preference: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, then Apple MPS, else the CPU; otherwise ``preference``."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, with its learning rate and weight decay."""
    try:
        cls = OPTIMIZERS[config.optimizer]
    except KeyError:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of "
                         f"{', '.join(repr(n) for n in OPTIMIZERS)}") from None
    return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


class CompiledWithFallback(nn.Module):
    """``torch.compile(model)`` that falls back to ``model`` itself, with a warning, when
    compiling fails — which it does at the first call, not when ``torch.compile`` returns."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.eager = model
        self.checked = False
        try:
            self.compiled = torch.compile(model)
        except Exception as error:  # no compiler toolchain, unsupported platform, ...
            self._fall_back(error)

    def _fall_back(self, error: Exception) -> None:
        warnings.warn(f"torch.compile failed ({error}); training without it", RuntimeWarning,
                      stacklevel=3)
        self.compiled, self.checked = self.eager, True

    def forward(self, *args, **kwargs):
        if self.checked:
            return self.compiled(*args, **kwargs)
        try:
            output = self.compiled(*args, **kwargs)
        except Exception as error:
            self._fall_back(error)
            output = self.eager(*args, **kwargs)
        self.checked = True
        return output


def make_loss(config: TrainConfig, device: torch.device | str = "cpu") -> nn.Module:
    """BCE-with-logits averaged over pixels and channels, tumour pixels of channel ``c``
    weighted by ``config.pos_weight[c]`` when given."""
    if config.pos_weight is None:
        return nn.BCEWithLogitsLoss()
    weight = torch.tensor(config.pos_weight, dtype=torch.float32, device=device)
    return nn.BCEWithLogitsLoss(pos_weight=weight.view(-1, 1, 1))  # broadcast over (N, C, H, W)


def compile_model(model: nn.Module) -> nn.Module:
    """``model`` compiled with ``torch.compile``, falling back to eager where that fails."""
    return CompiledWithFallback(model)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, amp: bool):
    """Mixed-precision context for ``amp`` on CUDA (bfloat16 where supported, else float16);
    a no-op elsewhere."""
    dtype = _autocast_dtype(device, amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def _train_loader(data: Dataset, config: TrainConfig, device: torch.device,
                  generator: torch.Generator, context: distributed.Context) -> DataLoader:
    """Shuffled batches of ``config.batch_size`` (this process's share under ``torchrun``)."""
    workers = config.num_workers
    if workers is None:
        workers = 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)
    sampler = distributed.GlobalBatchSampler(len(data), config.batch_size, generator, context)
    return DataLoader(data, batch_sampler=sampler, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      collate_fn=collate_samples)


class History:
    """Per-epoch records of a training run.

    Each record is a dict: ``epoch``, ``lr``, ``train_loss``, ``seconds``, ``skipped`` (the
    files skipped as unusable in that epoch, ``"path: problem"``), and with validation data
    ``val_loss`` and ``val`` = ``{"dice"|"precision"|"recall": {name: value}}``.
    """

    def __init__(self, records: Iterable[dict] = ()):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list:
        """A column: ``history["train_loss"]``, or ``history["val_dice"]`` → list of dicts."""
        if key.startswith("val_") and key[4:] in ("dice", "precision", "recall"):
            return [r["val"][key[4:]] for r in self.records]
        return [r[key] for r in self.records]

    def __repr__(self) -> str:
        return f"History({len(self)} epochs)"


def _rng_state(loader_generator: torch.Generator) -> dict:
    """Every random state training uses, as plain data (tensors, ints, floats, strings)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(position),
                       int(has_gauss), float(gauss)),
             "torch": torch.get_rng_state(), "loader": loader_generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, loader_generator: torch.Generator) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), position,
                         has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    loader_generator.set_state(state["loader"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def settings_changed_on_resume(saved: dict, config: TrainConfig, path: Path) -> dict:
    """The settings of ``config`` that differ from the ``saved`` run's, as
    ``{field: (saved, now)}``.

    Raises:
        ConfigError: a setting of :data:`RESUME_FIXED` differs: it would change the data, the
            split or the optimizer under a half-trained model.
    """
    now = dataclasses.asdict(config)
    changed = {}
    for field, value in now.items():
        before = saved.get(field, value)
        if isinstance(before, list):
            before = tuple(before)
        if isinstance(value, list):
            value = tuple(value)
        if before != value:
            changed[field] = (before, value)
    for field in RESUME_FIXED:
        if field in changed and field != "model":
            before, value = changed[field]
            raise ConfigError(field, f"cannot change from {before!r} to {value!r} when resuming "
                                     f"{path}: it decides the run's data, split or optimizer. "
                                     f"Resume without the change, or start a new run in "
                                     f"another folder")
    changed.pop("model", None)  # the architecture check names a different model
    return changed


def _apply_resume_changes(changed: dict, optimizer, scheduler, report) -> None:
    """Put changed rates into the restored optimizer and scheduler, and say what changed."""
    for group in optimizer.param_groups:
        if "lr" in changed:
            group["lr"] = changed["lr"][1]
        if "weight_decay" in changed:
            group["weight_decay"] = changed["weight_decay"][1]
    if "lr_gamma" in changed:
        scheduler.gamma = changed["lr_gamma"][1]
    if "lr" in changed:
        scheduler.base_lrs = [changed["lr"][1]] * len(optimizer.param_groups)
    if changed:
        report("resuming with changed settings: "
               + ", ".join(f"{field} {before} → {now}" for field, (before, now) in changed.items())
               + (" (the learning rate of the next epoch, decayed from there)"
                  if "lr" in changed else ""))


def _restore_best(last: Path, state: dict, report) -> None:
    """Make ``best.pt`` hold the epoch ``last.pt`` says it does, when a kill came between
    writing the two (``best.pt`` is written first, so only a missing copy is possible)."""
    best_epoch = state.get("best_epoch")
    best = last.with_name("best.pt")
    if best_epoch is None:
        return
    try:
        held = read_checkpoint(best)["epoch"] if best.is_file() else None
    except CheckpointError:
        held = None
    if held == best_epoch:
        return
    if best_epoch == state["epoch"]:
        runfolder.write_bytes_atomic(best, last.read_bytes())
        report(f"restored {best} (epoch {best_epoch}) from {last}")
    elif held is None:
        report(f"{best} is missing or unreadable; it will be written again when an epoch "
               f"beats epoch {best_epoch}'s validation Dice")


def fit(model: nn.Module, train_data: Dataset, val_data: Dataset | None = None,
        config: TrainConfig | None = None, checkpoint_dir: str | Path | None = None,
        resume: bool = False, progress: bool | str = True,
        trust_checkpoint: bool = False) -> History:
    """Train ``model`` on ``train_data`` with BCE-with-logits, AdamW and exponential LR decay.

    Args:
        model: maps (N, 4, H, W) to (N, 3, H, W) logits; trained in place.
        train_data, val_data: datasets of ``(image (4, H, W), mask (3, H, W))`` float tensors.
        config: :class:`TrainConfig`; the slides' defaults when ``None``. Checked before any
            work (:meth:`TrainConfig.validate`).
        checkpoint_dir: where to write ``best.pt`` (the best mean validation Dice so far) and
            then ``last.pt`` after each epoch. The folder is locked while training
            (:func:`unet_lib.runfolder.claim`): a second run on it is refused.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists (same architecture).
            Changed rates, epochs, batch size, threshold or loss weights are applied and
            printed; a change of :data:`RESUME_FIXED` (data, split, optimizer) is refused.
        progress: ``True``: a tqdm bar per epoch (in a terminal or notebook) and a summary line
            after each; ``"epochs"``: only the summary lines, printed (light enough for a
            notebook run by CI, where thousands of widget updates would be dropped);
            ``False``: nothing.
        trust_checkpoint: resume from a checkpoint of unet_lib 0.1 (see
            :func:`unet_lib.checkpoint.read_checkpoint`: this runs any code the file holds).

    Returns:
        The :class:`History`, including epochs from a resumed run.

    Raises:
        ConfigError: a setting out of range, or changed on resume where it cannot be.
        TrainingDiverged: the loss became NaN/inf (``last.pt`` keeps the last good epoch).
        RunFolderBusy: another process trains into ``checkpoint_dir``.
    """
    config = (config or TrainConfig()).validate()
    if checkpoint_dir is None:
        return _fit(model, train_data, val_data, config, None, resume, progress,
                    trust_checkpoint)
    if not distributed.is_main_process():  # rank 0 alone writes checkpoints, and so holds the folder
        return _fit(model, train_data, val_data, config, Path(checkpoint_dir), resume,
                    progress, trust_checkpoint)
    with runfolder.claim(checkpoint_dir) as folder:
        return _fit(model, train_data, val_data, config, folder, resume, progress,
                    trust_checkpoint)


def _fit(model: nn.Module, train_data: Dataset, val_data: Dataset | None, config: TrainConfig,
         checkpoint_dir: Path | None, resume: bool, progress: bool | str,
         trust_checkpoint: bool) -> History:
    from tqdm.auto import tqdm

    device = pick_device(config.device)
    context = distributed.setup(device.type)
    device = distributed.local_device(device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    amp_dtype = _autocast_dtype(device, config.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    loss_fn = make_loss(config, device)
    generator = torch.Generator().manual_seed(config.seed)
    history = History()
    start_epoch, best_epoch, resumed = 0, None, []
    last = checkpoint_dir / "last.pt" if checkpoint_dir else None
    summaries = bool(progress) and context.is_main
    report = print if summaries else (lambda *args, **kwargs: None)

    if resume and last is not None and last.exists():
        state = read_checkpoint(last, map_location=device, trust=trust_checkpoint)
        check_training_state(state)
        check_same_architecture(model, state, last)
        changed = settings_changed_on_resume(state["config"], config, last)
        try:
            model.load_state_dict(state["model_state"])
            optimizer.load_state_dict(state["optimizer_state"])
            scheduler.load_state_dict(state["scheduler_state"])
            scaler.load_state_dict(state["scaler_state"])
            _set_rng_state(state["rng"], generator)
        except (KeyError, ValueError, RuntimeError, TypeError) as error:
            raise CheckpointError(f"{last}: its training state cannot be restored: "
                                  f"{' '.join(str(error).split())[:300]}") from None
        _apply_resume_changes(changed, optimizer, scheduler, report)
        history = History(state["history"])
        start_epoch, best_epoch = state["epoch"], state.get("best_epoch")
        resumed = list(state.get("resumed", []))
        if changed:
            resumed.append({"after_epoch": start_epoch,
                            "changed": {k: list(v) for k, v in changed.items()}})
        if context.is_main:
            _restore_best(last, state, report)

    train_loader = _train_loader(train_data, config, device, generator, context)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    trained = model  # what computes the loss: the model, or its DDP wrapper under torchrun
    if context.active:
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        trained = compile_model(trained)
    progress = progress is True and context.is_main
    best = max((_mean_dice(r) for r in history.records), default=-math.inf)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        rate = optimizer.param_groups[0]["lr"]
        model.train()
        # The running loss stays on the device: reading it (.item()) makes the CPU wait for
        # the GPU, so it is read only every SYNC_EVERY steps and at the end of the epoch.
        total = torch.zeros((), dtype=torch.float64, device=device)
        seen, skipped = 0, []
        bar = progress_bar(train_loader, progress, desc=f"epoch {epoch + 1}/{config.epochs}",
                           leave=False)
        for step, (images, masks, bad) in enumerate(bar, start=1):
            skipped.extend(str(sample) for sample in bad)
            if images is None:
                continue
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            masks = masks.to(device, non_blocking=True)
            try:  # forward and backward: either may run out of GPU memory
                with autocast(device, config.amp):
                    loss = loss_fn(trained(images).float(), masks)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
            except torch.cuda.OutOfMemoryError as error:
                raise OutOfMemory(_out_of_memory_message(error, config.batch_size,
                                                         images.shape)) from error
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach().double() * len(images)
            seen += len(images)
            if step % SYNC_EVERY == 0:
                _check_finite(total, epoch, rate, last)
                bar.set_postfix(loss=f"{total.item() / seen:.4f}")
        _check_finite(total, epoch, rate, last)
        total = total.item()
        totals = distributed.all_sum(torch.tensor([total, seen], dtype=torch.float64), context)
        total, seen = totals[0].item(), int(totals[1].item())
        if seen == 0:
            raise BraTSDataError(getattr(train_data, "root", "training data"),
                                 f"no usable training sample: all {len(skipped)} were skipped, "
                                 f"e.g. {skipped[0] if skipped else 'none given'}")
        record = {"epoch": epoch + 1, "lr": rate, "train_loss": total / seen,
                  "skipped": skipped}
        scheduler.step()
        if val_data is not None:
            result = evaluate(model, val_data, threshold=config.threshold,
                              batch_size=config.batch_size, device=device, amp=config.amp,
                              context=context)
            record["val_loss"] = result.pop("loss")
            record["skipped"] += result.pop("skipped")
            record["val"] = result
        record["seconds"] = time.perf_counter() - started
        history.records.append(record)
        if progress:
            tqdm.write(_summary(record))
        elif summaries:
            print(_summary(record), flush=True)
        if checkpoint_dir is not None and context.is_main:
            is_best = val_data is not None and _mean_dice(record) > best
            if is_best:
                best, best_epoch = _mean_dice(record), epoch + 1
            state = dict(optimizer_state=optimizer.state_dict(),
                         scheduler_state=scheduler.state_dict(), scaler_state=scaler.state_dict(),
                         epoch=epoch + 1, history=history.records,
                         config=dataclasses.asdict(config), rng=_rng_state(generator),
                         best_epoch=best_epoch, resumed=resumed)
            if is_best:  # best first: a kill between the two writes loses neither
                save_checkpoint(checkpoint_dir / "best.pt", model, **state)
            save_checkpoint(last, model, **state)
    return history


def _check_finite(total: torch.Tensor, epoch: int, rate: float, last: Path | None) -> None:
    """Raise :class:`TrainingDiverged` if the summed loss is NaN or infinite (a NaN in any
    step makes the sum NaN, so checking the sum now and then misses none)."""
    if not torch.isfinite(total):
        raise TrainingDiverged(
            f"the loss became {total.item()} in epoch {epoch + 1}; lower the learning rate "
            f"(now {rate:.2g}: resume with --lr lower); the weights in memory are spoilt"
            + (f"; the last good state is in {last}" if last and last.exists() else ""))


def _mean_dice(record: dict) -> float:
    return float(np.mean(list(record["val"]["dice"].values()))) if "val" in record else -math.inf


def _summary(record: dict) -> str:
    text = f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}"
    if "val" in record:
        dice = ", ".join(f"{k} {v:.3f}" for k, v in record["val"]["dice"].items())
        text += f", val loss {record['val_loss']:.4f}, Dice {dice}"
    if record["skipped"]:
        text += f"; skipped {len(record['skipped'])} unusable file(s), first {record['skipped'][0]}"
    return text + f" ({record['seconds']:.0f} s)"


@torch.no_grad()
def _batches(model: nn.Module, data: Dataset | torch.Tensor, batch_size: int,
             device: torch.device, amp: bool):
    """Yield ``(logits float32 on CPU, masks or None, skipped)`` over ``data`` in eval mode.

    ``data`` is a dataset of (image, mask) samples or an image tensor (N, C, H, W).
    """
    model.to(device).eval()
    if isinstance(data, torch.Tensor):
        loader = ((images, None, []) for images in data.split(batch_size))
    else:
        loader = DataLoader(data, batch_size=batch_size, shuffle=False,
                            pin_memory=device.type == "cuda", collate_fn=collate_samples)
    for images, masks, skipped in loader:
        if images is None:
            yield None, None, skipped
            continue
        with autocast(device, amp):
            logits = model(images.to(device, non_blocking=True))
        yield logits.float().cpu(), masks, skipped


def evaluate(model: nn.Module, data: Dataset, threshold: float = 0.5, batch_size: int = 32,
             device: torch.device | str | None = None, amp: bool = True,
             context: distributed.Context | None = None) -> dict:
    """Mean BCE loss and Dice/precision/recall over all of ``data`` (counts summed first).

    Returns:
        ``{"loss": float, "dice": {name: float}, "precision": {...}, "recall": {...},
        "skipped": ["path: problem", ...]}`` with names NCR/NET, ED, ET and the regions WT, TC
        (see :mod:`unet_lib.metrics`); ``skipped`` lists unusable files left out. Under
        ``torchrun`` (``context`` from :func:`fit`) each process scores every ``world``-th
        sample and the counts are summed over processes.
    """
    device = pick_device("auto") if device is None else torch.device(device)
    context = context or distributed.Context()
    if context.active:
        data = Subset(data, range(context.rank, len(data), context.world))
    scores = SegmentationScores()
    loss_sum, seen, skipped = 0.0, 0, []
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    for logits, masks, bad in _batches(model, data, batch_size, device, amp):
        skipped.extend(str(sample) for sample in bad)
        if logits is None:
            continue
        loss_sum += loss_fn(logits, masks).item() / masks[0].numel()
        seen += len(masks)
        scores.update(binarize(logits, threshold, logits=True), masks)
    if context.active:
        for counts in scores.counts.values():
            distributed.all_sum(counts, context)
        loss_sum, seen = distributed.all_sum(
            torch.tensor([loss_sum, seen], dtype=torch.float64), context).tolist()
    return {"loss": loss_sum / max(seen, 1), **scores.compute(), "skipped": skipped}


def predict(model: nn.Module, data: Dataset | torch.Tensor, batch_size: int = 32,
            device: torch.device | str | None = None, amp: bool = True) -> torch.Tensor:
    """Probabilities (N, 3, H, W) float32 on the CPU for a dataset or an image tensor
    (N, 4, H, W). Binarize them with :func:`unet_lib.metrics.binarize`."""
    device = pick_device("auto") if device is None else torch.device(device)
    probabilities = []
    for logits, _, skipped in _batches(model, data, batch_size, device, amp):
        if skipped:  # a gap would shift every later prediction off its index
            raise BraTSDataError(skipped[0].path, f"cannot predict: {skipped[0].problem}")
        probabilities.append(torch.sigmoid(logits))
    return torch.cat(probabilities)


def threshold_sweep(model: nn.Module, data: Dataset, thresholds: Iterable[float],
                    batch_size: int = 32, device: torch.device | str | None = None,
                    amp: bool = True) -> dict[float, dict]:
    """Dice, precision and recall of ``model`` on ``data`` at several thresholds, in one pass
    (the probabilities are never all held in memory, so a real BraTS split is fine).

    Returns:
        ``{threshold: {"dice": {name: float}, "precision": {...}, "recall": {...}}}`` with the
        channel and region names of :class:`~unet_lib.metrics.SegmentationScores`.
    """
    device = pick_device("auto") if device is None else torch.device(device)
    scores = {float(t): SegmentationScores() for t in thresholds}
    for logits, masks, _ in _batches(model, data, batch_size, device, amp):
        if logits is None:
            continue
        for threshold, accumulator in scores.items():
            accumulator.update(binarize(logits, threshold, logits=True), masks)
    return {threshold: accumulator.compute() for threshold, accumulator in scores.items()}
