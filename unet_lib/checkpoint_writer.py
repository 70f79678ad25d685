"""Writing checkpoints in the background while training goes on.

On a GPU an epoch of the Classic U-Net's full configuration takes 0.9 s (one H200,
``benchmarks/h200-2026-11-27-session/``), and writing its 93 MB checkpoint (weights and AdamW's
moments) took about 0.3 s on this project's build machine, twice when the epoch is a new best:
written in turn, the checkpoints would take a quarter of the run. :class:`CheckpointWriter`
copies what is to be written at once (to the CPU: the training steps that follow may change the
weights) and writes it in a thread of its own, in the order given, atomically as
:func:`~unet_lib.checkpoint.save_checkpoint` does.

    >>> with CheckpointWriter() as writer:          # doctest: +SKIP
    ...     for epoch in range(epochs):
    ...         train_one_epoch()
    ...         writer.save(folder / "last.pt", model, epoch=epoch + 1)
    # leaving the block waits for every write; a failed write raises CheckpointWriteError
"""

from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import torch

from . import checkpoint
from .models import UNet

#: writes queued at most; a further save() waits for the oldest (bounds the memory of copies)
MAX_PENDING = 2


def _write_each(paths: list[str | Path], payload: dict) -> None:
    """Write ``payload`` to each of ``paths``, in order (a failure stops the rest), serialized
    once for all of them."""
    data = checkpoint.serialized_checkpoint(payload)
    for path in paths:
        checkpoint.write_checkpoint(path, data)


def snapshot(value: Any) -> Any:
    """``value`` with every tensor copied to the CPU and every dict, list and tuple rebuilt:
    nothing the caller changes later reaches it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(item) for item in value)
    return value


class CheckpointWriter:
    """Writes checkpoints in one background thread, in the order :meth:`save` is called
    (with ``background=False`` at once, in the caller's thread: ``fit()`` does so on every
    device but a CUDA GPU; on a CPU, whose cores the training needs, a writing thread made the
    epochs 1.6 times as long on 2 cores).

    A write that failed raises its :class:`~unet_lib.checkpoint.CheckpointWriteError` at the
    next :meth:`save`, :meth:`wait` or when the ``with`` block ends; the file it was to replace
    is intact. Leaving the block waits for the queued writes, also when an exception leaves it
    (that exception then goes on, not masked by a write's).
    """

    def __init__(self, background: bool = True) -> None:
        self.background = background
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        self._pending: list[Future] = []

    def save(self, paths: str | Path | Sequence[str | Path], model: UNet, **state: Any) -> None:
        """Queue ``model`` and ``state`` (as :func:`~unet_lib.checkpoint.save_checkpoint`
        takes them) for each of ``paths`` in turn (``[best.pt, last.pt]``: one copy for both),
        copied now; without ``background``, write them now."""
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        self._collect(keep=MAX_PENDING - 1)
        if not self.background:
            _write_each(paths, checkpoint.checkpoint_payload(model, **state))
            return
        payload = snapshot(checkpoint.checkpoint_payload(model, **state))
        self._pending.append(self._thread.submit(_write_each, paths, payload))

    def wait(self) -> None:
        """Block until every queued write has landed; raise the first that failed."""
        self._collect(keep=0)

    def _collect(self, keep: int) -> None:
        """Wait until at most ``keep`` writes are queued; raise the first failure found."""
        while self._pending and (len(self._pending) > keep or self._pending[0].done()):
            self._pending.pop(0).result()  # re-raises the write's error

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is None:
                self.wait()
            else:  # the exception that left the block goes on; the writes still land
                for future in self._pending:
                    if future.exception() is not None:  # not lost without a word
                        warnings.warn(str(future.exception()), RuntimeWarning, stacklevel=2)
        finally:
            self._thread.shutdown(wait=True)
