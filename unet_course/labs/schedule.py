"""Self-checks of chapter 4, on the training schedule: the learning rate after some decays,
and the optimizer steps in an epoch (this run's, and real BraTS's at the slides' batch).
(Re-exported by :mod:`unet_course.labs`, where the notebooks call them; how the checks answer is
:mod:`unet_course.checking`.)"""

from __future__ import annotations

import torch

from ..checking import asked, check, unanswered


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
