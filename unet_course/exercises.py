"""Coding exercises: the student writes a piece of a U-Net (or, in chapter 7, of the clean-up
after one), and a check runs it against ``unet_lib``'s own implementation on random inputs
and explains the first difference it finds.

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
from unet_lib.models import AttentionGate, DoubleConv, SeparableConv2d

from .checking import NotYet, code_answered, is_number, plain, raised
from .module_checks import check_module, compare_tensors
# chapter 7's exercise, a clean-up after the model, lives in a module of its own
from .cleanup_exercise import check_keep_largest, largest_piece_masks  # noqa: F401
from .forward_exercise import WIDTH_ERROR, check_unet_forward  # noqa: F401
from .training_exercise import check_train_step  # noqa: F401


def check_double_conv(build: Callable[[int, int], nn.Module]) -> None:
    """``build(in_channels, out_channels)`` must give the Classic U-Net's level: 3×3 conv
    (padding 1, bias) → ReLU → 3×3 conv → ReLU (:class:`unet_lib.models.DoubleConv`)."""
    torch.manual_seed(0)
    check_module(build, [(DoubleConv(4, 8), (4, 8)), (DoubleConv(3, 5), (3, 5))],
                 "double convolution", count_hints=lambda c_in, c_out: {
                     4 * c_out: "batch norm belongs to the Improved U-Net (chapter 2); the "
                     "Classic U-Net's level is convolution and ReLU, twice"},
                 hint="two 3×3 convolutions with padding=1 (the size must not change), each "
                 "followed by a ReLU; the second maps out_channels to out_channels")


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


def check_scores(scores: Callable[[float, float, float], tuple]) -> None:
    """``scores(tp, fp, fn)`` must return ``(dice, precision, recall)`` as numbers, for counts
    with at least one of them non-zero; a score whose denominator is 0 (nothing predicted, or
    nothing to find) is 0, as in :func:`unet_lib.metrics.scores_from_counts`."""
    torch.manual_seed(0)
    # ordinary counts first (a None there is the skeleton's), the special cases last
    counts = torch.randint(1, 50, (20, 3)).double()
    counts[-3] = torch.tensor([0.0, 3.0, 4.0])  # no overlap at all
    counts[-2] = torch.tensor([0.0, 0.0, 5.0])  # nothing predicted: TP + FP = 0
    counts[-1] = torch.tensor([0.0, 5.0, 0.0])  # nothing to find: TP + FN = 0
    names = ("Dice", "precision", "recall")
    for number, (tp, fp, fn) in enumerate(counts.tolist()):
        if tp + fp + fn == 0:
            continue
        try:
            result = scores(tp, fp, fn)
        except ZeroDivisionError:
            raise NotYet(f"Not yet: scores({tp:g}, {fp:g}, {fn:g}) divides by zero. Hint: with "
                         f"TP + FP = 0 nothing was predicted, with TP + FN = 0 there was nothing "
                         f"to find; unet_lib scores a ratio with a zero denominator 0 "
                         f"(test for it before dividing).") from None
        except Exception as error:  # the student's code: what it raised, not a traceback
            raise raised(f"scores({tp:g}, {fp:g}, {fn:g})", error) from None
        if not code_answered(result, f"scores({tp:g}, {fp:g}, {fn:g})" if number else None,
                             "a score whose denominator is 0 is 0 in unet_lib: return it "
                             "with the other two"):
            return
        result = plain(result)  # an array or tensor of three scores is a list of three
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise NotYet(f"Not yet: scores(tp, fp, fn) should return a tuple of three numbers, "
                         f"(dice, precision, recall), not {type(result).__name__}"
                         + (f" of {len(result)}" if isinstance(result, (tuple, list)) else "")
                         + ".")
        expected = scores_from_counts(*(torch.tensor(v, dtype=torch.float64)
                                        for v in (tp, fp, fn)))
        empty = {"Dice": 2 * tp + fp + fn == 0, "precision": tp + fp == 0,  # what a zero
                 "recall": tp + fn == 0}  # denominator means is said in the hint
        nothing = {"precision": "nothing predicted", "recall": "nothing to find"}
        right = [expected[key].item() for key in ("dice", "precision", "recall")]
        given = [float(plain(v)) if is_number(plain(v)) else None for v in result]
        close = [[abs(g - r) <= 1e-6 for r in right] for g in given if g is not None]
        if (len(close) == 3 and not all(close[i][i] for i in range(3))  # the same three,
                and all(any(row) for row in close) and len({round(r, 6) for r in right}) == 3):
            # in another order (told only where the three differ)
            raise NotYet(f"Not yet: for TP={tp:g}, FP={fp:g}, FN={fn:g} your three scores are "
                         f"the right ones in another order. Hint: return (dice, precision, "
                         f"recall), in that order.")
        for name, yours, key in zip(names, result, ("dice", "precision", "recall")):
            yours = plain(yours)
            if not is_number(yours):
                raise NotYet(f"Not yet: your {name} for TP={tp:g}, FP={fp:g}, FN={fn:g} is "
                             f"{yours!r}, a {type(yours).__name__}: return numbers.")
            gap = abs(float(yours) - expected[key].item())
            if not gap <= 1e-6:  # NaN is not it either
                if empty[name]:
                    hint = (f"its denominator is 0 here ({nothing.get(name, 'no pixel')}); "
                            f"unet_lib scores such a ratio 0, not NaN or 1")
                elif float(yours) == 0 and tp > 0:
                    hint = ("it is 0 though TP > 0: divide with /, not // (which rounds "
                            "down to a whole number)")
                elif any(round(expected[key].item(), d) == float(yours) for d in range(1, 7)):
                    hint = "that is the score rounded: return it unrounded"
                else:
                    hint = ("write each score from the counts alone; check which count belongs "
                            "in the denominator")
                raise NotYet(f"Not yet: your {name} for TP={tp:g}, FP={fp:g}, FN={fn:g} is "
                             f"{float(yours):.6g}, which is not it. Hint: {hint}.")
    print(f"Right: Dice, precision and recall agree with unet_lib.metrics on {len(counts)} "
          f"counts, those with a zero denominator included.")


def gate_forward_solution(x, g, w_x, w_g, psi) -> torch.Tensor:
    """The solution of the gate exercise (the book's folded cell shows the same lines)."""
    gating = F.interpolate(w_g(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return torch.sigmoid(psi(F.relu(w_x(x) + gating)))
