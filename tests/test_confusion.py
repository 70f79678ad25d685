"""Chapter 6's picture of TP, FP and FN: each pixel in its kind's colour, and the counts and
scores in each region's title worked out by hand."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from unet_course.viz.confusion import confusion_picture, confusion_rows, show_confusion  # noqa: E402


def test_each_pixel_takes_its_kind_s_colour_and_the_rest_stays_dim_grey():
    channel = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    pred, truth = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    pred[0, 0] = truth[0, 0] = True   # found
    pred[0, 3] = True                 # marked wrongly
    truth[3, 0] = True                # missed
    picture = confusion_picture(channel, pred, truth)
    assert picture[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert picture[0, 3] == pytest.approx([0xe6 / 255, 0x9f / 255, 0.0])
    assert picture[3, 0] == pytest.approx([0xcc / 255, 0x79 / 255, 0xa7 / 255])
    rest = picture[1:3]  # neither predicted nor tumour: grey, at most half bright
    assert np.allclose(rest[..., 0], rest[..., 2]) and rest.max() <= 0.5
    with pytest.raises(ValueError, match="must be \\(H, W\\) of one size"):
        confusion_picture(channel, pred[:3], truth)


def test_each_region_s_title_gives_its_counts_and_scores():
    image = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    target = torch.zeros(3, 8, 8)
    target[1, 2:5, 2:5] = 1            # oedema: 9 pixels, all WT, none of TC
    target[2, 3, 3], target[1, 3, 3] = 1, 0  # its centre enhancing: 1 pixel of WT, TC, ET
    probs = torch.zeros(3, 8, 8)
    probs[1, 2:5, 2:4] = 0.9           # 6 pixels of oedema predicted (column 4 missed)
    probs[2, 6, 6] = 0.9               # one enhancing pixel far from the tumour
    fig = show_confusion(image, target, probs, threshold=0.5)
    try:
        titles = [ax.get_title() for ax in fig.axes]
        # WT: predicted 6 + 1 = 7, truth 9; found 6 (the centre (3, 3) is oedema predicted)
        assert titles[0].startswith("WT: TP 6, FP 1, FN 3\nDice 0.750")  # 12 / 16
        # TC = NCR/NET ∪ ET: truth the centre pixel, predicted the far pixel only
        assert titles[1].startswith("TC: TP 0, FP 1, FN 1\nDice 0.000")
        assert "precision 0.857" in titles[0] and "recall 0.667" in titles[0]  # 6/7, 6/9
        # ET: the truth's one pixel missed, one far pixel marked: no 0/0 there
        assert titles[2].startswith("ET: TP 0, FP 1, FN 1") and "0/0" not in titles[2]
        # each region's own pixels, in the kinds' colours: the far pixel (6, 6) marked
        # wrongly in TC, the centre (3, 3) missed there and found in WT
        wt, tc = (ax.images[0].get_array() for ax in fig.axes[:2])
        assert np.allclose(tc[6, 6], [0xe6 / 255, 0x9f / 255, 0.0])
        assert np.allclose(tc[3, 3], [0xcc / 255, 0x79 / 255, 0xa7 / 255])
        assert np.allclose(wt[3, 3], [1.0, 1.0, 1.0]) and np.allclose(wt[2, 4], tc[3, 3])
    finally:
        plt.close(fig)


def test_a_region_empty_in_both_says_0_over_0_and_a_pixel_outside_the_head_is_shown():
    image = torch.zeros(4, 12, 12)
    image[:, 4:8, 4:8] = 1.0            # a small head in the middle
    target, probs = torch.zeros(3, 12, 12), torch.zeros(3, 12, 12)
    target[1, 5, 5] = 1                 # oedema only: TC and ET empty in the truth
    probs[1, 0, 11] = 0.9               # and a false pixel in the corner, outside the head
    fig = show_confusion(image, target, probs)
    try:
        titles = [ax.get_title() for ax in fig.axes[:3]]
        assert titles[0] == "WT: TP 0, FP 1, FN 1\nDice 0.000 · precision 0.000\nrecall 0.000"
        assert titles[1] == ("TC: TP 0, FP 0, FN 0\nDice 1.000 (0/0) · precision 1.000 (0/0)\n"
                             "recall 1.000 (0/0)")
        assert fig.axes[0].get_xlim()[1] == pytest.approx(11.5)  # the whole slice shown
    finally:
        plt.close(fig)


def test_the_table_gives_the_counts_and_scores_of_the_titles():
    target = torch.zeros(3, 8, 8)
    target[1, 2:5, 2:5] = 1            # the slice of the titles' test: oedema, 9 pixels
    target[2, 3, 3], target[1, 3, 3] = 1, 0
    probs = torch.zeros(3, 8, 8)
    probs[1, 2:5, 2:4] = 0.9
    probs[2, 6, 6] = 0.9
    rows = confusion_rows(target, probs, threshold=0.5)
    assert [row["region"] for row in rows] == ["WT", "TC", "ET"]
    assert {k: rows[0][k] for k in ("TP", "FP", "FN")} == {"TP": 6, "FP": 1, "FN": 3}
    assert rows[0]["Dice"] == pytest.approx(12 / 16) and rows[0]["recall"] == pytest.approx(6 / 9)
    assert rows[0]["precision"] == pytest.approx(6 / 7)
    assert (rows[1]["TP"], rows[1]["FP"], rows[1]["FN"], rows[1]["Dice"]) == (0, 1, 1, 0.0)
    assert [row["0/0"] for row in rows] == ["none", "none", "none"]  # a column never blank
    # at 0.95 nothing is marked: WT all missed, and TC/ET score 0 (truth not empty)
    strict = confusion_rows(target, probs, threshold=0.95)
    assert [(row["TP"], row["FP"], row["FN"]) for row in strict] == [(0, 0, 9), (0, 0, 1),
                                                                       (0, 0, 1)]
    # nothing marked: precision is 0/0 (scored 0, the truth not being empty), as the title says
    assert [row["0/0"] for row in strict] == ["precision"] * 3
    assert strict[0]["precision"] == 0.0
    # a region empty in both: all three 0/0, each scored 1 by the BraTS rule
    no_core = confusion_rows(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4))
    assert no_core[1]["0/0"] == "Dice, precision, recall" and no_core[1]["Dice"] == 1.0
