"""The sign-flip test drawn: every sign pattern's mean, those as far from 0 as the observed
mean marked, their share the p-value (unet_lib.comparison, unet_course.viz.chance)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from unet_course.viz.chance import AS_FAR, sign_flip_figure  # noqa: E402
from unet_lib.comparison import (as_far_as_observed, paired_sign_flip,  # noqa: E402
                                 sign_flip_means)

FIRST, SECOND = np.array([0.5, 0.6, 0.9]), np.array([0.4, 0.4, 0.5])  # differences 0.1, 0.2, 0.4


def test_every_sign_pattern_s_mean_is_listed_the_observed_first():
    means = sign_flip_means(FIRST, SECOND)
    # (±0.1 ± 0.2 ± 0.4) / 3: the odd multiples of 0.1/3 from -7 to 7, each once
    assert sorted(np.round(means * 30, 9)) == [-7, -5, -3, -1, 1, 3, 5, 7]
    assert means[0] == pytest.approx(0.7 / 3)
    far = as_far_as_observed(means, FIRST, SECOND)
    assert far.sum() == 2 and far.mean() == paired_sign_flip(FIRST, SECOND)["p"] == 0.25


def test_beyond_the_exact_count_the_patterns_are_drawn_at_random():
    means = sign_flip_means(FIRST, SECOND, exact_up_to=2, resamples=500, seed=1)
    assert means.shape == (500,)
    assert set(np.round(means * 30, 9)) <= {-7, -5, -3, -1, 1, 3, 5, 7}
    # the test counts the observed pattern in: (1 + as far) / (1 + draws)
    far = as_far_as_observed(means, FIRST, SECOND).sum()
    assert paired_sign_flip(FIRST, SECOND, exact_up_to=2, resamples=500, seed=1)["p"] == (
        pytest.approx((1 + far) / 501))


def test_the_figure_draws_one_dot_a_pattern_the_far_ones_orange_and_says_p():
    first, second = np.array([0.9, 0.8, 0.85, 0.7]), np.array([0.85, 0.82, 0.8, 0.6])
    fig = sign_flip_figure(first, second, patients=[3, 5, 12, 14], names=("a", "b"),
                           what="Dice WT")
    try:
        each, flips = fig.axes
        assert [t.get_text() for t in each.get_yticklabels()] == [
            "patient 3", "patient 5", "patient 12", "patient 14"]
        dots = [line for line in flips.lines if line.get_marker() == "o"]
        assert sum(len(line.get_xdata()) for line in dots) == 16
        orange = [line for line in dots if line.get_color() == AS_FAR][0]
        means = sign_flip_means(first, second)
        far = as_far_as_observed(means, first, second)
        assert sorted(orange.get_xdata()) == pytest.approx(sorted(means[far]))
        p = paired_sign_flip(first, second)["p"]
        assert flips.get_title().endswith(f"{int(far.sum())} at least as far from 0 → p = {p:.3f}")
    finally:
        plt.close(fig)


def test_one_label_per_patient_is_asked_for():
    with pytest.raises(ValueError, match="2 labels for the scores of 3 patients"):
        sign_flip_figure(FIRST, SECOND, patients=[1, 2])


def test_a_score_that_is_not_a_number_is_refused_not_counted_as_significant():
    with pytest.raises(ValueError, match="first: the scores must be finite .* \\[1\\]"):
        paired_sign_flip([0.9, float("nan"), 0.8], [0.7, 0.6, 0.5])
    with pytest.raises(ValueError, match="second: the scores must be finite"):
        sign_flip_means([0.9, 0.8], [0.7, float("inf")])


def test_dots_closer_than_the_reach_stack_far_ones_lowest_and_apart_ones_do_not():
    from unet_course.viz.chance import stacked_heights

    means = np.array([0.0, 0.5, 0.501, 0.502, 1.0])  # span 1: 0.5-0.502 within 1.5 %
    far = np.array([False, False, True, False, True])
    assert stacked_heights(means, far).tolist() == [0, 1, 0, 2, 0]
    # two means either side of where a rounding grid would cut still share one stack
    assert stacked_heights(np.array([0.0, 0.2249, 0.2251, 1.0]),
                           np.zeros(4, bool)).tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("second, expected", [
    ([0.8, 0.7, 0.6, 0.5], "Each of the 4 patients' differences can take either sign, so 16 "
                           "patterns; a clean sweep would leave only itself and its mirror "
                           "image as far out, p = 2/16"),
    ([0.8, 0.8, 0.6, 0.5], "Patient 5 shows a difference of exactly 0 (both models score the "
                           "same), and flipping the sign of 0 changes nothing: the 16 patterns "
                           "come in identical groups of 2, and the smallest p these patients "
                           "could give here is 4/16 = 0.250, not 0.125"),
    ([0.8, 0.8, 0.7, 0.5], "Patients 5 and 12 show a difference"),
    ([0.9, 0.8, 0.7, 0.6], "Every difference is exactly 0"),
])
def test_the_reading_counts_the_patterns_and_what_a_zero_difference_does(second, expected):
    from unet_course.readings.chance import read_sign_flips

    reading = read_sign_flips([0.9, 0.8, 0.7, 0.6], second, [3, 5, 12, 14])
    assert reading.startswith(expected)
    if expected.startswith("Patients"):  # two zeros: groups of 4
        assert "groups of 4" in reading and "8/16 = 0.500" in reading


def test_beyond_the_exact_count_the_reading_says_the_patterns_are_drawn():
    from unet_course.readings.chance import read_sign_flips

    reading = read_sign_flips(np.ones(17), np.zeros(17), list(range(17)))
    assert reading.startswith("With 17 patients the test draws 100,000 of the 2^17")


def test_the_reading_names_a_patient_whose_flip_barely_moves_the_mean():
    from unet_course.readings.chance import read_sign_flips

    # differences +0.3, +0.3, +0.3, +0.004: mean 0.226; flipping the last moves it by
    # 2 × 0.004 / 4 = 0.002, under 5 % of the mean: its patterns sit just inside the lines
    reading = read_sign_flips([0.9, 0.9, 0.9, 0.504], [0.6, 0.6, 0.6, 0.5], [3, 5, 12, 14])
    assert "Patient 14's difference is only +0.004" in reading
    assert "moves the mean by 0.002" in reading and "just inside the lines" in reading
    # the same patient a hair the other way: flipped, its difference adds to the mean, and
    # those patterns are counted as far as the observed one
    against = read_sign_flips([0.9, 0.9, 0.9, 0.496], [0.6, 0.6, 0.6, 0.5], [3, 5, 12, 14])
    assert "only -0.004" in against and "just outside the lines" in against
    plain = read_sign_flips([0.9, 0.9, 0.9, 0.8], [0.6, 0.6, 0.6, 0.6], [3, 5, 12, 14])
    assert "only ±" not in plain  # +0.2 moves the mean by 0.1: plainly nearer 0
