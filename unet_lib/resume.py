"""Resuming a run: restoring its training state (:func:`resume_from`), the random states as
plain data, settings that may change and those that may not, the optimizer's state made this
run's own, and the repair of ``best.pt`` after a kill between the two checkpoint writes."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import torch

from . import runfolder
from .checkpoint import (CheckpointError, check_same_architecture, check_training_state,
                         read_checkpoint)
from .config import ConfigError, TrainConfig

#: settings a resumed run cannot change, with what each decides
RESUME_FIXED = {"base_filters": "the model's width", "image_size": "the data's size",
                "val_fraction": "the split", "test_fraction": "the split",
                "seed": "the split (and a phantom's data)", "optimizer": "the optimizer"}


@dataclasses.dataclass
class RunStart:
    """Where a run starts from: for a resumed run ``last.pt``'s history, the epochs done, the
    epoch ``best.pt`` holds, and the list of its earlier resumes with changed settings (kept
    in each checkpoint as ``resumed``); for a new run, nothing (:meth:`fresh`)."""

    history: list[dict]
    epochs_done: int
    best_epoch: int | None
    earlier_resumes: list[dict]

    @classmethod
    def fresh(cls) -> "RunStart":
        """A new run's start: no epoch done, no best epoch."""
        return cls(history=[], epochs_done=0, best_epoch=None, earlier_resumes=[])


def resume_from(last: Path, model, optimizer, scheduler, scaler, generator: torch.Generator,
                config: TrainConfig, trust_checkpoint: bool, report) -> RunStart:
    """Restore a run from its ``last.pt`` into the freshly made ``model``, ``optimizer``,
    ``scheduler``, gradient ``scaler`` and loader ``generator``; apply and report the settings
    of ``config`` that changed (a change of :data:`RESUME_FIXED` is refused). ``best.pt`` is
    mended apart, by the process that writes checkpoints (:func:`restore_best`).

    Raises:
        CheckpointError: ``last.pt`` cannot be read, is of another architecture, or its
            training state cannot be restored.
        ConfigError: a setting of :data:`RESUME_FIXED` changed.
    """
    # on the CPU: the random states go to NumPy; weights are copied onto the device
    state = read_checkpoint(last, map_location="cpu", trust_checkpoint=trust_checkpoint)
    check_training_state(state)
    check_same_architecture(model, state, last)
    changed = settings_changed_on_resume(state["config"], config, last)
    if not check_epochs_left(state["epoch"], config, last, report) and changed:
        report("the changed settings (" + ", ".join(changed) + ") apply to no epoch: the run "
               "and its record stay as they were")
        changed = {}
    try:
        getattr(model, "_orig_mod", model).load_state_dict(state["model_state"])  # compiled too
        optimizer.load_state_dict(state["optimizer_state"])
        align_optimizer_state(optimizer)  # fused or not, the layout: this run's
        scheduler.load_state_dict(state["scheduler_state"])
        if state["scaler_state"] and scaler.is_enabled():  # empty where scaling was off
            scaler.load_state_dict(state["scaler_state"])
        set_rng_state(state["rng"], generator)
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise CheckpointError(f"{last}: its training state cannot be restored: "
                              f"{' '.join(str(error).split())[:300]}") from None
    apply_resume_changes(changed, optimizer, scheduler, report)
    resumed = list(state.get("resumed", []))
    if changed:
        resumed.append({"after_epoch": state["epoch"],
                        "changed": {k: list(v) for k, v in changed.items()}})
    return RunStart(state["history"], state["epoch"], state.get("best_epoch"), resumed)


