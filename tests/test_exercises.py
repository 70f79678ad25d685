"""The coding exercises' checks: an open skeleton is 'not answered yet', a right answer passes,
and a wrong one fails with a message that says what differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unet_course import exercises
from unet_course.checking import NotYet


def skeleton(*args):
    ...


def test_open_skeletons_are_not_answered_yet_and_do_not_fail(capsys):
    exercises.check_double_conv(skeleton)
    exercises.check_separable_conv(skeleton)
    exercises.check_gate_forward(skeleton)
    exercises.check_scores(skeleton)
    assert capsys.readouterr().out.count("Not answered yet") == 4


def double_conv(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())


def test_a_right_double_convolution_passes_and_wrong_ones_say_why(capsys):
    exercises.check_double_conv(double_conv)
    assert "Right" in capsys.readouterr().out
    with pytest.raises(NotYet, match="too few"):  # one convolution only
        exercises.check_double_conv(lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1)))
    with pytest.raises(NotYet, match="shape"):  # no padding: the image shrinks
        exercises.check_double_conv(lambda i, o: nn.Sequential(
            nn.Conv2d(i, o, 3), nn.ReLU(), nn.Conv2d(o, o, 3), nn.ReLU()))
    with pytest.raises(NotYet, match="different values"):  # the last ReLU missing
        exercises.check_double_conv(lambda i, o: nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1)))


def test_separable_convolution_check():
    def right(c_in, c_out, k):
        return nn.Sequential(nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False),
                             nn.Conv2d(c_in, c_out, 1))

    exercises.check_separable_conv(right)
    with pytest.raises(NotYet, match="too many"):  # a full k×k convolution
        exercises.check_separable_conv(lambda i, o, k: nn.Conv2d(i, o, k, padding=k // 2))


def test_gate_forward_check():
    exercises.check_gate_forward(exercises.gate_forward_solution)

    def without_resize(x, g, w_x, w_g, psi):
        return torch.sigmoid(psi(F.relu(w_x(x) + F.interpolate(w_g(g), scale_factor=2,
                                                                 mode="nearest"))))

    with pytest.raises(NotYet, match="different values"):
        exercises.check_gate_forward(without_resize)


def test_scores_check_explains_without_giving_the_answer():
    def right(tp, fp, fn):
        return (2 * tp / (2 * tp + fp + fn), tp / (tp + fp) if tp + fp else 0.0,
                tp / (tp + fn) if tp + fn else 0.0)

    exercises.check_scores(right)
    with pytest.raises(NotYet) as error:
        exercises.check_scores(lambda tp, fp, fn: (tp / (tp + fp + fn),  # Jaccard, not Dice
                                                   tp / (tp + fp) if tp + fp else 0.0,
                                                   tp / (tp + fn) if tp + fn else 0.0))
    assert "your Dice" in str(error.value) and "which is not it" in str(error.value)


def test_scores_that_divide_by_zero_are_told_which_counts_did_it():
    with pytest.raises(NotYet, match=r"scores\(0, 0, 5\) divides by zero.*nothing was predicted"):
        exercises.check_scores(lambda tp, fp, fn: (2 * tp / (2 * tp + fp + fn), tp / (tp + fp),
                                                   tp / (tp + fn)))


def test_a_nan_score_for_an_empty_prediction_is_not_taken_for_zero():
    def in_numpy(tp, fp, fn):  # 0/0 in NumPy is NaN with a warning, not an error
        tp, fp, fn = np.float64(tp), np.float64(fp), np.float64(fn)
        with np.errstate(invalid="ignore"):
            return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp), tp / (tp + fn)

    with pytest.raises(NotYet, match=r"your precision for TP=0, FP=0, FN=5 is nan"):
        exercises.check_scores(in_numpy)
