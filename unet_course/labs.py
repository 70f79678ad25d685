"""Self-checks for the lab exercises at the end of each chapter.

Each ``check_*`` function takes the student's answer, works the right answer out with
``unet_lib`` itself, and

* prints ``Not answered yet`` when the answer is still ``None`` (so that running a notebook
  with empty exercises does not stop it),
* prints ``Right`` with a short explanation when it matches,
* raises :class:`NotYet` (an ``AssertionError``) with a hint when it does not: whether the
  answer is too high or too low, or which part of it is off, and what to look at — never the
  expected value itself (:mod:`unet_course.checking`).

The answer is given only on request: ``labs.reveal("1.1")`` prints it once the exercise's check
has run (it needs the exercise's numbers); the book's folded solutions show the working. The
solution cells call the same checks, so CI runs every exercise with its solution. The coding
exercises are in :mod:`unet_course.exercises`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from unet_lib.metrics import whole_tumour_dice
from unet_lib.models import AttentionGate, ClassicUNet, SeparableConv2d
from unet_lib.models import IMPROVEMENTS, AttentionUNet, count_parameters
from unet_lib.models.ablation import improved_without

from .calibration_labs import (FOUR_BINS, check_calibration_error_by_hand,
                               check_temperature_on_a_pixel)
from .checking import (NotYet, asked, check, is_number, plain, reveal, reveal_hint,
                       unanswered)
from .evaluation_labs import (HAND_PREDICTION, HAND_TARGET, TWO_PATIENTS, check_empty_slice_dice,
                              check_patients_to_settle, check_scores_by_hand, check_two_ways)
from .frames import shown_on_slider
from .prediction_labs import check_best_threshold, check_mask_channels

__all__ = ["NotYet", "reveal",  # and the check_* functions below
           # chapter 5, from prediction_labs
           "check_best_threshold", "check_mask_channels",
           # what chapter 5's checks read, for tests that set their questions up
           "shown_on_slider", "whole_tumour_dice",
           # chapters 6 and 7, from evaluation_labs
           "HAND_PREDICTION", "HAND_TARGET", "TWO_PATIENTS", "check_empty_slice_dice",
           "check_patients_to_settle", "check_scores_by_hand", "check_two_ways",
           # chapter 9, from calibration_labs
           "FOUR_BINS", "check_calibration_error_by_hand", "check_temperature_on_a_pixel"]


# --- chapter 1: the Classic U-Net -----------------------------------------------------------

def check_first_level_parameters(answer, base_filters: int = 32) -> None:
    """Exercise 1.1. Parameters of the Classic U-Net's first level: two 3×3 convolutions with
    bias, 4 → ``base_filters`` → ``base_filters``."""
    expected = count_parameters(ClassicUNet(base_filters=base_filters).encoder[0])
    what = f"the first level's parameter count ({base_filters} filters)"
    if not unanswered(answer, "1.1", what, expected):
        check(answer, expected, what, "a k×k convolution from C_in to C_out has C_in·C_out·k² "
              "weights and C_out biases; add the two convolutions", exercise="1.1")


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

def check_separable_parameters(answer, channels: int = 64, kernel_size: int = 7,
                               out_channels: int | None = None) -> None:
    """Exercise 2.1. Parameters of a depthwise-separable k×k convolution, ``channels`` →
    ``out_channels`` (default: the same), with a bias on the pointwise part only."""
    out_channels = out_channels or channels
    expected = count_parameters(SeparableConv2d(channels, out_channels, kernel_size))
    what = (f"a separable {kernel_size}×{kernel_size} convolution's parameter count "
            f"({channels}→{out_channels})")
    if not unanswered(answer, "2.1", what, expected):
        check(answer, expected, what, "depthwise: one k×k filter per input channel, no bias; "
              "pointwise: a 1×1 convolution C_in→C_out with bias", exercise="2.1")


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

def check_gate_parameters(answer, skip_channels: int = 64, gate_channels: int = 128,
                          inter_channels: int = 16) -> None:
    """Exercise 3.1. Parameters of one attention gate: W_x (1×1, no bias), W_g (1×1, bias),
    ψ (1×1 to one channel, bias)."""
    expected = count_parameters(AttentionGate(skip_channels, gate_channels, inter_channels))
    what = (f"the gate's parameter count (x {skip_channels}, g {gate_channels}, intermediate "
            f"{inter_channels})")
    if not unanswered(answer, "3.1", what, expected):
        check(answer, expected, what, "each 1×1 convolution has C_in·C_out weights; count the "
              "biases of W_g and ψ", exercise="3.1")


def check_attention_parameters(answer, inter_channels: int, base_filters: int = 32) -> None:
    """Exercise 3.2. Total parameters of the Attention U-Net whose gates all have
    ``inter_channels``."""
    expected = count_parameters(AttentionUNet(base_filters=base_filters,
                                              inter_channels=inter_channels))
    what = f"the Attention U-Net's parameter count with intermediate width {inter_channels}"
    if not unanswered(answer, "3.2", what, expected):
        check(answer, expected, what, "start from the Classic U-Net's count and add four "
              "gates, one per skip, with skip widths 32, 64, 128, 256 (× base_filters/32) and "
              "gating signals twice as wide", exercise="3.2")


# --- chapter 4: training ---------------------------------------------------------------------

def check_learning_rate(answer, epoch: int, lr: float = 2e-3, gamma: float = 0.9) -> None:
    """Exercise 4.1. The learning rate used during epoch ``epoch + 1``, i.e. after ``epoch``
    decays."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    for _ in range(epoch):
        optimizer.step()
        scheduler.step()
    expected, what = scheduler.get_last_lr()[0], f"the learning rate after {epoch} decays"
    if not unanswered(answer, "4.1", what, expected):
        check(answer, expected, what, "ExponentialLR multiplies the rate by γ once per epoch",
              tolerance=3e-2, exercise="4.1")  # one decay is 10 %; the book's epoch 10
        # answer cut to 2 figures (6.9e-4) is 1 % off


