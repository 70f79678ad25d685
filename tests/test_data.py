"""Readers for the two public BraTS formats, and the by-volume split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

from unet_lib.data import (BadSampleWarning, BraTSDataError, BraTSNifti, BraTSSlices,
                           SkippedSample, open_dataset, split_train_val_test,
                           split_volumes)
from unet_lib.data.kaggle import read_slice


def write_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)


def kaggle_slice(seed: int = 0, size: int = 20):
    """An image whose channel c is filled with c + noise, and a mask with one pixel per label."""
    rng = np.random.default_rng(seed)
    image = np.stack([np.full((size, size), c, np.float64) + rng.normal(0, 0.1, (size, size))
                      for c in range(4)], axis=-1)
    mask = np.zeros((size, size, 3), np.uint8)
    mask[1, 2, 0] = mask[3, 4, 1] = mask[5, 6, 2] = 1
    return image, mask


def test_hand_written_kaggle_file_reads_back_channels_first_in_order(tmp_path):
    image, mask = kaggle_slice()
    write_h5(tmp_path / "volume_7_slice_3.h5", image=image, mask=mask)
    dataset = BraTSSlices(tmp_path)
    x, y = dataset[0]
    assert x.dtype == y.dtype == torch.float32
    assert x.shape == (4, 20, 20) and y.shape == (3, 20, 20)
    assert [round(float(x[c].mean())) for c in range(4)] == [0, 1, 2, 3]  # FLAIR, T1, T1ce, T2
    assert torch.equal(x[2], torch.from_numpy(image[..., 2]).float())
    assert y[0, 1, 2] == y[1, 3, 4] == y[2, 5, 6] == 1 and y.sum() == 3
    assert dataset.volumes == [7]


def test_slices_are_ordered_by_volume_then_slice_number_not_by_name(tmp_path):
    image, mask = kaggle_slice()
    for volume, index in [(10, 2), (2, 11), (2, 3), (10, 1)]:
        write_h5(tmp_path / f"volume_{volume}_slice_{index}.h5", image=image, mask=mask)
    dataset = BraTSSlices(tmp_path)
    assert [(v, s) for v, s, _ in dataset.slices] == [(2, 3), (2, 11), (10, 1), (10, 2)]
    assert len(BraTSSlices(tmp_path, volumes=[10])) == 2


def test_tumour_only_keeps_exactly_the_slices_whose_mask_marks_a_pixel(tmp_path):
    image, mask = kaggle_slice()
    empty = np.zeros_like(mask)
    only_et = np.zeros_like(mask)
    only_et[9, 9, 2] = 1
    for index, labels in enumerate([empty, mask, empty, only_et]):  # no meta_data.csv here
        write_h5(tmp_path / f"volume_1_slice_{index}.h5", image=image, mask=labels)
    kept = BraTSSlices(tmp_path, tumour_only=True)
    assert [s for _, s, _ in kept.slices] == [1, 3]
    assert all(kept[i][1].sum() > 0 for i in range(len(kept)))


def test_the_unzipped_release_layout_is_found(tmp_path):
    folder = tmp_path / "BraTS2020_training_data" / "content" / "data"
    folder.mkdir(parents=True)
    write_h5(folder / "volume_1_slice_0.h5", **dict(zip(("image", "mask"), kaggle_slice())))
    assert len(BraTSSlices(tmp_path)) == 1


def test_image_size_resizes_images_and_masks_keeping_masks_binary(tmp_path):
    write_h5(tmp_path / "volume_1_slice_0.h5", **dict(zip(("image", "mask"), kaggle_slice())))
    x, y = BraTSSlices(tmp_path, image_size=16)[0]
    assert x.shape == (4, 16, 16) and y.shape == (3, 16, 16)
    assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_shrinking_an_image_averages_detail_finer_than_the_new_grid_away():
    from unet_lib.data.base import resize_image

    # a 1-pixel checkerboard holds no detail a 96×96 grid can show: shrunk, it is its mean,
    # 0.5, everywhere (sampled without antialiasing, each output pixel would take a few input
    # pixels near it: a pattern of spurious stripes, a standard deviation of about 0.12)
    rows, columns = torch.meshgrid(torch.arange(240), torch.arange(240), indexing="ij")
    board = ((rows + columns) % 2).float().expand(4, 240, 240)
    small = resize_image(board, 96)
    assert small.shape == (4, 96, 96)
    assert small.mean().item() == pytest.approx(0.5, abs=1e-6)
    assert small.std().item() < 0.01


@pytest.mark.parametrize("size", [96, 128, 160])
def test_a_resized_mask_stays_centred_on_its_image(size):
    from unet_lib.data.base import resize_sample

    # squares of tumour marked identically in an image channel and the mask: after resizing,
    # their centres of mass agree on average (each square snaps to the new grid by up to
    # half a pixel either way; plain nearest shifted the mask 0.3-0.5 px down and right)
    rng = np.random.default_rng(0)
    grid = torch.arange(size, dtype=torch.float32)
    shifts = []
    for _ in range(60):
        top, left = rng.integers(0, 200, 2)
        side = int(rng.integers(6, 40))
        square = torch.zeros(240, 240)
        square[top:top + side, left:left + side] = 1
        image, mask = resize_sample(square.expand(4, -1, -1).clone(),
                                    square.expand(3, -1, -1).clone(), size)
        centres = [((p.sum(1) * grid).sum() / p.sum(), (p.sum(0) * grid).sum() / p.sum())
                   for p in (image[0], mask[0])]
        shifts.append([float(m - i) for i, m in zip(*centres)])
    mean_row, mean_col = np.mean(shifts, axis=0)
    assert abs(mean_row) < 0.1 and abs(mean_col) < 0.1, (mean_row, mean_col)


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no slice files named volume_<v>_slice_<s>.h5"):
        BraTSSlices(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        BraTSSlices(tmp_path / "nope")


@pytest.mark.parametrize("content, message", [
    ("not hdf5", "cannot be read as HDF5"),
    ("truncated", "cannot be read as HDF5"),
    ("no mask", r"missing dataset\(s\) \['mask'\]"),
    ("3 channels", r"image has shape \(20, 20, 3\)"),
    ("mask values", r"mask has values \[0, 1, 2\]"),
    ("nan", "NaN or infinite"),
    ("regions", r"mask has 4 pixel\(s\) in more than one channel: .* WT, TC, ET"),
])
def test_bad_slice_files_raise_an_error_naming_the_file_and_the_problem(tmp_path, content,
                                                                        message):
    path = tmp_path / "volume_1_slice_0.h5"
    image, mask = kaggle_slice()
    if content == "not hdf5":
        path.write_text("hello")
    elif content == "truncated":
        write_h5(path, image=image, mask=mask)
        path.write_bytes(path.read_bytes()[:1000])
    elif content == "no mask":
        write_h5(path, image=image)
    elif content == "3 channels":
        write_h5(path, image=image[..., :3], mask=mask)
    elif content == "mask values":
        mask[0, 0, 0] = 2
        write_h5(path, image=image, mask=mask)
    elif content == "nan":
        image[0, 0, 0] = np.nan
        write_h5(path, image=image, mask=mask)
    elif content == "regions":  # nested WT ⊃ TC ⊃ ET, as some copies of the data hold
        mask[:] = 0
        mask[2:6, 2:6, 0] = 1  # "WT": 16 pixels
        mask[3:5, 3:5, 1] = 1  # "TC": 4 of them, also in WT
        write_h5(path, image=image, mask=mask)
    with pytest.raises(BraTSDataError, match=message) as error:
        read_slice(path)
    assert str(path) in str(error.value)



def test_a_bad_file_read_by_a_loader_worker_is_the_same_clear_error(tmp_path):
    from torch.utils.data import DataLoader

    from unet_lib.data.samples import collate_samples

    image, mask = kaggle_slice()
    for number in range(2):
        write_h5(tmp_path / f"volume_1_slice_{number}.h5", image=image, mask=mask)
    broken = tmp_path / "volume_1_slice_1.h5"
    broken.write_text("hello")
    dataset = BraTSSlices(tmp_path, on_error="raise")
    with pytest.raises(BraTSDataError) as in_turn:
        list(DataLoader(dataset, batch_size=2, collate_fn=collate_samples))
    # on a GPU the files are read by worker processes, which send their errors back as text
    with pytest.raises(BraTSDataError) as by_worker:
        list(DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=collate_samples))
    assert by_worker.value.path == in_turn.value.path == broken
    assert by_worker.value.problem == in_turn.value.problem
    assert str(by_worker.value) == str(in_turn.value)


def test_a_file_skipped_in_a_loader_worker_is_announced_once_where_the_batches_are_read(
        tmp_path):
    import warnings

    from torch.utils.data import DataLoader

    from unet_lib.data import announce_skipped, collate_samples

    image, mask = kaggle_slice()
    for number in range(3):
        write_h5(tmp_path / f"volume_1_slice_{number}.h5", image=image, mask=mask)
    (tmp_path / "volume_1_slice_1.h5").write_text("hello")
    dataset = BraTSSlices(tmp_path, on_error="skip")
    for workers in (0, 1):  # read here, or by a worker process (whose warnings stay there)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            batches = list(DataLoader(dataset, batch_size=2, num_workers=workers,
                                      collate_fn=collate_samples))
            skipped = [sample for _, _, bad in batches for sample in announce_skipped(bad)]
        said = [str(w.message) for w in caught if issubclass(w.category, BadSampleWarning)]
        assert len(said) == 1, (workers, said)  # not twice, not never
        assert said[0].startswith(f"skipping {tmp_path / 'volume_1_slice_1.h5'}: "), said
        assert [sample.path for sample in skipped] == [str(tmp_path / "volume_1_slice_1.h5")]


# --- NIfTI -----------------------------------------------------------------------------------

def write_case(root, number: int, depth: int = 5, seg_name: str | None = None,
               labels=(0, 1, 2, 4)):
    """A 12×10×depth case: modality k has value (k+1)·(x+1) with x the first index, and a seg
    with label ``labels[i]`` in slab i of the first axis."""
    name = f"BraTS20_Training_{number:03d}"
    folder = root / name
    folder.mkdir(parents=True)
    x = np.arange(12, dtype=np.float32)[:, None, None] * np.ones((12, 10, depth), np.float32)
    for k, modality in enumerate(("flair", "t1", "t1ce", "t2")):
        nib.save(nib.Nifti1Image((k + 1) * (x + 1), np.eye(4)), folder / f"{name}_{modality}.nii")
    seg = np.zeros((12, 10, depth), np.int16)
    for i, label in enumerate(labels):
        seg[i] = label
    nib.save(nib.Nifti1Image(seg, np.eye(4)), folder / (seg_name or f"{name}_seg.nii.gz"))
    return folder


def as_brats_2021(case: Path, root: Path) -> Path:
    """A case written by :func:`write_case` renamed as BraTS 2021 names it, into ``root``:
    ``BraTS2021_000NN/BraTS2021_000NN_<key>.nii(.gz)``."""
    renamed = case.rename(root / f"BraTS2021_{int(case.name.rsplit('_', 1)[1]):05d}")
    for path in renamed.iterdir():
        path.rename(path.with_name(path.name.replace(case.name, renamed.name)))
    return renamed


def test_nifti_case_reads_as_z_scored_slices_with_label_channels(tmp_path):
    write_case(tmp_path, 4, depth=5)
    dataset = BraTSNifti(tmp_path)
    assert len(dataset) == 5 and dataset.volumes == [4]
    image, mask = dataset[2]
    assert image.shape == (4, 12, 10) and mask.shape == (3, 12, 10)
    # z-scoring per channel removes the modality's scale k+1: all four channels are equal
    expected = (np.arange(12) - 5.5) / np.arange(12).std()
    for channel in range(4):
        assert np.allclose(image[channel, :, 0].numpy(), expected, atol=1e-5)
    # rows 1, 2, 3 carry labels 1, 2, 4 → channels NCR, ED, ET
    assert mask[:, 1:4, 0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert mask.sum() == 3 * 10


def test_nifti_channels_are_flair_t1_t1ce_t2_in_that_order(tmp_path):
    # four different random volumes: any other order of the channels gives other numbers
    folder = write_case(tmp_path, 5, depth=3)
    rng = np.random.default_rng(0)
    volumes = {}
    for modality in ("flair", "t1", "t1ce", "t2"):
        volumes[modality] = rng.normal(100, 20, (12, 10, 3)).astype(np.float32)
        nib.save(nib.Nifti1Image(volumes[modality], np.eye(4)),
                 folder / f"{folder.name}_{modality}.nii")
    image, _ = BraTSNifti(tmp_path)[1]  # slice 1 of the case
    for channel, modality in enumerate(("flair", "t1", "t1ce", "t2")):
        plane = volumes[modality][:, :, 1].astype(np.float64)
        expected = (plane - plane.mean()) / plane.std()  # z-scored over the slice
        assert np.allclose(image[channel].numpy(), expected, atol=1e-4), modality


def test_nifti_cases_are_found_inside_the_releases_own_folders(tmp_path):
    # the Kaggle mirror of the NIfTI release nests the official folder in one more
    write_case(tmp_path / "BraTS2020_TrainingData" / "MICCAI_BraTS2020_TrainingData", 7)
    assert BraTSNifti(tmp_path).volumes == [7]


def test_nifti_misnamed_segmentation_of_case_355_is_found(tmp_path):
    write_case(tmp_path, 355, seg_name="W39_1998.09.19_Segm.nii")
    assert len(BraTSNifti(tmp_path)) == 5


def test_nifti_unknown_labels_are_an_error_naming_the_seg_file(tmp_path):
    write_case(tmp_path, 1, labels=(0, 1, 3))
    with pytest.raises(BraTSDataError, match=r"seg\.nii\.gz: has labels \[3\]"):
        BraTSNifti(tmp_path, on_error="raise")[0]


def test_nifti_bad_case_is_skipped_with_one_warning_by_default(tmp_path):
    write_case(tmp_path, 1, labels=(0, 1, 3))
    dataset = BraTSNifti(tmp_path)
    with pytest.warns(BadSampleWarning, match=r"skipping .*has labels \[3\]"):
        first = dataset[0]
    assert isinstance(first, SkippedSample) and "has labels [3]" in first.problem
    with pytest.warns(BadSampleWarning):
        assert isinstance(dataset[1], SkippedSample)  # from the remembered error, no re-read


def test_a_case_missing_a_modality_is_left_out_by_default_and_an_error_when_raising(tmp_path):
    write_case(tmp_path, 1, depth=3)
    folder = write_case(tmp_path, 2)
    (folder / "BraTS20_Training_002_t1ce.nii").unlink()
    with pytest.warns(BadSampleWarning, match=r"BraTS20_Training_002: missing t1ce"):
        dataset = BraTSNifti(tmp_path)
    assert dataset.volumes == [1] and len(dataset) == 3  # one bad case of 369 stops nothing
    assert len(dataset.skipped) == 1 and "missing t1ce" in dataset.skipped[0]
    with pytest.raises(BraTSDataError, match=r"BraTS20_Training_002: missing t1ce"):
        BraTSNifti(tmp_path, on_error="raise")


def test_a_modality_on_another_grid_than_flair_s_is_refused_naming_both_orientations(tmp_path):
    folder = write_case(tmp_path, 3)
    t2 = folder / "BraTS20_Training_003_t2.nii"
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])  # as a re-orientation to another convention
    nib.save(nib.Nifti1Image(np.asarray(nib.load(t2).dataobj), flipped), t2)
    with pytest.raises(BraTSDataError, match=r"_t2\.nii: its grid \(affine\) differs from "
                                             r"FLAIR's: re-oriented\? Its axes read LAS, "
                                             r"FLAIR's RAS"):
        BraTSNifti(tmp_path, on_error="raise")[0]
    moved = np.eye(4)
    moved[:3, 3] = (0, 3, 0)  # the same axes, shifted 3 mm
    nib.save(nib.Nifti1Image(np.asarray(nib.load(t2).dataobj), moved), t2)
    with pytest.raises(BraTSDataError, match=r"not co-registered\? Its origin lies 3 mm from "
                                             r"FLAIR's; its voxels measure 1, 1, 1 mm"):
        BraTSNifti(tmp_path, on_error="raise")[0]


def test_a_folder_whose_every_case_lacks_a_file_says_so_not_that_it_holds_no_cases(tmp_path):
    from unet_lib.data import open_dataset

    for number in (1, 2):
        (write_case(tmp_path, number) / f"BraTS20_Training_{number:03d}_t2.nii").unlink()
    with pytest.warns(BadSampleWarning), pytest.raises(
            FileNotFoundError, match=r"every case folder lacks a file \(BraTS20_Training_001, "
                                     r"BraTS20_Training_002\)"):
        open_dataset(tmp_path)


def test_brats_2021_validation_cases_named_like_training_ones_are_named_unlabelled(tmp_path):
    from unet_lib.data import open_dataset

    renamed = as_brats_2021(write_case(tmp_path, 7, depth=3), tmp_path)
    (renamed / "BraTS2021_00007_seg.nii.gz").unlink()  # as the challenge's validation data
    with pytest.warns(BadSampleWarning), pytest.raises(
            FileNotFoundError, match=r"\(BraTS2021_00007, ...\) have no segmentation"):
        open_dataset(tmp_path)


def test_two_releases_numbering_one_case_alike_in_one_folder_are_refused(tmp_path):
    write_case(tmp_path, 1, depth=3)
    as_brats_2021(write_case(tmp_path / "other", 1, depth=3), tmp_path)
    with pytest.raises(BraTSDataError, match=r"BraTS20_Training_001: has case number 1, as "
                                             r"BraTS2021_00001 does"):  # sorted first
        BraTSNifti(tmp_path)


def test_brats_2021_case_folders_read_as_their_case_numbers(tmp_path):
    as_brats_2021(write_case(tmp_path, 42, depth=3), tmp_path)
    dataset = BraTSNifti(tmp_path)
    assert dataset.volumes == [42] and len(dataset) == 3


def test_a_folder_of_cases_without_segmentations_says_to_segment_them(tmp_path):
    from unet_lib.data import open_dataset

    validation = tmp_path / "MICCAI_BraTS2020_ValidationData"
    folder = write_case(validation, 1)
    folder.rename(validation / "BraTS20_Validation_001")  # named as the challenge names them
    for path in (validation / "BraTS20_Validation_001").iterdir():
        new = path.name.replace("Training", "Validation")
        path.rename(path.with_name(new))
    (validation / "BraTS20_Validation_001" / "BraTS20_Validation_001_seg.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"ValidationData: its case folders "
                                                r"\(BraTS20_Validation_001, ...\) have no "
                                                r"segmentation.*unet-lib segment"):
        open_dataset(validation)


def test_open_dataset_recognises_either_format(tmp_path):
    write_case(tmp_path / "nifti", 1)
    (tmp_path / "kaggle").mkdir()
    write_h5(tmp_path / "kaggle" / "volume_1_slice_0.h5",
             **dict(zip(("image", "mask"), kaggle_slice())))
    assert isinstance(open_dataset(tmp_path / "nifti"), BraTSNifti)
    assert isinstance(open_dataset(tmp_path / "kaggle"), BraTSSlices)
    with pytest.raises(FileNotFoundError, match="neither Kaggle slice files"):
        open_dataset(tmp_path)


# --- split -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, fraction, n_val", [(2, 0.2, 1), (10, 0.2, 2), (369, 0.2, 74),
                                                (7, 0.5, 4), (3, 0.9, 2)])
def test_split_never_shares_a_volume_and_covers_all(n, fraction, n_val):
    volumes = list(range(1, n + 1))
    train, val = split_volumes(volumes, fraction, seed=3)
    assert not set(train) & set(val)
    assert sorted(train + val) == volumes
    assert len(val) == n_val  # round(3.5) = 4; at 0.9 of 3, one is left to train on


@pytest.mark.parametrize("n, val_fraction, test_fraction", [(3, 0.2, 0.7), (10, 0.05, 0.9),
                                                            (5, 0.2, 0.7)])
def test_a_large_test_fraction_still_leaves_one_volume_to_validate_and_one_to_train(
        n, val_fraction, test_fraction):
    split = split_train_val_test(range(n), val_fraction, test_fraction, seed=0)
    assert len(split.val) == 1 and len(split.train) == 1 and len(split.test) == n - 2


def test_split_depends_on_the_seed_only():
    volumes = range(1, 50)
    assert split_volumes(volumes, 0.2, seed=1) == split_volumes(list(volumes)[::-1], 0.2, seed=1)
    assert split_volumes(volumes, 0.2, seed=1) != split_volumes(volumes, 0.2, seed=2)


def test_datasets_of_a_split_share_no_volume(datasets):
    train, val = datasets
    assert not {v for v, _, _ in train.slices} & {v for v, _, _ in val.slices}


def test_nifti_modality_of_another_shape_or_with_nan_is_an_error_naming_the_file(tmp_path):
    folder = write_case(tmp_path, 3)
    name = "BraTS20_Training_003"
    nib.save(nib.Nifti1Image(np.zeros((12, 10, 4), np.float32), np.eye(4)),
             folder / f"{name}_t2.nii")
    with pytest.raises(BraTSDataError, match=r"_t2\.nii: shape \(12, 10, 4\) differs"):
        BraTSNifti(tmp_path, on_error="raise")[0]
    t2 = np.ones((12, 10, 5), np.float32)
    t2[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(t2, np.eye(4)), folder / f"{name}_t2.nii")
    with pytest.raises(BraTSDataError, match=r"_t2\.nii: contains NaN"):
        BraTSNifti(tmp_path, on_error="raise")[0]


def test_training_straight_from_nifti_says_to_pack_it_first(tmp_path, capsys):
    from unet_lib.models import build_model
    from unet_lib.train import TrainConfig, fit

    for number in (1, 2):
        write_case(tmp_path, number, depth=4)
    cases = BraTSNifti(tmp_path, image_size=16)
    config = TrainConfig.quick(epochs=1, batch_size=4, base_filters=4, resident_data=False)
    fit(build_model("classic", base_filters=4), cases, None, config, progress="epochs")
    assert "`unet-lib pack` the folder once" in capsys.readouterr().out
    fit(build_model("classic", base_filters=4), cases, None,
        dataclasses.replace(config, resident_data=True), progress="epochs")
    assert "unet-lib pack" not in capsys.readouterr().out  # held in memory: read once


def test_a_folder_of_one_format_lacking_the_volumes_asked_for_says_so_in_that_format(tmp_path):
    from unet_lib.data import open_dataset

    (tmp_path / "BraTS20_Training_001").mkdir()  # a NIfTI case folder, its files not there
    with pytest.raises(FileNotFoundError, match=r"no case folders named BraTS20_Training_XXX "
                                                r"\(or BraTS2021_XXXXX\) for volumes \[5\]"):
        open_dataset(tmp_path, [5])
