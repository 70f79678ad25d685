"""Building blocks shared by the three U-Nets.

Every block maps ``(N, C_in, H, W)`` to ``(N, C_out, H, W)``: spatial size is kept,
only the channel count changes. Down- and up-sampling live in :mod:`unet_lib.models.unet`.

The Improved U-Net's five changes each appear here as one switch:

1. ``separable``       – :class:`SeparableConv2d` (depthwise ``k×k`` + pointwise ``1×1``)
2. ``batch_norm``      – a ``BatchNorm2d`` after each spatial convolution
3. ``kernel_size``     – ``7`` instead of ``3``
4. ``expansion``       – :class:`InvertedBottleneckBlock` (expand ×e with 1×1, then compress)
5. ``additive_skips``  – handled in the decoder (:class:`unet_lib.models.unet.UNet`)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SeparableConv2d(nn.Module):
    """Depthwise ``k×k`` convolution (one filter per channel) then a pointwise ``1×1``.

    Parameters: ``C_in·k² + C_in·C_out`` instead of ``C_in·C_out·k²`` for a full convolution:
    for 64→64 channels at ``3×3`` that is 4,672 instead of 36,864.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def spatial_conv(in_channels: int, out_channels: int, kernel_size: int, separable: bool,
                 bias: bool = True) -> nn.Module:
    """A ``k×k`` convolution with 'same' padding, full or depthwise-separable."""
    if separable:
        return SeparableConv2d(in_channels, out_channels, kernel_size, bias=bias)
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class ConvNormAct(nn.Sequential):
    """Convolution → (BatchNorm) → ReLU: one of the two units of a classic U-Net level.

    The convolution has no bias when batch norm follows (the norm's shift replaces it).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 separable: bool = False, batch_norm: bool = False):
        layers: list[nn.Module] = [spatial_conv(in_channels, out_channels, kernel_size, separable,
                                                bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DoubleConv(nn.Sequential):
    """Two :class:`ConvNormAct` units, ``C_in → C_out → C_out``: the Classic U-Net level."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 separable: bool = False, batch_norm: bool = False):
        super().__init__(
            ConvNormAct(in_channels, out_channels, kernel_size, separable, batch_norm),
            ConvNormAct(out_channels, out_channels, kernel_size, separable, batch_norm),
        )


class InvertedBottleneckBlock(nn.Module):
    """Spatial conv → (BN) → 1×1 expand ×e → ReLU → 1×1 compress, plus a residual.

    This is the ConvNeXt/MedNeXt block: the channel count is *expanded* inside the block and
    compressed again at its end, the reverse of ResNet's bottleneck. With ``separable=True``
    the spatial conv is depthwise only — the expanding ``1×1`` is its pointwise half, so the
    pair is a depthwise-separable convolution that widens as it mixes channels.

    When ``C_in != C_out`` a ``1×1`` projection first brings the input to ``C_out`` channels,
    so that the residual ``x + f(x)`` is defined.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7,
                 separable: bool = True, batch_norm: bool = True, expansion: int = 4):
        super().__init__()
        self.project = (nn.Identity() if in_channels == out_channels
                        else nn.Conv2d(in_channels, out_channels, 1))
        c = out_channels
        if separable:  # depthwise only: the 1×1 expand below is the pointwise part
            spatial = nn.Conv2d(c, c, kernel_size, padding=kernel_size // 2, groups=c,
                                bias=not batch_norm)
        else:
            spatial = nn.Conv2d(c, c, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
        self.residual = nn.Sequential(
            spatial,
            nn.BatchNorm2d(c) if batch_norm else nn.Identity(),
            nn.Conv2d(c, expansion * c, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(expansion * c, c, 1),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return self.act(x + self.residual(x))


def level_block(in_channels: int, out_channels: int, kernel_size: int, separable: bool,
                batch_norm: bool, expansion: int) -> nn.Module:
    """The block of one U-Net level: a :class:`DoubleConv`, or with ``expansion > 1`` an
    :class:`InvertedBottleneckBlock`."""
    if expansion > 1:
        return InvertedBottleneckBlock(in_channels, out_channels, kernel_size, separable,
                                       batch_norm, expansion)
    return DoubleConv(in_channels, out_channels, kernel_size, separable, batch_norm)


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018) on a skip connection.

    ``α = σ(ψ(ReLU(W_x·x + W_g·g)))`` with ``W_x``, ``W_g`` and ``ψ`` 1×1 convolutions, and the
    gate returns ``(α·x, α)`` so that the coefficients come out with the result.

    Args:
        skip_channels: channels of the skip features ``x``.
        gate_channels: channels of the gating signal ``g`` (the up-sampled decoder features,
            already at the skip's resolution).
        inter_channels: width of the intermediate space where ``W_x·x`` and ``W_g·g`` are added.

    Shapes: ``x`` (N, skip_channels, h, w), ``g`` (N, gate_channels, h, w) →
    ``(N, skip_channels, h, w)`` and ``α`` (N, 1, h, w) in [0, 1].
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int):
        super().__init__()
        self.w_x = nn.Conv2d(skip_channels, inter_channels, 1, bias=False)
        self.w_g = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = torch.sigmoid(self.psi(F.relu(self.w_x(x) + self.w_g(g))))
        return x * alpha, alpha
