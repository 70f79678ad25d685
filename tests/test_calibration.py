"""Calibration: pixels binned by predicted probability, counted by hand and on data whose
calibration is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unet_lib.calibration import bin_counts, reliability, reliability_of
from unet_lib.inference import predict
from unet_lib.models import build_model


def _pixels(values, channel: int = 0) -> torch.Tensor:
    """(1, 3, 1, W) with ``values`` in ``channel`` and zeros elsewhere."""
    out = torch.zeros(1, 3, 1, len(values))
    out[0, channel, 0] = torch.tensor(values, dtype=torch.float32)
    return out


def test_pixels_fall_in_their_bins_and_are_counted_by_hand():
    probs = _pixels([0.05, 0.15, 0.15, 1.0, 0.999], channel=1)
    targets = _pixels([0, 1, 0, 1, 1], channel=1)
    count, probability_sum, positive = bin_counts(probs, targets, bins=10)
    assert count[1].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # p = 1 in the last bin
    assert probability_sum[1, 1].item() == pytest.approx(0.3)
    assert positive[1].tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert count[0].tolist() == [5] + [0] * 9  # the other channels: all zeros, bin 0
    found = reliability_of(probs, targets)
    assert found.frequency[1, 1] == 0.5 and found.mean_probability[1, 1] == pytest.approx(0.15)
    assert np.isnan(found.frequency[1, 2])  # an empty bin has no frequency


def test_probabilities_that_are_frequencies_give_no_calibration_error():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(4, 3, 100, 100, generator=generator)
    targets = (torch.rand(probs.shape, generator=generator) < probs).float()  # p is the chance
    found = reliability_of(probs, targets)
    assert np.allclose(found.frequency, found.mean_probability, atol=0.02)
    assert max(found.calibration_error().values()) < 0.01


def test_an_overconfident_model_is_off_by_its_excess_and_the_background_does_not_hide_it():
    generator = torch.Generator().manual_seed(1)
    probs = torch.full((1, 3, 100, 100), 0.01)  # background, rightly near 0
    targets = torch.zeros_like(probs)
    probs[..., :10] = 0.95  # a tenth of the pixels called 0.95 ...
    targets[..., :10] = (torch.rand(1, 3, 100, 10, generator=generator) < 0.5).float()  # ... half
    found = reliability_of(probs, targets)
    from_tumour = found.calibration_error(0.1)  # the bins from 0.1 up: the 0.95 bin alone
    frequency = targets[..., :10].mean(dim=(0, 2, 3))  # (3,) the share that is tumour, ~0.5
    assert list(from_tumour.values()) == pytest.approx((0.95 - frequency).tolist())
    everything = found.calibration_error()  # the plain ECE: diluted ten times by background
    assert list(everything.values()) == pytest.approx((0.1 * (0.95 - frequency) + 0.9 * 0.01)
                                                      .tolist())
    # and nothing left between 0.1 and 0.9: the model decides every pixel it considers
    assert set(found.undecided_share().values()) == {0.0}


def test_the_cut_keeps_the_bins_from_its_probability_up_edges_included():
    # exactly 0.2 and 0.5 open their bins (2 and 5); 0.15 lies in bin 1
    probs = _pixels([0.15, 0.2, 0.5, 0.02])
    targets = _pixels([1, 0, 1, 0])
    found = reliability_of(probs, targets)
    assert found.count[0].tolist() == [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    # from 0.2: bins 2 (0.2 said, 0 found) and 5 (0.5 said, 1 found): (0.2 + 0.5) / 2
    assert found.calibration_error(0.2)["NCR/NET"] == pytest.approx(0.35)
    # from 0.1: bin 1 too (0.15 said, 1 found)
    assert found.calibration_error(0.1)["NCR/NET"] == pytest.approx((0.85 + 0.2 + 0.5) / 3)
    with pytest.raises(ValueError, match="from_probability = 1.5: give a probability"):
        found.calibration_error(1.5)


def test_the_undecided_and_missed_shares_count_what_the_cut_leaves_out():
    probs = _pixels([0.5, 0.3, 0.95, 0.05, 0.02])
    targets = _pixels([1, 1, 1, 1, 0])
    found = reliability_of(probs, targets)
    undecided = found.undecided_share()
    assert undecided["NCR/NET"] == pytest.approx(2 / 3)  # 0.5 and 0.3 of the 3 from 0.1 up
    assert np.isnan(undecided["ED"])  # nothing predicted 0.1 or more there
    missed = found.missed_share()
    assert missed["NCR/NET"] == pytest.approx(1 / 4)  # the tumour pixel given 0.05
    assert np.isnan(missed["ED"])  # no ED pixel at all


def test_probabilities_that_are_not_numbers_are_refused():
    with pytest.raises(ValueError, match="probs holds NaN"):
        reliability_of(_pixels([0.5, float("nan")]), _pixels([1, 0]))


def test_one_pass_over_a_dataset_bins_what_predict_gives(datasets):
    _, val_set = datasets
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4).eval()
    subset = torch.utils.data.Subset(val_set, range(12))
    found = reliability(model, subset, batch_size=5, device="cpu", amp=False)
    probs = predict(model, torch.stack([val_set[i][0] for i in range(12)]), device="cpu",
                    amp=False)
    targets = torch.stack([val_set[i][1] for i in range(12)])
    expected = reliability_of(probs, targets)
    assert np.array_equal(found.count, expected.count)
    assert np.allclose(found.probability_sum, expected.probability_sum, rtol=1e-5)
    assert np.array_equal(found.positive_count, expected.positive_count)
    assert found.count.sum() == 3 * targets[:, 0].numel() and found.skipped == ()


@pytest.mark.parametrize("bins", [1, 2.5, True, "10"])
def test_a_number_of_bins_that_is_not_a_whole_number_of_two_or_more_is_refused(bins):
    with pytest.raises(ValueError, match="bins: must be a whole number of at least 2"):
        reliability_of(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), bins=bins)


def test_probabilities_and_masks_of_other_shapes_are_refused():
    with pytest.raises(ValueError, match=r"probs \(1, 3, 2, 2\) and targets \(1, 3, 2, 3\)"):
        reliability_of(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 3))


def test_the_reliability_figure_draws_each_models_bins_with_enough_pixels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unet_course.viz.calibration import show_reliability

    probs = _pixels([0.05] * 30 + [0.55] * 30 + [0.95] * 5)  # the 0.95 bin: 5 pixels only
    targets = _pixels([0] * 30 + [1] * 15 + [0] * 15 + [1] * 5)
    found = reliability_of(probs, targets)
    fig = show_reliability({"a": found, "b": found}, min_count=20)
    try:
        top = fig.axes[0]  # NCR/NET
        diagonal, first, second = top.lines
        assert diagonal.get_label() == "calibrated" and first.get_label() == "a"
        shown = first.get_xydata()  # (10, 2): the 0.95 bin (5 pixels) and empty ones NaN
        assert np.allclose(shown[[0, 5]], [[0.05, 0.0], [0.55, 0.5]])
        assert np.isnan(shown[[1, 2, 3, 4, 6, 7, 8, 9]]).all()
        assert first.get_marker() != second.get_marker()  # not told apart by colour alone
        assert [ax.get_title() for ax in fig.axes[:3]] == ["NCR/NET", "ED", "ET"]
        assert fig.axes[3].get_yscale() == "log"  # the pixels per bin, under NCR/NET
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="give 1 to 3 models to compare from style 0, got 0"):
        show_reliability({})
    with pytest.raises(ValueError, match="give 1 to 1 models to compare from style 2, got 2"):
        show_reliability({"a": found, "b": found}, first_style=2)
    fig = show_reliability({"b": found}, first_style=1)  # drawn as the second model was
    try:
        line = fig.axes[0].lines[1]
        assert line.get_marker() == "s" and line.get_color() == "C1"
    finally:
        plt.close(fig)


def test_a_reliability_survives_json_as_a_bundle_keeps_it():
    import json

    from unet_lib.calibration import Reliability

    found = reliability_of(_pixels([0.15, 0.2, 0.5, 0.02]), _pixels([1, 0, 1, 0]), bins=5)
    back = Reliability.from_json(json.loads(json.dumps(found.to_json())))
    assert np.array_equal(back.edges, found.edges) and back.count.shape == (3, 5)
    for key in ("count", "probability_sum", "positive_count"):
        assert np.array_equal(getattr(back, key), getattr(found, key))
    assert back.calibration_error(0.1)["NCR/NET"] == found.calibration_error(0.1)["NCR/NET"]


def test_counts_of_another_shape_than_their_bins_are_refused_when_read_back():
    from unet_lib.calibration import Reliability

    entry = reliability_of(_pixels([0.5]), _pixels([1])).to_json()
    entry["bins"] = 5  # the counts hold 10
    with pytest.raises(ValueError, match=r"calibration counts of shapes .*expected \(3, 5\)"):
        Reliability.from_json(entry)


def _two_patients(first_in_channel: int, second_in_channel: int, pixels: int = 10,
                  probability: float = 0.55):
    """A Reliability of two patients, each with ``pixels`` NCR/NET pixels predicted
    ``probability``, of which the given numbers are in the channel (bins of 0.1)."""
    from unet_lib.calibration import Reliability

    per_patient = []
    for positives in (first_in_channel, second_in_channel):
        probs = _pixels([probability] * pixels)
        found = reliability_of(probs, _pixels([1] * positives + [0] * (pixels - positives)))
        per_patient.append([found.count, found.probability_sum, found.positive_count])
    per_patient = np.array(per_patient)  # (2 patients, 3 tallies, 3, 10)
    totals = per_patient.sum(axis=0)
    return Reliability(np.linspace(0, 1, 11), *totals, patients=(3, 7),
                       patient_counts=per_patient)


def test_the_band_over_patients_spans_the_frequencies_a_draw_of_them_can_give():
    # patients of frequency 0.2 and 0.8, as many pixels each: a draw of two with replacement
    # is both of one (0.2 or 0.8, a quarter of the draws each) or one of each (0.5, half)
    found = _two_patients(2, 8)
    assert found.frequency[0, 5] == 0.5
    low, high = found.frequency_band(level=0.9, resamples=4000)
    assert (low[0, 5], high[0, 5]) == (pytest.approx(0.2), pytest.approx(0.8))
    low, high = found.frequency_band(level=0.3, resamples=4000)  # the 35th to 65th percentile
    assert (low[0, 5], high[0, 5]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert np.isnan(low[0, 0]) and np.isnan(high[0, 4])  # bins no patient has pixels in
    # the calibration error of the 0.55 bin: |0.55 - frequency| for 0.2, 0.5 and 0.8
    band = found.calibration_error_band(0.1, level=0.9, resamples=4000)["NCR/NET"]
    assert band == (pytest.approx(0.05), pytest.approx(0.35))


def test_every_bootstrap_over_patients_draws_as_many_times_by_default():
    # the calibration bands drew 2,000 times where the paired comparisons drew 10,000
    from unet_lib.calibration_bootstrap import calibration_difference_band
    from unet_lib.comparison import BOOTSTRAP_RESAMPLES, paired_bootstrap

    found = _two_patients(2, 8)
    assert found.calibration_error_draws(0.1).shape == (BOOTSTRAP_RESAMPLES, 3)
    assert paired_bootstrap([0.5, 0.7], [0.4, 0.9])["n"] == 2  # its draws: below, by hand
    draws = np.random.default_rng(0).integers(0, 2, size=(BOOTSTRAP_RESAMPLES, 2))
    by_hand = np.array([0.1, -0.2])[draws].mean(axis=1)
    assert paired_bootstrap([0.5, 0.7], [0.4, 0.9])["low"] == pytest.approx(
        np.percentile(by_hand, 2.5))
    import inspect

    from unet_lib.calibration import Reliability

    for drawing in (Reliability.frequency_band, Reliability.calibration_error_band,
                    calibration_difference_band):
        assert inspect.signature(drawing).parameters["resamples"].default == BOOTSTRAP_RESAMPLES


def test_patients_alike_give_a_band_of_no_width():
    found = _two_patients(4, 4)
    low, high = found.frequency_band()
    assert low[0, 5] == high[0, 5] == found.frequency[0, 5] == 0.4
    low, high = found.calibration_error_band(0.1)["NCR/NET"]
    assert low == high == pytest.approx(0.15)


def test_a_band_needs_two_patients_and_a_whole_number_of_draws():
    single = reliability_of(_pixels([0.5]), _pixels([1]))  # tensors: no patients known
    with pytest.raises(ValueError, match="two patients or more; this reliability holds 0"):
        single.frequency_band()
    with pytest.raises(ValueError, match="resamples: must be a whole number of at least 1, got 0"):
        _two_patients(2, 8).calibration_error_band(resamples=0)
    with pytest.raises(ValueError, match="level = 1.5"):
        _two_patients(2, 8).frequency_band(level=1.5)


def test_a_brats_dataset_is_binned_patient_by_patient_and_the_patients_add_up(datasets):
    _, val_set = datasets
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4).eval()
    found = reliability(model, val_set, batch_size=7, device="cpu", amp=False)
    volumes = sorted({val_set.locate(i)[0] for i in range(len(val_set))})
    assert found.patients == tuple(volumes) and len(volumes) >= 2
    assert found.patient_counts.shape == (len(volumes), 3, 3, 10)
    for k, volume in enumerate(volumes):  # each patient's bins: its own slices, predicted alone
        items = [i for i in range(len(val_set)) if val_set.locate(i)[0] == volume]
        images, masks = (torch.stack([val_set[i][j] for i in items]) for j in (0, 1))
        alone = reliability_of(predict(model, images, device="cpu", amp=False), masks)
        assert np.array_equal(found.patient_counts[k, 0], alone.count)
        assert np.array_equal(found.patient_counts[k, 2], alone.positive_count)
        assert np.allclose(found.patient_counts[k, 1], alone.probability_sum, rtol=1e-5)
    assert np.array_equal(found.count, found.patient_counts[:, 0].sum(axis=0))
    low, high = found.frequency_band()
    assert np.all((low <= high) | np.isnan(low))


def test_the_patients_bins_survive_json_and_a_wrong_shape_is_refused():
    import json

    from unet_lib.calibration import Reliability

    found = _two_patients(2, 8)
    back = Reliability.from_json(json.loads(json.dumps(found.to_json())))
    assert back.patients == (3, 7) and np.array_equal(back.patient_counts, found.patient_counts)
    assert back.frequency_band()[0][0, 5] == pytest.approx(0.2)
    entry = found.to_json()
    entry["patients"] = [3]  # two patients' counts, one named
    with pytest.raises(ValueError, match=r"per-patient calibration counts of shape \(2, 3, 3, "
                                         r"10\): expected \(1, 3, 3, 10\)"):
        Reliability.from_json(entry)


def test_the_figure_bars_each_point_with_its_band_over_patients():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unet_course.viz.calibration import show_reliability

    found = _two_patients(4, 16, pixels=20)  # 40 pixels at 0.55: drawn, with a bar
    fig = show_reliability({"two patients": found}, title="t", band=0.9)
    try:
        bars = fig.axes[0].collections[0].get_segments()  # the NCR/NET panel's error bars
        drawn = [segment for segment in bars if len(segment) and np.isfinite(segment).all()]
        assert len(drawn) == 1  # the one bin with pixels
        (x0, y0), (x1, y1) = drawn[0]
        assert x0 == x1 == pytest.approx(0.55) and (y0, y1) == (pytest.approx(0.2),
                                                                pytest.approx(0.8))
        assert "bootstrap" in fig._suptitle.get_text()
    finally:
        plt.close(fig)
    fig = show_reliability({"two patients": found}, band=None)
    try:
        assert not fig.axes[0].collections and fig._suptitle is None
    finally:
        plt.close(fig)


def test_two_models_are_compared_on_the_same_patients_drawn_for_both():
    from unet_lib.calibration_bootstrap import calibration_difference_band

    # the same two patients (frequencies 0.2 and 0.8), one model saying 0.65, one 0.55.
    # The first's errors minus the second's: both of patient 1, 0.45 - 0.35; both of patient
    # 2, 0.15 - 0.25; one of each (0.5), 0.15 - 0.05: +0.1 in three draws of four, -0.1 in one
    first, second = _two_patients(2, 8, probability=0.65), _two_patients(2, 8)
    found = calibration_difference_band(first, second, 0.1, level=0.9, resamples=4000)
    assert found["NCR/NET"] == {"difference": pytest.approx(0.1), "low": pytest.approx(-0.1),
                                "high": pytest.approx(0.1)}
    found = calibration_difference_band(first, second, 0.1, level=0.4, resamples=4000)
    assert (found["NCR/NET"]["low"], found["NCR/NET"]["high"]) == (pytest.approx(0.1),
                                                                   pytest.approx(0.1))
    other = _two_patients(2, 8)
    other = type(other)(other.edges, other.count, other.probability_sum, other.positive_count,
                        patients=(3, 9), patient_counts=other.patient_counts)
    with pytest.raises(ValueError, match=r"other patients \(\[3, 7\] and \[3, 9\]\)"):
        calibration_difference_band(first, other)


def test_the_chapters_table_and_reading_say_what_the_bins_hold():
    from unet_course.readings.calibration import calibration_reading
    from unet_course.viz.calibration import calibration_table

    # NCR/NET only: 20 pixels at 0.55 (first) or 0.65 (second), half of them in the channel
    # over the two patients; the other channels are predicted 0 everywhere, with no tumour
    first, second = _two_patients(2, 8), _two_patients(2, 8, probability=0.65)
    table = calibration_table({"first": first, "second": second}, cut=0.1, level=0.9)
    caption, *lines = table.splitlines()  # the caption's comment, then the table
    assert caption.startswith("<!-- table: Calibration per model and channel") and (
        "90 % of it" in caption)
    assert "ECE, p ≥ 0.1" in lines[0] and "ECE of redrawn patients, 90 %" in lines[0]
    first_row = [cell.strip() for cell in lines[2].strip("|").split("|")]
    # ECE |0.55 - 0.5|; the band over patients 0.2 and 0.8: |0.55 - 0.8| to |0.55 - 0.2|;
    # none of its pixels missed (all 0.55), all of them undecided (between 0.1 and 0.9)
    assert first_row == ["first", "NCR/NET", "0.050", "0.050 to 0.350", "0.000", "1.000"]
    words = calibration_reading(("first", first), ("second", second),
                                {"NCR/NET": {"low": -0.1, "high": 0.1},
                                 "ED": {"low": 0.01, "high": 0.2},
                                 "ET": {"low": -0.3, "high": -0.02}})
    assert "the first model's probabilities from 0.1 up are the closer" in words[
        "calibration_reading"] and "(ECE 0.050 against 0.150" in words["calibration_reading"]
    assert words["calibration_difference"].startswith("−0.100 and +0.100 for NCR/NET, ")
    assert words["calibration_settled"] == "excludes 0 for ED and ET only"
    assert calibration_reading(("first", first), ("second", second), {
        "NCR/NET": {"low": -0.1, "high": 0.1}})["calibration_settled"].startswith(
        "holds 0 in every channel")


def test_patients_are_pooled_by_their_pixels_not_averaged_and_each_bin_drawn_alike():
    from unet_lib.calibration import Reliability

    # patient A: 10 pixels at 0.55 of which 2 in the channel, 10 at 0.95 all in it;
    # patient B: 30 pixels at 0.55 of which 24 in it, none at 0.95. A draw of one of each
    # pools 26 of 40 (0.65) in the 0.55 bin, where averaging the two would give 0.5
    def patient(values, in_channel):
        return reliability_of(_pixels(values), _pixels(in_channel))

    a = patient([0.55] * 10 + [0.95] * 10, [1] * 2 + [0] * 8 + [1] * 10)
    b = patient([0.55] * 30, [1] * 24 + [0] * 6)
    per_patient = np.array([[p.count, p.probability_sum, p.positive_count] for p in (a, b)])
    both = Reliability(a.edges, *per_patient.sum(axis=0), patients=(1, 2),
                       patient_counts=per_patient)
    assert both.frequency[0, 5] == pytest.approx(26 / 40)
    low, high = both.frequency_band(level=0.3, resamples=4000)  # 35th to 65th percentile
    assert (low[0, 5], high[0, 5]) == (pytest.approx(0.65), pytest.approx(0.65))
    low, high = both.frequency_band(level=0.9, resamples=4000)
    assert (low[0, 5], high[0, 5]) == (pytest.approx(0.2), pytest.approx(0.8))
    # the 0.95 bin holds patient A's pixels only: every draw that fills it says 1.0, a band
    # of no width that would read as certainty, so it has none
    assert both.patients_per_bin[0].tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 1]
    assert np.isnan(low[0, 9]) and np.isnan(high[0, 9])


def test_a_dataset_that_does_not_tell_the_patients_is_binned_as_a_whole(datasets):
    from unet_lib.calibration import Reliability

    _, val_set = datasets
    model = build_model("classic", base_filters=4).eval()
    found = reliability(model, torch.utils.data.Subset(val_set, range(6)), device="cpu",
                        amp=False)
    assert found.patients == () and found.patient_counts is None
    assert found.patients_per_bin.sum() == 0
    with pytest.raises(ValueError, match="patient_counts holds 2 patients' bins for 1"):
        Reliability(found.edges, found.count, found.probability_sum, found.positive_count,
                    patients=(4,), patient_counts=np.zeros((2, 3, 3, 10)))
