"""The three U-Nets of the course, and :func:`build_model` to make one by name."""

from __future__ import annotations

from torch import nn

from .layers import AttentionGate, DoubleConv, InvertedBottleneckBlock, SeparableConv2d
from .unet import IMPROVEMENTS, MIN_SIZE, AttentionUNet, ClassicUNet, ImprovedUNet, UNet

MODELS: dict[str, type[UNet]] = {
    "classic": ClassicUNet,
    "improved": ImprovedUNet,
    "attention": AttentionUNet,
}


def build_model(name: str, **kwargs) -> UNet:
    """Make a model by name: ``"classic"``, ``"improved"`` or ``"attention"``.

    Keyword arguments go to the constructor (``in_channels``, ``out_channels``,
    ``base_filters``, ...).
    """
    try:
        cls = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model name {name!r}; choose one of "
                         f"{', '.join(repr(n) for n in MODELS)}") from None
    return cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["AttentionGate", "AttentionUNet", "ClassicUNet", "DoubleConv", "IMPROVEMENTS",
           "ImprovedUNet", "InvertedBottleneckBlock", "MIN_SIZE", "MODELS", "SeparableConv2d",
           "UNet", "build_model", "count_parameters"]
