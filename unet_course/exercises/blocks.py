"""Coding exercises of chapters 1 to 3: the Classic U-Net's level (two 3×3 convolutions), the
Improved U-Net's depthwise-separable convolution, and an attention gate's forward pass, each
run against ``unet_lib``'s own on random inputs. (Re-exported by :mod:`unet_course.exercises`,
where the notebooks call them.)"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from unet_lib.models import AttentionGate, DoubleConv, SeparableConv2d

from ..checking import NotYet, code_answered, own_randomness, raised
from .forward import WIDTH_ERROR
from .module_checks import check_module, compare_tensors


@own_randomness
def check_double_conv(build: Callable[[int, int], nn.Module]) -> None:
    """``build(in_channels, out_channels)`` must give the Classic U-Net's level: 3×3 conv
    (padding 1, bias) → ReLU → 3×3 conv → ReLU (:class:`unet_lib.models.DoubleConv`)."""
    torch.manual_seed(0)
    check_module(build, [(DoubleConv(4, 8), (4, 8)), (DoubleConv(3, 5), (3, 5))],
                 "double convolution", count_hints=lambda c_in, c_out: {
                     4 * c_out: "batch norm belongs to the Improved U-Net (chapter 2); the "
                     "Classic U-Net's level is convolution and ReLU, twice",
                     2 * c_out: "batch norm belongs to the Improved U-Net (chapter 2); the "
                     "Classic U-Net's level is convolution and ReLU, twice, each "
                     "convolution with a bias",
                     -2 * c_out: "each convolution has a bias (nn.Conv2d's default, "
                     "bias=True): the Classic U-Net keeps them"},
                 hint="two 3×3 convolutions with padding=1 (the size must not change), each "
                 "followed by a ReLU; the second maps out_channels to out_channels")


@own_randomness
def check_separable_conv(build: Callable[[int, int, int], nn.Module]) -> None:
    """``build(in_channels, out_channels, kernel_size)`` must give a depthwise k×k convolution
    (one filter per channel: ``groups=in_channels``, padding k//2, no bias) followed by a 1×1
    pointwise convolution with bias (:class:`unet_lib.models.SeparableConv2d`)."""
    torch.manual_seed(0)
    cases = [(SeparableConv2d(*args), args) for args in ((6, 10, 7), (4, 5, 3))]
    check_module(build, cases, "depthwise-separable convolution",
                 "first the depthwise part, one k×k filter per input channel that keeps the "
                 "size (padding kernel_size // 2), then the pointwise part mixing the "
                 "channels; nothing between them", count_hints=lambda c_in, c_out, k: {
                     c_in * (c_in - 1) * k * k: "is your depthwise layer a full convolution? "
                     "Each of its filters should see one channel only (groups)",
                     c_in: "unet_lib's depthwise layer has no bias (the pointwise one's "
                     "follows it at once)",
                     -c_out: "the pointwise layer has a bias",
                     c_in * c_out * (k * k - 1): "the pointwise layer is 1×1"})


@own_randomness
def check_gate_forward(forward: Callable[..., torch.Tensor]) -> None:
    """``forward(x, g, w_x, w_g, psi)`` must return the gate's coefficients α (N, 1, h, w):
    ``σ(ψ(ReLU(W_x·x + up(W_g·g))))`` with ``up`` a bilinear resize to x's size
    (:class:`unet_lib.models.AttentionGate`)."""
    torch.manual_seed(0)
    gate = AttentionGate(skip_channels=6, gate_channels=12, inter_channels=4).eval()
    # 16 → 8 halves exactly; 25 → 13 does not (a 100-pixel input's third level): a forward
    # that doubles g's size instead of matching x's fails there, as it would in the model
    for x_size, g_size in ((16, 8), (25, 13)):
        x, g = torch.randn(2, 6, x_size, x_size), torch.randn(2, 12, g_size, g_size)
        with torch.no_grad():
            try:
                alpha = forward(x, g, gate.w_x, gate.w_g, gate.psi)
            except Exception as error:  # the student's code: a hint, not a traceback
                sizes = any(words in str(error) for words in (  # added, or concatenated
                    "size of tensor", "must match the size", "Sizes of tensors must match"))
                width = WIDTH_ERROR.search(str(error))  # ψ given twice its width: concatenated
                joined = width is not None and int(width[4]) == 2 * int(width[3])
                raise raised(f"with x {x_size}×{x_size} and g {g_size}×{g_size} your forward",
                             error, ". Hint: the projected gating signal is coarser than x; "
                             "bring it to x's own height and width before adding the two."
                             if sizes else ". Hint: add the two projections, W_x·x + "
                             "up(W_g·g), rather than concatenating them: ψ takes the "
                             "intermediate width once." if joined else ".") from None
            if not code_answered(alpha):
                return
            _, reference = gate(x, g)
            _gate_mistake(alpha, reference, x)
            compare_tensors(alpha, reference,
                            f"your α for x {x_size}×{x_size}, g {g_size}×{g_size}",
                            "project both with their 1×1 convolutions, resize the projected g "
                            "to x's size (bilinear, as unet_lib's gate: align_corners=False), "
                            "add, ReLU, ψ, then a sigmoid")
    print("Right: your gate's α equals unet_lib's AttentionGate on random inputs.")


def _gate_mistake(alpha, reference: torch.Tensor, x: torch.Tensor) -> None:
    """Raise :class:`NotYet` for the gate's usual slips that a bare comparison only calls
    "other values": α outside [0, 1], a sigmoid too many, the gated skip returned."""
    if not isinstance(alpha, torch.Tensor):
        return
    if alpha.shape == x.shape and alpha.shape != reference.shape:
        raise NotYet("Not yet: your forward returned a tensor of the skip's shape. Hint: "
                     "return α itself, (N, 1, h, w); the gate multiplies the skip by it later.")
    if alpha.shape == reference.shape and (alpha.min() < 0 or alpha.max() > 1):
        raise NotYet("Not yet: your α goes outside [0, 1]. Hint: the gate's coefficients "
                     "come out of a sigmoid, ψ's output's last step.")
    if alpha.shape == reference.shape and torch.allclose(alpha, torch.sigmoid(reference),
                                                         atol=1e-5, rtol=1e-4):
        raise NotYet("Not yet: your α is the right one passed through a sigmoid once more. "
                      "Hint: one sigmoid, after ψ; ψ itself is a plain 1×1 convolution.")


def gate_forward_solution(x, g, w_x, w_g, psi) -> torch.Tensor:
    """The solution of the gate exercise (the book's folded cell shows the same lines)."""
    gating = F.interpolate(w_g(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return torch.sigmoid(psi(F.relu(w_x(x) + gating)))
