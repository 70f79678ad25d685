"""Self-checks for the lab exercises at the end of each chapter, one module per topic:

    sizes           chapters 1 to 3: parameters and shapes of the three U-Nets
    schedule        chapter 4: the learning rate's decay, steps per epoch
    prediction      chapter 5: a colour's mask channels, a slice's best threshold
    evaluation      chapters 6 and 7: scores by hand, empty masks, patients and pixels
    attention_maps  chapter 8: the gates' map sizes, the least selective gate
    calibration     chapter 9: a calibration error by hand, a temperature on one pixel

The notebooks call them from here: ``labs.check_first_level_parameters(answer)``.

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

from ..checking import NotYet, reveal
from .attention_maps import check_gate_sizes, check_least_selective_gate
from .calibration import FOUR_BINS, check_calibration_error_by_hand, check_temperature_on_a_pixel
from .evaluation import (HAND_PREDICTION, HAND_TARGET, TWO_PATIENTS, check_empty_slice_dice,
                         check_patients_to_settle, check_scores_by_hand, check_two_ways)
from .prediction import check_best_threshold, check_mask_channels
from .schedule import (BRATS_TRAINING_SLICES, check_epoch_steps, check_learning_rate,
                       check_steps_per_epoch)
from .sizes import (check_attention_parameters, check_biggest_growth, check_bottleneck_shape,
                    check_first_level_parameters, check_gate_parameters,
                    check_separable_parameters)

__all__ = ["NotYet", "reveal",
           # chapters 1 to 3
           "check_first_level_parameters", "check_bottleneck_shape", "check_separable_parameters",
           "check_biggest_growth", "check_gate_parameters", "check_attention_parameters",
           # chapter 4
           "BRATS_TRAINING_SLICES", "check_learning_rate", "check_steps_per_epoch",
           "check_epoch_steps",
           # chapter 5
           "check_mask_channels", "check_best_threshold",
           # chapters 6 and 7
           "HAND_PREDICTION", "HAND_TARGET", "TWO_PATIENTS", "check_scores_by_hand",
           "check_empty_slice_dice", "check_patients_to_settle", "check_two_ways",
           # chapter 8
           "check_gate_sizes", "check_least_selective_gate",
           # chapter 9
           "FOUR_BINS", "check_calibration_error_by_hand", "check_temperature_on_a_pixel"]
