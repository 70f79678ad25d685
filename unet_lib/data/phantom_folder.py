"""The phantom's folder: never written over anything else, and named as a reader finds it."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: the file that marks a folder as a phantom of this library, with the settings it was made with
MARKER = "phantom.json"


def check_writable_into(root: Path, made_as: dict) -> None:
    """Refuse to write into a folder that holds anything but this very phantom: its files
    have the names of the Kaggle BraTS release (``volume_<v>_slice_<s>.h5``,
    ``meta_data.csv``), so a real download there would be overwritten, and a phantom of other
    settings would be left half replaced."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root}: is a file; the phantom needs a folder there")
    if not root.is_dir() or not any(root.iterdir()):
        return
    try:
        earlier = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        example = next(path.name for path in sorted(root.iterdir()))
        raise FileExistsError(
            f"{root}: holds files that are not this library's phantom (e.g. {example}); the "
            f"phantom writes volume_<v>_slice_<s>.h5 and meta_data.csv, the names of the BraTS "
            f"release's files, and would replace them. Nothing was written: choose a new or "
            f"empty folder") from None
    if earlier != made_as:
        raise FileExistsError(
            f"{root}: holds a phantom made with other settings ({_settings(earlier)}) than "
            f"these ({_settings(made_as)}); writing over it would mix the two. Nothing was "
            f"written: choose a new or empty folder, or delete this one")


def _settings(made_as) -> str:
    if not isinstance(made_as, dict):
        return "unknown"
    return ", ".join(f"{key} {value}" for key, value in made_as.items())


def readable(path: Path) -> str:
    """``path`` as a reader finds it: relative to the working folder where it lies under it or
    its parent (a notebook in ``book/`` making ``../.course/data/...``), else with ``~`` for the
    home folder, else absolute. A built page shows no path of the machine that built it."""
    path = Path(os.path.abspath(path))
    try:
        relative = Path(os.path.relpath(path))
    except ValueError:  # Windows: another drive
        relative = Path("..", "..")
    if relative.parts[:2] != ("..", ".."):
        return str(relative)
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)
