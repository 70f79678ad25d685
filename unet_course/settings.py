"""Where a notebook's settings come from: the scale, the data and the course home, each a
value in the notebook that an environment variable overrides (so that CI, ``make book`` or a
lab's environment set them for every notebook at once)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from unet_lib.recipe import SCALES

SCALE_VARIABLE = "UNET_COURSE_SCALE"
DATA_VARIABLE = "BRATS_DIR"
HOME_VARIABLE = "UNET_COURSE_HOME"


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
