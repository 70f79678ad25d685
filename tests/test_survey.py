"""``unet-lib check``: every slice of a download read once, what it holds and what is wrong."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from unet_lib.cli import main
from unet_lib.data import pack_folder, write_slice
from unet_lib.data.survey import survey


def kaggle_folder(root, labels_by_volume: dict[int, list[tuple[int, ...]]]):
    """Kaggle-format slices of 12×12: volume v's slice s marks one pixel of each label in
    ``labels_by_volume[v][s]`` (0 NCR/NET, 1 ED, 2 ET)."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for volume, slices in labels_by_volume.items():
        for s, labels in enumerate(slices):
            mask = np.zeros((12, 12, 3), np.uint8)
            for k, label in enumerate(labels):
                mask[k, k, label] = 1
            write_slice(root / f"volume_{volume}_slice_{s}.h5", rng.normal(size=(12, 12, 4)),
                        mask)
    return root


def test_a_clean_folder_is_described_volume_by_volume_and_passes(tmp_path, capsys):
    # volume 1: ET in its second slice; volume 2: NCR/NET and ED, no ET; volume 3: nothing
    root = kaggle_folder(tmp_path / "k", {1: [(1,), (0, 2)], 2: [(0,), (1,)], 3: [(), ()]})
    found = survey(root, workers=1)
    assert (found.kind, found.slices, found.size) == ("Kaggle slices", 6, (12, 12))
    assert found.labels == {1: (True, True, True), 2: (True, True, False),
                            3: (False, False, False)}
    assert found.unusable == []
    assert main(["check", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "3 volumes, 6 slices of 12×12" in out
    assert ("tumour: 1 volumes with enhancing tumour, 1 without (as BraTS's low-grade cases), 1 "
            "without any tumour label (volumes 3: every BraTS case has a tumour)") in out
    assert "unusable: none" in out and "unet-lib pack --data" in out


def test_every_unusable_file_is_named_with_its_problem_and_the_check_fails(tmp_path, capsys):
    root = kaggle_folder(tmp_path / "k", {1: [(1,), (2,)], 2: [(0,), (1,)]})
    (root / "volume_1_slice_1.h5").write_bytes(b"not hdf5")
    mask = np.zeros((12, 12, 3), np.uint8)
    mask[2:5, 2:5, :2] = 1  # nested channels: regions, not labels
    write_slice(root / "volume_2_slice_0.h5", np.zeros((12, 12, 4)), mask)
    found = survey(root, workers=1)
    assert [entry.split(": ", 1)[0] for entry in found.unusable] == [
        str(root / "volume_1_slice_1.h5"), str(root / "volume_2_slice_0.h5")]
    assert "cannot be read as HDF5" in found.unusable[0]
    assert "9 pixel(s) in more than one channel" in found.unusable[1]
    assert found.labels[1] == (False, True, False)  # its ET slice is the unreadable one
    assert survey(root, workers=2).unusable == found.unusable  # the same in two processes
    assert main(["check", "--data", str(root)]) == 1
    assert "unusable: 2 (training and scoring leave them out" in capsys.readouterr().out


def test_a_nifti_case_missing_a_file_and_a_pack_s_skipped_slices_are_listed(tmp_path, capsys):
    root = tmp_path / "nifti"
    for number in (1, 2):
        name = f"BraTS20_Training_{number:03d}"
        (root / name).mkdir(parents=True)
        seg = np.zeros((8, 8, 3), np.int16)
        seg[2, 2, 1] = 4
        for key in ("flair", "t1", "t1ce", "t2", "seg"):
            volume = seg if key == "seg" else np.random.default_rng(0).normal(size=(8, 8, 3))
            nib.save(nib.Nifti1Image(volume, np.eye(4)), root / name / f"{name}_{key}.nii.gz")
    (root / "BraTS20_Training_002" / "BraTS20_Training_002_t2.nii.gz").unlink()
    found = survey(root, workers=1)
    assert found.kind == "NIfTI cases" and list(found.labels) == [1]
    assert found.labels[1] == (False, False, True) and found.slices == 3
    assert len(found.unusable) == 1 and "BraTS20_Training_002: missing t2" in found.unusable[0]
    broken = kaggle_folder(tmp_path / "k", {1: [(1,), (2,)]})
    (broken / "volume_1_slice_0.h5").write_bytes(b"truncated")
    with pytest.warns(UserWarning):
        packed = pack_folder(broken, tmp_path / "packed", workers=1)
    found = survey(packed, workers=1)
    assert found.kind == "a packed copy" and found.slices == 1
    assert len(found.unusable) == 1 and "volume_1_slice_0.h5" in found.unusable[0]
    assert main(["check", "--data", str(packed)]) == 1
    assert "a packed copy reads faster" not in capsys.readouterr().out
    # packed, the NIfTI case missing its t2 counts as a case left out, not as one slice
    with pytest.warns(UserWarning, match="missing t2"):
        assert main(["pack", "--data", str(root), "--out", str(tmp_path / "p2"),
                     "--workers", "1"]) == 0
    meta = json.loads((tmp_path / "p2" / "packed.json").read_text())
    assert (meta["slices"], meta["skipped_slices"], meta["skipped_cases"]) == (3, 0, 1)
    assert "skipped 1 case(s) left out whole (1 problem(s)" in capsys.readouterr().out


def test_a_volume_without_a_readable_slice_is_not_called_a_volume_without_tumour(tmp_path,
                                                                                capsys):
    root = kaggle_folder(tmp_path / "k", {1: [(1,)], 2: [(2,), (0,)]})
    for s in (0, 1):
        (root / f"volume_2_slice_{s}.h5").write_bytes(b"truncated")
    found = survey(root, workers=4)  # 2 volumes: 2 processes at most
    assert found.labels == {1: (False, True, False)} and found.unreadable == [2]
    assert found.workers in (1, 2) and len(found.unusable) == 2
    lines = found.report()
    assert "2 volumes (1 of them without a usable slice), 3 slices" in lines[0]
    assert "0 without any tumour label" in lines[1]
    (root / "volume_1_slice_0.h5").write_bytes(b"truncated")  # now no volume is readable
    assert main(["check", "--data", str(root)]) == 1
    assert "train on it" not in capsys.readouterr().out  # nothing usable to train on


def test_slices_missing_inside_a_volume_or_at_its_end_are_named_and_fail_the_check(tmp_path,
                                                                                 capsys):
    root = kaggle_folder(tmp_path / "k", {1: [()] * 6, 2: [()] * 6, 3: [()] * 6, 4: [()] * 6})
    (root / "volume_2_slice_3.h5").unlink()  # a hole
    for s in (4, 5):
        (root / f"volume_3_slice_{s}.h5").unlink()  # cut short: 4 slices where most have 6
    found = survey(root, workers=1)
    assert found.gaps == ["volume 2 lacks slice(s) 3",
                          "volume 3 ends at slice 3 where most volumes have 6"]
    assert found.unusable == []
    assert main(["check", "--data", str(root)]) == 1
    assert "missing slices: 2 volume(s):\n  volume 2 lacks slice(s) 3" in capsys.readouterr().out


def test_check_refuses_no_workers_and_names_a_folder_that_holds_no_brats(tmp_path, capsys):
    assert main(["check", "--data", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers: must be at least 1" in capsys.readouterr().err
    assert main(["check", "--data", str(tmp_path)]) == 2
    assert "neither Kaggle slice files" in capsys.readouterr().err
