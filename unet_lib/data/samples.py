"""What the datasets yield when a file cannot be used, and how batches leave it out.

A dataset with ``on_error="skip"`` returns a :class:`SkippedSample` in place of a sample whose
file is broken and warns with :class:`BadSampleWarning`; :func:`collate_samples`, the
``collate_fn`` that ``fit`` and ``evaluate`` use, drops it from the batch and hands it on, so
that skipped files are counted and named even when workers load the data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import default_collate


class BraTSDataError(ValueError):
    """A data file that cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: str | Path, problem: str | None = None):
        if problem is None:  # rebuilt from its message alone, as a DataLoader worker's error
            # comes back: "Caught BraTSDataError in ... Traceback ...\n...BraTSDataError: p: q"
            last = str(path).strip().splitlines()[-1]
            path, _, problem = last.split("BraTSDataError: ", 1)[-1].partition(": ")
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


class BadSampleWarning(UserWarning):
    """A data file was skipped because it cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class SkippedSample:
    """Stands in for a sample whose file could not be used, when datasets skip bad files.

    :func:`collate_samples` takes these out of a batch and reports them; ``index`` (the item
    it stands for, where the dataset knows it) says which place of the batch it left empty.
    """

    path: str
    problem: str
    index: int | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def skip_or_raise(error: BraTSDataError, on_error: str, index: int | None = None
                  ) -> SkippedSample:
    """The ``on_error`` policy of the datasets: re-raise, or warn and return a stand-in (for
    item ``index``)."""
    if on_error == "raise":
        raise error
    warnings.warn(f"skipping {error}", BadSampleWarning, stacklevel=3)
    return SkippedSample(str(error.path), error.problem, index)


def check_on_error(on_error: str) -> str:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    return on_error


def collate_samples(batch: list) -> tuple[torch.Tensor | None, torch.Tensor | None,
                                          list[SkippedSample]]:
    """A ``DataLoader`` ``collate_fn`` that drops skipped samples and reports them.

    Returns ``(images (B, 4, H, W), masks (B, 3, H, W), skipped)`` with ``B`` the usable
    samples; ``images`` and ``masks`` are ``None`` when every sample of the batch was skipped.
    """
    good = [sample for sample in batch if not isinstance(sample, SkippedSample)]
    skipped = [sample for sample in batch if isinstance(sample, SkippedSample)]
    if not good:
        return None, None, skipped
    images, masks = default_collate(good)
    return images, masks, skipped
