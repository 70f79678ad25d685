"""The course's three U-Nets as presets: named settings of :class:`~.unet.UNet`'s switches.

A preset fixes the switches (``separable``, ``batch_norm``, ``kernel_size``, ``expansion``,
``additive_skips``, ``attention``) and leaves the sizes free (``in_channels``,
``out_channels``, ``base_filters``, ``depth``, ``inter_channels``):

* ``"classic"``: Ronneberger et al. 2015, every switch off (``UNet()``'s defaults).
* ``"improved"``: the classic with the five :data:`IMPROVEMENTS` of the slides on.
* ``"attention"``: the classic with an attention gate on every skip (Oktay et al. 2018).

Example:
    >>> model = build_model("improved", base_filters=16)
    >>> model.preset_name, build_model("improved", kernel_size=3).preset_name
    ('improved', 'custom')
"""

from __future__ import annotations

from .unet import UNet

#: The five changes of the Improved U-Net, in the slides' order, each as the ``UNet``
#: arguments that switch it on.
IMPROVEMENTS: dict[str, dict] = {
    "separable": dict(separable=True),
    "batch_norm": dict(batch_norm=True),
    "kernel_7x7": dict(kernel_size=7),
    "inverse_bottleneck": dict(expansion=4),
    "additive_skips": dict(additive_skips=True),
}

_CLASSIC = dict(separable=False, batch_norm=False, kernel_size=3, expansion=1,
                additive_skips=False, attention=False)

#: Preset name → the ``UNet`` keyword arguments that make it (every switch, no size).
PRESETS: dict[str, dict] = {
    "classic": _CLASSIC,
    "improved": {**_CLASSIC, **{k: v for on in IMPROVEMENTS.values() for k, v in on.items()}},
    "attention": {**_CLASSIC, "attention": True},
}

#: What :func:`preset_of` calls a model whose switches are no preset's.
CUSTOM = "custom"


def preset_of(hparams: dict) -> str:
    """The name of the preset whose switches all equal those in ``hparams``, else ``"custom"``.

    Args:
        hparams: ``UNet`` keyword arguments, e.g. :attr:`UNet.hparams`; sizes are ignored.
    """
    for name, preset in PRESETS.items():
        if all(hparams.get(key) == value for key, value in preset.items()):
            return name
    return CUSTOM


def build_model(name: str, **overrides) -> UNet:
    """``UNet(**{**PRESETS[name], **overrides})``: a course model by name.

    Args:
        name: ``"classic"``, ``"improved"`` or ``"attention"``.
        **overrides: ``UNet`` arguments: sizes (``in_channels``, ``base_filters``, ...) or
            switches, which make a ``"custom"`` model when they leave the preset.

    Raises:
        ValueError: ``name`` is not a preset (the message lists them).
    """
    try:
        preset = PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model name {name!r}; choose one of "
                         f"{', '.join(repr(n) for n in PRESETS)}") from None
    return UNet(**{**preset, **overrides})


# The names the book calls: factories, not subclasses (every model is a UNet).

def ClassicUNet(in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                depth: int = 4, **overrides) -> UNet:
    """The baseline U-Net (Ronneberger et al. 2015): per level two 3×3 conv + ReLU, max-pool
    down, 2×2 transposed conv up, concatenated skips, 1×1 head. 7.76 M parameters at
    ``base_filters=32``. ``build_model("classic", ...)``.

    Example:
        >>> import torch
        >>> model = ClassicUNet(in_channels=4, out_channels=3, base_filters=32)
        >>> model(torch.zeros(1, 4, 240, 240)).shape
        torch.Size([1, 3, 240, 240])
    """
    return build_model("classic", in_channels=in_channels, out_channels=out_channels,
                       base_filters=base_filters, depth=depth, **overrides)


def ImprovedUNet(in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                 depth: int = 4, **overrides) -> UNet:
    """The Classic U-Net with the five changes of the course on. ``build_model("improved")``.

    Each level is one :class:`~.layers.InvertedBottleneckBlock` — a 1×1 projection to the
    level's width where it changes, then 7×7 depthwise conv → BatchNorm → 1×1 expand ×4 →
    ReLU → 1×1 compress, added to the projected input, → ReLU — and the decoder adds skips
    instead of concatenating them. 4.44 M parameters at ``base_filters=32`` against the
    Classic's 7.76 M. Any change can be switched off by its argument, e.g.
    ``ImprovedUNet(kernel_size=3)`` (see :data:`IMPROVEMENTS` and
    :func:`~.ablation.improved_without`).
    """
    return build_model("improved", in_channels=in_channels, out_channels=out_channels,
                       base_filters=base_filters, depth=depth, **overrides)


def AttentionUNet(in_channels: int = 4, out_channels: int = 3, base_filters: int = 32,
                  depth: int = 4, **overrides) -> UNet:
    """The Classic U-Net with an additive attention gate on each of its ``depth`` skips.
    ``build_model("attention")``; ``inter_channels`` sets the gates' width (default half the
    skip's).

    ``model(x, return_attention=True)`` returns ``(logits, maps)``; see :meth:`UNet.forward`
    for the order and shapes of the maps.
    """
    return build_model("attention", in_channels=in_channels, out_channels=out_channels,
                       base_filters=base_filters, depth=depth, **overrides)


#: Preset name → the factory that builds it (``name in MODELS``, ``for name in MODELS``).
MODELS = {"classic": ClassicUNet, "improved": ImprovedUNet, "attention": AttentionUNet}
