"""Chapter 7's per-patient figure: each patient's scores under each model, paired by patient
(whatever order each model listed them in), the mean bar at the mean, the patients whose truth
lacks a region hollow, and many patients drawn grey rather than named."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from unet_course.viz.patients import (ABSENT_LABEL, MOST_NAMED, paired_values,  # noqa: E402
                                          patient_order, show_patient_scores)
from unet_lib.patients import PatientScores  # noqa: E402


def _row(volume: int, dice_wt: float, dice_et: float, empty=()) -> dict:
    scores = {"dice": {"WT": dice_wt, "TC": dice_wt - 0.1, "ET": dice_et},
              "hd95": {"WT": 10.0 * volume, "TC": 5.0, "ET": 0.0 if "ET" in empty else 3.0}}
    return {"volume": volume, "slices": 4, **scores, "empty": list(empty)}


def _scores() -> dict[str, PatientScores]:
    # patient 7 has no ET in its truth; the second model lists its patients in another order
    first = PatientScores([_row(3, 0.9, 0.8), _row(7, 0.8, 1.0, empty=("ET",)),
                           _row(9, 0.7, 0.5)])
    second = PatientScores([_row(9, 0.6, 0.4), _row(3, 0.95, 0.7),
                            _row(7, 0.85, 0.0, empty=("ET",))])
    return {"one": first, "two": second}


def test_scores_are_paired_by_patient_whatever_order_each_model_lists_them():
    values, absent = paired_values(_scores(), "dice", "ET", patient_order(_scores()))
    assert patient_order(_scores()) == [3, 7, 9]
    np.testing.assert_allclose(values, [[0.8, 0.7], [1.0, 0.0], [0.5, 0.4]])
    assert absent.tolist() == [False, True, False]


def test_models_scored_on_different_patients_cannot_be_paired():
    scores = _scores()
    scores["three"] = PatientScores([_row(3, 0.9, 0.8), _row(4, 0.9, 0.8), _row(9, 0.9, 0.8)])
    with pytest.raises(ValueError, match=r"three was scored on volumes \[3, 4, 9\]"):
        show_patient_scores(scores)


def test_models_that_disagree_on_a_patient_s_truth_or_list_a_patient_twice_are_refused():
    scores = _scores()
    scores["two"].rows[2]["empty"] = []  # patient 7 has ET in this model's truth
    with pytest.raises(ValueError, match="volume 7: one scored it without ET in the truth"):
        paired_values(scores, "dice", "ET", [3, 7, 9])
    twice = {"one": PatientScores([_row(3, 0.9, 0.8), _row(3, 0.9, 0.8)]),
             "two": PatientScores([_row(3, 0.9, 0.8), _row(3, 0.9, 0.8)])}
    with pytest.raises(ValueError, match=r"one was scored on volumes \[3, 3\]: give each"):
        show_patient_scores(twice)
    with pytest.raises(ValueError, match="no model to draw"):
        show_patient_scores({})
    with pytest.raises(ValueError, match=r"one was scored on volumes \[\]"):
        show_patient_scores({"one": PatientScores([])})


def test_each_patient_is_a_line_across_the_models_the_mean_a_bar_and_absent_truth_hollow():
    fig = show_patient_scores(_scores(), regions=("WT", "ET"), metrics=("dice",))
    wt, et = fig.axes[:2]
    assert [a.get_title() for a in (wt, et)] == ["Dice, WT (axis from 0.5)", "Dice, ET"]
    joined = [line for line in et.lines if line.get_linestyle() == "-"]
    assert [list(line.get_ydata()) for line in joined] == [[0.8, 0.7], [1.0, 0.0], [0.5, 0.4]]
    bars = et.collections[0].get_segments()  # one bar per model at its mean over the patients
    assert [segment[0][1] for segment in bars] == pytest.approx([(0.8 + 1 + 0.5) / 3,
                                                                (0.7 + 0 + 0.4) / 3])
    markers = [line for line in et.lines if line.get_linestyle() == "None"]
    hollow = [to_rgba(line.get_markerfacecolor()) == to_rgba("white") for line in markers]
    assert hollow == [False, True, False]  # patient 7 only, and only in ET
    assert not any(to_rgba(line.get_markerfacecolor()) == to_rgba("white")
                   for line in wt.lines if line.get_linestyle() == "None")
    # ET's 0 (a false alarm) starts its own panel at 0; WT's lowest, 0.6, does not take it along
    assert et.get_ylim()[0] < 0 < wt.get_ylim()[0] == pytest.approx(0.48)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["patient 3", "patient 7", "patient 9"]
    assert ABSENT_LABEL in legend and "HD95 0 or 373 mm" in ABSENT_LABEL
    plt.close(fig)


def test_an_axis_that_does_not_start_at_0_says_so_and_hd95_names_its_scale():
    high = {name: PatientScores([_row(v, 0.9, 0.86) for v in (3, 7)]) for name in ("a", "b")}
    fig = show_patient_scores(high, regions=("WT",), metrics=("dice", "hd95"))
    dice, hd95 = fig.axes[:2]
    assert dice.get_title() == "Dice, WT (axis from 0.8)"  # 0.9 − 0.05, to the tenth below
    assert dice.get_ylim()[0] == pytest.approx(0.78)
    assert hd95.get_title() == "HD95 (mm, log scale above 1), WT"
    assert hd95.get_yscale() == "symlog"
    plt.close(fig)


def test_more_patients_than_markers_are_drawn_grey_without_a_legend_entry_each():
    many = MOST_NAMED + 2
    scores = {name: PatientScores([_row(v, 0.5 + 0.01 * v, 0.5) for v in range(many)])
              for name in ("one", "two")}
    fig = show_patient_scores(scores)
    colours = {to_rgba(line.get_color()) for line in fig.axes[0].lines}
    assert colours == {to_rgba("0.45")}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["one patient", "mean over the patients"]  # no ET absent: no hollow entry
    plt.close(fig)


def test_each_panel_of_high_scores_starts_below_its_own_lowest_so_they_are_told_apart():
    scores = {name: PatientScores([_row(v, 0.86 + 0.02 * v, 0.9) for v in range(3)])
              for name in ("one", "two")}
    fig = show_patient_scores(scores, metrics=("dice", "hd95"))
    dice_row, hd95_row = fig.axes[:3], fig.axes[3:6]
    # lowest Dice: WT 0.86, TC 0.76, ET 0.9: each panel from the tenth below, less a margin
    assert [ax.get_ylim()[0] for ax in dice_row] == pytest.approx([0.78, 0.68, 0.78])
    assert [ax.get_title() for ax in dice_row] == [f"Dice, {region} (axis from {floor})"
                                                   for region, floor in (("WT", 0.8),
                                                                         ("TC", 0.7),
                                                                         ("ET", 0.8))]
    assert all(ax.get_yscale() == "symlog" and ax.get_ylim()[0] < 0 for ax in hd95_row)
    plt.close(fig)
