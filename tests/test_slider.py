"""The static slider: every reachable picture pre-rendered, switched without a kernel."""

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from unet_course import viz
from unet_course.viz.slider import MAX_FRAMES, ImageSlider, png_data_url


def decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_png_data_url_keeps_the_pixels():
    picture = np.array([[0.0, 0.5], [1.0, 2.0]])
    assert decode(png_data_url(picture)).tolist() == [[0, 128], [255, 255]]
    rgb = np.zeros((2, 3, 3))
    rgb[0, 1] = (1, 0, 1)
    assert decode(png_data_url(rgb))[0, 1].tolist() == [255, 0, 255]
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 3\)"):
        png_data_url(np.zeros((2, 2, 4)))


def grey(value):
    return np.full((2, 2), value / 10)


def test_each_position_shows_its_own_pictures_and_repeats_are_stored_once():
    slider = ImageSlider({"a": ["0", "1", "2"], "b": ["x", "y"]}, ["fixed", "varies"],
                         lambda p: [grey(1), grey(2 + 2 * p[0] + p[1])],
                         caption=lambda p: f"a{p[0]} b{p[1]}", start=(2, 1))
    assert slider.frame_count == 6
    assert len(slider.pool) == 1 + 6  # the fixed picture once, six different ones
    urls, caption = slider.frame((1, 0))
    assert caption == "a1 b0" and decode(urls[1])[0, 0] == round(255 * 0.4)
    page = slider.to_html()
    # the widget starts on its start position, with no external resource
    assert f'src="{slider.frame((2, 1))[0][1]}"' in page and "a2 b1" in page
    assert not re.search(r"(src|href)=\"https?:", page)
    assert page.count('type="range"') == 2


def test_two_renderings_of_one_slider_on_a_page_each_drive_their_own_element():
    slider = ImageSlider({"a": ["0", "1"]}, ["p"], lambda p: [grey(p[0])])
    ids = []
    for page in (slider.to_html(), slider.to_html()):  # shown twice, or two sliders alike
        element = re.search(r'<div id="([^"]+)" class="unet-slider"', page).group(1)
        looked_up = re.search(r"getElementById\(\"([^\"]+)\"\)", page).group(1)
        assert looked_up == element  # the script finds the element it came with
        ids.append(element)
    assert ids[0] != ids[1]


def test_each_pictures_text_alternative_names_the_sliders_that_change_it():
    # panel "input" changes with the slice only, "result" with both sliders, "key" never
    slider = ImageSlider({"slice": ["s0", "s1"], "threshold": ["0.3", "0.5"]},
                         ["input", "result", "key"],
                         lambda p: [grey(p[0]), grey(2 + 2 * p[0] + p[1]), grey(9)],
                         caption=None, start=(1, 0))
    assert slider.depends == [[0], [0, 1], []]
    assert [slider.alt(j, (1, 0)) for j in range(3)] == [
        "input: slice s1", "result: slice s1, threshold 0.3", "key"]
    page = slider.to_html()
    assert 'alt="input: slice s1"' in page and 'alt="key"' in page  # the start position's
    quoted = ImageSlider({"a": ['"x" & <y>']}, ["p"], lambda p: [grey(1)])
    assert quoted.depends == [[]] and 'alt="p"' in quoted.to_html()
    two = ImageSlider({"a": ['<b>', "c"]}, ["p"], lambda p: [grey(p[0])])
    assert 'alt="p: a &lt;b&gt;"' in two.to_html()  # escaped in the page


def test_slider_input_errors_are_named():
    with pytest.raises(ValueError, match="at least one position"):
        ImageSlider({"a": []}, ["p"], lambda p: [grey(0)])
    with pytest.raises(ValueError, match="gave 2 pictures for 1 panels"):
        ImageSlider({"a": ["0"]}, ["p"], lambda p: [grey(0), grey(1)])
    with pytest.raises(ValueError, match=f"at most {MAX_FRAMES}"):
        ImageSlider({"a": list(range(MAX_FRAMES + 1))}, ["p"], lambda p: [grey(0)])
    with pytest.raises(ValueError, match="outside"):
        ImageSlider({"a": ["0"]}, ["p"], lambda p: [grey(0)], start=(1,))


