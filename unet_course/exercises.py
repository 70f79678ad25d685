"""Coding exercises: the student writes a piece of a U-Net, and a check runs it against
``unet_lib``'s own implementation on random inputs and explains the first difference it finds.

Each exercise has a skeleton in its chapter (a function whose body is ``...``), a check, and a
folded solution. A skeleton that is still ``...`` returns ``None``: the check then prints
``Not answered yet`` instead of failing, so a notebook with open exercises still runs.

>>> def double_conv(in_channels, out_channels):
...     ...                                   # the student's code goes here
>>> check_double_conv(double_conv)
Not answered yet: ...
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from unet_lib.metrics import scores_from_counts
from unet_lib.models import AttentionGate, DoubleConv, SeparableConv2d, count_parameters

from .checking import NotYet

NOT_ANSWERED = "Not answered yet: fill in the function above (replace the ...) and run both cells."


def _answered(result) -> bool:
    if result is None or result is Ellipsis:
        print(NOT_ANSWERED)
        return False
    return True


def _copy_weights(source: nn.Module, target: nn.Module, what: str) -> None:
    """Load ``source``'s parameters into ``target`` in order of creation (names may differ)."""
    student_params, reference_params = list(source.parameters()), list(target.parameters())
    student_shapes = [tuple(p.shape) for p in student_params]
    reference_shapes = [tuple(p.shape) for p in reference_params]
    if student_shapes != reference_shapes:
        raise NotYet(f"Not yet: your {what} has parameters of shapes {student_shapes}, in the "
                     f"order they are created; unet_lib's has {reference_shapes}. Hint: check "
                     f"each layer's channels, kernel size and bias, and create them in the order "
                     f"they run.")
    with torch.no_grad():
        for reference_param, student_param in zip(reference_params, student_params):
            reference_param.copy_(student_param)


def _compare(yours: torch.Tensor, reference: torch.Tensor, what: str, hint: str) -> None:
    if not isinstance(yours, torch.Tensor):
        raise NotYet(f"Not yet: {what} should be a tensor, got {type(yours).__name__}.")
    if yours.shape != reference.shape:
        raise NotYet(f"Not yet: {what} has shape {tuple(yours.shape)}; unet_lib's has "
                     f"{tuple(reference.shape)}. Hint: {hint}")
    if not torch.allclose(yours, reference, atol=1e-5, rtol=1e-4):
        worst = (yours - reference).abs().flatten().argmax().item()
        raise NotYet(f"Not yet: {what} has the right shape but different values (the largest "
                     f"difference is at flat position {worst}). Hint: {hint}")


def _module_check(build: Callable[..., nn.Module], reference: nn.Module, args: tuple,
                  what: str, hint: str) -> None:
    module = build(*args)
    if not _answered(module):
        return
    if not isinstance(module, nn.Module):
        raise NotYet(f"Not yet: {what} should return an nn.Module, got {type(module).__name__}.")
    if count_parameters(module) != count_parameters(reference):
        difference = count_parameters(module) - count_parameters(reference)
        raise NotYet(f"Not yet: your {what} has {abs(difference):,} parameters "
                     f"{'too many' if difference > 0 else 'too few'}. Hint: {hint}")
    _copy_weights(module, reference, what)
    x = torch.randn(2, args[0], 12, 12)
    module.eval()
    reference.eval()
    with torch.no_grad():
        _compare(module(x), reference(x), f"the output of your {what}", hint)
    print(f"Right: your {what} computes what unet_lib's does, on random inputs.")


def check_double_conv(build: Callable[[int, int], nn.Module]) -> None:
    """``build(in_channels, out_channels)`` must give the Classic U-Net's level: 3×3 conv
    (padding 1, bias) → ReLU → 3×3 conv → ReLU (:class:`unet_lib.models.DoubleConv`)."""
    torch.manual_seed(0)
    _module_check(build, DoubleConv(4, 8), (4, 8), "double convolution",
                  "two 3×3 convolutions with padding=1 (the size must not change), each "
                  "followed by a ReLU; the second maps out_channels to out_channels")


