"""The scoring functions against values worked out by hand.

A model that gives every pixel the same probability ``p`` predicts every pixel (threshold
below ``p``) or none (threshold above): its Dice, precision, recall and BCE follow from the
masks' tumour counts alone, computed here with NumPy, apart from the library's code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from unet_lib.config import TrainConfig
from unet_lib.data.samples import BraTSDataError
from unet_lib.inference import evaluate, threshold_sweep
from unet_lib.losses import make_loss
from unet_lib.recipe import RunRecipe
from unet_lib.results import held_out_scores
from unet_lib.run import prepare_run

P = 0.4  # the constant model's probability
NAMES = ("NCR/NET", "ED", "ET", "WT", "TC")


def constant_model(probability: float = P) -> nn.Module:
    """(N, 4, H, W) → (N, 3, H, W) logits, ``logit(probability)`` everywhere."""
    model = nn.Conv2d(4, 3, 1)
    nn.init.zeros_(model.weight)
    nn.init.constant_(model.bias, math.log(probability / (1 - probability)))
    return model.eval()


def truth_by_name(masks: np.ndarray) -> dict[str, np.ndarray]:
    """Bool masks (N, 3, H, W) → {channel or region: (N, H, W)}; the BraTS regions by hand."""
    ncr, ed, et = masks[:, 0] > 0.5, masks[:, 1] > 0.5, masks[:, 2] > 0.5
    return {"NCR/NET": ncr, "ED": ed, "ET": et, "WT": ncr | ed | et, "TC": ncr | et}


def when_all_predicted(truth: np.ndarray) -> dict[str, float]:
    """Scores of a prediction that marks every pixel: TP = T, FP = P − T, FN = 0."""
    tumour, pixels = int(truth.sum()), truth.size
    if tumour == 0:  # only false positives: 0 (nothing is both empty)
        return {"dice": 0.0, "precision": 0.0, "recall": 0.0}
    return {"dice": 2 * tumour / (pixels + tumour), "precision": tumour / pixels, "recall": 1.0}


def when_none_predicted(truth: np.ndarray) -> dict[str, float]:
    """Scores of an empty prediction: 0 where there is tumour, 1 (both empty) where none."""
    value = 0.0 if truth.any() else 1.0
    return {"dice": value, "precision": value, "recall": value}


def expected_scores(masks: np.ndarray, predicted_all: bool) -> dict[str, dict[str, float]]:
    rule = when_all_predicted if predicted_all else when_none_predicted
    by_name = {name: rule(truth) for name, truth in truth_by_name(masks).items()}
    return {metric: {name: by_name[name][metric] for name in NAMES}
            for metric in ("dice", "precision", "recall")}


@pytest.fixture(scope="module")
def data(datasets):
    """The validation slices of the shared phantom, and their masks as one array."""
    val = datasets[1]
    masks = np.stack([val[i][1].numpy() for i in range(len(val))])
    assert 0 < masks.mean() < 0.5  # some tumour, some background: no score is trivial
    return val, masks


def scores_of(result: dict) -> dict:
    return {metric: result[metric] for metric in ("dice", "precision", "recall")}


@pytest.mark.parametrize("threshold, predicted_all", [(0.3, True), (0.5, False)])
def test_evaluate_scores_a_constant_model_as_counted_by_hand(data, threshold, predicted_all):
    val, masks = data
    result = evaluate(constant_model(), val, threshold=threshold, batch_size=5, device="cpu")
    expected = expected_scores(masks, predicted_all)
    for metric in expected:
        assert result[metric] == pytest.approx(expected[metric], rel=1e-9), metric


def test_evaluate_loss_is_bce_per_pixel_or_the_loss_it_is_given(data):
    val, masks = data
    # BCE of the probability P against each pixel's truth, averaged over every pixel
    tumour = masks.sum(axis=(0, 2, 3))  # per channel
    pixels = masks[:, 0].size
    bce = -(tumour * math.log(P) + (pixels - tumour) * math.log(1 - P)) / pixels
    result = evaluate(constant_model(), val, batch_size=7, device="cpu")
    assert result["loss"] == pytest.approx(bce.mean(), rel=1e-6)
    # the weighted form: tumour pixels of channel c count pos_weight[c] times
    weights = np.array([5.0, 2.0, 5.0])
    weighted = -(weights * tumour * math.log(P) + (pixels - tumour) * math.log(1 - P)) / pixels
    loss_fn = make_loss(TrainConfig(pos_weight=tuple(weights)))
    result = evaluate(constant_model(), val, batch_size=7, device="cpu", loss_fn=loss_fn)
    assert result["loss"] == pytest.approx(weighted.mean(), rel=1e-6)


class ConstantWithAParameter(nn.Module):
    """:func:`constant_model`'s logits, plus 0 × a parameter, so that ``fit`` has something
    to step: training leaves its outputs where they are, so every batch's loss is known."""

    def __init__(self):
        super().__init__()
        self.constant = constant_model()
        self.unused = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.constant(x) + 0.0 * self.unused


