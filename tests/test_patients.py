"""Per-patient 3-D scoring: volumes stacked in slice order, regions, Dice and HD95 per
patient, summaries over patients, the three-way split, the Dice loss."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from unet_lib.config import TrainConfig
from unet_lib.data import SliceDataset, split_train_val_test, split_volumes
from unet_lib.losses import BCEDiceLoss, SoftDiceLoss, make_loss
from unet_lib.metrics import HD95_ONE_EMPTY, SegmentationScores
from unet_lib.comparison import paired_bootstrap, paired_sign_flip
from unet_lib.data import BraTSDataError
from unet_lib.patients import PatientScores, evaluate_patients, score_patient


class MasksAsImages(SliceDataset):
    """Items whose image carries the mask in its first three channels (and zeros in the
    fourth), listed in a shuffled order: an oracle model can then predict any mask."""

    def __init__(self, masks: dict[int, np.ndarray], predicted: dict[int, np.ndarray]):
        super().__init__("memory")
        self.masks, self.predicted = masks, predicted
        entries = [(v, s) for v, m in masks.items() for s in range(m.shape[1])]
        order = np.random.default_rng(0).permutation(len(entries))
        self.slices = [entries[i] for i in order]

    def read(self, index):
        volume, s = self.slices[index]
        image = np.concatenate([self.predicted[volume][:, s], np.zeros((1, 8, 8))])
        return image.astype(np.float32), self.masks[volume][:, s].astype(np.float32)


def oracle() -> nn.Module:
    """Logits +10 where image channel c is 1, −10 elsewhere: predicts what the image says."""
    model = nn.Conv2d(4, 3, 1)
    with torch.no_grad():
        model.weight.zero_()
        for c in range(3):
            model.weight[c, c] = 20.0
        model.bias.fill_(-10.0)
    return model


def blob(depth=6, at=(2, 3, 3)) -> np.ndarray:
    """(3, D, 8, 8) labels: a 2×2×2 oedema cube with a 1-voxel enhancing core."""
    mask = np.zeros((3, depth, 8, 8))
    z, y, x = at
    mask[1, z:z + 2, y:y + 2, x:x + 2] = 1
    mask[1, z, y, x], mask[2, z, y, x] = 0, 1
    return mask


def test_a_perfect_prediction_scores_dice_1_and_hd95_0_for_every_patient():
    masks = {1: blob(), 2: blob(at=(1, 1, 1))}
    scores = evaluate_patients(oracle(), MasksAsImages(masks, masks), device="cpu",
                               spacing=(1, 1, 1))
    assert [row["volume"] for row in scores.rows] == [1, 2]
    for row in scores.rows:
        assert row["slices"] == 6 and row["empty"] == []
        assert row["dice"] == {"WT": 1.0, "TC": 1.0, "ET": 1.0}
        assert row["hd95"] == {"WT": 0.0, "TC": 0.0, "ET": 0.0}


def test_slices_are_stacked_in_slice_order_so_a_shift_in_depth_is_measured():
    masks = {1: blob(at=(1, 3, 3))}
    shifted = {1: blob(at=(4, 3, 3))}  # the same blob three slices deeper
    row = evaluate_patients(oracle(), MasksAsImages(masks, shifted), device="cpu",
                            spacing=(2.0, 1, 1)).rows[0]
    assert row["dice"]["WT"] == 0.0
    assert row["hd95"]["ET"] == pytest.approx(3 * 2.0)  # one voxel, 3 slices of 2 mm apart


def test_batches_never_mix_two_patients_and_give_the_all_pixel_scores_of_the_same_pass():
    masks = {1: blob(), 2: blob(at=(1, 3, 3))}
    predicted = {1: blob(), 2: blob(at=(4, 3, 3))}  # patient 2's tumour 3 slices off
    pixels = SegmentationScores()
    scores = evaluate_patients(oracle(), MasksAsImages(masks, predicted), batch_size=4,
                               device="cpu", spacing=(1, 1, 1), pixels=pixels)
    assert [(row["volume"], row["slices"], row["dice"]["WT"]) for row in scores.rows] == [
        (1, 6, 1.0), (2, 6, 0.0)]
    # whole tumour: 8 voxels per patient; patient 1 all found, patient 2's 8 predicted
    # voxels all wrong and its 8 all missed: TP 8, FP 8, FN 8
    assert pixels.compute()["dice"]["WT"] == pytest.approx(2 * 8 / (2 * 8 + 8 + 8))
    assert pixels.compute()["recall"]["ED"] == pytest.approx(7 / 14)  # 7 oedema voxels each


class OneBroken(MasksAsImages):
    """Slice 3 of volume ``broken`` cannot be read."""

    broken = 2

    def read(self, index):
        if self.slices[index] == (self.broken, 3):
            raise BraTSDataError(f"volume_{self.broken}_slice_3.h5", "truncated")
        return super().read(index)


def test_an_unusable_slice_is_left_out_of_its_patient_and_listed_once():
    from unet_lib.patients import PartialVolumeWarning

    masks = {1: blob(), 2: blob()}
    with pytest.warns(UserWarning, match="truncated"), \
            pytest.warns(PartialVolumeWarning, match="5 of its 6 slices .*each in its place"):
        scores = evaluate_patients(oracle(), OneBroken(masks, masks), batch_size=4,
                                   device="cpu", spacing=(1, 1, 1))
    assert scores.skipped == ["volume_2_slice_3.h5: truncated"]
    assert [(row["volume"], row["slices"]) for row in scores.rows] == [(1, 6), (2, 5)]


def test_an_unusable_slice_keeps_its_place_so_distances_in_depth_are_kept():
    # as a packed copy of the same data stacks it: before, the source closed the gap
    class Broken(OneBroken):
        broken = 1

    truth = {1: blob(at=(1, 3, 3))}  # the whole tumour in slices 1 and 2
    predicted = {1: blob(at=(3, 3, 3))}  # in slices 3 and 4; slice 3 cannot be read
    from unet_lib.patients import PartialVolumeWarning

    with pytest.warns(UserWarning, match="truncated"), \
            pytest.warns(PartialVolumeWarning, match="unusable files, or not in the dataset"):
        row = evaluate_patients(oracle(), Broken(truth, predicted), batch_size=4,
                                device="cpu", spacing=(1, 1, 1)).rows[0]
    assert row["slices"] == 5
    # slice 4 lies 2 and 3 slices from the truth's; with the gap closed it was 1 and 2
    assert row["hd95"]["WT"] == pytest.approx(3.0)


def test_a_patient_listed_with_some_slices_only_is_scored_with_each_in_its_place():
    from unet_lib.patients import PartialVolumeWarning

    class SomeSlices(MasksAsImages):  # as a dataset of tumour slices only would list them
        def __init__(self, masks, predicted, kept):
            super().__init__(masks, predicted)
            self.slices = [entry for entry in self.slices if entry[1] in kept]

    truth = {1: blob(at=(1, 3, 3))}  # the whole tumour in slices 1 and 2
    predicted = {1: blob(at=(3, 3, 3))}  # in slices 3 and 4; slice 3 is not listed
    with pytest.warns(PartialVolumeWarning, match="3 of its 5 slices scored .*not in the "
                                                  "dataset"):
        row = evaluate_patients(oracle(), SomeSlices(truth, predicted, kept={1, 2, 4}),
                                device="cpu", spacing=(1, 1, 1)).rows[0]
    assert row["slices"] == 3
    # slice 4 lies 2 and 3 slices from the truth's; stacked as neighbours it would be 1 and 2
    assert row["hd95"]["WT"] == pytest.approx(3.0)


def test_the_default_voxel_depth_counts_the_slices_a_filter_left_out():
    # a dataset of the first 4 of a volume's 6 slices (as tumour_only lists them): BraTS's
    # 155 mm are 6 slices deep, so one slice apart is 155/6 mm, not 155/4
    class FirstSlices(MasksAsImages):
        def __init__(self, masks, predicted):
            super().__init__(masks, predicted)
            self.depths = {volume: m.shape[1] for volume, m in masks.items()}
            self.slices = [entry for entry in self.slices if entry[1] < 4]

    truth, predicted = {1: blob(at=(1, 3, 3))}, {1: blob(at=(2, 3, 3))}  # one slice deeper
    with pytest.warns(UserWarning, match="4 of its 6 slices"):
        row = evaluate_patients(oracle(), FirstSlices(truth, predicted), device="cpu").rows[0]
    assert row["hd95"]["ET"] == pytest.approx(155 / 6)


def test_a_kaggle_folder_read_for_its_tumour_slices_knows_each_volume_s_full_depth(tmp_path):
    from unet_lib.data import BraTSSlices, make_phantom

    make_phantom(tmp_path, n_volumes=2, image_size=32, n_slices=12, seed=0)
    tumour = BraTSSlices(tmp_path, tumour_only=True)
    assert max(s for _, s in map(tumour.locate, range(len(tumour)))) < 11  # filtered
    assert [tumour.depth_of(v) for v in tumour.volumes] == [12, 12]


def test_a_region_missing_from_the_reference_follows_the_brats_convention():
    truth = blob()
    truth[2] = 0                       # this patient has no enhancing tumour
    predicted = blob()                 # the model marks one ET voxel anyway
    row = evaluate_patients(oracle(), MasksAsImages({7: truth}, {7: predicted}),
                            device="cpu").rows[0]
    assert row["empty"] == ["TC", "ET"]  # no NCR/NET either: the core is empty too
    assert row["dice"]["ET"] == 0.0 and row["hd95"]["ET"] == HD95_ONE_EMPTY
    nothing = blob()
    nothing[2] = 0
    row = evaluate_patients(oracle(), MasksAsImages({7: truth}, {7: nothing}),
                            device="cpu").rows[0]
    assert row["dice"]["ET"] == 1.0 and row["hd95"]["ET"] == 0.0


def test_score_patient_counts_voxels_of_the_whole_volume():
    target = torch.zeros(3, 4, 8, 8, dtype=torch.bool)
    pred = torch.zeros_like(target)
    target[:, 0:2, 0:2, 0:2] = True    # 8 voxels in every region
    pred[:, 0:2, 0:2, 0:1] = True      # 4 of them found, none wrong
    scores = score_patient(pred, target, (1, 1, 1))
    assert scores["dice"]["WT"] == pytest.approx(2 * 4 / (4 + 8))
    assert scores["precision"]["TC"] == 1.0 and scores["recall"]["ET"] == 0.5


def test_the_summary_gives_mean_median_and_spread_over_patients(tmp_path):
    rows = [{"volume": v, "slices": 1, "empty": [],
             **{m: {"WT": value, "TC": value, "ET": value}
                for m in ("dice", "precision", "recall", "hd95")}}
            for v, value in ((1, 0.2), (2, 0.4), (3, 0.9))]
    summary = PatientScores(rows).summary()["dice"]["WT"]
    assert summary["mean"] == pytest.approx(0.5) and summary["median"] == pytest.approx(0.4)
    assert summary["std"] == pytest.approx(np.std([0.2, 0.4, 0.9])) and summary["n"] == 3
    path = PatientScores(rows).to_csv(tmp_path / "p.csv")
    written = list(csv.DictReader(open(path)))
    assert [r["volume"] for r in written] == ["1", "2", "3"] and written[2]["hd95_ET"] == "0.9"


def test_three_way_split_takes_the_test_then_the_validation_volumes_from_the_seeds_shuffle():
    volumes = range(1, 21)
    split = split_train_val_test(volumes, 0.2, 0.2, seed=3)
    assert (len(split.train), len(split.val), len(split.test)) == (12, 4, 4)
    assert not (set(split.train) & set(split.val) or set(split.val) & set(split.test)
                or set(split.train) & set(split.test))
    assert sorted(split.train + split.val + split.test) == list(volumes)
    # the documented order, worked out here: NumPy's shuffle of the 20 volumes for seed 3; the
    # first 4 are the test set, the next 4 validation; without a test set the first 4 validate
    shuffled = [volumes[i] for i in np.random.default_rng(3).permutation(20)]
    assert split.test == sorted(shuffled[:4]) and split.val == sorted(shuffled[4:8])
    assert split_volumes(volumes, 0.2, 3)[1] == sorted(shuffled[:4])
    with pytest.raises(ValueError, match="at least 3 volumes"):
        split_train_val_test([1, 2], 0.2, 0.2)
    with pytest.raises(ValueError, match="below 1"):
        split_train_val_test(volumes, 0.5, 0.5)


def test_soft_dice_loss_is_zero_for_a_confident_perfect_prediction_and_near_one_when_wrong():
    target = torch.zeros(2, 3, 8, 8)
    target[:, :, 2:5, 2:5] = 1
    perfect = (target * 2 - 1) * 50
    assert SoftDiceLoss()(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    wrong = -perfect
    # Dice per channel: (0 + 1) / (0 + 2·9·... ) → near 0, so the loss is near 1
    assert SoftDiceLoss()(wrong, target).item() > 0.99


def test_soft_dice_pools_the_whole_batch_with_a_smoothing_of_one():
    # p = 0.5 everywhere; one channel of two 4×4 images, 4 tumour pixels in the first only:
    # Σ p·t = 2, Σ p = 16, Σ t = 4, so Dice = (2·2 + 1) / (16 + 4 + 1) = 5/21
    logits, target = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    target[0, 0, :2, :2] = 1
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(16 / 21)
    # a mean of per-image Dice would be 1 − (5/13 + 1/9)/2: the batch is one pool
    assert SoftDiceLoss()(logits, target).item() != pytest.approx(1 - (5 / 13 + 1 / 9) / 2)


def test_bce_plus_dice_keeps_the_tumour_weights():
    logits = torch.zeros(1, 3, 1, 2)  # p = 0.5: BCE log 2 per pixel
    target = torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 0.0]]]])
    loss = make_loss(TrainConfig(loss="bce+dice", pos_weight=(5.0, 2.0, 5.0)))(logits, target)
    # weighted BCE ((5+1) + (2+1) + (5+1)) / 6 · log 2; Dice per channel (2·0.5 + 1)/(1 + 1 + 1)
    assert loss.item() == pytest.approx(2.5 * math.log(2) + (1 - 2 / 3))


def test_the_loss_switch_adds_dice_to_bce():
    logits, target = torch.randn(2, 3, 8, 8), (torch.rand(2, 3, 8, 8) > 0.7).float()
    bce = make_loss(TrainConfig())(logits, target)
    both = make_loss(TrainConfig(loss="bce+dice"))(logits, target)
    assert isinstance(make_loss(TrainConfig(loss="bce+dice")), BCEDiceLoss)
    assert both.item() == pytest.approx(bce.item() + SoftDiceLoss()(logits, target).item())
    with pytest.raises(ValueError, match="loss: must be one of 'bce', 'bce\\+dice'"):
        TrainConfig(loss="focal").validate()


def test_paired_bootstrap_of_a_constant_difference_is_that_difference():
    result = paired_bootstrap([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])
    assert result["n"] == 3
    assert result["difference"] == pytest.approx(0.1)
    assert result["low"] == pytest.approx(0.1) and result["high"] == pytest.approx(0.1)


def test_paired_bootstrap_interval_matches_the_enumerated_resampling_distribution():
    # Two patients with differences +0.4 and -0.2: a resample of two draws has mean 0.4
    # (p = 1/4), 0.1 (p = 1/2) or -0.2 (p = 1/4), so the 2.5th/97.5th percentiles are -0.2, 0.4.
    result = paired_bootstrap([0.9, 0.5], [0.5, 0.7], resamples=20_000)
    assert result["difference"] == pytest.approx(0.1)
    assert result["low"] == pytest.approx(-0.2) and result["high"] == pytest.approx(0.4)


def test_paired_bootstrap_interval_is_of_the_mean_and_follows_the_level():
    # Differences 0.3, 0, 0: a resample of three draws takes the first patient k times, mean
    # k · 0.1, with P(k) = 8, 12, 6, 1 in 27 (binomial, 3 draws at 1/3). Cumulative: 0.296,
    # 0.741, 0.963, 1. So the 2.5th percentile is 0, the 97.5th 0.3 (0.963 < 0.975), and at
    # level 0.90 the 95th is 0.2. The observed mean is 0.1 (the median would be 0).
    first, second = [0.8, 0.5, 0.6], [0.5, 0.5, 0.6]
    wide = paired_bootstrap(first, second, resamples=20_000)
    assert wide["difference"] == pytest.approx(0.1)
    assert wide["low"] == pytest.approx(0.0) and wide["high"] == pytest.approx(0.3)
    narrower = paired_bootstrap(first, second, resamples=20_000, level=0.90)
    assert narrower["low"] == pytest.approx(0.0) and narrower["high"] == pytest.approx(0.2)


def test_paired_bootstrap_refuses_unpaired_scores():
    with pytest.raises(ValueError, match="same order"):
        paired_bootstrap([0.9, 0.8], [0.7])


def test_sign_flip_of_four_patients_all_one_way_is_one_in_eight():
    # 16 sign patterns; only "all as observed" and "all flipped" reach the observed |mean|
    result = paired_sign_flip([0.9, 0.8, 0.95, 0.7], [0.85, 0.75, 0.7, 0.65])
    assert result["p"] == 2 / 16 and result["smallest_p"] == 2 / 16 and result["n"] == 4
    assert result["difference"] == pytest.approx(np.mean([0.05, 0.05, 0.25, 0.05]))


def test_a_clean_sweep_of_many_patients_reaches_the_floor_of_the_drawn_estimate():
    """20 patients, every difference +0.1: 2 of 2^20 patterns lie as far, so among 999
    drawn none does (seeded) and p is the estimate's own floor, 1 / (1 + 999), which
    ``smallest_p`` gives (not 2 / 2^20, which no drawn estimate can reach)."""
    from unet_lib.comparison import smallest_sign_flip_p

    result = paired_sign_flip([0.9] * 20, [0.8] * 20, exact_up_to=16, resamples=999)
    assert result["p"] == result["smallest_p"] == 1 / 1000
    assert smallest_sign_flip_p(16, 16, 999) == 2 / 2 ** 16


def test_sign_flip_p_matches_scipys_exact_permutation_test():
    from scipy.stats import permutation_test

    rng = np.random.default_rng(7)
    for n in (3, 6, 9):
        first, second = rng.random(n), rng.random(n)
        expected = permutation_test((first - second,), np.mean, permutation_type="samples",
                                    alternative="two-sided", n_resamples=2 ** n).pvalue
        assert paired_sign_flip(first, second)["p"] == pytest.approx(expected), n


def test_sign_flip_of_many_patients_draws_patterns_and_agrees_with_enumeration():
    rng = np.random.default_rng(3)
    first, second = rng.random(14), rng.random(14) + 0.1
    exact = paired_sign_flip(first, second)["p"]
    drawn = paired_sign_flip(first, second, exact_up_to=10, resamples=200_000)["p"]
    assert drawn == pytest.approx(exact, abs=0.005)
    with pytest.raises(ValueError, match="same order"):
        paired_sign_flip([0.9, 0.8], [0.7])


class LeftColumn(nn.Module):
    """Sees 4×4 slices only; every channel's probability is 0.9 in their first column and 0.1
    in the other three."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        assert tuple(x.shape[-2:]) == (4, 4), x.shape
        probs = torch.tensor([0.9, 0.1, 0.1, 0.1])
        return torch.logit(probs).expand(x.shape[0], 3, 4, 4)


