"""Training with the slides' settings: :func:`fit` and its per-epoch :class:`History`.

>>> config = TrainConfig()                    # 20 epochs, AdamW(2e-3, wd 1e-2), γ=0.9, batch 32
>>> history = fit(model, train_set, val_set, config, checkpoint_dir="runs/classic")
>>> best = load_model("runs/classic/best.pt")  # unet_lib.checkpoint; fit leaves the last epoch
>>> evaluate(best, val_set)["dice"]  # {"NCR/NET": .., "ED": .., "ET": .., "WT": .., "TC": ..}

``fit`` picks the device (CUDA, then Apple MPS, else CPU), uses mixed precision on CUDA, shows
a tqdm bar, records a per-epoch history, writes ``best.pt`` (the best mean validation Dice over
WT, TC, ET) and ``last.pt`` after every epoch and resumes from ``last.pt`` with ``resume=True``.
The settings live in :mod:`unet_lib.config`, the device and precision in
:mod:`unet_lib.runtime`, scoring in :mod:`unet_lib.inference`, resuming in
:mod:`unet_lib.resume`; their main names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from . import distributed, runfolder
from .checkpoint import check_checkpointable
from .checkpoint_writer import CheckpointWriter
from .config import ConfigError, TrainConfig
from .data.samples import BraTSDataError, announce_skipped
from .failures import OutOfMemory, TrainingDiverged, check_finite
from .history import History
from .inference import evaluate, predict, threshold_sweep
from .losses import make_loss
from .metrics import regions_mean_dice
from .progress import epoch_line, progress_bar, write_history, write_line
from .resume import RESUME_FIXED, RunStart, restore_best, resume_from, rng_state
from .runtime import (autocast_dtype, compile_model, cudnn_autotuning, memory_format,
                      pick_device, seed_everything, tally_device)
from .sampling import held_as_configured, make_train_loader, sized_as_data
from .schedule import decay_after_epoch, make_optimizer, make_scheduler, warm_up
from .training_step import RunningLoss, TrainingParts, batch_on_device, train_step

#: training steps between two reads of the running loss (each read waits for the GPU)
SYNC_EVERY = 25

__all__ = ["ConfigError", "History", "OutOfMemory", "RESUME_FIXED", "SYNC_EVERY", "TrainConfig",
           "TrainingDiverged", "evaluate", "fit", "make_loss", "make_optimizer", "pick_device",
           "predict", "seed_everything", "threshold_sweep"]


def fit(model: nn.Module, train_data: Dataset, val_data: Dataset | None = None,
        config: TrainConfig | None = None, checkpoint_dir: str | Path | None = None,
        resume: bool = False, progress: bool | str = True,
        trust_checkpoint: bool = False, overwrite: bool = False) -> History:
    """Train ``model`` on ``train_data`` with the loss, optimizer and learning-rate schedule of
    ``config``: by default the slides', BCE-with-logits, AdamW at 2e-3 with weight decay 1e-2
    (on every parameter), the rate multiplied by 0.9 after every epoch
    (:mod:`unet_lib.schedule`).

    Args:
        model: maps (N, 4, H, W) to (N, 3, H, W) logits; trained in place. Under ``torchrun``
            on GPUs its ``BatchNorm2d`` layers are ``SyncBatchNorm`` while it trains
            (:mod:`unet_lib.distributed`), and plain again when ``fit`` returns.
        train_data, val_data: datasets of ``(image (4, H, W), mask (3, H, W))`` float tensors.
        config: :class:`TrainConfig`; the slides' defaults when ``None``. Checked before any
            work (:meth:`TrainConfig.validate`).
        checkpoint_dir: where to write ``best.pt`` (the best mean validation Dice over WT, TC
            and ET so far; on a tie the earlier epoch stays), then ``last.pt`` and
            ``history.csv`` (the epochs so far, see :func:`unet_lib.progress.history_csv`)
            after each epoch. The folder is locked while training
            (:func:`unet_lib.runfolder.claim`): a second run on it is refused, and so is a new
            run where a file of :data:`~unet_lib.runfolder.RUN_OUTPUTS` is.
        resume: continue from ``checkpoint_dir/last.pt`` (same architecture; without it, a new
            run). Changed rates, epochs, batch size, threshold or loss weights are applied and
            printed; a change of :data:`RESUME_FIXED` (data, split, model width, optimizer) is
            refused.
        progress: ``True``: a tqdm bar per epoch (in a terminal or notebook) and a summary line
            after each; ``"epochs"``: only the summary lines, printed (light enough for a
            notebook run by CI, where thousands of widget updates would be dropped);
            ``False``: nothing.
        trust_checkpoint: resume from a checkpoint of unet_lib 0.1 (see
            :func:`unet_lib.checkpoint.read_checkpoint`: this runs any code the file holds).
        overwrite: a new run deletes the files of :data:`~unet_lib.runfolder.RUN_OUTPUTS`
            it finds (an earlier run's, or of the same names) first.

    Returns:
        The :class:`History`, including epochs from a resumed run. ``model`` is left with the
        last epoch's weights, in training mode, on the device it trained on (channels_last
        where that was used: :func:`~unet_lib.runtime.memory_format`); the best epoch's are in
        ``best.pt``. Call ``model.cpu()`` before giving it CPU tensors.

    Raises:
        ConfigError: a setting out of range, or changed on resume where it cannot be (fewer
            ``epochs`` than ``last.pt`` has trained, a change of :data:`RESUME_FIXED`).
        ValueError: ``train_data`` or ``val_data`` holds no sample; ``resume`` without
            ``checkpoint_dir``; ``progress`` none of its three values.
        TypeError: ``checkpoint_dir`` given for a model a checkpoint cannot rebuild.
        CheckpointError: ``resume`` finds a ``last.pt`` that cannot be read.
        BraTSDataError: an epoch had no usable sample to train on, or to score.
        TrainingDiverged: the loss became NaN/inf (``last.pt`` keeps the last good epoch).
        OutOfMemory: the GPU's memory ran out (the message says what to lower).
        CheckpointWriteError: a checkpoint could not be written (a full disk).
        RunFolderBusy: another process trains into ``checkpoint_dir``.
        FileExistsError: a new run without ``overwrite`` finds a file of ``RUN_OUTPUTS``, or
            any run a folder of such a name.
    """
    config = (config or TrainConfig()).validate()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True continues checkpoint_dir/last.pt: give checkpoint_dir")
    if not (isinstance(progress, bool) or progress == "epochs"):
        raise ValueError(f"progress must be True, False or 'epochs', got {progress!r}")
    for name, data in (("train_data", train_data), ("val_data", val_data)):
        if data is not None and len(data) == 0:  # before an epoch's work, not after it
            raise ValueError(f"{name} holds no sample")
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    if folder is not None:
        check_checkpointable(model)  # before an epoch's work, not after it
    try:
        # on a GPU cuDNN times its algorithms once per shape; the setting is put back after
        with cudnn_autotuning(pick_device(config.device)):
            # rank 0 alone writes checkpoints and holds the folder
            if folder is None or not distributed.is_main_process():
                return _fit(model, train_data, val_data, config, folder, resume, progress,
                            trust_checkpoint)
            with runfolder.claim(folder) as folder:
                if runfolder.is_fresh(folder, resume):
                    runfolder.make_room(folder, runfolder.RUN_OUTPUTS, overwrite)
                return _fit(model, train_data, val_data, config, folder, resume, progress,
                            trust_checkpoint)
    except BaseException:
        distributed.note_failure()  # other processes may wait for this one: no clean exit
        raise
    finally:  # trained under torchrun on GPUs with SyncBatchNorm: returned as it came
        distributed.plain_batch_norm(model)


def _fit(model: nn.Module, train_data: Dataset, val_data: Dataset | None, config: TrainConfig,
         checkpoint_dir: Path | None, resume: bool, progress: bool | str,
         trust_checkpoint: bool) -> History:
    device = pick_device(config.device)
    context = distributed.setup(device.type)
    distributed.check_batch_splits_evenly(config.batch_size, context)  # before any data is read
    device = distributed.local_device(device)
    layout = memory_format(config.channels_last, device)
    model.to(device, memory_format=layout)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    amp_dtype = autocast_dtype(device, config.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(config.seed)  # the order of the batches
    last = checkpoint_dir / "last.pt" if checkpoint_dir else None
    summaries = bool(progress) and context.is_main
    report = print if summaries else (lambda *args, **kwargs: None)
    config = sized_as_data(config, train_data, report)  # what the checkpoints record
    model.trained_image_size = config.image_size  # a loaded model fine-tuned at another size
    model.trained_threshold = config.threshold  # what evaluate() defaults to from now on
    if context.active:
        report(f"torchrun: {context.world} processes, each training on "
               f"{config.batch_size // context.world} of every {config.batch_size} images"
               + ("; batch norm synchronized over all" if device.type == "cuda" else ""))
    start = RunStart.fresh()
    if resume and last is not None and last.exists():
        start = resume_from(last, model, optimizer, scheduler, scaler, generator, config,
                           trust_checkpoint, report)
        if context.is_main:  # the process that writes checkpoints
            restore_best(last, start.best_epoch, start.epochs_done, report)
    history, best_epoch = History(start.history), start.best_epoch

    train_data, val_data = held_as_configured(train_data, val_data, config, device, report,
                                              context)
    # what computes the loss: the model, or under torchrun its DDP wrapper (synced batch norm)
    trained = distributed.wrap(model, context, device)
    if config.compile:
        trained = compile_model(trained)
    steps = TrainingParts(trained, make_loss(config, device), optimizer, scaler, config, device,
                          layout, context,
                          make_train_loader(train_data, config, device, generator, context))
    show_bar = progress is True and context.is_main
    scoring_loss = make_loss(config, tally_device(device))  # where evaluate() adds up losses
    best = (_best_pt_score(history.records[best_epoch - 1]) if best_epoch  # best.pt's, on resume
            else max((_best_pt_score(r) for r in history.records), default=-math.inf))
    # on a GPU checkpoints are written by a thread of their own while the next epoch trains
    with CheckpointWriter(background=device.type == "cuda") as writer:
        for epoch in range(start.epochs_done, config.epochs):
            started = time.perf_counter()
            rate = optimizer.param_groups[0]["lr"]
            model.train()
            train_loss, skipped = _train_epoch(steps, epoch, rate, last, writer, show_bar)
            if train_loss is None:
                raise BraTSDataError(getattr(train_data, "root", "training data"),
                                     f"no usable training sample: all {len(skipped)} were skipped, "
                                     f"e.g. {skipped[0] if skipped else 'none given'}")
            record = {"epoch": epoch + 1, "lr": rate, "loss": config.loss,
                      "train_loss": train_loss, "skipped": skipped}
            decay_after_epoch(optimizer, scheduler, rate)
            if val_data is not None:
                validation = _validate(model, val_data, steps, scoring_loss)
                record["skipped"] += validation.pop("skipped")
                record.update(validation)
            record["skipped"] = distributed.gathered(record["skipped"], context)
            record["seconds"] = time.perf_counter() - started
            history.records.append(record)
            if summaries:
                write_line(epoch_line(record), bar=show_bar)
            if checkpoint_dir is not None and context.is_main:
                is_best = val_data is not None and _best_pt_score(record) > best
                if is_best:
                    best, best_epoch = _best_pt_score(record), epoch + 1
                state = dict(optimizer_state=optimizer.state_dict(),
                             scheduler_state=scheduler.state_dict(),
                             scaler_state=scaler.state_dict(), rng=rng_state(generator),
                             epoch=epoch + 1, history=history.records,
                             config=dataclasses.asdict(config), best_epoch=best_epoch,
                             resumed=start.earlier_resumes)  # resume_from() reads it back
                # best first: a kill between the two writes loses neither
                writer.save([checkpoint_dir / "best.pt", last] if is_best else [last], model,
                            **state)
                write_history(checkpoint_dir, history.records)
    return history


def _train_epoch(steps: TrainingParts, epoch: int, rate: float, last: Path | None,
                 writer: CheckpointWriter, show_bar: bool) -> tuple[float | None, list[str]]:
    """Train one epoch (0-based ``epoch``) at ``rate``, with a tqdm bar if ``show_bar``; returns
    the mean training loss over every process's usable images (``None`` if none) and the files
    this process skipped. A loss that is not finite stops the run (``check_finite``)."""
    config, context, optimizer = steps.config, steps.context, steps.optimizer
    bar = progress_bar(steps.loader, show_bar, desc=f"epoch {epoch + 1}/{config.epochs}",
                       leave=False)
    # The running loss stays on the device: reading it (.item()) makes the CPU wait for
    # the GPU, so it is read only every SYNC_EVERY steps and at the end of the epoch.
    running = RunningLoss(steps.device)
    seen, skipped = 0, []
    for step, (images, masks, bad) in enumerate(bar, start=1):
        skipped.extend(str(sample) for sample in announce_skipped(bad))
        if images is None and not context.active:
            continue  # every file of the batch unusable
        images, masks, weight = batch_on_device(steps, images, masks)
        if epoch < config.warmup_epochs:  # linear warm-up, step by step
            warm_up(optimizer, rate, epoch * len(steps.loader) + step,
                    config.warmup_epochs * len(steps.loader))
        loss = train_step(steps, images, masks, weight)
        running.add(loss, len(images))
        seen += len(images) if weight else 0
        if step % SYNC_EVERY == 0:
            total = running.read()
            check_finite(total, epoch, rate, last, writer, context)
            bar.set_postfix(loss=f"{total.item() / max(seen, 1):.4f}")
    total = running.read()
    check_finite(total, epoch, rate, last, writer, context)
    # summed over processes on the device (NCCL sums GPU tensors only), then read once
    totals = torch.stack([total, torch.full((), seen, dtype=torch.float64, device=total.device)])
    total, seen = distributed.all_sum(totals, context).tolist()
    return (total / seen if seen else None), skipped


def _validate(model: nn.Module, val_data: Dataset, steps: TrainingParts, loss_fn: nn.Module
              ) -> dict:
    """The epoch's validation entries: ``val_loss``, ``val`` (``{"dice"|"precision"|"recall":
    {name: value}}`` at ``config.threshold``) and ``skipped`` (unusable files). Under torchrun
    every process scores its share, with rank 0's batch-norm statistics."""
    config, context = steps.config, steps.context
    distributed.broadcast_buffers(model, context)  # score the model rank 0 saves
    result = evaluate(model, val_data, config.threshold, loss_fn=loss_fn,
                      batch_size=config.batch_size // context.world, device=steps.device,
                      amp=config.amp, context=context, num_workers=config.num_workers)
    return {"val_loss": result.pop("loss"), "skipped": result.pop("skipped"), "val": result}


def _best_pt_score(record: dict) -> float:
    """What ``best.pt`` is chosen on: the epoch's mean validation Dice over WT, TC, ET (an
    epoch replaces it only by scoring strictly higher: on a tie the earlier epoch stays)."""
    return regions_mean_dice(record["val"]["dice"]) if "val" in record else -math.inf



