"""Saving and loading training state: atomically, and without running code from the file.

A checkpoint is one ``torch.save`` file holding a dict of **plain data only** — tensors,
numbers, strings, ``None``, and lists, tuples and dicts of those:

* ``format``: ``"unet_lib-checkpoint-2"``
* ``model_class`` (the preset's name, e.g. ``"classic"``) and ``hparams``: the architecture,
  rebuilt as ``UNet(**hparams)``
* ``model_state``; and, for resuming, ``optimizer_state``, ``scheduler_state``, ``scaler_state``,
  ``epoch`` (completed epochs), ``history``, ``config`` (a dict), ``rng`` (tensors and ints),
  ``best_epoch`` (the epoch ``best.pt`` holds) and ``resumed`` (settings changed on resume)

Loading uses ``torch.load(weights_only=True)``, which refuses any other Python object: a
pickle can name any function to call while it loads, so a checkpoint that needs one could run
code on the machine that opens it. Teaching labs pass checkpoints around; opening one must be
safe. Checkpoints of unet_lib 0.1 stored the NumPy RNG state as an array and are refused with
a message that says so; ``trust_checkpoint=True`` (``--trust-checkpoint``) opens one's *own*
old files with full pickle loading, which runs whatever code such a file holds.

Files are written to a temporary name and renamed, so a crash mid-write never leaves a
half-written checkpoint where the last good one was.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import runfolder
from .config import ConfigError
from .models import UNet, preset_of
from .runtime import resolve_device

FORMAT = "unet_lib-checkpoint-2"
#: formats this version reads; version 1 only with ``trust_checkpoint=True`` (NumPy objects)
KNOWN_FORMATS = ("unet_lib-checkpoint-1", FORMAT)
#: what a checkpoint must hold to resume training from it
TRAINING_KEYS = ("optimizer_state", "scheduler_state", "scaler_state", "epoch", "history",
                 "config", "rng")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, read-only folder); the one written
    before it, if any, is intact."""


def plain(value: Any, where: str = "checkpoint") -> Any:
    """``value`` as plain data that ``torch.load(weights_only=True)`` reads back.

    Tensors, ``None``, bools, ints, floats and strings stay; NumPy scalars become Python
    numbers, NumPy arrays tensors, paths strings; dicts, lists and tuples are converted item
    by item. Anything else raises ``TypeError`` naming where it was found.
    """
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, dict):
        return {key: plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored in a checkpoint "
                    f"(only tensors, numbers, strings, lists, tuples and dicts)")


def save_checkpoint(path: str | Path, model: UNet, **state: Any) -> Path:
    """Atomically write ``model`` (and any extra ``state`` entries, plain data) to ``path``.

    ``model_class`` records the model's preset name (``"classic"``, ``"improved"``,
    ``"attention"`` or ``"custom"``, :attr:`UNet.preset_name`) for messages; ``hparams``
    alone rebuild it.

    Raises:
        CheckpointWriteError: the file could not be written (the message says why: a full
            disk, a read-only folder); the checkpoint that was at ``path`` is untouched.
    """
    return write_checkpoint(path, checkpoint_payload(model, **state))


def check_checkpointable(model) -> None:
    """Refuse, before any training, a model that a checkpoint file cannot rebuild: one built
    by :func:`unet_lib.models.build_model` (or any :class:`UNet`) can be.

    Raises:
        TypeError: naming the model's class and what to do instead.
    """
    if not (hasattr(model, "preset_name") and hasattr(model, "hparams")):
        raise TypeError(f"checkpoint_dir: checkpoints hold this library's U-Nets (built by "
                        f"unet_lib.models.build_model), not a {type(model).__name__}; train it "
                        f"with checkpoint_dir=None and save its state_dict() yourself")


def checkpoint_payload(model: UNet, **state: Any) -> dict:
    """The dict a checkpoint file holds: ``format``, ``model_class``, ``hparams``,
    ``model_state`` and ``state``, as plain data (:func:`plain`). Its tensors are the model's
    own, not copies. A compiled model is saved as the U-Net it wraps (no ``_orig_mod.``)."""
    model = getattr(model, "_orig_mod", model)
    return plain({"format": FORMAT, "model_class": model.preset_name,
                  "hparams": dict(model.hparams), "model_state": model.state_dict(), **state})


