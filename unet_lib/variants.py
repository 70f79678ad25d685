"""Ways of running a preset that change how the GPU computes it, not what it computes.

A variant is a preset (``classic``, ``improved``, ``attention``) with the same weights and the
same results, run another way, so that ``unet-lib bench --models improved <variant>`` can time
the two in one run. The question they answer is the Improved U-Net's: its 7×7 depthwise
convolutions took 30 % of its training step on one H200 (2026-11-27), in cuDNN's channels_last
kernel. Three ways round it:

* ``improved-nchw-depthwise``: each :class:`~unet_lib.models.DepthwiseConv2d` copies its
  input to NCHW and runs PyTorch's NCHW depthwise kernel (:func:`set_depthwise_nchw`);
* ``improved-cudnn-depthwise`` and ``improved-native-depthwise``: the whole model as built,
  with PyTorch's own choice of depthwise kernel, ``torch.backends.cudnn.depthwise_kernel``
  (``"auto"`` by default), set to ``"cudnn"`` or ``"native"`` while it is timed. That setting
  is new in PyTorch 2.13; with an older one these two variants are refused by name.

On a CPU every variant computes as its preset does (the settings are CUDA's).

Use::

    with variant_setting("improved-native-depthwise"):
        model = bench_model("improved-native-depthwise")
        ...  # forward and backward, timed
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from .models import build_model, set_depthwise_nchw


def _as_built(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class Variant:
    """A preset run another way.

    Attributes:
        preset: the model it builds (a name of :data:`unet_lib.models.MODELS`).
        adjust: applied to the built model; returns it (the same weights).
        depthwise_kernel: ``torch.backends.cudnn.depthwise_kernel`` while it runs
            (``"cudnn"`` or ``"native"``), or None to leave PyTorch's setting alone.
    """

    preset: str
    adjust: Callable[[nn.Module], nn.Module] = _as_built
    depthwise_kernel: str | None = None


#: The variants by name.
VARIANTS: dict[str, Variant] = {
    "improved-nchw-depthwise": Variant("improved", adjust=set_depthwise_nchw),
    "improved-cudnn-depthwise": Variant("improved", depthwise_kernel="cudnn"),
    "improved-native-depthwise": Variant("improved", depthwise_kernel="native"),
}


def chooses_depthwise_kernel() -> bool:
    """Whether this PyTorch has ``torch.backends.cudnn.depthwise_kernel`` (2.13 and later)."""
    return hasattr(torch.backends.cudnn, "depthwise_kernel")


def available_variants() -> list[str]:
    """The names of :data:`VARIANTS` this PyTorch can run, in their order."""
    return [name for name, variant in VARIANTS.items()
            if variant.depthwise_kernel is None or chooses_depthwise_kernel()]


def variant_of(name: str) -> Variant | None:
    """The variant called ``name``, or None for a preset. Raises a ConfigError (argument
    ``models``) for any other name, and for a variant this PyTorch cannot run."""
    from .config import ConfigError
    from .models import MODELS

    if name in MODELS:
        return None
    if name not in VARIANTS:
        raise ConfigError("models", f"unknown model {name!r}: choose among "
                                    f"{', '.join([*MODELS, *VARIANTS])}")
    if name not in available_variants():
        raise ConfigError("models", f"{name} sets torch.backends.cudnn.depthwise_kernel, which "
                                    f"PyTorch has from 2.13 on; this one is {torch.__version__}")
    return VARIANTS[name]


def bench_model(name: str, base_filters: int = 32) -> nn.Module:
    """The preset ``name`` (``classic``, ``improved``, ``attention``) or the :data:`VARIANTS`
    entry's preset, adjusted, built with ``base_filters``. Time it inside
    :func:`variant_setting` (``name``), which a variant may need."""
    variant = variant_of(name)
    if variant is None:
        return build_model(name, base_filters=base_filters)
    return variant.adjust(build_model(variant.preset, base_filters=base_filters))


@contextmanager
def variant_setting(name: str) -> Iterator[None]:
    """PyTorch's settings for running model ``name`` (a preset or a :data:`VARIANTS` entry):
    for a variant with a ``depthwise_kernel``, ``torch.backends.cudnn.depthwise_kernel`` set to
    it inside the block and restored after; nothing for the others."""
    variant = variant_of(name)
    if variant is None or variant.depthwise_kernel is None:
        yield
        return
    before = torch.backends.cudnn.depthwise_kernel
    torch.backends.cudnn.depthwise_kernel = variant.depthwise_kernel
    try:
        yield
    finally:
        torch.backends.cudnn.depthwise_kernel = before
