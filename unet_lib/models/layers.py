"""Building blocks shared by the three U-Nets.

Every level block maps ``(N, C_in, H, W)`` to ``(N, C_out, H, W)``: spatial size is kept,
only the channel count changes. The encoder's down-step (a 2×2 max-pool) lives in
:class:`unet_lib.models.unet.UNet`; one decoder step is a :class:`DecoderLevel`.

The Improved U-Net's five changes each appear here as one argument of the blocks (and of
:class:`~unet_lib.models.unet.UNet`); :data:`~unet_lib.models.presets.IMPROVEMENTS` names them:

1. ``separable``          – ``separable=True``: :class:`SeparableConv2d` (depthwise ``k×k`` +
   pointwise ``1×1``) in a :class:`DoubleConv`; in an :class:`InvertedBottleneckBlock` only
   the depthwise half, :class:`DepthwiseConv2d`, as its 1×1 expansion is the pointwise half
2. ``batch_norm``         – ``batch_norm=True``: a ``BatchNorm2d`` after each spatial convolution
3. ``kernel_7x7``         – ``kernel_size=7`` instead of ``3``
4. ``inverse_bottleneck`` – ``expansion=4``: :class:`InvertedBottleneckBlock` (expand ×4 with
   1×1, then compress)
5. ``additive_skips``     – ``additive_skips=True``: :class:`DecoderLevel` adds the skip instead
   of concatenating it
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DepthwiseConv2d(nn.Conv2d):
    """A ``k×k`` depthwise convolution: one ``k×k`` filter per channel, 'same' padding, no
    mixing between channels: ``nn.Conv2d(C, C, k, padding=k // 2, groups=C)``, whose
    arithmetic and weights (``C·k²``, plus ``C`` biases) it has.

    Shapes: (N, C, H, W) → (N, C, H, W).

    Its one addition is for speed on a GPU, and changes no number: with ``nchw`` set (by
    :func:`set_depthwise_nchw`) a channels_last input runs through PyTorch's NCHW depthwise
    kernel instead of cuDNN's channels_last one.
    """

    nchw = False  # set per module by set_depthwise_nchw

    def __init__(self, channels: int, kernel_size: int, bias: bool = True):
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2,
                         groups=channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nchw and _is_channels_last_only(x):
            return self._forward_in_nchw(x)
        return super().forward(x)

    def _forward_in_nchw(self, x: torch.Tensor) -> torch.Tensor:
        """The same convolution with input and weight copied to NCHW strides (PyTorch hands a
        convolution to cuDNN's channels_last path when either looks channels_last), the result
        copied back to channels_last."""
        weight = self.weight.clone(memory_format=torch.contiguous_format)
        out = self._conv_forward(x.contiguous(), weight, self.bias)
        return out.contiguous(memory_format=torch.channels_last)


def _is_channels_last_only(x: torch.Tensor) -> bool:
    """``x`` is laid out channels_last and not also NCHW (as a 1×1 or single-channel one is)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def set_depthwise_nchw(model: nn.Module, nchw: bool = True) -> nn.Module:
    """Run every :class:`DepthwiseConv2d` of ``model`` in NCHW (``nchw=True``) or in the
    model's own layout; returns ``model``.

    Why: on one H200 cuDNN ran the Improved U-Net's 7×7 depthwise convolution at 32 channels,
    240×240 in channels_last as a general grouped kernel with four layout conversions, 5.5 ms
    a call, 30 % of the training step (``benchmarks/h200-2026-11-27-session/``). Off by default
    until measured: ``unet-lib bench`` times both (model ``improved-nchw-depthwise``), and
    beside them PyTorch 2.13's own choice of kernel (:mod:`unet_lib.variants`).
    """
    for module in model.modules():
        if isinstance(module, DepthwiseConv2d):
            module.nchw = nchw
    return model


class SeparableConv2d(nn.Module):
    """Depthwise ``k×k`` convolution (one filter per channel) then a pointwise ``1×1``.

    Parameters: ``C_in·k² + C_in·C_out`` weights (plus ``C_out`` biases of the pointwise
    convolution with ``bias=True``) instead of ``C_in·C_out·k²`` (+ ``C_out``) for a full
    convolution: for 64→64 channels at ``3×3`` that is 4,736 instead of 36,928.

    Shapes: (N, C_in, H, W) → (N, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.depthwise = DepthwiseConv2d(in_channels, kernel_size, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def spatial_conv(in_channels: int, out_channels: int, kernel_size: int, separable: bool,
                 bias: bool = True) -> nn.Module:
    """A ``k×k`` convolution with 'same' padding, full or depthwise-separable."""
    if separable:
        return SeparableConv2d(in_channels, out_channels, kernel_size, bias=bias)
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class ConvUnit(nn.Sequential):
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
    """Two :class:`ConvUnit` units, ``C_in → C_out → C_out``: the Classic U-Net level."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 separable: bool = False, batch_norm: bool = False):
        super().__init__(
            ConvUnit(in_channels, out_channels, kernel_size, separable, batch_norm),
            ConvUnit(out_channels, out_channels, kernel_size, separable, batch_norm),
        )


class InvertedBottleneckBlock(nn.Module):
    """Inverted bottleneck: ``y = ReLU(x + f(x))`` with ``x`` first projected to ``C_out``.

    The residual branch ``f``, at ``C = C_out`` channels::

        k×k conv, C → C (depthwise if ``separable``, else full; no bias when BN follows)
        → BatchNorm2d (if ``batch_norm``)
        → 1×1 conv, C → e·C (expand) → ReLU → 1×1 conv, e·C → C (compress)

    When ``C_in != C_out`` a 1×1 projection (with bias) first maps the input to ``C_out``
    channels, so that ``x + f(x)`` is defined. Channels widen inside the block and narrow at
    its end, the reverse of ResNet's bottleneck; with ``separable`` the depthwise conv and the
    expanding 1×1 together form a separable convolution.

    ConvNeXt's block (Liu et al. 2022) is 7×7 depthwise conv → LayerNorm → 1×1 expand ×4 →
    GELU → 1×1 compress → layer scale, added to the input with *no* activation after the add;
    widths change only in separate down-sampling layers. This block differs: BatchNorm, not
    LayerNorm (batch norm is one of the slides' five changes; ``batch_norm=False`` drops the
    norm); ReLU, not GELU, and a ReLU after the add, as every level of the Classic U-Net ends
    in a ReLU; no layer scale or stochastic depth; ``kernel_size`` and ``separable`` are
    switches of their own (ConvNeXt fixes 7×7 depthwise), so that each of the five changes can
    be switched off alone; and the 1×1 projection where the width changes.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``; also the width of the residual branch.
        kernel_size: ``k`` of the spatial conv (odd).
        separable: depthwise spatial conv instead of a full one.
        batch_norm: a ``BatchNorm2d`` after the spatial conv.
        expansion: ``e``, the width factor of the hidden 1×1 layer.

    Shapes: (N, C_in, H, W) → (N, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7,
                 separable: bool = True, batch_norm: bool = True, expansion: int = 4):
        super().__init__()
        self.project = (nn.Identity() if in_channels == out_channels
                        else nn.Conv2d(in_channels, out_channels, 1))
        c = out_channels
        if separable:  # depthwise only: the 1×1 expand below is the pointwise part
            spatial = DepthwiseConv2d(c, kernel_size, bias=not batch_norm)
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

    ``α = σ(ψ(ReLU(W_x·x + up(W_g·g))))`` with ``W_x``, ``W_g`` and ``ψ`` 1×1 convolutions, and
    the gate returns ``(α·x, α)`` so that the coefficients come out with the result.

    As in Oktay et al., the gating signal ``g`` comes from the *coarser* level (the decoder's
    features before they are up-sampled); ``W_g·g`` is resized to the skip's grid by bilinear
    interpolation (``up``). Gating with the features *after* the decoder's 2×2 transposed
    convolution instead stamps that convolution's four kernel taps onto α as a 2-pixel
    checkerboard, which shows in the attention maps (``tests/test_models.py`` checks that a
    uniform input now gives a uniform α).

    Unlike Oktay et al., α is computed on the skip's own grid: they bring ``x`` down to
    ``g``'s grid (``W_x`` a strided 2×2 convolution), compute α there and up-sample α, and
    follow the gate with a 1×1 convolution and batch norm; here α has one value per skip
    pixel, so its maps are as fine as the skip (chapter 3 of the book says why).

    Args:
        skip_channels: channels of the skip features ``x``.
        gate_channels: channels of the gating signal ``g``.
        inter_channels: width of the intermediate space where ``W_x·x`` and ``W_g·g`` are added.

    Shapes: ``x`` (N, skip_channels, h, w), ``g`` (N, gate_channels, h', w') with h' ≤ h,
    w' ≤ w (typically h/2, w/2) → ``(N, skip_channels, h, w)`` and ``α`` (N, 1, h, w) in [0, 1].
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int):
        super().__init__()
        self.w_x = nn.Conv2d(skip_channels, inter_channels, 1, bias=False)
        self.w_g = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gating = self.w_g(g)
        if gating.shape[-2:] != x.shape[-2:]:
            gating = F.interpolate(gating, size=x.shape[-2:], mode="bilinear",
                                   align_corners=False)
        alpha = torch.sigmoid(self.psi(F.relu(self.w_x(x) + gating)))
        return x * alpha, alpha


class DecoderLevel(nn.Module):
    """One step up the U: up-sample, (gate the skip), merge it, then a level block.

    ``up``: 2×2 transposed conv with stride 2, ``C_in → C_out``, doubling ``H, W``;
    ``gate``: an :class:`AttentionGate` on the skip, gated by ``x`` before up-sampling, or
    ``None``; merge: ``x + skip`` with ``additive_skips``, else ``concat([skip, x])`` (2·C_out
    channels); ``block``: :func:`level_block` from the merged width to ``C_out``.

    Args:
        in_channels: ``C_in``, the width of the level below.
        out_channels: ``C_out``, the width of the skip and of the output.
        kernel_size, separable, batch_norm, expansion: the level block's (see
            :func:`level_block`).
        additive_skips: add the skip instead of concatenating it.
        attention: put an :class:`AttentionGate` on the skip.
        inter_channels: the gate's intermediate width; default ``max(C_out // 2, 1)``.

    Shapes: ``forward(below, skip)`` takes the level below's output (N, C_in, h, w) and the
    encoder's skip (N, C_out, 2h, 2w), and
    returns ``(y, alpha)``: y (N, C_out, 2h, 2w) and the gate's α (N, 1, 2h, 2w) in [0, 1],
    or ``None`` without a gate.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3,
                 separable: bool = False, batch_norm: bool = False, expansion: int = 1,
                 additive_skips: bool = False, attention: bool = False,
                 inter_channels: int | None = None):
        super().__init__()
        self.additive_skips = additive_skips
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.gate = (AttentionGate(out_channels, in_channels,
                                   inter_channels or max(out_channels // 2, 1))
                     if attention else None)
        merged = out_channels if additive_skips else 2 * out_channels
        self.block = level_block(merged, out_channels, kernel_size, separable, batch_norm,
                                 expansion)

    def forward(self, below: torch.Tensor, skip: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        alpha = None
        if self.gate is not None:  # the coarse features gate the skip, before going up
            skip, alpha = self.gate(skip, g=below)
        up = self.up(below)
        merged = up + skip if self.additive_skips else torch.cat([skip, up], dim=1)
        return self.block(merged), alpha