def serialized_checkpoint(payload: dict) -> memoryview:
    """``payload`` (:func:`checkpoint_payload`) as the bytes of a checkpoint file, as
    ``torch.save`` writes them: into memory, never into the file itself. A save cut short (a
    Ctrl-C at the wrong moment) leaves a zip writer that finishes its file when it is
    collected; one whose file was closed by then aborts the interpreter ("write to closed
    file"). An error here is the payload's, not the disk's: it is raised as it is."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getbuffer()


def write_checkpoint(path: str | Path, payload: dict | memoryview) -> Path:
    """Atomically write ``payload`` to ``path``: a temporary file in the same folder, flushed
    to the disk, then renamed over ``path``.

    Args:
        payload: a :func:`checkpoint_payload` dict, or the bytes :func:`serialized_checkpoint`
            made of one (written as they are: ``best.pt`` and ``last.pt`` share them).

    Raises:
        CheckpointWriteError: as :func:`save_checkpoint`.
    """
    path = Path(path)
    data = serialized_checkpoint(payload) if isinstance(payload, dict) else payload
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        runfolder.write_bytes_atomic(path, data)  # a Ctrl-C leaves no temporary either
    except OSError as error:
        raise CheckpointWriteError(runfolder.write_failure(path, error)) from error
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    trust_checkpoint: bool = False) -> dict:
    """Load a checkpoint dict, refusing any file that would need code to load.

    Args:
        path: a ``.pt`` file written by :func:`save_checkpoint`.
        map_location: where the tensors go: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``,
            ``"mps"``, ``"auto"`` (as ``device="auto"`` picks) or a ``torch.device``.
        trust_checkpoint: load with full pickle support (``weights_only=False``), for *your
            own* checkpoints of unet_lib 0.1. A pickle can run any code while it loads: never pass
            ``True`` for a file someone else gave you.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: naming the file: damaged, not a unet_lib checkpoint, malformed, or
            holding Python objects (which could run code) and ``trust_checkpoint`` is not given.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: is a folder, not a checkpoint file"
                                + ("; its model is in best.pt (the best validation epoch) or "
                                   "last.pt" if (path / "last.pt").is_file() else ""))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise CheckpointError(f"{path}: cannot be read as a checkpoint: not the zip archive "
                              f"torch.save writes (truncated or damaged, or another kind of "
                              f"file)")
    if isinstance(map_location, (str, torch.device)):  # else torch.load blames the file
        map_location = _device_named("map_location", map_location)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as error:
        if "weights_only" not in str(error) and "Weights only" not in str(error):
            raise CheckpointError(f"{path}: cannot be read as a checkpoint (truncated or "
                                  f"corrupted?): {_first_line(error)}") from error
        culprit = re.search(r"GLOBAL ([\w.]+)", str(error))
        raise CheckpointError(
            f"{path}: refused: it holds Python objects"
            + (f" ({culprit[1]})" if culprit else "")
            + ", not only tensors and plain data, and loading them could run code. unet_lib "
              "0.2 and later never write such files. If this is your own checkpoint from "
              "unet_lib 0.1, open it with trust_checkpoint=True (--trust-checkpoint), which "
              "runs any code the file holds") from None
    except Exception as error:  # zip/EOF errors of many kinds on a damaged file
        raise CheckpointError(f"{path}: cannot be read as a checkpoint (truncated or "
                              f"corrupted?): {_first_line(error)}") from error
    if not isinstance(payload, dict) or payload.get("format") not in KNOWN_FORMATS:
        raise CheckpointError(f"{path}: not a unet_lib checkpoint (no format {FORMAT!r})")
    problems = [f"no {key!r}" for key in ("model_class", "hparams", "model_state")
                if key not in payload]
    if not problems and not isinstance(payload["hparams"], dict):
        problems.append("'hparams' is not a dict")
    if not problems and not isinstance(payload["model_state"], dict):
        problems.append("'model_state' is not a dict of tensors")
    if problems:
        raise CheckpointError(f"{path}: malformed checkpoint: {', '.join(problems)}")
    payload["path"] = str(path)
    return payload


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_training_state(payload: dict) -> None:
    """Raise :class:`CheckpointError` unless ``payload`` holds what resuming needs."""
    missing = [key for key in TRAINING_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{payload.get('path', 'checkpoint')}: holds a model but not "
                              f"the training state to resume from (no {', '.join(missing)}); "
                              f"it can be evaluated, not resumed")


