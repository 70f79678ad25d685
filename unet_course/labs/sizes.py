"""Self-checks of chapters 1 to 3, on the models' sizes: parameters of a level, a separable
convolution, a gate and a whole Attention U-Net, the bottleneck's shape, and which improvement
saves the most. (Re-exported by :mod:`unet_course.labs`, where the notebooks call them; how the
checks answer is :mod:`unet_course.checking`.)"""

from __future__ import annotations

import torch
from torch import nn

from unet_lib.models import IMPROVEMENTS, AttentionGate, AttentionUNet, ClassicUNet
from unet_lib.models import SeparableConv2d, count_parameters
from unet_lib.models.ablation import improved_without

from ..checking import NotYet, check, own_randomness, plain, unanswered


# --- chapter 1: the Classic U-Net -----------------------------------------------------------

@own_randomness
def check_first_level_parameters(answer, base_filters: int = 32) -> None:
    """Exercise 1.1. Parameters of the Classic U-Net's first level: two 3×3 convolutions with
    bias, 4 → ``base_filters`` → ``base_filters``."""
    _check_parameter_count(
        answer, "1.1", ClassicUNet(base_filters=base_filters).encoder[0],
        f"the first level's parameter count ({base_filters} filters)",
        "a k×k convolution from C_in to C_out has C_in·C_out·k² weights and C_out biases; add "
        "the two convolutions")


@own_randomness
def check_bottleneck_shape(answer, image_size: int = 240, base_filters: int = 32) -> None:
    """Exercise 1.2. Shape (N, C, H, W) of the Classic U-Net's bottleneck features for one
    (1, 4, image_size, image_size) input."""
    model = ClassicUNet(base_filters=base_filters).eval()
    seen = {}

    def remember_shape(module, inputs, output) -> None:
        seen["shape"] = output.shape

    model.encoder[-1].register_forward_hook(remember_shape)
    with torch.no_grad():
        model(torch.zeros(1, 4, image_size, image_size))
    expected, what = tuple(seen["shape"]), "the bottleneck's shape"
    if unanswered(answer, "1.2", what, expected):
        return
    answer = plain(answer)
    if not isinstance(answer, (tuple, list)):
        raise NotYet(f"Not yet: {what} is a tuple of four numbers (N, C, H, W), not "
                     f"{type(answer).__name__}.")
    check(tuple(answer), expected, what, "four 2×2 max-pools halve the size four times; "
          "the width doubles at each level", exercise="1.2")


# --- chapter 2: the Improved U-Net ----------------------------------------------------------

@own_randomness
def check_separable_parameters(answer, channels: int = 64, kernel_size: int = 7,
                               out_channels: int | None = None) -> None:
    """Exercise 2.1. Parameters of a depthwise-separable k×k convolution, ``channels`` →
    ``out_channels`` (default: the same), with a bias on the pointwise part only."""
    out_channels = out_channels or channels
    _check_parameter_count(
        answer, "2.1", SeparableConv2d(channels, out_channels, kernel_size),
        f"a separable {kernel_size}×{kernel_size} convolution's parameter count "
        f"({channels}→{out_channels})",
        "depthwise: one k×k filter per input channel, no bias; pointwise: a 1×1 convolution "
        "C_in→C_out with bias")


@own_randomness
def check_biggest_growth(answer, base_filters: int = 32) -> None:
    """Exercise 2.2. Which single improvement, switched off in the Improved U-Net, adds the
    most parameters? ``answer`` is a key of ``IMPROVEMENTS``."""
    counts = {name: count_parameters(improved_without(name, base_filters))
              for name in IMPROVEMENTS}
    expected = max(counts, key=counts.get)
    what = "the change whose removal adds the most parameters"
    if unanswered(answer, "2.2", what, expected):
        return
    if not isinstance(answer, str) or answer not in IMPROVEMENTS:
        raise NotYet(f"Not yet: {answer!r} is not a change's name; choose one of "
                     f"{', '.join(IMPROVEMENTS)} (a name, as a string).")
    check(answer, expected, what, f"switching {answer!r} off gives {counts[answer]:,} "
          f"parameters; count improved_without(name) for the others, or read in the "
          f"chapter's table what each change does to a convolution's weights", exercise="2.2")


# --- chapter 3: the Attention U-Net ---------------------------------------------------------

@own_randomness
def check_gate_parameters(answer, skip_channels: int = 64, gate_channels: int = 128,
                          inter_channels: int = 16) -> None:
    """Exercise 3.1. Parameters of one attention gate: W_x (1×1, no bias), W_g (1×1, bias),
    ψ (1×1 to one channel, bias)."""
    _check_parameter_count(
        answer, "3.1", AttentionGate(skip_channels, gate_channels, inter_channels),
        f"the gate's parameter count (x {skip_channels}, g {gate_channels}, intermediate "
        f"{inter_channels})",
        "each 1×1 convolution has C_in·C_out weights; count the biases of W_g and ψ")


@own_randomness
def check_attention_parameters(answer, inter_channels: int, base_filters: int = 32) -> None:
    """Exercise 3.2. Total parameters of the Attention U-Net whose gates all have
    ``inter_channels``."""
    _check_parameter_count(
        answer, "3.2", AttentionUNet(base_filters=base_filters, inter_channels=inter_channels),
        f"the Attention U-Net's parameter count with intermediate width {inter_channels}",
        "start from the Classic U-Net's count and add four gates, one per skip, with skip "
        "widths 32, 64, 128, 256 (× base_filters/32) and gating signals twice as wide")


def _check_parameter_count(answer, exercise: str, module: nn.Module, what: str,
                           hint: str) -> None:
    """Check ``answer`` against ``module``'s parameter count: exercises 1.1, 2.1, 3.1, 3.2."""
    expected = count_parameters(module)
    if not unanswered(answer, exercise, what, expected):
        check(answer, expected, what, hint, exercise=exercise)