def test_a_model_working_at_a_smaller_size_is_scored_against_the_masks_as_stored():
    masks = {1: blob(at=(2, 3, 0))}  # whole tumour: slices 2-3, rows 3-4, columns 0-1 of 8×8
    data = MasksAsImages(masks, masks)
    data.image_size = 4  # the model sees 4×4 slices
    pixels = SegmentationScores()
    row = evaluate_patients(LeftColumn(), data, threshold=0.8, device="cpu",
                            pixels=pixels).rows[0]
    # on the 8×8 grid the probabilities (bilinear) are 0.9, 0.7, 0.3, 0.1, ... along a row:
    # above 0.8 only column 0 (nearest would keep columns 0 and 1), 8 voxels in each of the
    # 6 slices; of the 8 tumour voxels, the 4 in column 0 are found
    assert row["dice"]["WT"] == pytest.approx(2 * 4 / (48 + 8))
    assert row["precision"]["WT"] == pytest.approx(4 / 48)
    assert row["recall"]["WT"] == pytest.approx(4 / 8)
    assert pixels.compute()["dice"]["WT"] == pytest.approx(2 * 4 / (48 + 8))
    # at the model's size the truth shrinks: nearest-exact keeps rows and columns 1, 3, 5, 7,
    # so of the cube only (row 3, column 1) → (1, 0), in 2 slices; 4 voxels a slice predicted
    small = evaluate_patients(LeftColumn(), data, threshold=0.8, device="cpu",
                              native_size=False).rows[0]
    assert small["dice"]["WT"] == pytest.approx(2 * 2 / (24 + 2))
    assert data.mask_size is None  # the caller's dataset is left as it was


