"""The lab checks give hints, not answers: no message of a wrong answer contains the expected
value; ``labs.reveal`` gives it on request."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unet_course import labs
from unet_course.checking import _ASKED
from unet_course.viz.frames import shown_on_slider
from unet_lib.metrics import whole_tumour_dice
from unet_lib.models import IMPROVEMENTS

PROBS = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
TARGET = (torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.7).float()
THRESHOLDS = [round(0.05 * k, 2) for k in range(1, 20)]
SIZES = [12, 24, 48, 96]  # the quick scale's gates, deepest first

#: exercise: (check with its question's numbers, wrong answers)
CASES = {
    "1.1": (lambda a: labs.check_first_level_parameters(a), "numbers"),
    "1.2": (lambda a: labs.check_bottleneck_shape(a), "tuple"),
    "2.1": (lambda a: labs.check_separable_parameters(a, 32, 5, 64), "numbers"),
    "2.2": (lambda a: labs.check_biggest_growth(a), "name"),
    "3.1": (lambda a: labs.check_gate_parameters(a, 64, 128, 16), "numbers"),
    "3.2": (lambda a: labs.check_attention_parameters(a, inter_channels=8), "numbers"),
    "4.1": (lambda a: labs.check_learning_rate(a, epoch=10), "numbers"),
    "4.2": (lambda a: labs.check_steps_per_epoch(a, n_slices=300, batch_size=8), "numbers"),
    "4.2b": (lambda a: labs.check_steps_per_epoch(a, n_slices=221 * 155, batch_size=32,
                                                  exercise="4.2b"), "numbers"),
    "5.1": (lambda a: labs.check_mask_channels(a, colour=(0.9, 0.6, 0.1), threshold=0.5),
            "set"),
    "5.2": (lambda a: labs.check_best_threshold(a, PROBS, TARGET, THRESHOLDS), "threshold"),
    "7.1": (lambda a: labs.check_patients_to_settle(a), "numbers"),
    "8.1": (lambda a: labs.check_gate_sizes(a, image_size=240), "list"),
    "8.2": (lambda a: labs.check_least_selective_gate(a, [0.3, 0.2, -0.01, 0.05], SIZES),
            "gate size"),
    "9.2": (lambda a: labs.check_temperature_on_a_pixel(a, temperature=2.28), "numbers"),
}


def _wrong_answers(kind: str, expected) -> list:
    if kind == "numbers":
        return [expected * 2 + 1, expected / 2 - 1]
    if kind in ("tuple", "list"):
        changed = list(expected)
        changed[-1] = changed[-1] + 3
        return [type(expected)(changed)]
    if kind == "name":
        return [name for name in IMPROVEMENTS if name != expected][:2]
    if kind == "set":
        return [{"ED"}, {"NCR/NET", "ED", "ET"}]
    if kind == "threshold":  # thresholds whose Dice looks worse on the slider, not tied
        best = shown_on_slider(whole_tumour_dice(PROBS, TARGET, expected))
        worse = [t for t in THRESHOLDS
                 if shown_on_slider(whole_tumour_dice(PROBS, TARGET, t)) != best]
        assert worse
        return [worse[0], worse[-1]]
    if kind == "gate size":
        return [h for h in SIZES if h != expected][:2]
    raise ValueError(kind)


def _shown(value) -> list[str]:
    """The ways a value could appear in a message."""
    forms = {repr(value), str(value)}
    if isinstance(value, float):
        forms |= {f"{value:g}", f"{value:.4g}", f"{value:.2f}", f"{value:.3f}"}
    if isinstance(value, int) and not isinstance(value, bool):
        forms |= {f"{value:,}"}
    if isinstance(value, (set, frozenset)):
        forms |= {repr(sorted(value))}
    return [f for f in forms if len(f) > 1 or not f.isdigit()]


@pytest.mark.parametrize("exercise", list(CASES))
def test_no_hint_gives_the_answer_and_reveal_does(exercise, capsys):
    run, kind = CASES[exercise]
    run(None)  # unanswered: says so, and remembers the answer for reveal
    assert "Not answered yet" in capsys.readouterr().out
    expected = _ASKED[exercise][1]
    for wrong in _wrong_answers(kind, expected):
        with pytest.raises(labs.NotYet) as error:
            run(wrong)
        message = str(error.value)
        assert "Hint:" in message
        for form in _shown(expected):
            assert form not in message, f"{exercise}: the message shows the answer {form!r}"
    labs.reveal(exercise)
    revealed = capsys.readouterr().out
    value = revealed.rstrip().removesuffix(".").rsplit(" is ", 1)[1]
    if isinstance(expected, float):  # rounded to 4 figures, said with ≈ where that rounds it
        assert value.startswith("≈ ") or float(value) == expected, revealed
        assert float(value.removeprefix("≈ ")) == pytest.approx(expected, rel=5e-4), revealed
    else:
        assert value == repr(expected), revealed


def test_a_number_too_high_or_too_low_is_said_so():
    run, _ = CASES["1.1"]
    run(None)
    expected = _ASKED["1.1"][1]
    with pytest.raises(labs.NotYet, match="too high"):
        run(expected + 10)
    with pytest.raises(labs.NotYet, match="too low"):
        run(expected - 10)


def test_hand_scores_and_the_empty_slice_rule_hide_their_values_too():
    labs.check_scores_by_hand(None, None, None)
    dice_value = _ASKED["6.1"][1][0]
    with pytest.raises(labs.NotYet) as error:
        labs.check_scores_by_hand(0.9, 0.5, 0.5)
    assert f"{dice_value:.2f}" not in str(error.value) and "too high" in str(error.value)
    with pytest.raises(labs.NotYet) as error:
        labs.check_empty_slice_dice(0.0, 0.0)
    assert "too low" in str(error.value)
    labs.check_two_ways(None, None)
    mean_value, pooled_value = _ASKED["7.2"][1]
    with pytest.raises(labs.NotYet) as error:  # the two swapped
        labs.check_two_ways(pooled_value, mean_value)
    message = str(error.value)
    assert "too high" in message and "Hint:" in message
    assert f"{mean_value:.2f}" not in message and f"{pooled_value:.2f}" not in message


def test_reveal_before_the_check_ran_asks_to_run_it_first_and_knows_its_exercises(
        capsys, monkeypatch):
    from unet_course import checking

    monkeypatch.setattr(checking, "_ASKED", {})
    labs.reveal("4.2b")
    assert "Run the check cell of exercise 4.2b first" in capsys.readouterr().out
    labs.reveal("9.9")  # was: "run its check cell first", for a check that does not exist
    said = capsys.readouterr().out
    assert said.startswith("Exercise '9.9' has no answer to reveal: those with one are 1.1,")


def test_every_exercise_a_check_remembers_is_one_reveal_knows():
    import re
    from pathlib import Path

    from unet_course.checking import ANSWERED_EXERCISES, CODING_EXERCISES

    root = Path(__file__).resolve().parents[1]
    code = "".join(path.read_text() for path in (root / "unet_course").rglob("*.py"))
    code += "".join(path.read_text() for path in (root / "book").glob("*.ipynb"))
    named = set(re.findall(r'(?:unanswered\(answer, |asked\(|exercise=\\?"|exercise: str = "|'
                           r'_check_parameter_count\(\s*answer, )"?([0-9]\.[0-9]b?)', code))
    assert named == set(ANSWERED_EXERCISES)
    assert not set(CODING_EXERCISES) & set(ANSWERED_EXERCISES)


def test_wrong_answers_students_give_get_the_hint_that_fits(capsys):
    import math

    labs.check_steps_per_epoch(None, n_slices=221 * 155, batch_size=32, exercise="4.2b")
    with pytest.raises(labs.NotYet, match="too low"):  # rounded down: 34,255 / 32 = 1070.5
        labs.check_steps_per_epoch(221 * 155 // 32, n_slices=221 * 155, batch_size=32,
                                   exercise="4.2b")
    with pytest.raises(labs.NotYet, match="is NaN"):  # "0/0 is undefined"
        labs.check_empty_slice_dice(math.nan, 0.0)
    with pytest.raises(labs.NotYet, match="whole numbers"):  # was: truncated to 16, 32, …
        labs.check_gate_sizes([15.9, 30.5, 60.9, 120.7], image_size=240)
    with pytest.raises(labs.NotYet, match="one of the table's gate sizes"):  # True is not 1
        labs.check_least_selective_gate(True, [0.3, 0.2, -0.01, 0.05], SIZES)
    with pytest.raises(labs.NotYet, match=r"one of the table's gate sizes \(12, 24, 48, 96"):
        labs.check_least_selective_gate(2, [0.3, 0.2, -0.01, 0.05], SIZES)  # a row, not a size
    with pytest.raises(labs.NotYet, match="96×96 gate, \\+0.050, is not the smallest.*drop "
                                          "the signs"):
        labs.check_least_selective_gate(96, [0.3, 0.2, -0.01, 0.05], SIZES)
    with pytest.raises(labs.NotYet, match="not channel names"):  # was: TypeError in sorted()
        labs.check_mask_channels({0, "et"}, colour=(1, 0, 1))
    with pytest.raises(labs.NotYet, match="a channel is missing"):
        labs.check_mask_channels({"ET"}, colour=(1, 0, 1))
    # every channel with some colour, 0.1 included: told what binarizing keeps
    with pytest.raises(labs.NotYet, match="not every channel with some colour is marked"):
        labs.check_mask_channels({"NCR/NET", "ED", "ET"}, colour=(0.9, 0.6, 0.1), threshold=0.5)
    with pytest.raises(labs.NotYet, match="every probability above 0.5 is marked"):
        labs.check_mask_channels({"NCR/NET"}, colour=(0.9, 0.6, 0.1), threshold=0.5)
    # a probabilities pixel without its threshold would have counted every channel with colour
    with pytest.raises(ValueError, match=r"not a binarized pixel's .*give the threshold"):
        labs.check_mask_channels({"NCR/NET", "ED"}, colour=(0.9, 0.6, 0.1))
    with pytest.raises(labs.NotYet, match="at or below 0.5 is not marked"):  # 0.5 itself
        labs.check_mask_channels({"NCR/NET", "ED"}, colour=(0.9, 0.5, 0.3), threshold=0.5)
    with pytest.raises(labs.NotYet, match="not one of the slider's thresholds"):
        labs.check_best_threshold(0.61, PROBS, TARGET, THRESHOLDS)
    labs.check_learning_rate(6.9e-4, epoch=10)  # 6.97e-4 cut to two figures, not rounded
    assert "Right" in capsys.readouterr().out


def test_reveal_of_a_coding_exercise_points_at_its_solution_cell(capsys):
    import json
    import re
    from pathlib import Path

    labs.reveal("1.4")
    assert "asks for code (a level's double convolution): its answer is the solution cell" in (
        capsys.readouterr().out)
    # every chapter's coding exercise is one of them: a check from unet_course.exercises
    book = Path(__file__).parents[1] / "book"
    found = set()
    for path in book.glob("0*.ipynb"):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for number, body in re.findall(r"### Exercise (\d\.\d)(.*?)(?=### Exercise|\Z)", text,
                                       re.DOTALL):
            if "exercises.check_" in body:
                found.add(number)
    from unet_course.checking import CODING_EXERCISES
    assert found == set(CODING_EXERCISES)


def test_a_wrong_first_part_of_4_2_leaves_its_second_part_revealable(capsys, monkeypatch):
    from unet_course import checking

    monkeypatch.setattr(checking, "_ASKED", {})
    with pytest.raises(labs.NotYet, match="too high"):
        labs.check_epoch_steps(999, None, n_slices=288, batch_size=8)
    labs.reveal("4.2b")
    assert "is 1071" in capsys.readouterr().out  # 34,255 slices at batch 32, rounded up


def test_the_calibration_error_by_hand_weighs_bins_by_pixels_and_names_the_side(capsys):
    # FOUR_BINS by hand: gaps 0.10, 0.15, 0.20, 0.15 over 600, 200, 100, 100 pixels
    assert labs.FOUR_BINS == ((600, 0.15, 0.05), (200, 0.45, 0.30), (100, 0.75, 0.55),
                              (100, 0.95, 0.80))
    labs.check_calibration_error_by_hand(None, None)
    assert "Not answered yet" in capsys.readouterr().out
    labs.check_calibration_error_by_hand(125 / 1000, "more")  # every share below its mean
    assert capsys.readouterr().out.count("Right") == 2
    with pytest.raises(labs.NotYet, match="mean of the four gaps, each bin counted once"):
        labs.check_calibration_error_by_hand(0.60 / 4, "more")  # unweighted
    with pytest.raises(labs.NotYet, match="too high") as error:
        labs.check_calibration_error_by_hand(0.2, "more")
    assert "0.125" not in str(error.value) and "0.12" not in str(error.value)
    with pytest.raises(labs.NotYet, match="below the diagonal or above it"):
        labs.check_calibration_error_by_hand(0.125, "less")
    with pytest.raises(labs.NotYet, match='answer "more" or "less"'):
        labs.check_calibration_error_by_hand(0.125, "over-confident")
    with pytest.raises(labs.NotYet, match="a percentage"):
        labs.check_calibration_error_by_hand(12.5, "more")
    capsys.readouterr()
    labs.check_calibration_error_by_hand(np.float64(0.125), " More")  # as a student types it
    assert capsys.readouterr().out.count("Right") == 2
    labs.reveal("9.1")
    assert "is (0.125, 'more')" in capsys.readouterr().out


def test_a_temperature_on_a_pixel_divides_its_logit_and_names_the_wrong_turns(capsys):
    # T = 2: σ(ln 99 / 2) = 1 / (1 + 99^(-1/2)) = 1 / (1 + 1/sqrt(99))
    expected = 1 / (1 + 99 ** -0.5)
    labs.check_temperature_on_a_pixel(expected, temperature=2.0)
    assert "Right" in capsys.readouterr().out
    with pytest.raises(labs.NotYet, match="probability as trained"):
        labs.check_temperature_on_a_pixel(0.99, temperature=2.0)
    with pytest.raises(labs.NotYet, match="multiplies the logit by T"):  # σ(2 ln 99)
        labs.check_temperature_on_a_pixel(99 ** 2 / (1 + 99 ** 2), temperature=2.0)
    with pytest.raises(labs.NotYet, match="divides the probability by T"):
        labs.check_temperature_on_a_pixel(0.495, temperature=2.0)
    labs.check_temperature_on_a_pixel(0.99, temperature=1.0)  # T = 1 leaves it: right
    assert "Right" in capsys.readouterr().out
    with pytest.raises(ValueError, match="temperature = -1"):
        labs.check_temperature_on_a_pixel(0.5, temperature=-1)
    with pytest.raises(ValueError, match="probability = 1.0"):
        labs.check_temperature_on_a_pixel(0.5, temperature=2.0, probability=1.0)
    labs.check_temperature_on_a_pixel(expected, temperature=np.float64(2.0))  # a NumPy T too
    assert "Right" in capsys.readouterr().out
    # T = 0.8 sharpens: σ(ln 99 / 0.8) = 1 / (1 + 99^(-1.25)) ≈ 0.9968; "certain" is not it,
    # nor is 0.999, though both lie within 1 % of it as probabilities
    sharpened = 1 / (1 + 99 ** -1.25)
    labs.check_temperature_on_a_pixel(sharpened, temperature=0.8)
    for wrong in (1.0, 0.999, 0.98):
        with pytest.raises(labs.NotYet) as error:
            labs.check_temperature_on_a_pixel(wrong, temperature=0.8)
        assert "Hint:" in str(error.value) and "0.9968" not in str(error.value)
    # one step of the fitted grid above 1: the probability as trained is named, not accepted
    with pytest.raises(labs.NotYet, match="probability as trained"):
        labs.check_temperature_on_a_pixel(0.99, temperature=1.2)


@pytest.mark.parametrize("value, shown", [
    (0.25, "0.25"),  # exact in 4 figures: no ≈
    (4 / 7, "≈ 0.5714"),  # 0.571428…: rounded, so said with ≈
    (0.99996, "0.99996"),  # 4 figures give "1", a whole number it is not: one more figure
    (1 - 1e-7 / 3, "≈ 0.99999997"),  # 0.9999999666…: "1" up to 7 figures, rounded at 8
    (2.0, "2"), (float("nan"), "nan"), (float("-inf"), "-inf"), (7, "7")])
def test_a_shown_value_is_rounded_but_never_to_a_whole_number_it_is_not(value, shown):
    from unet_course.checking import shown_value

    assert shown_value(value) == shown


def test_scores_given_as_percentages_are_told_to_be_shares(capsys):
    """Exercises 6.1 and 7.2 ask for Dice-like scores; 57.14 for 0.5714 is the right working
    in the wrong unit, not "too high"."""
    labs.check_scores_by_hand(None, None, None)  # what the check expects, worked out by it
    with pytest.raises(labs.NotYet, match="your answer for Dice is a percentage"):
        labs.check_scores_by_hand(57.14, 50, 66.67)
    with pytest.raises(labs.NotYet, match="the mean over the patients is a percentage"):
        labs.check_two_ways(64.04, 92.86)
    with pytest.raises(labs.NotYet, match="too high"):  # a wrong share is still "too high"
        labs.check_two_ways(0.9, 0.9286)


def test_a_temperature_answer_rounded_to_two_decimals_is_asked_for_more(capsys):
    # T = 2.28: σ(ln 99 / 2.28) = 1 / (1 + 99^(-1/2.28)) = 0.8824; 0.88 lies 1.1 % off in logit
    expected = 1 / (1 + 99 ** (-1 / 2.28))
    assert round(expected, 4) == 0.8824
    with pytest.raises(labs.NotYet, match="too few decimals.*give three or more") as said:
        labs.check_temperature_on_a_pixel(0.88, temperature=2.28)
    assert "0.882" not in str(said.value)  # the answer is not given away
    with pytest.raises(labs.NotYet, match="too low"):  # farther off: a wrong method
        labs.check_temperature_on_a_pixel(0.85, temperature=2.28)
    labs.check_temperature_on_a_pixel(0.883, temperature=2.28)
    assert "Right" in capsys.readouterr().out


def test_a_number_for_the_channels_of_a_colour_is_asked_for_their_names():
    with pytest.raises(labs.NotYet, match=r"a set of their names.*not float 0.9"):
        labs.check_mask_channels(0.9, (1, 1, 0))