def test_threshold_slider_captions_report_the_dice_of_each_threshold():
    target = torch.zeros(1, 3, 4, 4)
    target[0, 1, :1] = 1  # 4 oedema pixels: the whole tumour
    probs = torch.zeros(1, 3, 4, 4)
    probs[0, 1, :1] = 0.6
    probs[0, 1, 1] = 0.4  # 4 more pixels at 0.4
    images = torch.randn(1, 4, 4, 4)
    slider = viz.threshold_slider(images, target, probs, ["s"], thresholds=[0.3, 0.5])
    # at 0.5 exactly the tumour: WT Dice 1; at 0.3 8 pixels for 4: 2·4 / (8 + 4) = 0.67
    assert "WT 1.00" in slider.frame((0, 1))[1] and "WT 0.67" in slider.frame((0, 0))[1]
    assert slider.start == (0, 1)
    binarized = decode(slider.frame((0, 0))[0][3])
    assert binarized[:2, :, 1].min() == 255 and binarized[2:, :, 1].max() == 0


def test_threshold_slider_captions_name_the_pixels_marked_in_two_channels():
    # the colours that mix (yellow, cyan, magenta, white) are said in words: a red-green
    # colour-blind eye cannot tell yellow from green, nor cyan from white
    from unet_course.viz.frames import overlap_caption

    binary = torch.zeros(3, 4, 4)
    binary[0, 0] = 1  # NCR/NET on row 0 ...
    binary[1, 0, :2] = 1  # ... 2 of its pixels also ED: NCR/NET+ED
    binary[1, 1] = 1
    binary[2, 1, :3] = 1  # 3 pixels of ED+ET on row 1
    binary[:, 3, 3] = 1  # 1 pixel in all three
    assert overlap_caption(binary) == ("in two channels: NCR/NET+ED 2 px, ED+ET 3 px; "
                                       "in all three: 1 px")
    binary[:, 3, 3] = 0
    binary[1, 3, 3], binary[2, 3, 3] = 0, 0
    binary[0, 2, 2], binary[2, 2, 2] = 1, 1  # one NCR/NET+ET pixel (magenta)
    assert overlap_caption(binary).endswith("ED+ET 3 px, NCR/NET+ET 1 px")
    assert overlap_caption(torch.eye(3)[:, :, None].expand(3, 3, 2)) == "no pixel in two channels"
    for wrong in (torch.full((3, 2, 2), 0.7), torch.zeros(1, 3, 2, 2)):  # probabilities, a batch
        with pytest.raises(ValueError, match="binarized \\(3, H, W\\) mask"):
            overlap_caption(wrong)
    probs = torch.zeros(1, 3, 4, 4)
    probs[0, 0, 0] = 0.9
    probs[0, 1, 0, :2] = 0.4  # oedema too on 2 of them at a threshold of 0.3, not of 0.5
    slider = viz.threshold_slider(torch.randn(1, 4, 4, 4), torch.zeros(1, 3, 4, 4), probs,
                                  ["s"], thresholds=[0.3, 0.5])
    assert slider.frame((0, 0))[1].endswith("in two channels: NCR/NET+ED 2 px")
    assert slider.frame((0, 1))[1].endswith("no pixel in two channels")


def test_attention_slider_reports_mean_alpha_inside_and_in_the_rest_of_the_brain():
    target = torch.zeros(1, 3, 8, 8)
    target[0, 0, :4, :4] = 1  # top-left quarter
    alpha = torch.full((1, 1, 4, 4), 0.2)
    alpha[..., :2, :2] = 0.9
    alpha[..., 3, :] = 1.0  # wide open on the air: left out of the caption's figures
    images = torch.full((1, 4, 8, 8), -0.6)  # z-scored air: every channel's lowest value
    images[0, 1, :6] = torch.rand(6, 8) + 0.5  # the head: the top six rows
    slider = viz.attention_slider(images, target, [alpha], ["s"])
    assert "inside the tumour 0.900, in the rest of the brain 0.200" in slider.frame((0, 0))[1]
    assert slider.panels[-1].startswith("colour key")  # the colour map, drawn beside the maps


def test_the_attention_key_writes_the_range_its_map_is_stretched_over():
    from unet_course.viz.attention import colour_key

    target = torch.zeros(1, 3, 8, 8)
    target[0, 0, :4, :4] = 1
    images = torch.rand(1, 4, 8, 8) + 0.5  # all head
    wide = torch.linspace(0.2, 0.9, 16).reshape(1, 1, 4, 4)  # stretched over 0.20…0.90
    flat = torch.full((1, 1, 4, 4), 0.5)  # too flat to stretch: the 0…1 scale
    slider = viz.attention_slider(images, target, [wide, flat], ["s"])
    keys = [decode(slider.frame((0, gate))[0][3]) for gate in (0, 1)]
    assert keys[0].shape == keys[1].shape == colour_key(0.0, 1.0).shape[:2] + (3,)
    assert not np.array_equal(keys[0], keys[1])  # other numbers under the same colours
    assert np.array_equal(keys[0][:20], keys[1][:20])
    assert not np.array_equal(colour_key(0.2, 0.9), colour_key(0.2, 0.8))
