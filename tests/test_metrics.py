"""Dice, precision, recall: hand-computed cases, the empty-mask rule, regions, accumulation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from unet_lib.metrics import (SegmentationScores, binarize, dice, precision, recall,
                              to_regions)


def masks(*rows: str) -> torch.Tensor:
    """A (1, 1, H, W) mask from strings of '0'/'1'."""
    return torch.tensor([[[[int(c) for c in row] for row in rows]]], dtype=torch.float32)


def test_hand_computed_case():
    # pred has 4 pixels, target 3; they share 2 → TP 2, FP 2, FN 1
    pred = masks("1100", "1100")
    target = masks("1000", "0110")
    assert dice(pred, target).item() == pytest.approx(2 * 2 / (4 + 3))
    assert precision(pred, target).item() == pytest.approx(2 / 4)
    assert recall(pred, target).item() == pytest.approx(2 / 3)


def test_both_empty_scores_one_on_every_metric():
    empty = masks("000", "000")
    for metric in (dice, precision, recall):
        assert metric(empty, empty).item() == 1.0


def test_predicting_tumour_where_there_is_none_scores_zero_dice_and_precision():
    pred, target = masks("010"), masks("000")
    assert dice(pred, target).item() == 0.0
    assert precision(pred, target).item() == 0.0
    assert recall(pred, target).item() == 0.0  # 0/0, and not both empty: the BraTS rule


def test_missing_all_of_the_tumour_scores_zero_dice_and_recall():
    pred, target = masks("000"), masks("011")
    assert dice(pred, target).item() == 0.0
    assert recall(pred, target).item() == 0.0
    assert precision(pred, target).item() == 0.0  # nothing predicted, target not empty


def test_counts_are_pooled_over_the_batch_per_channel():
    # image 1: channel 0 perfect (2 px), channel 1 wrong; image 2: channel 0 misses 2 px
    pred = torch.zeros(2, 2, 1, 4)
    target = torch.zeros(2, 2, 1, 4)
    pred[0, 0, 0, :2] = target[0, 0, 0, :2] = 1
    pred[0, 1, 0, 0] = 1
    target[1, 0, 0, 2:] = 1
    assert dice(pred, target).tolist() == pytest.approx([2 * 2 / (2 + 4), 0.0])
    assert dice(pred, target, per_image=True).flatten().tolist() == [1.0, 0.0, 0.0, 1.0]


def test_regions_are_derived_from_the_label_channels():
    labels = torch.tensor([[0, 1, 2, 4, 0]])  # BraTS labels along a row
    mask = torch.stack([labels == 1, labels == 2, labels == 4]).float()[None]  # (1,3,1,5)
    regions = to_regions(mask)
    assert regions[0, 0, 0].tolist() == [0, 1, 1, 1, 0]  # WT: labels 1, 2, 4
    assert regions[0, 1, 0].tolist() == [0, 1, 0, 1, 0]  # TC: labels 1, 4
    assert regions[0, 2, 0].tolist() == [0, 0, 0, 1, 0]  # ET: label 4


def test_accumulator_equals_scoring_everything_at_once():
    torch.manual_seed(0)
    pred = (torch.rand(10, 3, 8, 8) > 0.7).float()
    labels = torch.randint(0, 6, (10, 8, 8))  # label channels never overlap: one per pixel
    target = torch.stack([labels == 1, labels == 2, labels == 3], 1).float()
    scores = SegmentationScores()
    for i in range(0, 10, 3):
        scores.update(pred[i:i + 3], target[i:i + 3])
    result = scores.compute()
    assert list(result["dice"]) == ["NCR/NET", "ED", "ET", "WT", "TC"]
    everything = torch.cat([pred, to_regions(pred)[:, :2]], 1), torch.cat(
        [target, to_regions(target)[:, :2]], 1)
    for metric, fn in (("dice", dice), ("precision", precision), ("recall", recall)):
        assert list(result[metric].values()) == pytest.approx(fn(*everything).tolist())


class FromTheHost(TorchDispatchMode):
    """Records each operator that uses a tensor which neither was given (``known``) nor was
    made by an earlier operator: one built from Python values (a list used as an index, say)
    and copied to the device. On a GPU such a copy from host memory makes the CPU wait until
    the GPU has finished its queue; on the ``meta`` device the same code shows it without one."""

    def __init__(self, known):
        super().__init__()
        self.known, self.strangers = list(known), []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for value in tree_leaves((args, kwargs or {})):
            if isinstance(value, torch.Tensor) and not any(value is k for k in self.known):
                self.strangers.append(str(func))
                self.known.append(value)
        out = func(*args, **(kwargs or {}))
        self.known += [value for value in tree_leaves(out) if isinstance(value, torch.Tensor)]
        return out


def test_adding_a_batch_on_the_device_copies_nothing_from_the_host():
    scores = SegmentationScores(device="meta")  # as evaluate() keeps them on a GPU
    pred, target = torch.zeros(2, 3, 8, 8, device="meta"), torch.ones(2, 3, 8, 8, device="meta")
    with FromTheHost([pred, target, scores.overlapping, *scores.counts.values()]) as watch:
        scores.update(pred, target)
    assert watch.strangers == []  # a GPU run counted two waits per batch from the regions'
    # list index (tests/test_cuda.py, H200, 2026-11-27)

def test_binarize_thresholds_probabilities_and_logits():
    probs = torch.tensor([0.2, 0.5, 0.51, 0.9])
    assert binarize(probs, 0.5, logits=False).tolist() == [0, 0, 1, 1]
    logits = torch.logit(probs)
    assert binarize(logits, 0.5, logits=True).tolist() == [0, 0, 1, 1]
    assert binarize(probs, 0.0, logits=False).tolist() == [1, 1, 1, 1]
    assert binarize(probs, 1.0, logits=False).tolist() == [0, 0, 0, 0]
    # logits that all lie in [0, 1] are still logits: sigmoid(0.2) > 0.5
    assert binarize(torch.tensor([0.2, 0.4, 0.9]), 0.5, logits=True).tolist() == [1, 1, 1]
    with pytest.raises(TypeError, match="logits"):
        binarize(probs, 0.5)  # which it is must be said


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_binarize_rejects_thresholds_outside_0_1(threshold):
    with pytest.raises(ValueError, match=r"threshold: must be a probability in \[0, 1\]"):
        binarize(torch.zeros(3), threshold, logits=False)


def test_mismatched_shapes_are_a_clear_error():
    with pytest.raises(ValueError, match="differ"):
        dice(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


binary = st.lists(st.integers(0, 1), min_size=12, max_size=12)


@settings(max_examples=200, deadline=None)
@given(binary, binary)
def test_properties_bounds_symmetry_and_dice_is_harmonic_mean_of_p_and_r(a, b):
    pred = torch.tensor(a, dtype=torch.float32).reshape(1, 1, 3, 4)
    target = torch.tensor(b, dtype=torch.float32).reshape(1, 1, 3, 4)
    d, p, r = dice(pred, target).item(), precision(pred, target).item(), recall(
        pred, target).item()
    assert 0 <= d <= 1 and 0 <= p <= 1 and 0 <= r <= 1
    assert d == pytest.approx(dice(target, pred).item())
    assert p == pytest.approx(recall(target, pred).item())
    if p + r > 0 and pred.sum() > 0 and target.sum() > 0:
        assert d == pytest.approx(2 * p * r / (p + r))
    if pred.sum() == 0 and target.sum() == 0:
        assert d == p == r == 1.0


def test_regions_given_as_label_channels_are_refused_and_labels_pass():
    labels = torch.tensor([[0, 1, 2, 4, 0]])  # BraTS labels along a row
    channels = torch.stack([labels == 1, labels == 2, labels == 4]).float()[None]  # (1,3,1,5)
    # the regions written out by hand: WT labels 1, 2, 4; TC labels 1, 4; ET label 4
    regions = torch.tensor([[[[0, 1, 1, 1, 0]], [[0, 1, 0, 1, 0]], [[0, 0, 0, 1, 0]]]]).float()
    right = SegmentationScores()
    right.update(channels, channels)
    assert right.compute()["dice"]["WT"] == 1.0
    wrong = SegmentationScores()
    wrong.update(regions, regions)  # the same shape: only the overlaps tell them apart
    with pytest.raises(ValueError, match="2 pixels in more than one channel.*regions WT, TC, ET"):
        wrong.compute()  # label 1's pixel is in WT and TC, label 4's in all three


def test_a_patient_given_label_channels_instead_of_regions_is_refused():
    from unet_lib.patients import score_patient

    labels = torch.zeros(2, 6, 6, dtype=torch.long)  # (D, H, W) BraTS labels
    labels[:, 1:5, 1:5] = 2  # oedema around
    labels[:, 2:4, 2:4] = 4  # an enhancing core
    channels = torch.stack([labels == 1, labels == 2, labels == 4])  # (3, D, H, W)
    regions = torch.stack([labels > 0, (labels == 1) | (labels == 4), labels == 4])
    assert score_patient(regions, regions, (1, 1, 1))["dice"]["WT"] == 1.0
    # as regions: "TC" (the oedema, 12 voxels a slice) lies outside "WT" (NCR/NET, none),
    # "ET" (4 a slice) outside "TC": 2 × (12 + 4)
    with pytest.raises(ValueError, match=r"32 voxels of TC or ET.*label channels"):
        score_patient(channels, channels, (1, 1, 1))
