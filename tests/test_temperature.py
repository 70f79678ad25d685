"""Temperature scaling: the BCE at each temperature against torch's own, a temperature found
where the data were made with it, decisions at 0.5 untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unet_lib.calibration import reliability
from unet_lib.inference import predict
from unet_lib.temperature import (TemperatureScaled, bce_by_temperature, fit_temperature)


class FirstThreeChannels(nn.Module):
    """A "model" whose logits are its images' first three channels: logits chosen by hand."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, :3]


def _samples(logits: torch.Tensor, masks: torch.Tensor) -> list:
    """(image (4, H, W), mask (3, H, W)) samples whose images carry ``logits`` (N, 3, H, W)."""
    images = torch.cat([logits, torch.zeros_like(logits[:, :1])], dim=1)
    return list(zip(images, masks))


def _made_at(temperature: float, seed: int = 0, n: int = 16):
    """Logits, and masks drawn so that σ(logits / temperature) is each pixel's true chance."""
    generator = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(n, 3, 32, 32, generator=generator)
    chance = torch.sigmoid(logits / temperature)
    return logits, (torch.rand(chance.shape, generator=generator) < chance).float()


def test_the_bce_at_each_temperature_is_torchs_own():
    logits, masks = _made_at(1.0, n=2)
    temperatures = torch.tensor([0.5, 1.0, 3.0])
    sums = bce_by_temperature(logits, masks, temperatures)
    for k, t in enumerate(temperatures.tolist()):
        expected = F.binary_cross_entropy_with_logits(
            logits.double() / t, masks.double(), reduction="none").sum(dim=(0, 2, 3))
        assert torch.allclose(sums[:, k], expected)


@pytest.mark.parametrize("made_at", [0.5, 2.0])
def test_the_temperature_the_data_were_made_at_is_found_on_them(made_at):
    logits, masks = _made_at(made_at)
    fitted = fit_temperature(FirstThreeChannels(), _samples(logits, masks), device="cpu",
                             amp=False)
    assert fitted.best == pytest.approx([made_at] * 3, rel=0.05)  # 16k pixels per channel
    assert not fitted.at_edge.any()
    assert fitted.pixels == 16 * 32 * 32
    assert (fitted.loss.min(axis=1) < fitted.loss_as_trained).all()
    # and the scaled model's probabilities are nearer frequencies on other draws of the same
    test_logits, test_masks = _made_at(made_at, seed=1)
    test = _samples(test_logits, test_masks)
    before = reliability(FirstThreeChannels(), test, device="cpu", amp=False)
    after = reliability(TemperatureScaled(FirstThreeChannels(), fitted.best), test,
                        device="cpu", amp=False)
    assert max(after.calibration_error().values()) < 0.02
    assert max(after.calibration_error().values()) < min(before.calibration_error().values())


def test_a_temperature_moves_no_decision_at_one_half():
    logits, _ = _made_at(1.0, n=2)
    images = torch.cat([logits, torch.zeros_like(logits[:, :1])], dim=1)
    scaled = TemperatureScaled(FirstThreeChannels(), [0.3, 2.0, 7.0])
    as_trained = predict(FirstThreeChannels(), images, device="cpu", amp=False)
    probs = predict(scaled, images, device="cpu", amp=False)
    assert torch.allclose(probs[:, 1], torch.sigmoid(logits[:, 1] / 2.0))
    assert torch.equal(probs > 0.5, as_trained > 0.5)
    assert not torch.allclose(probs, as_trained)


def test_the_temperature_sits_beside_the_model_s_weights():
    # "meta" stands in for a GPU: a model loaded there gets its temperature there, so that
    # calling the scaled model on images on that device divides by a tensor of that device
    model = nn.Conv2d(4, 3, 1, device="meta")
    scaled = TemperatureScaled(model, [0.5, 1.0, 2.0])
    assert scaled.temperature.device.type == "meta"
    assert scaled(torch.zeros(1, 4, 2, 2, device="meta")).shape == (1, 3, 2, 2)
    assert TemperatureScaled(nn.Identity(), 2.0).temperature.device.type == "cpu"  # no weights


