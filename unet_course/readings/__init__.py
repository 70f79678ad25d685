"""Sentences the book reads off results: what its text says of this build's numbers, worked
out from them (a number the text quotes is glued, and so is each judgement made of numbers),
so that the words stay true whatever a run, a scale or real BraTS gives. Chapters call them
as ``readings.<name>``; one module per kind of result, each without matplotlib:

Modules:
    slices     chapter 5: what went wrong on one slice, the holes a prediction leaves, which
               test slices a search kept (5 and 8)
    curves     chapter 4: how fast and how steadily the models learnt
    overfitting  chapter 4: whether keeping the best epoch mattered, what a rising validation
               loss cost
    scores     chapter 6: the best model, recall against precision, the regions' order, what
               a threshold chosen on validation did on the test patients
    patients   chapter 7: a patient whose HD95 stands out, the patient drawn, the empty-region
               rule's part in a gap, which comparisons a test settles
    outlines   chapter 7: what one patient's distance curves show (where its HD95 lies)
    chance     chapters 7 and 9: what the sign-flip test can say with so many patients, what
               its figure counts
    gates      chapter 8: what a gate's contrast says
    calibration  chapter 9: which model's probabilities are the closer to frequencies, what a
               temperature did, where a reliability curve lies against the diagonal
    words      what they share: a list joined with "and", models named, small numbers
"""

from .calibration import calibration_reading, curve_shape, temperature_reading
from .chance import read_sign_flips, verdict_room
from .curves import batch_norm_reading, jumpiest_reading, learning_pace, slowest_learner
from .gates import gate_reading
from .outlines import read_curves
from .overfitting import (kept_reading, overfitting_verdict, rising_losses, rising_reading,
                          training_loss_above)
from .patients import (empty_region_reading, hd95_case, hd95_sentence, patient_to_draw,
                       settled_sentence, standing_out)
from .scores import (best_model_reading, recall_reading, region_exceptions, region_orders,
                     threshold_moves)
from .slices import hole_pixels, holes_reading, slices_searched, what_went_wrong

__all__ = ["batch_norm_reading", "best_model_reading", "calibration_reading", "curve_shape",
           "empty_region_reading", "gate_reading", "hd95_case", "hd95_sentence", "hole_pixels",
           "holes_reading", "jumpiest_reading", "kept_reading", "learning_pace",
           "overfitting_verdict", "patient_to_draw", "read_curves", "read_sign_flips",
           "recall_reading", "region_exceptions", "region_orders", "rising_losses",
           "rising_reading", "settled_sentence", "slices_searched", "slowest_learner",
           "standing_out", "temperature_reading", "threshold_moves", "training_loss_above",
           "verdict_room", "what_went_wrong"]
