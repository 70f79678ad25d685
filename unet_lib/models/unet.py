"""One configurable U-Net; the three course models are presets of it (:mod:`.presets`).

The encoder has ``depth + 1`` levels of widths ``base_filters · 2^l`` (32-64-128-256-512 by
default), each down-step a 2×2 max-pool; each of the ``depth`` decoder levels is one
:class:`~unet_lib.models.layers.DecoderLevel` (2×2 transposed conv up, optional attention
gate on the skip, merge, level block); a 1×1 head maps the last one to ``out_channels`` logits.

Inputs of any size ``H, W ≥ 16`` work: the image is padded (replicating its border) up to a
multiple of ``2^depth`` and the logits are cropped back, so ``model(x)`` always returns
``(N, out_channels, H, W)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import DecoderLevel, level_block

MIN_SIZE = 16
PRIOR = 0.01  # initial predicted probability of every output channel
#: How :meth:`UNet.reset_weights` starts a model; part of every run's key
#: (:meth:`unet_lib.recipe.RunRecipe.identity`), so that no run made with another start is reused
WEIGHT_INIT = ("without batch norm He normal (std sqrt(2/fan_in)), zero biases; with batch norm "
               "PyTorch's default; head at the tumour prior")


class UNet(nn.Module):
    """A U-Net whose five 'Improved U-Net' changes and attention gates are switches.

    Build the course's models by name with :func:`~unet_lib.models.build_model` (``"classic"``,
    ``"improved"``, ``"attention"``); :attr:`preset_name` says which one a model is.

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

        #: One :class:`DecoderLevel` per skip, deepest first: ``decoder[i]`` ends at level
        #: ``depth - 1 - i``, width ``widths[depth - 1 - i]``.
        self.decoder = nn.ModuleList(
            DecoderLevel(widths[level + 1], widths[level], additive_skips=additive_skips,
                         attention=attention, inter_channels=inter_channels, **block)
            for level in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        #: The image side it was trained at (set by ``fit`` and ``load_model``); ``None`` for a
        #: model not trained yet. Predicting at another size warns (``TrainedSizeWarning``).
        self.trained_image_size: int | None = None
        #: The threshold it was validated at (set likewise): scoring's default, else 0.5.
        self.trained_threshold: float | None = None
        self.reset_weights()

    def reset_weights(self) -> None:
        """Start the model: without batch norm (the Classic and the Attention U-Net) every
        convolution as the U-Net paper does (Ronneberger et al. 2015: Gaussian, std √(2/N), N
        the inputs of one unit — He et al.'s rule for ReLU networks) with biases at 0; with
        batch norm PyTorch's default; in both the head's biases at the tumour prior.

        ``kaiming_normal_`` takes N as PyTorch's ``fan_in``: for a convolution, input channels
        × kernel area, exactly the inputs of one unit. For the 2×2, stride-2 up-convolutions
        (``ConvTranspose2d``, weight ``(C_in, C_out, 2, 2)``) it counts ``C_out · 4 = 2·C_in``
        while a unit there sees ``C_in`` inputs (one tap of each channel), so these four layers
        start with std √(1/C_in), √2 narrower than the rule. The course keeps PyTorch's count
        (its measured results and cached runs were made so).

        PyTorch's default draws weights with a third of He's variance. Through the ten
        convolution + ReLU layers down to a Classic U-Net's bottleneck the signal then shrinks
        to about 1/10,000 of the input's, and training spends its first epochs growing it back:
        on the quick phantom the Classic found the tumour core only in epoch 7 of 12 (test TC
        Dice 0.75); from He's start in epoch 3 (0.90). Batch norm rescales the signal at every
        level whatever the start; the Improved U-Net from He's start did worse (test TC 0.76
        instead of 0.92: its residual branches then outweigh the identity), so it keeps the
        default.
        """
        if not self.hparams["batch_norm"]:
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module is not self.head:
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
        # Tumour is rare (about 1 % of BraTS pixels): start the head at that prior, so that
        # the first steps learn where tumour is rather than how rare it is.
        nn.init.constant_(self.head.bias, math.log(PRIOR / (1 - PRIOR)))

    @property
    def preset_name(self) -> str:
        """``"classic"``, ``"improved"`` or ``"attention"`` when the switches (all arguments but
        the sizes ``in_channels``, ``out_channels``, ``base_filters``, ``depth`` and
        ``inter_channels``) are a preset's, else ``"custom"``."""
        from .presets import preset_of  # presets builds UNets: import it when first asked

        return preset_of(self.hparams)

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{k}={self.hparams[k]}"
                          for k in ("in_channels", "out_channels", "base_filters", "depth"))
        return f"preset={self.preset_name!r}, {sizes}"

    @property
    def size_multiple(self) -> int:
        """Internal sizes must be multiples of this; other inputs are padded up to one."""
        return 2 ** self.depth

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
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
        for decoder_level in self.decoder:
            x, alpha = decoder_level(x, skips.pop())
            if alpha is not None:
                maps.append(alpha)
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


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
