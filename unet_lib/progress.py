"""Progress bars where they help: in a terminal or a notebook, not in a CI log; the epoch log
line, and the run folder's ``history.csv``."""

from __future__ import annotations

import csv
import io
import sys
import warnings
from pathlib import Path

from . import runfolder
from .runfolder import HISTORY_CSV


def interactive() -> bool:
    """A terminal or a notebook: where a live progress bar helps rather than floods a log."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_bar(iterable, show: bool = True, **kwargs):
    """``tqdm(iterable)`` (the notebook widget in Jupyter), shown only when ``show`` and
    :func:`interactive`."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not (show and interactive()), **kwargs)


def write_line(text: str, bar: bool = False) -> None:
    """Print one line of a log; beside a live tqdm bar (``bar=True``) without breaking it."""
    if bar:
        from tqdm.auto import tqdm

        tqdm.write(text)
    else:
        print(text, flush=True)


def epoch_line(record: dict) -> str:
    """One epoch of a :class:`~unet_lib.train.History` as a log line: its losses, validation
    Dice per channel and region, the files it skipped, and its seconds."""
    text = f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}"
    if "val" in record:
        dice = ", ".join(f"{k} {v:.3f}" for k, v in record["val"]["dice"].items())
        text += f", val loss {record['val_loss']:.4f}, Dice {dice}"
    if record["skipped"]:
        first = record["skipped"][0].partition(": ")[0]  # the file; its warning said why
        text += f"; skipped {unusable(record['skipped'])}, first {first}"
    return text + f" ({record['seconds']:.0f} s)"


def unusable(skipped: list[str]) -> str:
    """How many slices ``skipped`` (entries ``"<file>: <why>"``) left out, and from how many
    files where fewer: ``"155 unusable slices from 1 file"`` (a NIfTI file holds a whole
    case's), ``"2 unusable slices"`` (Kaggle: a file per slice)."""
    files = len(dict.fromkeys(entry.partition(": ")[0] for entry in skipped))
    slices = f"{len(skipped)} unusable slice{'s' * (len(skipped) != 1)}"
    return slices + (f" from {files} file{'s' * (files != 1)}" if files < len(skipped) else "")


def history_csv(records: list[dict]) -> str:
    """The epochs of a :class:`~unet_lib.train.History` as CSV text, one row each: ``epoch,
    lr, loss`` (the loss trained with: a resume may change it; empty for epochs recorded
    before it was), ``train_loss, val_loss``, then ``val_<score>_<name>`` for every validation score
    (``val_dice_WT``, ``val_recall_ET``, …), ``seconds`` and ``skipped`` (how many unusable
    slices: a NIfTI file that cannot be read counts each of its slices). Readable without
    torch: a spreadsheet, pandas, ``tail -F`` (the file is replaced whole each epoch)."""
    scores = []  # (score, name) in the order the first validated epoch gives them
    for record in records:
        if "val" in record:
            scores = [(score, name) for score, values in record["val"].items()
                      for name in values]
            break
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["epoch", "lr", "loss", "train_loss", "val_loss",
                     *(f"val_{score}_{name}" for score, name in scores), "seconds", "skipped"])
    for record in records:
        val = record.get("val", {})
        writer.writerow([record["epoch"], record["lr"], record.get("loss", ""),
                         record["train_loss"],
                         record.get("val_loss", ""),
                         *(val.get(score, {}).get(name, "") for score, name in scores),
                         round(record["seconds"], 2), len(record["skipped"])])
    return text.getvalue()


def write_history(folder: Path, records: list[dict]) -> None:
    """Replace ``folder``'s :data:`HISTORY_CSV` with :func:`history_csv` of ``records``. A
    convenience copy (``last.pt`` holds the history): a write that fails (a full disk, the
    file open in a spreadsheet on Windows) warns once and training goes on; not ``fsync``-ed,
    so it does not wait for a checkpoint being written in the background."""
    try:
        runfolder.write_text_atomic(folder / HISTORY_CSV, history_csv(records), durable=False)
    except OSError as error:
        if folder not in _unwritable:
            _unwritable.add(folder)
            warnings.warn(f"{folder / HISTORY_CSV}: not updated ({error.strerror or error}); "
                          f"training goes on, and last.pt holds the history", RuntimeWarning,
                          stacklevel=2)


_unwritable: set[Path] = set()  # folders whose history.csv could not be written (warned once)