def check_separable_conv(build: Callable[[int, int, int], nn.Module]) -> None:
    """``build(in_channels, out_channels, kernel_size)`` must give a depthwise k×k convolution
    (one filter per channel: ``groups=in_channels``, padding k//2, no bias) followed by a 1×1
    pointwise convolution with bias (:class:`unet_lib.models.SeparableConv2d`)."""
    torch.manual_seed(0)
    _module_check(build, SeparableConv2d(6, 10, 7), (6, 10, 7),
                  "depthwise-separable convolution",
                  "depthwise: nn.Conv2d(C_in, C_in, k, padding=k // 2, groups=C_in, bias=False); "
                  "then pointwise: nn.Conv2d(C_in, C_out, 1)")


def check_gate_forward(forward: Callable[..., torch.Tensor]) -> None:
    """``forward(x, g, w_x, w_g, psi)`` must return the gate's coefficients α (N, 1, h, w):
    ``σ(ψ(ReLU(W_x·x + up(W_g·g))))`` with ``up`` a bilinear resize to x's size
    (:class:`unet_lib.models.AttentionGate`)."""
    torch.manual_seed(0)
    gate = AttentionGate(skip_channels=6, gate_channels=12, inter_channels=4).eval()
    x, g = torch.randn(2, 6, 16, 16), torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        alpha = forward(x, g, gate.w_x, gate.w_g, gate.psi)
        if not _answered(alpha):
            return
        _, reference = gate(x, g)
        _compare(alpha, reference, "your α",
                 "project both (w_x(x), w_g(g)), resize the projected g to x's size with "
                 "F.interpolate(..., size=x.shape[-2:], mode='bilinear', align_corners=False), "
                 "add, ReLU, psi, then a sigmoid")
    print("Right: your gate's α equals unet_lib's AttentionGate on random inputs.")


def check_scores(scores: Callable[[float, float, float], tuple]) -> None:
    """``scores(tp, fp, fn)`` must return ``(dice, precision, recall)`` as numbers, for counts
    with at least one of them non-zero; a score whose denominator is 0 (nothing predicted, or
    nothing to find) is 0, as in :func:`unet_lib.metrics.scores_from_counts`."""
    torch.manual_seed(0)
    counts = torch.randint(0, 50, (20, 3)).double()
    counts[0] = torch.tensor([0.0, 3.0, 4.0])  # no overlap at all
    counts[1] = torch.tensor([0.0, 0.0, 5.0])  # nothing predicted: TP + FP = 0
    counts[2] = torch.tensor([0.0, 5.0, 0.0])  # nothing to find: TP + FN = 0
    names = ("Dice", "precision", "recall")
    for tp, fp, fn in counts.tolist():
        if tp + fp + fn == 0:
            continue
        try:
            result = scores(tp, fp, fn)
        except ZeroDivisionError:
            raise NotYet(f"Not yet: scores({tp:g}, {fp:g}, {fn:g}) divides by zero. Hint: with "
                         f"TP + FP = 0 nothing was predicted, with TP + FN = 0 there was nothing "
                         f"to find; unet_lib scores a ratio with a zero denominator 0 "
                         f"(test for it before dividing).") from None
        if not _answered(result):
            return
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise NotYet(f"Not yet: scores(tp, fp, fn) should return a tuple of three numbers, "
                         f"(dice, precision, recall), not {type(result).__name__}"
                         + (f" of {len(result)}" if isinstance(result, (tuple, list)) else "")
                         + ".")
        expected = scores_from_counts(*(torch.tensor(v, dtype=torch.float64)
                                        for v in (tp, fp, fn)))
        for name, yours, key in zip(names, result, ("dice", "precision", "recall")):
            if not abs(float(yours) - expected[key].item()) <= 1e-6:  # NaN is not it either
                raise NotYet(f"Not yet: your {name} for TP={tp:g}, FP={fp:g}, FN={fn:g} is "
                             f"{float(yours):.4f}, which is not it. Hint: write each score from "
                             f"the counts alone; check which count belongs in the denominator.")
    print(f"Right: Dice, precision and recall agree with unet_lib.metrics on {len(counts)} "
          f"counts, those with a zero denominator included.")


def gate_forward_solution(x, g, w_x, w_g, psi) -> torch.Tensor:
    """The solution of the gate exercise (the book's folded cell shows the same lines)."""
    gating = F.interpolate(w_g(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return torch.sigmoid(psi(F.relu(w_x(x) + gating)))