def check_steps_per_epoch(answer, n_slices: int, batch_size: int, exercise: str = "4.2"
                          ) -> None:
    """Exercise 4.2. Optimizer steps in one epoch over ``n_slices`` training slices (the last,
    smaller batch counts); ``exercise="4.2b"`` for its second part, real BraTS."""
    what, expected = _steps_question(n_slices, batch_size)
    if not unanswered(answer, exercise, what, expected):
        check(answer, expected, what, "divide and round up: a partial last batch is a step",
              exercise=exercise)


def _steps_question(n_slices: int, batch_size: int) -> tuple[str, int]:
    """Exercise 4.2's question for ``n_slices`` at ``batch_size``, and its answer."""
    return (f"the steps per epoch for {n_slices:,} slices at batch {batch_size}",
            len(range(0, n_slices, batch_size)))


#: real BraTS 2020 as the course splits it (exercise 4.2b): 221 training volumes of 155 slices
BRATS_TRAINING_SLICES = 221 * 155


def check_epoch_steps(answer, answer_brats, n_slices: int, batch_size: int,
                      brats_batch_size: int = 32) -> None:
    """Exercise 4.2 in its two parts: this run's steps per epoch (4.2), and real BraTS's at
    the slides' batch (4.2b). Both answers are worked out (for ``reveal``) before either is
    checked, so a wrong first part leaves the second revealable."""
    for exercise, n, batch in (("4.2", n_slices, batch_size),
                               ("4.2b", BRATS_TRAINING_SLICES, brats_batch_size)):
        asked(exercise, *_steps_question(n, batch))
    check_steps_per_epoch(answer, n_slices, batch_size)
    check_steps_per_epoch(answer_brats, BRATS_TRAINING_SLICES, brats_batch_size,
                          exercise="4.2b")


# --- chapter 8: attention maps --------------------------------------------------------------

def check_gate_sizes(answer, image_size: int, depth: int = 4) -> None:
    """Exercise 8.1. Sizes (h of each h×h map, deepest gate first) of the attention maps for an
    ``image_size``² input."""
    model = AttentionUNet(base_filters=4, depth=depth).eval()
    with torch.no_grad():
        _, maps = model(torch.zeros(1, 4, image_size, image_size), return_attention=True)
    expected = [m.shape[-1] for m in maps]
    what = f"the gates' map sizes for {image_size}×{image_size} inputs, deepest first"
    if unanswered(answer, "8.1", what, expected):
        return
    answer = plain(answer)
    if not isinstance(answer, (tuple, list)) or not all(
            is_number(a) and float(a).is_integer() for a in answer):
        raise NotYet(f"Not yet: {what} are a list of {len(expected)} whole numbers, h of each "
                     f"h×h map (not pairs, not {type(answer).__name__} of other things).")
    check([int(a) for a in answer], expected, what, "the gate on the skip of level l works "
          "at the size of that level: H / 2^l", exercise="8.1")


def check_least_selective_gate(answer, contrasts: Sequence[float],
                               sizes: Sequence[int]) -> None:
    """Exercise 8.2. The size ``h`` of the ``h×h`` map of the gate whose contrast (one per gate,
    inside the tumour minus the rest of the brain) is smallest in absolute value: the gate
    that treats tumour and the rest most alike. ``contrasts`` and ``sizes`` have one entry
    per gate, deepest first, as the model returns its maps. A gate whose contrast the table
    shows as the same size (to its 3 decimals) counts too; no other does, as two such gates
    may be one shut and one open."""
    contrasts = [float(c) for c in plain(contrasts)]
    sizes = [int(h) for h in plain(sizes)]
    if len(sizes) != len(contrasts) or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must give each gate's own map size, one per contrast; got "
                         f"{sizes} for {len(contrasts)} contrasts")
    magnitudes = [abs(c) for c in contrasts]
    least = min(range(len(magnitudes)), key=lambda i: magnitudes[i])
    expected = sizes[least]
    what = "the size h of the h×h map of the gate whose contrast is smallest in absolute value"
    if unanswered(answer, "8.2", what, expected):
        return
    answer = plain(answer)
    sides = ", ".join(str(h) for h in sizes)
    if not is_number(answer) or not float(answer).is_integer() or int(answer) not in sizes:
        raise NotYet(f"Not yet: {what} is one of the table's gate sizes ({sides}: {sizes[0]} "
                     f"for the {sizes[0]}×{sizes[0]} gate), not {answer!r}.")
    gate = sizes.index(int(answer))
    if gate != least and f"{magnitudes[gate]:.3f}" == f"{magnitudes[least]:.3f}":
        print(f"Right: the contrast of the {answer}×{answer} gate shows as "
              f"{contrasts[gate]:+.3f} in the table, the same size as the {expected}×{expected} "
              f"gate's: too close to call on these slices.")
        return
    if gate != least:
        raise NotYet(f"Not yet: the contrast of the {answer}×{answer} gate, "
                     f"{contrasts[gate]:+.3f}, is not the smallest in size. Hint: drop the signs "
                     f"and compare the sizes of the contrasts over the many slices, not the 4 "
                     f'shown{reveal_hint("8.2")}')
    check(int(answer), expected, what, f"one of the table's gate sizes ({sides})",
          exercise="8.2")