def rng_state(loader_generator: torch.Generator) -> dict:
    """Every random state training uses, as plain data (tensors, ints, floats, strings)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(position),
                       int(has_gauss), float(gauss)),
             "torch": torch.get_rng_state(), "loader": loader_generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # this process's GPU only: a run resumed where fewer GPUs are visible must restore it
        state["cuda"] = [torch.cuda.get_rng_state()]
    return state


def set_rng_state(state: dict, loader_generator: torch.Generator) -> None:
    """Put back what :func:`rng_state` saved: Python's, NumPy's, PyTorch's and this process's
    GPU's random states, and ``loader_generator``'s (the order of the batches), so that a
    resumed run draws what the uninterrupted one would have."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    keys = torch.as_tensor(keys).cpu().numpy()  # a checkpoint read onto a GPU has them there
    np.random.set_state((name, keys.astype(np.int64).astype(np.uint32), position,
                         has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    loader_generator.set_state(state["loader"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        # the state of this process's GPU (older checkpoints hold every visible GPU's: the
        # first was the one trained on)
        torch.cuda.set_rng_state(state["cuda"][0].cpu())


def settings_changed_on_resume(saved: dict, config: TrainConfig, path: Path) -> dict:
    """The settings of ``config`` that differ from the ``saved`` run's, as
    ``{field: (saved, now)}``.

    Raises:
        ConfigError: a setting of :data:`RESUME_FIXED` differs: it would change the data, the
            split, the model's width or the optimizer under a half-trained model.
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
    for field, decides in RESUME_FIXED.items():
        if field in changed:
            before, value = changed[field]
            raise ConfigError(field, f"cannot change from {before!r} to {value!r} when resuming "
                                     f"{path}: it decides {decides}. Resume without the "
                                     f"change, or start a new run in another folder")
    return changed


def check_epochs_left(done: int, config: TrainConfig, path: Path, report) -> int:
    """Refuse a resumed run whose ``epochs`` is below the ``done`` epochs of ``path`` (the
    record would say fewer epochs than the model has had), and say so when none is left;
    returns the epochs left."""
    if config.epochs < done:
        raise ConfigError("epochs", f"is {config.epochs}, but {path} has trained {done} epochs "
                                    f"already; resume with {done} or more")
    if config.epochs == done:
        report(f"{path}: all {done} epochs are trained already, nothing to do; resume with "
               f"more epochs to train on")
    return config.epochs - done


def align_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Make a state loaded with ``optimizer.load_state_dict`` this run's own.

    A loaded state brings the saving run's choices: its fused/foreach flags (a checkpoint
    written on a GPU says fused, one written on a CPU does not) and the memory layout of its
    moments (channels_last on a GPU). Resumed elsewhere, a fused CPU update would pair moments
    and parameters of different layouts value by value, wrongly and silently, and CUDA's
    refuses them. Here the flags go back to the ones this optimizer was made with, the moments
    take their parameter's layout and device, and the step counters go where the update
    expects them (on the parameter's device when fused, else on the CPU). The same values.
    """
    for group in optimizer.param_groups:
        for flag in ("fused", "foreach", "capturable"):
            if flag in optimizer.defaults:
                group[flag] = optimizer.defaults[flag]
        on_device = bool(group.get("fused") or group.get("capturable"))
        for parameter in group["params"]:
            state = optimizer.state.get(parameter, {})
            for key, value in state.items():
                if not isinstance(value, torch.Tensor):
                    continue
                if key == "step":
                    state[key] = value.to(parameter.device if on_device else "cpu",
                                          torch.float32)
                elif value.shape == parameter.shape:
                    state[key] = torch.empty_like(parameter).copy_(value)


def apply_resume_changes(changed: dict, optimizer, scheduler, report) -> None:
    """Put changed rates into the restored optimizer and scheduler, and say what changed. A
    new ``lr`` is the next epoch's rate: the message sets it beside the rate the run had
    scheduled for that epoch (its start decayed so far), which the change replaces."""
    scheduled = optimizer.param_groups[0]["lr"] if optimizer.param_groups else None
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
               + (_next_rate(scheduled, changed["lr"][1]) if "lr" in changed else ""))


def _next_rate(scheduled: float | None, now: float) -> str:
    """What a new ``lr`` does to the next epoch, beside the rate the run had scheduled."""
    if scheduled is None:
        return " (the learning rate of the next epoch, decayed from there)"
    return (f" (the next epoch's learning rate: {now:.3g}, where the run had scheduled "
            f"{scheduled:.3g}; decayed from there"
            + ("; a higher rate than scheduled" if now > scheduled * (1 + 1e-9) else "") + ")")


def restore_best(last: Path, best_epoch: int | None, epochs_done: int, report) -> None:
    """Make ``best.pt`` hold the epoch ``last.pt`` says it does (``best_epoch``; ``last.pt``
    holds epoch ``epochs_done``), when a kill came between
    writing the two (``best.pt`` is written first): a missing copy of ``last.pt``'s own epoch
    is restored from it (also over a ``best.pt`` of the next epoch, which the resumed run
    trains again). A ``best.pt`` one epoch ahead of ``last.pt`` whose best is an earlier epoch
    is left, and said so: the resumed run replaces it if that epoch beats the best again."""
    best = last.with_name("best.pt")
    if best_epoch is None:
        return
    try:
        held = read_checkpoint(best)["epoch"] if best.is_file() else None
    except CheckpointError:
        held = None
    if held == best_epoch:
        return
    if best_epoch == epochs_done:
        runfolder.write_bytes_atomic(best, last.read_bytes())
        report(f"restored {best} (epoch {best_epoch}) from {last}")
    elif held is None:
        report(f"{best} is missing or unreadable; it will be written again when an epoch "
               f"beats epoch {best_epoch}'s validation Dice")
    elif held > epochs_done:
        report(f"{best} holds epoch {held}, saved just before the run stopped; this run trains "
               f"epoch {held} again and replaces it if that epoch beats epoch {best_epoch}")
