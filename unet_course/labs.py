"""Self-checks for the lab exercises at the end of each chapter.

Each ``check_*`` function takes the student's answer, works the right answer out with
``unet_lib`` itself, and

* prints ``Not answered yet`` when the answer is still ``None`` (so that running a notebook
  with empty exercises does not stop it),
* prints ``Right`` with a short explanation when it matches,
* raises :class:`NotYet` (an ``AssertionError``) with a hint when it does not.

The book's solution cells call the same checks, so CI runs every exercise with its solution.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from unet_lib.metrics import best_threshold_of_slice, whole_tumour_dice
from unet_lib.metrics import dice, precision, recall
from unet_lib.models import AttentionGate, ClassicUNet, SeparableConv2d
from unet_lib.models import IMPROVEMENTS, AttentionUNet, count_parameters
from unet_lib.models.ablation import improved_without  # the book calls labs.improved_without


class NotYet(AssertionError):
    """A lab answer that does not match; the message says what was expected and a hint."""


def _unanswered(answer) -> bool:
    if answer is None or answer is Ellipsis:
        print("Not answered yet: replace None with your answer and run this cell again.")
        return True
    return False


def _check(answer, expected, what: str, hint: str, tolerance: float = 0.0) -> None:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        ok = isinstance(answer, (int, float)) and math.isclose(
            float(answer), float(expected), rel_tol=tolerance, abs_tol=1e-9)
    else:
        ok = answer == expected
    if not ok:
        raise NotYet(f"Not yet: {what} is {expected!r} here, your answer {answer!r}. "
                     f"Hint: {hint}")
    print(f"Right: {what} is {expected!r}.")


# --- chapter 1: the Classic U-Net -----------------------------------------------------------

def check_first_level_parameters(answer, base_filters: int = 32) -> None:
    """Parameters of the Classic U-Net's first level: two 3×3 convolutions with bias,
    4 → ``base_filters`` → ``base_filters``."""
    if _unanswered(answer):
        return
    expected = count_parameters(ClassicUNet(base_filters=base_filters).encoder[0])
    _check(answer, expected, f"the first level's parameter count ({base_filters} filters)",
           "a k×k convolution from C_in to C_out has C_in·C_out·k² weights and C_out biases; "
           "add the two convolutions")


def check_bottleneck_shape(answer, image_size: int = 240, base_filters: int = 32) -> None:
    """Shape (N, C, H, W) of the Classic U-Net's bottleneck features for one
    (1, 4, image_size, image_size) input."""
    if _unanswered(answer):
        return
    model = ClassicUNet(base_filters=base_filters).eval()
    seen = {}

    def remember_shape(module, inputs, output) -> None:
        seen["shape"] = output.shape

    model.encoder[-1].register_forward_hook(remember_shape)
    with torch.no_grad():
        model(torch.zeros(1, 4, image_size, image_size))
    _check(tuple(answer), tuple(seen["shape"]), "the bottleneck's shape",
           "four 2×2 max-pools halve the size four times; the width doubles at each level")


# --- chapter 2: the Improved U-Net ----------------------------------------------------------

def check_separable_parameters(answer, channels: int = 64, kernel_size: int = 7) -> None:
    """Parameters of a depthwise-separable k×k convolution, ``channels`` → ``channels``, with
    a bias on the pointwise part only."""
    if _unanswered(answer):
        return
    expected = count_parameters(SeparableConv2d(channels, channels, kernel_size))
    _check(answer, expected, f"a separable {kernel_size}×{kernel_size} convolution's parameter "
           f"count ({channels}→{channels})",
           "depthwise: one k×k filter per input channel, no bias; pointwise: a 1×1 "
           "convolution C_in→C_out with bias")


def check_biggest_growth(answer, base_filters: int = 32) -> None:
    """Which single improvement, switched off in the Improved U-Net, adds the most parameters?
    ``answer`` is a key of ``IMPROVEMENTS``."""
    if _unanswered(answer):
        return
    counts = {name: count_parameters(improved_without(name, base_filters))
              for name in IMPROVEMENTS}
    expected = max(counts, key=counts.get)
    table = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    _check(answer, expected, "the change whose removal adds the most parameters",
           f"without each change the counts are: {table}. Which factor multiplies the "
           f"weights of every convolution?")


# --- chapter 3: the Attention U-Net ---------------------------------------------------------

def check_gate_parameters(answer, skip_channels: int = 64, gate_channels: int = 64,
                          inter_channels: int = 16) -> None:
    """Parameters of one attention gate: W_x (1×1, no bias), W_g (1×1, bias), ψ (1×1 to one
    channel, bias)."""
    if _unanswered(answer):
        return
    expected = count_parameters(AttentionGate(skip_channels, gate_channels, inter_channels))
    _check(answer, expected, f"the gate's parameter count (x {skip_channels}, g "
           f"{gate_channels}, intermediate {inter_channels})",
           "each 1×1 convolution has C_in·C_out weights; count the biases of W_g and ψ")


def check_attention_parameters(answer, inter_channels: int, base_filters: int = 32) -> None:
    """Total parameters of the Attention U-Net whose gates all have ``inter_channels``."""
    if _unanswered(answer):
        return
    expected = count_parameters(AttentionUNet(base_filters=base_filters,
                                              inter_channels=inter_channels))
    _check(answer, expected, f"the Attention U-Net's parameter count with intermediate width "
           f"{inter_channels}", "start from the Classic U-Net's count and add four gates, one "
           "per skip, with skip and gate widths 32, 64, 128, 256 (× base_filters/32)")


# --- chapter 4: training ---------------------------------------------------------------------

def check_learning_rate(answer, epoch: int, lr: float = 2e-3, gamma: float = 0.9) -> None:
    """The learning rate used during epoch ``epoch + 1``, i.e. after ``epoch`` decays."""
    if _unanswered(answer):
        return
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    for _ in range(epoch):
        optimizer.step()
        scheduler.step()
    _check(answer, scheduler.get_last_lr()[0], f"the learning rate after {epoch} decays",
           "ExponentialLR multiplies the rate by γ once per epoch", tolerance=1e-3)


def check_steps_per_epoch(answer, n_slices: int, batch_size: int) -> None:
    """Optimizer steps in one epoch over ``n_slices`` training slices (the last, smaller batch
    counts)."""
    if _unanswered(answer):
        return
    _check(answer, len(range(0, n_slices, batch_size)), f"the steps per epoch for {n_slices} "
           f"slices at batch {batch_size}", "divide and round up: a partial last batch is a step")


# --- chapter 5: visualizing a prediction ----------------------------------------------------

def check_mask_colour(answer, channels: Sequence[int] = (0, 1, 1)) -> None:
    """The RGB colour (r, g, b), each 0 or 1, of a pixel whose mask has ``channels`` set."""
    from .viz import mask_to_rgb

    if _unanswered(answer):
        return
    pixel = torch.tensor(channels, dtype=torch.float32).reshape(3, 1, 1)
    expected = tuple(int(v) for v in mask_to_rgb(pixel)[0, 0])
    _check(tuple(int(v) for v in answer), expected, f"the colour of a pixel with channels "
           f"{tuple(channels)} (NCR/NET, ED, ET)", "red = NCR/NET, green = ED, blue = ET; "
           "colours add")


#: the threshold search lives beside the metrics; the labs use it as it is
best_threshold = best_threshold_of_slice


#: answers whose score is this close to the best count as right (the book shows 2 decimals)
TIE = 0.005


def check_best_threshold(answer, probs: torch.Tensor, target: torch.Tensor,
                         thresholds: Sequence[float]) -> None:
    """A threshold (one of ``thresholds``) with the best whole-tumour Dice on a slice; one
    within :data:`TIE` of the best counts too (the slider shows Dice to 2 decimals)."""
    if _unanswered(answer):
        return
    best = best_threshold(probs, target, thresholds)
    best_dice = whole_tumour_dice(probs, target, best)
    if any(math.isclose(answer, t) for t in thresholds) and (
            whole_tumour_dice(probs, target, answer) >= best_dice - TIE):
        answer = best  # a tie on screen
    _check(answer, best, "the threshold with the best whole-tumour Dice on this slice",
           "move the slider and read the WT Dice in the caption", tolerance=1e-6)


# --- chapter 6: performance assessment ------------------------------------------------------

#: the small masks of the hand-computation exercise (1 = tumour)
HAND_PREDICTION = torch.tensor([[1, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
HAND_TARGET = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.float32)


def check_scores_by_hand(dice_answer, precision_answer, recall_answer) -> None:
    """Dice, precision and recall of :data:`HAND_PREDICTION` against :data:`HAND_TARGET`."""
    if any(_unanswered(a) for a in (dice_answer, precision_answer, recall_answer)):
        return
    pred, target = HAND_PREDICTION[None, None], HAND_TARGET[None, None]
    hint = "count TP, FP and FN first; Dice = 2TP / (2TP + FP + FN)"
    _check(dice_answer, dice(pred, target).item(), "Dice", hint, tolerance=1e-2)
    _check(precision_answer, precision(pred, target).item(), "precision", "TP / (TP + FP)",
           tolerance=1e-2)
    _check(recall_answer, recall(pred, target).item(), "recall", "TP / (TP + FN)",
           tolerance=1e-2)


def check_empty_slice_dice(both_empty, only_prediction) -> None:
    """Dice under the BraTS rule for a slice without tumour: when the prediction is empty too,
    and when the prediction marks some pixels."""
    if any(_unanswered(a) for a in (both_empty, only_prediction)):
        return
    empty = torch.zeros(1, 1, 4, 4)
    some = empty.clone()
    some[..., 0, 0] = 1
    hint = "BraTS scores an empty reference as perfect if nothing is predicted, else as a miss"
    _check(both_empty, dice(empty, empty).item(), "Dice with both masks empty", hint)
    _check(only_prediction, dice(some, empty).item(), "Dice with only the prediction non-empty",
           hint)


# --- chapter 7: attention maps --------------------------------------------------------------

def check_gate_sizes(answer, image_size: int, depth: int = 4) -> None:
    """Sizes (h of each h×h map, deepest gate first) of the attention maps for an
    ``image_size``² input."""
    if _unanswered(answer):
        return
    model = AttentionUNet(base_filters=4, depth=depth).eval()
    with torch.no_grad():
        _, maps = model(torch.zeros(1, 4, image_size, image_size), return_attention=True)
    _check([int(a) for a in answer], [m.shape[-1] for m in maps],
           f"the gates' map sizes for {image_size}×{image_size} inputs, deepest first",
           "the gate on the skip of level l works at the size of that level: H / 2^l")


def check_sharpest_gate(answer, contrasts: Sequence[float]) -> None:
    """Index of the gate (deepest first) with the largest of ``contrasts`` (one per gate); a
    gate within :data:`TIE` of the largest counts too."""
    if _unanswered(answer):
        return
    expected = max(range(len(contrasts)), key=lambda i: contrasts[i])
    if isinstance(answer, int) and 0 <= answer < len(contrasts) and (
            contrasts[answer] >= contrasts[expected] - TIE):
        answer = expected  # a tie on screen
    _check(answer, expected, "the gate with the largest contrast",
           "compare the contrasts printed above")
