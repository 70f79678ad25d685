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

One module per exercise, or kind of exercise:

    blocks         chapters 1 to 3: a level's two convolutions, a separable convolution, a gate
    forward        chapter 1: the Classic U-Net's forward pass
    train_step     chapter 4: one training step by hand
    scores         chapter 6: Dice, precision and recall from TP, FP and FN
    cleanup        chapter 7: keep a prediction's largest piece
    module_checks  how a student's module is compared with unet_lib's (blocks uses it)
"""

from ..checking import NotYet
from .blocks import (check_double_conv, check_gate_forward, check_separable_conv,
                     gate_forward_solution)
from .cleanup import check_keep_largest
from .forward import check_unet_forward
from .scores import check_scores
from .train_step import check_train_step

__all__ = ["NotYet", "check_double_conv", "check_separable_conv", "check_gate_forward",
           "gate_forward_solution", "check_unet_forward", "check_train_step", "check_scores",
           "check_keep_largest"]