def model_from_checkpoint(payload: dict) -> UNet:
    """Rebuild the model a checkpoint dict describes, ``UNet(**payload["hparams"])``, and load
    its weights, on the device they were read onto. ``model.trained_image_size`` and
    ``model.trained_threshold`` are the run's ``image_size`` and ``threshold`` (``None`` where
    the checkpoint does not say): scoring warns, or resizes, at another size, and binarizes at
    that threshold unless told another.

    Raises:
        CheckpointError: naming the file, when its hyper-parameters or weights do not fit
            a :class:`UNet`.
    """
    where = payload.get("path", "checkpoint")
    weights = next(iter(payload["model_state"].values()), None)
    try:  # built where its weights were read onto: no copy there and back
        with torch.device(weights.device if isinstance(weights, torch.Tensor) else "cpu"):
            model = UNet(**payload["hparams"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: its hparams {payload['hparams']} do not build a "
                              f"U-Net: {error}") from None
    try:
        model.load_state_dict(payload["model_state"])
    except (RuntimeError, TypeError, AttributeError) as error:
        detail = " ".join(str(error).split())[:300]
        raise CheckpointError(f"{where}: its weights do not fit the {model.preset_name} U-Net "
                              f"its hparams describe: {detail}") from None
    config = payload.get("config") or {}
    model.trained_image_size, model.trained_threshold = map(config.get, ("image_size", "threshold"))
    return model


#: load_model's default device; any other object passed as ``device`` counts as given
_CPU = torch.device("cpu")


def load_model(path: str | Path, device: str | torch.device = _CPU,
               trust_checkpoint: bool = False, *,
               map_location: str | torch.device | None = None) -> UNet:
    """The trained model saved in a checkpoint file, in eval mode, on ``device`` (``"cpu"``,
    ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` or a ``torch.device``). ``map_location``,
    :func:`torch.load`'s name, is taken for ``device``; torch.load's mappings (a dict, a
    function) are :func:`read_checkpoint`'s. See it for ``trust_checkpoint``."""
    name = "device"
    if map_location is not None:
        if device is not _CPU:
            raise ConfigError("map_location", f"{map_location!r} and device={device!r} both "
                                              f"given: give one (they name the same thing)")
        if not isinstance(map_location, (str, torch.device)):
            raise TypeError(f"map_location: load_model puts the model on one device, not "
                            f"{map_location!r}; read_checkpoint(path, map_location) takes "
                            f"torch.load's mappings")
        name, device = "map_location", map_location
    device = _device_named(name, device)  # checked before the file is read
    state = read_checkpoint(path, "cpu", trust_checkpoint=trust_checkpoint)  # a last.pt's
    return model_from_checkpoint(state).to(device).eval()  # optimizer state stays on the CPU


def _device_named(argument: str, device: str | torch.device) -> torch.device:
    """``device`` resolved as every ``device=`` is (``"auto"`` included), or a
    :class:`ConfigError` naming ``argument`` (before torch.load could blame the file)."""
    try:
        return resolve_device(device)
    except ConfigError as problem:
        raise ConfigError(argument, problem.problem) from None


def check_same_architecture(model: UNet, payload: dict, path: str | Path) -> None:
    """Raise :class:`CheckpointError` if ``payload`` was saved from another architecture.

    The hyper-parameters decide; the message names both presets and every argument that
    differs, e.g. ``last.pt: saved from the classic U-Net, which differs from the model
    given, the attention U-Net (attention: False saved, True given)``.
    """
    saved, given = payload["hparams"], model.hparams
    if saved != given:
        changed = ", ".join(f"{k}: {saved.get(k)!r} saved, {given.get(k)!r} given"
                            for k in [*given, *(k for k in saved if k not in given)]
                            if saved.get(k) != given.get(k))
        raise CheckpointError(f"{path}: saved from the {preset_of(saved)} U-Net, which differs "
                              f"from the model given, the {model.preset_name} U-Net"
                              + (f" ({changed})" if changed else ""))
