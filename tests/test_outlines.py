"""The distances behind HD95 (unet_lib.outlines) and one patient's stacked volumes
(unet_lib.patient_volume), checked against brute force and against evaluate_patients."""

from __future__ import annotations

import numpy as np
import pytest

from test_patients import LeftColumn, MasksAsImages, OneBroken, blob, oracle
from unet_lib.outlines import OutlineDistances, hausdorff95, surface, surface_distances
from unet_lib.patient_volume import predict_patient
from unet_lib.patients import evaluate_patients


def brute_force(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """Every surface voxel of ``a`` against every surface voxel of ``b``: the smallest
    distance of each, in the order np.argwhere lists them."""
    scale = np.asarray(spacing, dtype=float)
    points, targets = np.argwhere(surface(a)) * scale, np.argwhere(surface(b)) * scale
    return np.sqrt(((points[:, None] - targets[None]) ** 2).sum(-1)).min(1)


def random_blobs(seed: int, shape=(6, 9, 11)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(shape) < 0.3, rng.random(shape) < 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_surface_voxel_is_paired_with_its_nearest_and_their_distance(seed):
    a, b = random_blobs(seed)
    spacing = (2.5, 1.0, 0.5)
    found = surface_distances(a, b, spacing)
    assert found.points.tolist() == np.argwhere(surface(a)).tolist()
    assert found.distances == pytest.approx(brute_force(a, b, spacing))
    assert surface(b)[tuple(found.nearest.T)].all()  # each partner is on b's surface
    joined = np.sqrt((((found.points - found.nearest) * spacing) ** 2).sum(1))
    assert joined == pytest.approx(found.distances)  # and lies at that distance


@pytest.mark.parametrize("seed", [3, 4])
def test_hd95_is_the_larger_directed_95th_percentile_and_hausdorff_the_farthest(seed):
    pred, truth = random_blobs(seed)
    both = OutlineDistances.between(pred, truth, (1.0, 1.0, 1.0))
    forward, backward = brute_force(pred, truth, (1, 1, 1)), brute_force(truth, pred, (1, 1, 1))
    assert both.hd95 == pytest.approx(max(np.percentile(forward, 95),
                                          np.percentile(backward, 95)))
    assert both.hausdorff == pytest.approx(max(forward.max(), backward.max()))
    assert hausdorff95(pred[None], truth[None])[0] == pytest.approx(both.hd95)


def test_a_far_false_blob_decides_from_the_prediction_a_missed_part_from_the_truth():
    truth = np.zeros((12, 40), bool)
    truth[2:10, 2:10] = True  # an 8×8 square: its ring of 28 outline pixels
    pred = truth.copy()
    pred[2:6, 30:34] = True  # and a 4×4 false blob, its 12-pixel ring 21 to 24 columns away
    blob_first = OutlineDistances.between(pred, truth, (1, 1))
    assert blob_first.deciding == "prediction_to_truth"
    far = blob_first.prediction_to_truth
    assert far.distances[far.farthest()] == pytest.approx(24.0)
    assert far.beyond(20.5).sum() == 12 and far.beyond(0).sum() == 12
    # sorted: the square's 28 zeros, then the blob's 21 ×4, 22 ×2, 23 ×2, 24 ×4 (its rows 2
    # and 5 whole, rows 3 and 4 at columns 30 and 33); the 95th percentile of 40 values lies
    # at rank 0.95 · 39 = 37.05, between ranks 37 and 38: both 24
    assert blob_first.hd95 == pytest.approx(24.0)
    assert blob_first.truth_to_prediction.distances.max() == 0.0
    missed = OutlineDistances.between(truth, pred, (1, 1))  # the same, read the other way
    assert missed.deciding == "truth_to_prediction"
    assert missed.hd95 == pytest.approx(blob_first.hd95)


def test_an_empty_mask_has_no_outline_to_measure_and_says_which():
    full = np.ones((2, 3, 3), bool)
    with pytest.raises(ValueError, match="truth is empty.*373.13"):
        OutlineDistances.between(full, np.zeros_like(full), (1, 1, 1))
    with pytest.raises(ValueError, match="same shape"):
        OutlineDistances.between(full, full[:1], (1, 1, 1))
    with pytest.raises(ValueError, match="one voxel size per axis"):
        surface_distances(full, full, (1.0,))


def test_a_patient_stacked_alone_scores_as_evaluate_patients_scored_it():
    truth = {1: blob(at=(1, 3, 3)), 2: blob(at=(2, 1, 1))}
    predicted = {1: blob(at=(3, 3, 3)), 2: blob(at=(2, 1, 2))}
    data = MasksAsImages(truth, predicted)  # items listed in a shuffled order
    rows = {row["volume"]: row for row in evaluate_patients(
        oracle(), data, batch_size=4, device="cpu", spacing=(2.0, 1, 1)).rows}
    for volume in (1, 2):
        case = predict_patient(oracle(), data, volume, batch_size=4, device="cpu",
                               spacing=(2.0, 1, 1))
        assert {k: v for k, v in case.scores().items()} == {
            k: v for k, v in rows[volume].items() if k not in ("volume", "slices")}
        assert case.truth.shape == case.pred.shape == (3, 6, 8, 8)
        assert case.image.shape == (4, 6, 8, 8)
        # the image is the dataset's own, slice by slice, in slice order
        np.testing.assert_array_equal(case.image[:3], predicted[volume])
        assert case.outlines("WT").hd95 == rows[volume]["hd95"]["WT"]


def test_an_unusable_slice_is_left_empty_in_its_place_as_the_scores_leave_it():
    truth = {1: blob(), 2: blob(at=(1, 3, 3))}  # volume 2's tumour in slices 1 and 2
    predicted = {1: blob(), 2: blob(at=(4, 3, 3))}  # predicted in 4 and 5; 3 cannot be read
    with pytest.warns(UserWarning):
        row = evaluate_patients(oracle(), OneBroken(truth, predicted), batch_size=4,
                                device="cpu", spacing=(1, 1, 1)).rows[1]
        case = predict_patient(oracle(), OneBroken(truth, predicted), 2, batch_size=4,
                               device="cpu", spacing=(1, 1, 1))
    assert case.slices == [0, 1, 2, 4, 5]
    assert not case.image[:, 3].any() and not case.truth[:, 3].any()
    # slices 4 and 5 lie 2 and 3 slices from the truth's last; with the gap closed, 1 and 2
    assert case.scores()["hd95"]["WT"] == row["hd95"]["WT"] == pytest.approx(3.0)


def test_a_patient_listed_with_some_of_its_slices_is_stacked_to_its_full_depth():
    class FirstSlices(MasksAsImages):  # as a dataset of tumour slices only lists them
        def __init__(self, masks, predicted):
            super().__init__(masks, predicted)
            self.depths = {volume: m.shape[1] for volume, m in masks.items()}
            self.slices = [entry for entry in self.slices if entry[1] < 4]

    truth, predicted = {1: blob(at=(1, 3, 3))}, {1: blob(at=(2, 3, 3))}
    with pytest.warns(UserWarning, match="4 of its 6 slices"):
        row = evaluate_patients(oracle(), FirstSlices(truth, predicted), device="cpu").rows[0]
    case = predict_patient(oracle(), FirstSlices(truth, predicted), 1, device="cpu")
    assert case.pred.shape[1] == 6 and case.slices == [0, 1, 2, 3]
    assert case.spacing[0] == pytest.approx(155 / 6)  # BraTS's 155 mm over all 6 slices
    assert case.scores()["hd95"] == row["hd95"] and case.scores()["dice"] == row["dice"]


def test_an_image_stored_at_another_size_is_stacked_on_the_masks_grid():
    class SecondSmaller(MasksAsImages):
        def read(self, index):
            image, mask = super().read(index)
            if self.slices[index][1] == 1:  # slice 1 stored at 4×4
                return image[:, ::2, ::2], mask[:, ::2, ::2]
            return image, mask

    masks = {1: blob()}
    data = SecondSmaller(masks, masks)
    data.image_size = 8  # the model sees every slice at 8×8; the stored image of slice 1 is 4×4
    case = predict_patient(oracle(), data, 1, device="cpu")
    assert case.image.shape == (4, 6, 8, 8) and case.pred.shape == (3, 6, 8, 8)


def test_a_model_at_a_smaller_size_is_stacked_on_the_grid_the_masks_are_stored_at():
    masks = {1: blob(at=(2, 3, 0))}
    data = MasksAsImages(masks, masks)
    data.image_size = 4  # the model sees 4×4 slices; the scores are on the stored 8×8
    row = evaluate_patients(LeftColumn(), data, threshold=0.8, device="cpu").rows[0]
    case = predict_patient(LeftColumn(), data, 1, threshold=0.8, device="cpu")
    assert case.pred.shape[-2:] == case.image.shape[-2:] == (8, 8)
    assert case.scores()["dice"] == row["dice"]
    assert case.spacing == pytest.approx((155 / 6, 30.0, 30.0))  # BraTS's mm over 6×8×8


def test_a_volume_not_in_the_data_is_refused_with_the_volumes_it_holds():
    masks = {3: blob(), 7: blob()}
    with pytest.raises(ValueError, match="volume 5 is not in the dataset: it holds volumes "
                                         "3, 7"):
        predict_patient(oracle(), MasksAsImages(masks, masks), 5, device="cpu")
    with pytest.raises(ValueError, match="region must be one of WT, TC, ET"):
        predict_patient(oracle(), MasksAsImages(masks, masks), 3, device="cpu").outlines("ED")


def test_the_largest_piece_is_kept_whole_and_alone_with_faces_or_corners_joining():
    from unet_lib.postprocess import keep_largest_component, keep_largest_per_region

    mask = np.zeros((5, 7, 7), bool)
    mask[0:2, 0:2, 0:2] = True       # 8 voxels
    mask[2:5, 2:5, 2:5] = True       # 27, meeting the 8 at the corner (1, 1, 1)-(2, 2, 2)
    mask[0, 6, 6] = True             # 1, alone
    kept = keep_largest_component(mask)
    assert kept.sum() == 27 and kept[2:5, 2:5, 2:5].all()
    assert keep_largest_component(mask, connectivity=3).sum() == 35  # joined at the corner
    assert not keep_largest_component(np.zeros((3, 4, 4))).any()
    assert mask.sum() == 36  # the mask it was given is left as it was
    regions = keep_largest_per_region(np.stack([mask, np.zeros_like(mask), mask[::-1]]))
    assert regions.sum(axis=(1, 2, 3)).tolist() == [27, 0, 27]
    with pytest.raises(ValueError, match="connectivity must be 1 .* to 3"):
        keep_largest_component(mask, connectivity=4)
    with pytest.raises(ValueError, match="connectivity must be"):
        keep_largest_component(mask, connectivity=True)


def test_of_two_largest_pieces_of_equal_size_the_first_in_the_array_s_order_is_kept():
    from unet_lib.postprocess import keep_largest_component

    mask = np.zeros((2, 6, 6), bool)
    mask[1, 4:6, 4:6] = True  # 4 voxels, later in C order
    mask[0, 0:2, 0:2] = True  # 4 voxels, first
    kept = keep_largest_component(mask)
    assert kept.sum() == 4 and kept[0, 0, 0] and not kept[1, 4, 4]


def test_keeping_the_largest_piece_removes_a_far_blob_and_the_hd95_it_set():
    from unet_lib.patients import score_patient
    from unet_lib.postprocess import keep_largest_per_region

    truth = np.zeros((3, 12, 16, 16), bool)
    truth[:, 3:8, 4:10, 4:10] = True
    pred = truth.copy()
    pred[:, 10:12, 12:16, 12:16] = True  # a 32-voxel blob far from the tumour
    before = score_patient(pred, truth, (1, 1, 1))
    after = score_patient(keep_largest_per_region(pred), truth, (1, 1, 1))
    assert before["hd95"]["WT"] > 5 and after["hd95"]["WT"] == 0.0
    assert after["dice"]["WT"] == 1.0 > before["dice"]["WT"]


def test_keeping_the_largest_tumour_cuts_every_region_to_it_so_they_stay_nested():
    from unet_lib.postprocess import keep_largest_per_region, keep_largest_tumour

    channels = np.zeros((3, 6, 8, 8), bool)   # NCR/NET, ED, ET
    channels[1, 1:4, 1:4, 1:4] = True          # 27 voxels of oedema
    channels[2, 2, 2, 2], channels[1, 2, 2, 2] = True, False  # one enhancing voxel inside
    channels[2, 5, 7, 7] = True                # a lone enhancing voxel, far away
    kept = keep_largest_tumour(channels)
    assert kept.sum(axis=(1, 2, 3)).tolist() == [0, 26, 1] and kept[2, 2, 2, 2]
    assert not kept[2, 5, 7, 7]
    # per region, ET's largest piece is either voxel (both 1): the first in C order is kept
    # here, but a TC or ET piece can survive outside WT's; the nested clean-up never keeps one
    regions = np.stack([channels.any(0), channels[[0, 2]].any(0), channels[2]])
    assert keep_largest_tumour(regions).sum(axis=(1, 2, 3)).tolist() == [27, 1, 1]
    channels[2, 2, 2, 2] = False               # now ET's only piece lies outside the tumour
    assert keep_largest_per_region(channels)[2].sum() == 1
    assert keep_largest_tumour(channels)[2].sum() == 0
    with pytest.raises(ValueError, match="channels, D, H, W"):
        keep_largest_tumour(np.ones(5, bool))


def test_each_patient_is_cleaned_before_it_is_scored_per_patient_and_over_all_pixels():
    from unet_lib.metrics import SegmentationScores
    from unet_lib.postprocess import keep_largest_tumour

    truth = {1: blob()}
    predicted = {1: blob()}
    predicted[1][1, 5, 7, 7] = 1  # a false oedema voxel far from the 2×2×2 tumour
    data = MasksAsImages(truth, predicted)
    plain, cleaned = SegmentationScores(), SegmentationScores()
    before = evaluate_patients(oracle(), data, device="cpu", spacing=(1, 1, 1), pixels=plain)
    after = evaluate_patients(oracle(), data, device="cpu", spacing=(1, 1, 1), pixels=cleaned,
                              clean=keep_largest_tumour)
    assert before.rows[0]["hd95"]["WT"] > 0 and before.rows[0]["dice"]["WT"] == 2 * 8 / 17
    assert after.rows[0]["dice"] == {"WT": 1.0, "TC": 1.0, "ET": 1.0}
    assert after.rows[0]["hd95"]["WT"] == 0.0
    assert plain.compute()["precision"]["ED"] == 7 / 8      # 7 oedema voxels + the false one
    assert cleaned.compute()["precision"]["ED"] == 1.0
    with pytest.raises(ValueError, match="clean must return the .3, D, H, W. shape"):
        evaluate_patients(oracle(), data, device="cpu", clean=lambda pred: pred[0])