class TwoSizes(SliceDataset):
    """One volume of 3 blank slices, the second stored at 6×6 instead of 8×8."""

    def __init__(self):
        super().__init__("memory", image_size=4)
        self.slices = [(1, 0), (1, 1), (1, 2)]

    def read(self, index):
        size = 6 if index == 1 else 8
        return np.zeros((4, size, size), np.float32), np.zeros((3, size, size), np.float32)


def test_a_slice_stored_at_another_size_is_scored_on_the_grid_of_the_first():
    row = evaluate_patients(LeftColumn(), TwoSizes(), threshold=0.8, device="cpu").rows[0]
    assert row["slices"] == 3
    assert row["precision"]["WT"] == 0.0  # 3 slices × 8 voxels predicted, no tumour


class Oblong(SliceDataset):
    """One volume of 3 slices stored at 8×6; each holds oedema in rows 0-2 of column 0."""

    def __init__(self):
        super().__init__("memory", image_size=4)
        self.slices = [(1, 0), (1, 1), (1, 2)]

    def read(self, index):
        mask = np.zeros((3, 8, 6), np.float32)
        mask[1, 0:3, 0] = 1
        return np.zeros((4, 8, 6), np.float32), mask


def test_slices_that_are_not_square_are_scored_on_their_own_8_by_6_grid():
    row = evaluate_patients(LeftColumn(), Oblong(), threshold=0.8, device="cpu").rows[0]
    # on the 8×6 grid only column 0 passes 0.8 (0.9, then 0.5 ...): 8 voxels a slice, of
    # which the 3 of the oedema are found; a 6×6 grid would have kept 2 of them and 6 voxels
    assert row["dice"]["WT"] == pytest.approx(2 * 9 / (24 + 9))
    assert row["precision"]["WT"] == pytest.approx(9 / 24)