def test_temperatures_that_cannot_be_used_are_refused():
    logits, masks = _made_at(1.0, n=1)
    with pytest.raises(ValueError, match="temperatures: give two or more positive numbers"):
        fit_temperature(FirstThreeChannels(), _samples(logits, masks), temperatures=[2, 1])
    with pytest.raises(ValueError, match="temperature: give one positive, finite number per"):
        TemperatureScaled(FirstThreeChannels(), [1.0, 2.0])
    for bad in (0.0, float("inf")):  # infinite: every probability 0.5, decisions moved
        with pytest.raises(ValueError, match="one positive, finite number per channel"):
            TemperatureScaled(FirstThreeChannels(), bad)
    assert np.allclose(TemperatureScaled(FirstThreeChannels(), 2.0).temperature.flatten(), 2)


def test_the_chapters_table_and_reading_give_the_fit_and_its_effect():
    from unet_course.readings.calibration import temperature_reading
    from unet_course.viz.calibration import temperature_table
    from unet_lib.calibration import reliability_of
    from unet_lib.temperature import TemperatureFit

    fitted = TemperatureFit(np.array([0.5, 1.0, 2.0]),
                            loss=np.array([[0.3, 0.2, 0.1], [0.1, 0.2, 0.3], [0.4, 0.1, 0.4]]),
                            loss_as_trained=np.array([0.2, 0.2, 0.1]), pixels=10)
    assert fitted.best.tolist() == [2.0, 0.5, 1.0]
    probs = torch.zeros(1, 3, 1, 4)
    probs[0, :, 0] = torch.tensor([0.95, 0.95, 0.15, 0.15])  # in every channel
    masks = torch.zeros_like(probs)
    masks[0, :, 0, :2] = 1  # the 0.95 pixels in the channel: gaps 0.05 and 0.15
    before = reliability_of(probs, masks)
    after = reliability_of(torch.where(probs > 0.5, 0.99, 0.01), masks)  # all below 0.1 cut
    table = temperature_table(fitted, before, after)
    caption, _, _, row = table.splitlines()[:4]  # the caption's comment, then the table
    assert caption.startswith("<!-- table: One temperature per channel") and "0.1 up" in caption
    first_row = [cell.strip() for cell in row.strip("|").split("|")]
    assert first_row == ["NCR/NET", "2.00", "0.2000", "0.1000", "0.100", "0.010"]
    words = temperature_reading(fitted, before, after)
    assert words.startswith("the validation patients chose T = 2.00 for NCR/NET, 0.50 for ED")
    assert "went from 0.100 to 0.010 for NCR/NET, " in words


def _binned(pairs):
    """A Reliability whose every channel holds, per (probability, pixels, in the channel),
    that many pixels at that probability, that many of them in the channel."""
    from unet_lib.calibration import reliability_of

    probs = torch.tensor([p for p, n, _ in pairs for _ in range(n)], dtype=torch.float32)
    masks = torch.tensor([float(i < k) for _, n, k in pairs for i in range(n)])
    return reliability_of(probs.view(1, 1, 1, -1).repeat(1, 3, 1, 1),
                          masks.view(1, 1, 1, -1).repeat(1, 3, 1, 1))


LEVELS = (0.15, 0.35, 0.65, 0.85)  # four bins' probabilities, 20 pixels each


@pytest.mark.parametrize("in_channel, said", [
    # 1, 4, 16, 19 of 20 in the channel: steeper than the diagonal, crossing it at 0.5
    ((1, 4, 16, 19), "under-confident, the validation patients chose too high a temperature "
                     "for the test patients (it crosses the diagonal near 0.50)"),
    ((8, 9, 11, 12), "over-confident, the validation patients chose too low"),
    ((1, 5, 11, 15), "too often at every level"),
    ((5, 9, 15, 19), "too seldom at every level"),
    ((3, 7, 13, 17), "lies near the diagonal"),
    # flatter than the diagonal but below it everywhere (it would cross at −0.24): not
    # over-confidence, which runs above the diagonal at low probabilities
    ((0, 0, 2, 7), "too often at every level"),
])
def test_the_reading_says_how_a_temperature_that_did_not_help_left_the_curve(in_channel, said):
    from unet_course.readings.calibration import curve_shape, temperature_reading
    from unet_lib.temperature import TemperatureFit

    fitted = TemperatureFit(np.array([1.0, 4.0]), loss=np.array([[0.3, 0.1]] * 3),
                            loss_as_trained=np.array([0.3] * 3), pixels=80)
    after = _binned([(p, 20, k) for p, k in zip(LEVELS, in_channel)])
    worse = dataclasses.replace(after, positive_count=np.zeros_like(after.positive_count))
    words = temperature_reading(fitted, after, worse)  # the ECE rose
    assert words.count("the temperature made it worse: after T = 4.00") == 3
    assert temperature_reading(fitted, after, after).count("did not help: after T = 4.00") == 3
    words = temperature_reading(fitted, worse, after)  # the ECE fell: nothing more to say
    assert "did not help" not in words
    assert said in curve_shape(after, 0)


