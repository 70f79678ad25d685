"""Self-checks of chapters 6 and 7, on scoring a segmentation: Dice, precision and recall by
hand, the empty-mask rule, how many patients can settle a comparison, and a mean over patients
against one score over all their pixels. (Re-exported by :mod:`unet_course.labs`, where the
notebooks call them; how the checks answer is :mod:`unet_course.checking`.)"""

from __future__ import annotations

import torch

from unet_lib.metrics import dice, precision, recall, scores_from_counts
from unet_lib.comparison import paired_sign_flip

from ..checking import asked, check, unanswered

# --- chapter 6: performance assessment ------------------------------------------------------

#: the small masks of the hand-computation exercise (1 = tumour)
HAND_PREDICTION = torch.tensor([[1, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
HAND_TARGET = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.float32)


def check_scores_by_hand(dice_answer, precision_answer, recall_answer) -> None:
    """Exercise 6.1. Dice, precision and recall of :data:`HAND_PREDICTION` against
    :data:`HAND_TARGET`."""
    pred, target = HAND_PREDICTION[None, None], HAND_TARGET[None, None]
    expected = (dice(pred, target).item(), precision(pred, target).item(),
                recall(pred, target).item())
    asked("6.1", "(Dice, precision, recall)", tuple(round(v, 4) for v in expected))
    if any(unanswered(a) for a in (dice_answer, precision_answer, recall_answer)):
        return
    hint = "count TP, FP and FN first; Dice = 2TP / (2TP + FP + FN)"
    check(dice_answer, expected[0], "Dice", hint, tolerance=1e-2, exercise="6.1", share=True)
    check(precision_answer, expected[1], "precision", "TP / (TP + FP)", tolerance=1e-2,
          exercise="6.1", share=True)
    check(recall_answer, expected[2], "recall", "TP / (TP + FN)", tolerance=1e-2,
          exercise="6.1", share=True)


def check_empty_slice_dice(both_empty, only_prediction) -> None:
    """Exercise 6.2. Dice under the BraTS rule for a slice without tumour: when the prediction
    is empty too, and when the prediction marks some pixels."""
    empty = torch.zeros(1, 1, 4, 4)
    some = empty.clone()
    some[..., 0, 0] = 1
    expected = (dice(empty, empty).item(), dice(some, empty).item())
    asked("6.2", "(Dice with both empty, Dice with only the prediction non-empty)", expected)
    if any(unanswered(a) for a in (both_empty, only_prediction)):
        return
    hint = ("the formula gives 0/0 for both empty: read the chapter's rule for empty masks, "
            "and ask what a model deserves for predicting nothing where there is nothing")
    check(both_empty, expected[0], "Dice with both masks empty", hint, exercise="6.2")
    check(only_prediction, expected[1], "Dice with only the prediction non-empty",
          "with no tumour in the truth, TP is 0 whatever is predicted: what does Dice's "
          "formula give then?", exercise="6.2")


# --- chapter 7: evaluating as BraTS does ----------------------------------------------------

def check_patients_to_settle(answer, alpha: float = 0.05) -> None:
    """Exercise 7.1. The fewest test patients with which the sign-flip test can give
    ``p < alpha``: a model that scores higher than another on every one of them, worked out
    with :func:`unet_lib.comparison.paired_sign_flip`."""
    n = 1  # a clean sweep, with differences of several sizes, every sign pattern counted
    while paired_sign_flip([0.9] * n, [0.8 - 0.01 * i for i in range(n)],
                           exact_up_to=n)["p"] >= alpha:
        n += 1
        if n > 20:
            raise ValueError(f"alpha {alpha}: too small for this exercise (over 20 patients)")
    what = f"the fewest patients that can give p < {alpha}"
    if not unanswered(answer, "7.1", what, n):
        check(answer, n, what, "a model that wins on every patient gets the smallest p there "
              "is: count the sign patterns whose mean lies as far from 0, and divide by 2^n",
              exercise="7.1")


#: (TP, FP, FN) of the whole tumour for two test patients, for exercise 7.2
TWO_PATIENTS = {"large tumour": (900, 50, 50), "small tumour": (10, 10, 30)}


def check_two_ways(per_patient_mean, all_pixels) -> None:
    """Exercise 7.2. The whole-tumour Dice of :data:`TWO_PATIENTS` two ways: the mean of the
    patients' own Dice, and one Dice of the counts summed over both."""
    counts = torch.tensor(list(TWO_PATIENTS.values()), dtype=torch.float64)  # (patients, 3)
    each = scores_from_counts(*counts.T)["dice"]
    pooled = scores_from_counts(*counts.sum(dim=0))["dice"]
    expected = (each.mean().item(), pooled.item())
    asked("7.2", "(mean over the patients, all pixels)", tuple(round(v, 4) for v in expected))
    if any(unanswered(a) for a in (per_patient_mean, all_pixels)):
        return
    check(per_patient_mean, expected[0], "the mean over the patients", "one Dice per patient "
          "from its own counts, then the mean of the two", tolerance=1e-2, exercise="7.2",
          share=True)
    check(all_pixels, expected[1], "the Dice over all pixels", "add the two patients' TP, FP "
          "and FN first, then compute one Dice", tolerance=1e-2, exercise="7.2", share=True)