def test_the_printed_table_puts_each_patients_scores_under_their_own_heading():
    def row(volume, dice, hd95):
        return {"volume": volume, "slices": 4, "dice": dict(zip(("WT", "TC", "ET"), dice)),
                "precision": {r: 1.0 for r in ("WT", "TC", "ET")},
                "recall": {r: 1.0 for r in ("WT", "TC", "ET")},
                "hd95": dict(zip(("WT", "TC", "ET"), hd95)), "empty": []}

    scores = PatientScores([row(3, (0.9, 0.6, 0.25), (1.0, 4.0, 2.5)),
                            row(8, (0.7, 0.4, 0.75), (3.0, 6.0, 7.5))])
    lines = [line.split() for line in scores.table().splitlines()]
    # the heading's words pair up: "dice WT", "dice TC", ... after "volume"
    heading = [" ".join(lines[0][i:i + 2]) for i in range(1, len(lines[0]), 2)]
    assert lines[0][0] == "volume"
    assert heading == ["dice WT", "dice TC", "dice ET", "hd95 WT", "hd95 TC", "hd95 ET"]
    by_name = {line[0]: dict(zip(heading, line[1:])) for line in lines[1:]}
    assert by_name["3"] == {"dice WT": "0.900", "dice TC": "0.600", "dice ET": "0.250",
                            "hd95 WT": "1.00", "hd95 TC": "4.00", "hd95 ET": "2.50"}
    assert by_name["8"]["dice ET"] == "0.750" and by_name["8"]["hd95 ET"] == "7.50"
    # over the two patients, worked out by hand: mean, median, population sd
    assert by_name["mean"]["dice WT"] == "0.800" and by_name["mean"]["hd95 ET"] == "5.00"
    assert by_name["median"]["dice ET"] == "0.500" and by_name["std"]["dice WT"] == "0.100"
    assert by_name["std"]["hd95 ET"] == "2.50"


@pytest.mark.parametrize("scoring", ["evaluate_patients", "reliability"])
def test_a_model_is_given_back_as_it_was_while_an_error_s_traceback_is_kept(scoring,
                                                                          monkeypatch):
    # a notebook keeps the last traceback; a pass left paused by the error held the model as
    # scoring sets it (eval mode, and on a GPU there: the next cell's model(x) then fails)
    import unet_lib.calibration as calibration

    def interrupted(*args):  # Ctrl-C while a patient is cleaned, or NaN probabilities binned
        raise KeyboardInterrupt

    monkeypatch.setattr(calibration, "bin_counts", interrupted)
    data = MasksAsImages({0: blob(), 1: blob(at=(3, 4, 4))}, {0: blob(), 1: blob()})
    model = oracle().train()
    with pytest.raises(KeyboardInterrupt) as kept:  # kept holds the traceback, as Jupyter does
        if scoring == "evaluate_patients":
            evaluate_patients(model, data, batch_size=2, device="cpu", clean=interrupted)
        else:
            calibration.reliability(model, data, batch_size=2, device="cpu")
    assert kept.traceback and model.training  # back in training mode, as it came
