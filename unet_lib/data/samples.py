"""What the datasets yield when a file cannot be used, and how batches leave it out.

A dataset with ``on_error="skip"`` returns a :class:`SkippedSample` in place of a sample whose
file is broken and warns with :class:`BadSampleWarning`; :func:`collate_samples`, the
``collate_fn`` that ``fit`` and ``evaluate`` use, drops it from the batch and hands it on, so
that skipped files are counted and named even when workers load the data.

A loader's worker process does not warn: its warnings would go to the stderr of the process
that started the kernel (a Jupyter server's log, not the notebook), once per worker and, where
workers start anew for each pass, once per pass. The process that reads the batches warns
instead, through :func:`announce_skipped`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import default_collate, get_worker_info


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
    it stands for, where the dataset knows it) says which place of the batch it left empty;
    ``warned``, whether its warning was given already (not in a loader's worker process). A
    dataset of one's own that warns itself before returning one passes ``warned=True``.
    """

    path: str
    problem: str
    index: int | None = None
    warned: bool = field(default=False, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def skip_or_raise(error: BraTSDataError, on_error: str, index: int | None = None
                  ) -> SkippedSample:
    """The ``on_error`` policy of the datasets: re-raise, or warn and return a stand-in (for
    item ``index``). In a loader's worker process the warning is left to
    :func:`announce_skipped`, in the process that reads the batches."""
    if on_error == "raise":
        raise error
    in_worker = get_worker_info() is not None
    if not in_worker:
        warnings.warn(f"skipping {error}", BadSampleWarning, stacklevel=3)
    return SkippedSample(str(error.path), error.problem, index, warned=not in_worker)


def announce_skipped(skipped: list) -> list:
    """Warn (:class:`BadSampleWarning`) for each :class:`SkippedSample` of a batch whose warning
    was not given where it was read (in a loader's worker process); return ``skipped`` as given.
    Items already turned into text (held data list theirs so) were announced when read.
    Python shows a warning once per file and place (its default filter), as it does for a
    dataset read in this process."""
    for sample in skipped:
        if isinstance(sample, SkippedSample) and not sample.warned:
            warnings.warn(f"skipping {sample}", BadSampleWarning, stacklevel=2)
    return skipped


def check_on_error(on_error: str) -> str:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    return on_error


def collate_samples(batch: list) -> tuple[torch.Tensor | None, torch.Tensor | None,
                                          list[SkippedSample]]:
    """A ``DataLoader`` ``collate_fn`` that drops skipped samples and reports them.

    Returns ``(images (B, 4, H, W), masks (B, 3, H, W), skipped)`` with ``B`` the usable
    samples; ``images`` and ``masks`` are ``None`` when every sample of the batch was skipped.
    A loop of one's own over such batches calls :func:`announce_skipped` on ``skipped``, as
    ``fit`` and ``evaluate`` do, or files skipped in worker processes go unsaid.
    """
    good = [sample for sample in batch if not isinstance(sample, SkippedSample)]
    skipped = [sample for sample in batch if isinstance(sample, SkippedSample)]
    if not good:
        return None, None, skipped
    images, masks = default_collate(good)
    return images, masks, skipped