def test_the_training_loss_is_bce_per_pixel_over_the_epoch(datasets):
    from unet_lib.train import fit

    train = datasets[0]
    masks = np.stack([train[i][1].numpy() for i in range(len(train))])
    tumour, pixels = masks.sum(axis=(0, 2, 3)), masks[:, 0].size
    bce = -(tumour * math.log(P) + (pixels - tumour) * math.log(1 - P)) / pixels
    config = TrainConfig(epochs=2, batch_size=7, tumour_share=None, pos_weight=None,
                         device="cpu", amp=False, num_workers=0, channels_last=False,
                         resident_data=False)  # batches of 7: the last one smaller
    assert len(train) % 7
    model = ConstantWithAParameter()
    for param in model.constant.parameters():
        param.requires_grad_(False)
    history = fit(model, train, None, config=config, progress=False)
    assert history["train_loss"] == pytest.approx(
        [bce.mean()] * 2, rel=1e-6)  # a mean over pixels, not over batches or their sum


def test_threshold_sweep_scores_each_threshold_as_evaluate_does(data):
    val, masks = data
    sweep = threshold_sweep(constant_model(), val, [0.3, 0.5], batch_size=6, device="cpu")
    assert list(sweep) == [0.3, 0.5]
    for threshold, predicted_all in ((0.3, True), (0.5, False)):
        expected = expected_scores(masks, predicted_all)
        for metric in expected:
            assert sweep[threshold][metric] == pytest.approx(expected[metric], rel=1e-9)


def test_nothing_to_score_is_an_error_not_a_perfect_score(data):
    val, _ = data
    empty = torch.utils.data.Subset(val, [])
    with pytest.raises(BraTSDataError, match="no sample to score: it holds no sample"):
        evaluate(constant_model(), empty, device="cpu")
    with pytest.raises(BraTSDataError, match="no sample to score"):
        threshold_sweep(constant_model(), empty, [0.5], device="cpu")


def test_held_out_scores_count_by_hand_over_all_pixels_and_per_patient(phantom_root, tmp_path):
    # the phantom's own 64×64: the scores on the data's grid are those of the dataset's masks
    recipe = RunRecipe.for_scale("quick", model="classic", data=phantom_root, image_size=64,
                                 base_filters=4)
    run = prepare_run(recipe, tmp_path / "run")
    test = run.dataset("test")
    masks = np.stack([test[i][1].numpy() for i in range(len(test))])
    volumes = np.array([test.locate(i)[0] for i in range(len(test))])
    scores = held_out_scores(run, constant_model(), threshold=0.3, device="cpu")
    assert scores["volumes"] == run.test_volumes and len(run.test_volumes) >= 2
    expected = expected_scores(masks, predicted_all=True)
    for metric in expected:
        assert scores["all_pixels"][metric] == pytest.approx(expected[metric], rel=1e-9)
    rows = {row["volume"]: row for row in scores["patients"]}
    assert sorted(rows) == sorted(run.test_volumes)
    for volume in run.test_volumes:
        expected = expected_scores(masks[volumes == volume], predicted_all=True)
        for metric in expected:
            for region in ("WT", "TC", "ET"):
                assert rows[volume][metric][region] == pytest.approx(
                    expected[metric][region], rel=1e-9), (volume, metric, region)
    wt_dice = [expected_scores(masks[volumes == v], True)["dice"]["WT"]
               for v in run.test_volumes]
    assert scores["per_patient"]["dice"]["WT"]["mean"] == pytest.approx(np.mean(wt_dice))


def test_best_threshold_is_the_highest_score_and_the_lowest_threshold_on_a_tie():
    from unet_lib.metrics import best_threshold

    sweep = {0.7: {"dice": {"WT": 0.80, "ET": 0.9}}, 0.3: {"dice": {"WT": 0.80, "ET": 0.1}},
             0.5: {"dice": {"WT": 0.79, "ET": 0.2}}}
    assert best_threshold(sweep) == 0.3  # 0.3 and 0.7 tie on WT
    assert best_threshold(sweep, region="ET") == 0.7


def test_a_dataset_whose_every_file_is_unusable_is_named_with_a_reason(unusable_folder):
    with pytest.raises(BraTSDataError, match=r"data/broken: no sample to score: all 3 were "
                                             r"skipped as unusable, e\.g\. slice_0\.h5: truncated"):
        evaluate(constant_model(), unusable_folder("data/broken", 3, "truncated"), batch_size=2,
                 device="cpu")
