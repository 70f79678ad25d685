"""Ablations of the Improved U-Net: its five changes switched on one by one, or off one at a time.

The facts come from :mod:`.presets` alone: a change is "on" as in :data:`IMPROVEMENTS` and
"off" as in the ``"classic"`` preset. Chapter 2 of the book tabulates the parameter counts
(:func:`improvement_table`); its lab switches one change off (:func:`improved_without`).

Switching batch norm changes how a model starts too: a model without batch norm starts from
He's initialisation, one with it from PyTorch's default (:meth:`UNet.reset_weights` says
why). Its parameter counts are the change's alone; a trained ``improved_without("batch_norm")``
differs from the Improved U-Net in both.

Example:
    >>> [row["change"] for row in improvement_table(base_filters=8)]
    ['separable', 'batch_norm', 'kernel_7x7', 'inverse_bottleneck', 'additive_skips']
"""

from __future__ import annotations

from .presets import IMPROVEMENTS, PRESETS, build_model
from .unet import UNet, count_parameters


def _check(name: str) -> None:
    if name not in IMPROVEMENTS:
        raise ValueError(f"unknown improvement {name!r}; choose one of {', '.join(IMPROVEMENTS)}")


def improvement_off(name: str) -> dict:
    """The ``UNet`` arguments that switch improvement ``name`` off: the classic preset's values.

    Example:
        >>> improvement_off("kernel_7x7")
        {'kernel_size': 3}
    """
    _check(name)
    return {key: PRESETS["classic"][key] for key in IMPROVEMENTS[name]}


def improved_without(name: str, base_filters: int = 32) -> UNet:
    """The Improved U-Net with improvement ``name`` (a key of :data:`IMPROVEMENTS`) off.

    Raises:
        ValueError: ``name`` is not an improvement (the message lists them).
    """
    return build_model("improved", base_filters=base_filters, **improvement_off(name))


def classic_with(name: str, base_filters: int = 32) -> UNet:
    """The Classic U-Net with only improvement ``name`` (a key of :data:`IMPROVEMENTS`) on."""
    _check(name)
    return build_model("classic", base_filters=base_filters, **IMPROVEMENTS[name])


def cumulative_improvements(base_filters: int = 32) -> dict[str, UNet]:
    """The Classic U-Net with the five changes applied in turn, in the order of the slides.

    Returns:
        Change name → the model with that change and every one before it on; the first is
        the classic plus separable convolutions, the last (``"additive_skips"``) has the
        improved preset's switches and parameter count.
    """
    models, switches = {}, {}
    for name, on in IMPROVEMENTS.items():
        switches.update(on)
        models[name] = build_model("classic", base_filters=base_filters, **switches)
    return models


def improvement_table(base_filters: int = 32) -> list[dict]:
    """Chapter 2's table: what each change does to the parameter count, alone and in turn.

    Returns:
        One row per change, in the slides' order: ``{"change": name, "alone": parameters of
        the classic with only this change, "alone vs Classic": that ÷ the classic's,
        "in turn": parameters with this change and all before it, "in turn vs Classic": that
        ÷ the classic's}``. The last row's ``"in turn"`` is the Improved U-Net's count.
    """
    classic = count_parameters(build_model("classic", base_filters=base_filters))
    in_turn = cumulative_improvements(base_filters)
    rows = []
    for name in IMPROVEMENTS:
        alone = count_parameters(classic_with(name, base_filters))
        cumulative = count_parameters(in_turn[name])
        rows.append({"change": name, "alone": alone, "alone vs Classic": alone / classic,
                     "in turn": cumulative, "in turn vs Classic": cumulative / classic})
    return rows
