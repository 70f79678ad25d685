"""Where a notebook's settings come from: the scale, the data and the course home, each a
value in the notebook that an environment variable overrides (so that CI, ``make book`` or a
lab's environment set them for every notebook at once)."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch

from unet_lib.recipe import SCALES

SCALE_VARIABLE = "UNET_COURSE_SCALE"
DATA_VARIABLE = "BRATS_DIR"
HOME_VARIABLE = "UNET_COURSE_HOME"
#: the oldest PyTorch the course is tested with, as ``pyproject.toml`` asks for it
OLDEST_TORCH = (2, 11)


def torch_release(version: str) -> tuple[int, int] | None:
    """The (major, minor) a PyTorch version string starts with: ``"2.13.0+cpu"`` → ``(2, 13)``,
    ``"2.12.0a0+git1234"`` → ``(2, 12)``; ``None`` where it starts otherwise."""
    found = re.match(r"(\d+)\.(\d+)(?!\d)", str(version))
    return (int(found[1]), int(found[2])) if found else None


def warn_if_torch_is_older(version: str | None = None) -> bool:
    """Warn (and return ``True``) when this kernel's PyTorch is older than
    :data:`OLDEST_TORCH`: a ``pip install --no-deps`` (the Colab cell of the instructor page)
    keeps whatever PyTorch the runtime brings, and an older one may fail in ways that do not
    name it. ``version``: this kernel's (``torch.__version__``) unless given."""
    version = version or torch.__version__
    release = torch_release(version)
    if release is None or release >= OLDEST_TORCH:  # a version it cannot read: no warning
        return False
    oldest = ".".join(map(str, OLDEST_TORCH))
    warnings.warn(f"PyTorch {version} is older than {oldest}, the oldest this course is tested "
                  f"with (pip install --no-deps keeps the one the runtime has): if a cell "
                  f"fails, install PyTorch {oldest} or newer, the build that fits this "
                  f"machine's CUDA, and restart the kernel", stacklevel=3)
    return True


def resolve_scale(scale: str = "auto") -> str:
    """``"quick"`` or ``"full"`` from a notebook's ``scale`` and ``$UNET_COURSE_SCALE``.

    The environment variable wins, so that CI can force the quick scale on any notebook.
    ``"full"`` without a CUDA GPU is allowed, with a warning: it trains for hours there.
    """
    chosen = os.environ.get(SCALE_VARIABLE) or scale
    if chosen == "auto":
        return "full" if torch.cuda.is_available() else "quick"
    source = f"${SCALE_VARIABLE}" if os.environ.get(SCALE_VARIABLE) else "scale"
    if chosen not in SCALES:
        raise ValueError(f"{source} = {chosen!r}: choose 'auto', 'quick' or 'full'")
    if chosen == "full" and not torch.cuda.is_available():
        warnings.warn(f"{source} = 'full' without a CUDA GPU: the slides' configuration "
                      f"(240×240 slices, 32 filters, 20 epochs, each model) trains for hours on "
                      f"a CPU; 'quick' (or 'auto') trains in minutes", stacklevel=2)
    return chosen


def course_home() -> Path:
    """Folder for the course's phantom data (``data/``) and trained models (``runs/``):
    ``$UNET_COURSE_HOME`` if set (``make book`` and ``make lab`` set it to the checkout's
    ``.course/``), else ``~/.cache/unet_course``."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    return Path.home() / ".cache" / "unet_course"
