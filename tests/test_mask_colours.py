"""The mask palettes: how colours mix, how a palette is chosen, and that the colour-blind one
keeps every mix apart for colour-blind eyes (simulated here, independently of the library)."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from unet_course.viz import mask_colours  # noqa: E402
from unet_course.viz.mask_colours import (PALETTE_VARIABLE, channel_colours,  # noqa: E402
                                      mask_combinations, mask_to_rgb, palette_name,
                                      use_palette)


# --- colour-vision simulation (Machado, Oliveira & Fernandes 2009, severity 1.0: the matrices
# of their paper, applied to linear RGB), then CIELAB (D65) -------------------------------------
SIMULATIONS = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _cielab(linear_rgb: np.ndarray) -> np.ndarray:
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                       [0.0193, 0.1192, 0.9505]])
    xyz = linear_rgb @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                     200 * (f[:, 1] - f[:, 2])], axis=1)


def smallest_difference(colours: np.ndarray, vision: str) -> float:
    """The smallest CIELAB ΔE between two of ``colours`` (N, 3) sRGB, as ``vision`` sees them."""
    seen = np.clip(_linear(colours) @ SIMULATIONS[vision].T, 0, 1)
    lab = _cielab(seen)
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(lab, 2))


def all_eight(palette: str) -> np.ndarray:
    """The (8, 3) colours of every subset of channels, each a mask drawn by the library."""
    masks = np.array(list(itertools.product((0.0, 1.0), repeat=3)), np.float32)  # (8, 3)
    return mask_to_rgb(masks.T[:, :, None], palette)[:, 0]  # (3, 8, 1) → (8, 3)


def test_the_slides_palette_shows_a_masks_values_as_its_red_green_and_blue():
    probs = torch.rand(3, 5, 7)
    assert np.allclose(mask_to_rgb(probs), probs.permute(1, 2, 0).numpy())
    assert palette_name() == "slides"


def test_the_colour_blind_palette_adds_its_colours_and_clips_the_sum():
    red, green, blue = (np.array(to_rgb(c)) for c in channel_colours("colour-blind"))
    mask = np.zeros((3, 1, 4), np.float32)
    mask[0, 0, 0] = 1  # NCR/NET alone
    mask[:2, 0, 1] = 1  # NCR/NET + ED
    mask[:, 0, 2] = 1  # all three
    mask[2, 0, 3] = 0.5  # half an ET
    rgb = mask_to_rgb(mask, "colour-blind")[0]
    assert np.allclose(rgb[0], red) and np.allclose(rgb[1], np.minimum(red + green, 1))
    assert np.allclose(rgb[2], np.minimum(red + green + blue, 1))
    assert np.allclose(rgb[3], blue / 2)


def test_the_colour_blind_palette_keeps_every_mix_apart_for_every_vision():
    # the figures the book gives: at least ΔE 32 in the colour-blind palette, for each vision
    for vision in SIMULATIONS:
        assert smallest_difference(all_eight("colour-blind"), vision) >= 32, vision
    # and 8.3 for the slides' colours under protanopia (ED and NCR/NET + ED alike), the reason
    assert round(smallest_difference(all_eight("slides"), "protanopia"), 1) == 8.3
    assert smallest_difference(all_eight("slides"), "normal") > 50


def test_a_palette_is_chosen_in_the_notebook_or_the_environment(monkeypatch):
    monkeypatch.setenv(PALETTE_VARIABLE, "colour-blind")
    legend = [h.get_facecolor()[:3] for h in mask_colours_legend()]
    assert np.allclose(legend, [to_rgb(c) for c in mask_colours.PALETTES["colour-blind"]])
    one_each = np.eye(3)[:, :, None]  # (3, 3, 1): pixel k has channel k alone
    assert np.allclose(mask_to_rgb(one_each)[:, 0],
                       [to_rgb(c) for c in mask_colours.PALETTES["colour-blind"]])
    use_palette("slides")  # the notebook's choice wins over the environment's
    assert palette_name() == "slides"
    assert mask_to_rgb(one_each)[:, 0].tolist() == np.eye(3).tolist()
    use_palette(None)
    assert palette_name() == "colour-blind"


def mask_colours_legend():
    from unet_course.viz.frames import legend_handles

    return legend_handles()


def test_a_misspelt_palette_is_refused_with_the_choices(monkeypatch):
    with pytest.raises(ValueError, match=r"palette = 'colourblind': choose one of 'slides', "
                                         r"'colour-blind'"):
        use_palette("colourblind")
    with pytest.raises(ValueError, match=r"palette = 'colourblind': choose one"):
        mask_colours.colours_in_words("colourblind")  # was a bare KeyError
    monkeypatch.setenv(PALETTE_VARIABLE, "deuteranopia")
    with pytest.raises(ValueError, match=r"\$UNET_COURSE_PALETTE = 'deuteranopia'"):
        mask_to_rgb(np.zeros((3, 2, 2)))
    monkeypatch.setenv(PALETTE_VARIABLE, "color-blind")  # the American spelling is taken
    assert palette_name() == "colour-blind"


def test_the_key_names_each_subset_with_the_colour_a_mask_of_it_gets():
    rows = mask_combinations("slides")
    assert [name for name, _ in rows] == [
        "none", "NCR/NET", "ED", "ET", "NCR/NET + ED", "NCR/NET + ET", "ED + ET", "all three"]
    assert dict(rows)["NCR/NET + ET"] == (1.0, 0.0, 1.0)  # magenta
    assert dict(rows)["ED + ET"] == (0.0, 1.0, 1.0)  # cyan
    blind = dict(mask_combinations("colour-blind"))
    red, green, _ = (np.array(to_rgb(c)) for c in channel_colours("colour-blind"))
    assert np.allclose(blind["NCR/NET + ED"], np.minimum(red + green, 1))


def test_the_key_figure_draws_the_palette_in_use():
    from unet_course.viz import show_colour_key

    use_palette("colour-blind")
    fig = show_colour_key()
    swatches = [ax.images[0].get_array()[0, 0] for ax in fig.axes]
    assert np.allclose(swatches, [colour for _, colour in mask_combinations("colour-blind")])
    assert [ax.get_xlabel() for ax in fig.axes][4] == "NCR/NET +\nED"  # two lines: no overlap
    assert "colour-blind palette" in fig._suptitle.get_text()


def test_the_threshold_sliders_frames_and_note_follow_the_palette():
    import base64
    import io

    import matplotlib.pyplot as plt

    from unet_course.viz.frames import threshold_slider

    images = torch.zeros(1, 4, 6, 6)
    targets = torch.zeros(1, 3, 6, 6)
    targets[0, 1, 1:4, 1:4] = 1  # oedema
    probs = targets.clone() * 0.9
    use_palette("colour-blind")
    slider = threshold_slider(images, targets, probs, ["a slice"], thresholds=(0.5,))
    truth_url = slider.frame((0, 0))[0][1]  # the ground-truth panel, a PNG data URL
    truth = plt.imread(io.BytesIO(base64.b64decode(truth_url.split(",", 1)[1])), format="png")
    colours = np.unique(truth[..., :3].reshape(-1, 3), axis=0)  # black and ED's colour only
    green = to_rgb(channel_colours("colour-blind")[1])
    assert np.allclose(colours, [(0.0, 0.0, 0.0), green], atol=1 / 255)
    assert slider.note == ("raspberry NCR/NET · green ED · bright blue ET (overlaps mix: "
                           "raspberry + green = tan, green + bright blue = sky blue, "
                           "raspberry + bright blue = lilac, all three white)")
    use_palette("slides")
    assert "red + green = yellow" in threshold_slider(images, targets, probs, ["a slice"],
                                                      thresholds=(0.5,)).note


def test_exercise_5_1_reads_the_slides_colours_in_any_palette(capsys):
    from unet_course import labs

    use_palette("colour-blind")
    labs.check_mask_channels({"NCR/NET", "ET"}, colour=(1, 0, 1))
    labs.check_mask_channels({"NCR/NET", "ED"}, colour=(0.9, 0.6, 0.1), threshold=0.5)
    assert capsys.readouterr().out.count("Right") == 2
