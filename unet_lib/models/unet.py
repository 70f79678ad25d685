"""One configurable U-Net, and the three course models as named settings of it.

The encoder has ``depth + 1`` levels of widths ``base_filters · 2^l`` (32-64-128-256-512 by
default); each down-step is a 2×2 max-pool, each up-step a 2×2 transposed convolution, and a
1×1 head maps the last decoder level to ``out_channels`` logits.

Inputs of any size ``H, W ≥ 16`` work: the image is padded (replicating its border) up to a
multiple of ``2^depth`` and the logits are cropped back, so ``model(x)`` always returns
``(N, out_channels, H, W)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import AttentionGate, level_block

MIN_SIZE = 16
PRIOR = 0.01  # initial predicted probability of every output channel


class UNet(nn.Module):
    """A U-Net whose five 'Improved U-Net' changes and attention gates are switches.

    Args:
        in_channels: input channels (4 MRI modalities for BraTS).
        out_channels: output channels (3 tumour sub-regions for BraTS), one logit each.
        base_filters: width of the first encoder level; level ``l`` has ``base_filters·2^l``.
        depth: number of down-steps (4 in the course: 32-64-128-256-512).
        separable: depthwise-separable instead of full convolutions.
        batch_norm: batch normalization after each spatial convolution.
        kernel_size: spatial kernel size (3 classic, 7 improved; odd).
        expansion: ``1`` for the classic double convolution, ``e > 1`` for an inverse
            bottleneck block that expands channels ×e then compresses them.
        additive_skips: add the skip to the up-sampled features instead of concatenating.
        attention: put an :class:`AttentionGate` on every skip connection.
        inter_channels: width of each gate's intermediate space; default half the skip width.

    Shapes: ``forward(x)`` maps (N, in_channels, H, W) float to (N, out_channels, H, W) logits.
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                 depth: int = 4, *, separable: bool = False, batch_norm: bool = False,
                 kernel_size: int = 3, expansion: int = 1, additive_skips: bool = False,
                 attention: bool = False, inter_channels: int | None = None):
        super().__init__()
        #: The constructor arguments: enough to rebuild this architecture (checkpoints keep it).
        self.hparams = dict(in_channels=in_channels, out_channels=out_channels,
                            base_filters=base_filters, depth=depth, separable=separable,
                            batch_norm=batch_norm, kernel_size=kernel_size, expansion=expansion,
                            additive_skips=additive_skips, attention=attention,
                            inter_channels=inter_channels)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("base_filters", base_filters), ("depth", depth),
                            ("expansion", expansion)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}")
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.attention = attention
        self.additive_skips = additive_skips
        widths = [base_filters * 2 ** level for level in range(depth + 1)]
        block = dict(kernel_size=kernel_size, separable=separable, batch_norm=batch_norm,
                     expansion=expansion)

        self.encoder = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoder.append(level_block(previous, width, **block))
            previous = width
        self.pool = nn.MaxPool2d(2)

        self.up = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(depth)):  # deepest skip first
            skip, below = widths[level], widths[level + 1]
            self.up.append(nn.ConvTranspose2d(below, skip, kernel_size=2, stride=2))
            if attention:
                self.gates.append(AttentionGate(skip, skip, inter_channels or max(skip // 2, 1)))
            merged = skip if additive_skips else 2 * skip
            self.decoder.append(level_block(merged, skip, **block))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        # Tumour is rare (about 1 % of BraTS pixels): start the head at that prior, so that
        # the first steps learn where tumour is rather than how rare it is.
        nn.init.constant_(self.head.bias, math.log(PRIOR / (1 - PRIOR)))

    @property
    def size_multiple(self) -> int:
        """Internal sizes must be multiples of this; other inputs are padded up to one."""
        return 2 ** self.depth

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Logits (N, out_channels, H, W); with ``return_attention=True`` also the gates' maps.

        The maps are a list of (N, 1, h_l, w_l) tensors in [0, 1], one per gate, in decoder
        order: ``maps[0]`` is the deepest gate (``h = ⌈H/2^(depth-1)⌉``), ``maps[-1]`` the gate at
        full resolution ``H × W``.
        """
        if return_attention and not self.attention:
            raise ValueError("return_attention=True needs a model with attention gates "
                             "(AttentionUNet or UNet(attention=True))")
        height, width = self._check_input(x)
        x = _pad_to_multiple(x, self.size_multiple)

        skips = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        x = skips.pop()  # bottleneck

        maps = []
        for i, (up, decode) in enumerate(zip(self.up, self.decoder)):
            x = up(x)
            skip = skips.pop()
            if self.attention:
                skip, alpha = self.gates[i](skip, x)
                maps.append(alpha)
            x = decode(x + skip if self.additive_skips else torch.cat([skip, x], dim=1))
        logits = self.head(x)[..., :height, :width]
        if not return_attention:
            return logits
        level_sizes = [(math.ceil(height / 2 ** lv), math.ceil(width / 2 ** lv))
                       for lv in reversed(range(self.depth))]
        return logits, [a[..., :h, :w] for a, (h, w) in zip(maps, level_sizes)]

    def _check_input(self, x: torch.Tensor) -> tuple[int, int]:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected a batch of images (N, {self.in_channels}, H, W), "
                             f"got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels (N, {self.in_channels}, "
                             f"H, W), got {x.shape[1]} in a tensor of shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if height < MIN_SIZE or width < MIN_SIZE:
            raise ValueError(f"images must be at least {MIN_SIZE}×{MIN_SIZE} pixels, got "
                             f"{height}×{width}; any size from {MIN_SIZE} up works (sizes that "
                             f"are not multiples of {self.size_multiple} are padded internally)")
        return height, width


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of (N, C, H, W) by replicating the border, up to multiples."""
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


#: The five changes of the Improved U-Net, each as the ``UNet`` arguments that switch it on.
IMPROVEMENTS: dict[str, dict] = {
    "separable": dict(separable=True),
    "batch_norm": dict(batch_norm=True),
    "kernel_7x7": dict(kernel_size=7),
    "inverse_bottleneck": dict(expansion=4),
    "additive_skips": dict(additive_skips=True),
}


class ClassicUNet(UNet):
    """The baseline U-Net (Ronneberger et al. 2015): per level two 3×3 conv + ReLU, max-pool
    down, 2×2 transposed conv up, concatenated skips, 1×1 head. 7.76 M parameters at
    ``base_filters=32``.

    Example:
        >>> model = ClassicUNet(in_channels=4, out_channels=3, base_filters=32)
        >>> model(torch.zeros(1, 4, 240, 240)).shape
        torch.Size([1, 3, 240, 240])
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                 depth: int = 4):
        super().__init__(in_channels, out_channels, base_filters, depth)


class ImprovedUNet(UNet):
    """The Classic U-Net with the five changes of the course, all on by default.

    Each level is one inverse-bottleneck block — 7×7 depthwise conv → BatchNorm → 1×1 expand
    ×4 → ReLU → 1×1 compress, plus a residual — and the decoder adds skips instead of
    concatenating them. 4.44 M parameters at ``base_filters=32`` against the Classic's 7.76 M.
    Every change can be switched off through its argument (see :data:`IMPROVEMENTS`).
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                 depth: int = 4, *, separable: bool = True, batch_norm: bool = True,
                 kernel_size: int = 7, expansion: int = 4, additive_skips: bool = True):
        super().__init__(in_channels, out_channels, base_filters, depth, separable=separable,
                         batch_norm=batch_norm, kernel_size=kernel_size, expansion=expansion,
                         additive_skips=additive_skips)


class AttentionUNet(UNet):
    """The Classic U-Net with an additive attention gate on each of its ``depth`` skips.

    ``model(x, return_attention=True)`` returns ``(logits, maps)``; see :meth:`UNet.forward`
    for the order and shapes of the maps.
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                 depth: int = 4, *, inter_channels: int | None = None):
        super().__init__(in_channels, out_channels, base_filters, depth, attention=True,
                         inter_channels=inter_channels)
