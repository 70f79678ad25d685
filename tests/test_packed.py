"""The packed format: the same samples as the folder it came from, skipped files listed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unet_lib.data import BraTSSlices, PackedSlices, make_phantom, open_dataset, pack_folder


@pytest.fixture
def folder(tmp_path):
    return make_phantom(tmp_path / "ph", n_volumes=3, size=32, n_slices=6, seed=2)


def test_packed_samples_equal_the_originals_up_to_float16(folder, tmp_path):
    packed = PackedSlices(pack_folder(folder, tmp_path / "packed", progress=False))
    original = BraTSSlices(folder)
    assert len(packed) == len(original) == 18
    assert [s[:2] for s in packed.slices] == [s[:2] for s in original.slices]
    for i in (0, 7, 17):
        (x, y), (px, py) = original[i], packed[i]
        assert px.dtype == torch.float32 and px.shape == x.shape
        assert torch.allclose(px, x, rtol=1e-3, atol=1e-3)
        assert torch.equal(py, y)
    assert np.load(tmp_path / "packed" / "images.npy", mmap_mode="r").dtype == np.float16


def test_packed_volumes_filter_and_open_dataset_recognise_it(folder, tmp_path):
    out = pack_folder(folder, tmp_path / "packed", progress=False)
    assert PackedSlices(out, volumes=[2]).volumes == [2]
    assert len(PackedSlices(out, volumes=[1, 3])) == 12
    assert isinstance(open_dataset(out), PackedSlices)


def test_unusable_files_are_left_out_and_listed(folder, tmp_path):
    (folder / "volume_2_slice_4.h5").write_text("broken")
    with pytest.warns(UserWarning, match="volume_2_slice_4.h5"):
        out = pack_folder(folder, tmp_path / "packed", progress=False)
    packed = PackedSlices(out)
    assert len(packed) == 17 and (2, 4) not in [s[:2] for s in packed.slices]
    meta = json.loads((out / "packed.json").read_text())
    assert len(meta["skipped"]) == 1 and "volume_2_slice_4.h5" in meta["skipped"][0]


def test_not_a_packed_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a packed folder"):
        PackedSlices(tmp_path)


def test_the_nifti_release_packs_too(tmp_path):
    from test_data import write_case

    from unet_lib.data import BraTSNifti

    write_case(tmp_path / "nifti", 4, depth=3)
    write_case(tmp_path / "nifti", 9, depth=3)
    packed = PackedSlices(pack_folder(tmp_path / "nifti", tmp_path / "packed", progress=False))
    original = BraTSNifti(tmp_path / "nifti")
    assert packed.volumes == [4, 9] and len(packed) == len(original) == 6
    for index in (0, 4):
        image, mask = packed[index]
        torch.testing.assert_close(image, original[index][0], atol=2e-3, rtol=1e-3)
        assert torch.equal(mask, original[index][1])
