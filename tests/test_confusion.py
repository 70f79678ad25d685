"""Chapter 6's picture of TP, FP and FN: each pixel in its kind's colour, and the counts and
scores in each region's title worked out by hand."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from unet_course.confusion import confusion_picture, show_confusion  # noqa: E402


def test_each_pixel_takes_its_kind_s_colour_and_the_rest_stays_dim_grey():
    channel = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    pred, truth = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    pred[0, 0] = truth[0, 0] = True   # found
    pred[0, 3] = True                 # marked wrongly
    truth[3, 0] = True                # missed
    picture = confusion_picture(channel, pred, truth)
    assert picture[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert picture[0, 3] == pytest.approx([0xe6 / 255, 0x9f / 255, 0.0])
    assert picture[3, 0] == pytest.approx([0x56 / 255, 0xb4 / 255, 0xe9 / 255])
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
    finally:
        plt.close(fig)