def test_an_under_confident_curve_whose_top_bins_reach_1_is_read_as_under_confident():
    """Chapter 9's NCR/NET after T = 4.56 (quick run, 2026-12-07), 20 pixels a bin: steep from
    0.14 to 0.75, then 1 in the two top bins. A line through all nine is flattened by the two
    that can rise no further (slope 1.11) and read "above at every level", a temperature
    unable to mend it, beside a table whose ECE was lower at T = 1."""
    from unet_course.readings.calibration import curve_shape

    levels = (0.14, 0.243, 0.353, 0.448, 0.545, 0.642, 0.755, 0.854, 0.967)
    found = _binned([(p, 20, k) for p, k in zip(levels, (2, 6, 10, 12, 14, 17, 19, 20, 20))])
    said = curve_shape(found, 0)
    assert said.startswith("its curve is steeper than the diagonal") and "under-confident" in said
    # gaps −0.04 at 0.14 and +0.057 at 0.243: 0.14 + 0.04 / 0.097 · 0.103 = 0.18
    assert said.endswith("(it crosses the diagonal near 0.18)")


def test_a_curve_of_too_few_bins_has_no_shape_to_tell():
    from unet_course.readings.calibration import curve_shape

    assert "too few of its bins" in curve_shape(_binned([(0.35, 20, 6), (0.75, 20, 15)]), 0)
    assert "too few of its bins" in curve_shape(_binned([(p, 19, 5) for p in LEVELS]), 0)


def test_the_default_grid_holds_one_and_its_loss_is_the_model_as_trained():
    from unet_lib.temperature import TEMPERATURES

    assert len(TEMPERATURES) == 81 and TEMPERATURES[0] == 0.25 and TEMPERATURES[-1] == 8.0
    assert TEMPERATURES[32] == pytest.approx(1.0)  # 2^(-2 + 32/16)
    logits, masks = _made_at(1.5, n=2)
    fitted = fit_temperature(FirstThreeChannels(), _samples(logits, masks), device="cpu",
                             amp=False)
    assert fitted.loss_as_trained == pytest.approx(fitted.loss[:, 32])
    expected = F.binary_cross_entropy_with_logits(logits, masks, reduction="none").mean(
        dim=(0, 2, 3))
    assert fitted.loss_as_trained == pytest.approx(expected.tolist(), rel=1e-5)


def test_a_best_temperature_beyond_the_grid_is_said_to_be_at_its_edge():
    logits, masks = _made_at(0.5)
    fitted = fit_temperature(FirstThreeChannels(), _samples(logits, masks),
                             temperatures=[1.0, 2.0, 3.0], device="cpu", amp=False)
    assert fitted.best.tolist() == [1.0] * 3 and fitted.at_edge.all()


def test_logits_that_are_not_numbers_or_no_usable_sample_are_refused():
    from unet_lib.data import BraTSDataError

    logits, masks = _made_at(1.0, n=2)
    logits[0, 1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="logits hold NaN or infinite values"):
        fit_temperature(FirstThreeChannels(), _samples(logits, masks), device="cpu", amp=False)
    with pytest.raises(BraTSDataError):
        fit_temperature(FirstThreeChannels(), [], device="cpu", amp=False)


def test_the_wrapper_carries_the_size_its_model_learnt_at():
    model = FirstThreeChannels()
    model.trained_image_size = 96
    assert TemperatureScaled(model, 1.5).trained_image_size == 96
