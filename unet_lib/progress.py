"""Progress bars where they help: in a terminal or a notebook, not in a CI log."""

from __future__ import annotations

import sys


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
