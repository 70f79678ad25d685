"""Saving and loading training state, atomically.

A checkpoint is one ``torch.save`` file holding a dict:

* ``format``: ``"unet_lib-checkpoint-1"``
* ``model_class`` and ``hparams``: enough to rebuild the architecture (:attr:`UNet.hparams`)
* ``model_state``; and, for resuming, ``optimizer_state``, ``scheduler_state``, ``scaler_state``,
  ``epoch`` (completed epochs), ``history``, ``config``, ``rng`` (CPU, CUDA, loader states)

Files are written to a temporary name and renamed, so a crash mid-write never leaves a
half-written checkpoint where the last good one was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .models import MODELS, UNet

FORMAT = "unet_lib-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


def save_checkpoint(path: str | Path, model: UNet, **state: Any) -> Path:
    """Atomically write ``model`` (and any extra ``state`` entries) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "model_class": type(model).__name__,
               "hparams": dict(model.hparams), "model_state": model.state_dict(), **state}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict, with a clear error for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # pickle/zip errors of many kinds on a damaged file
        raise CheckpointError(f"{path}: cannot be read as a checkpoint (truncated or "
                              f"corrupted?): {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a unet_lib checkpoint (no format {FORMAT!r})")
    return payload


def model_from_checkpoint(payload: dict) -> UNet:
    """Rebuild the model a checkpoint dict describes and load its weights."""
    cls = {cls.__name__: cls for cls in MODELS.values()}.get(payload["model_class"], UNet)
    model = UNet.__new__(cls)  # the named classes only set UNet's defaults: build as UNet
    UNet.__init__(model, **payload["hparams"])
    model.load_state_dict(payload["model_state"])
    return model


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> UNet:
    """The trained model saved in a checkpoint file, in eval mode."""
    return model_from_checkpoint(read_checkpoint(path, map_location)).eval()


def check_same_architecture(model: UNet, payload: dict, path: str | Path) -> None:
    """Raise :class:`CheckpointError` if ``payload`` was saved from another architecture."""
    saved, given = payload["hparams"], model.hparams
    if saved != given or payload["model_class"] != type(model).__name__:
        changed = ", ".join(f"{k}: {saved.get(k)!r} saved, {given.get(k)!r} given"
                            for k in given if saved.get(k) != given.get(k))
        raise CheckpointError(f"{path}: saved from {payload['model_class']}, which differs from "
                              f"the model given, {type(model).__name__}"
                              + (f" ({changed})" if changed else ""))
