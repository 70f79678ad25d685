"""HD95: hand-computed cases, the BraTS empty-mask convention, and MONAI's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unet_lib.metrics import HD95_ONE_EMPTY, hausdorff95, surface


def test_two_single_voxels_are_their_distance_apart_in_mm():
    pred, target = np.zeros((1, 1, 1, 10)), np.zeros((1, 1, 1, 10))
    target[0, 0, 0, 0], pred[0, 0, 0, 4] = 1, 1
    assert hausdorff95(pred, target) == pytest.approx([4.0])
    assert hausdorff95(pred, target, spacing=(1.0, 1.0, 2.5)) == pytest.approx([10.0])


def test_a_far_false_positive_moves_hd95_by_its_share_of_the_surface():
    target = np.zeros((1, 1, 1, 40), bool)
    target[0, 0, 0, :19] = True    # 19 voxels, all on the surface of a one-voxel-thin bar
    pred = target.copy()
    pred[0, 0, 0, 39] = True          # one false voxel 20 voxels beyond the bar's end (at 18)
    # pred → target: 19 zeros and one 21; the 95th percentile of 20 values lies at rank
    # 0.95 · 19 = 18.05, between 0 and 21: 0.05 · 21. target → pred: all 0.
    assert hausdorff95(pred, target) == pytest.approx([0.05 * 21])
    assert hausdorff95(pred, target, percentile=100) == pytest.approx([21.0])


def test_the_surface_of_a_cube_is_its_shell():
    cube = np.zeros((5, 5, 5), bool)
    cube[1:4, 1:4, 1:4] = True
    shell = surface(cube)
    assert shell.sum() == 27 - 1 and not shell[2, 2, 2]


def test_empty_masks_follow_the_brats_convention():
    empty, full = np.zeros((2, 4, 6, 6)), np.zeros((2, 4, 6, 6))
    full[:, 1:3, 2:4, 2:4] = 1
    assert hausdorff95(empty, empty).tolist() == [0.0, 0.0]
    assert hausdorff95(full, empty).tolist() == [HD95_ONE_EMPTY] * 2
    assert hausdorff95(empty, full).tolist() == [HD95_ONE_EMPTY] * 2
    assert HD95_ONE_EMPTY == 373.13


def test_channels_are_scored_separately_and_tensors_work():
    pred, target = torch.zeros(3, 3, 8, 8), torch.zeros(3, 3, 8, 8)
    target[0, 1, 2, 2], pred[0, 1, 2, 5] = 1, 1     # 3 apart
    target[2, 1, 1:3, 1:3], pred[2, 1, 1:3, 1:3] = 1, 1  # identical
    assert hausdorff95(pred, target).tolist() == pytest.approx([3.0, 0.0, 0.0])


def test_masks_without_their_channel_axis_are_refused_rather_than_read_as_a_volume():
    # three 2-D channels (3, H, W) under the default 3-D spacing would be one volume 3 deep
    pred, target = np.zeros((3, 8, 8)), np.zeros((3, 8, 8))
    target[0, 2, 2], pred[0, 2, 4] = 1, 1
    with pytest.raises(ValueError, match=r"\(C, D, H, W\).*one mask \(D, H, W\) needs its "
                                         r"channel axis first: mask\[None\]"):
        hausdorff95(pred, target)
    assert hausdorff95(pred, target, spacing=(1, 1)).tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"spacing=\(1, 1\)"):  # five axes, three spacings
        hausdorff95(pred[None, None], target[None, None])


def test_shapes_that_do_not_match_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        hausdorff95(np.zeros((3, 4, 4, 4)), np.zeros((3, 4, 4, 5)))


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_monai_on_random_non_empty_masks(seed):
    from monai.metrics import compute_hausdorff_distance

    rng = np.random.default_rng(seed)
    shape = (3, *rng.integers(6, 24, size=3))
    spacing = tuple(float(s) for s in rng.uniform(0.5, 2.0, size=3))
    pred = rng.random(shape) < rng.uniform(0.05, 0.5)
    target = rng.random(shape) < rng.uniform(0.05, 0.5)
    pred[:, 0, 0, 0] = target[:, -1, -1, -1] = True  # never empty
    ours = hausdorff95(pred, target, spacing=spacing)
    theirs = compute_hausdorff_distance(torch.as_tensor(pred[None]), torch.as_tensor(target[None]),
                                        include_background=True, percentile=95, directed=False,
                                        spacing=spacing)[0].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
