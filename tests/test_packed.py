"""The packed format: the same samples as the folder it came from, skipped files listed."""

from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
import pytest
import torch

from unet_lib.data import BraTSSlices, PackedSlices, make_phantom, open_dataset, pack_folder


@pytest.fixture
def folder(tmp_path):
    return make_phantom(tmp_path / "ph", n_volumes=3, image_size=32, n_slices=6, seed=2)


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


def test_a_pack_is_as_readable_as_any_folder_the_user_makes(folder, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2775)  # a group's folder: what is made inside keeps the group (setgid)
    before = os.umask(0o022)  # the usual: others may read, only the owner writes
    try:
        out = pack_folder(folder, shared / "packed", progress=False)
        (shared / "made").mkdir()
    finally:
        os.umask(before)
    made = (shared / "made").stat().st_mode & 0o7777
    assert made & 0o777 == 0o755
    assert out.stat().st_mode & 0o7777 == made  # the setgid bit included, where it is kept


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


class PidRecording(torch.utils.data.Dataset):
    """A dataset that notes in ``folder`` which process read each item (pickled to workers:
    a module-level class, so a spawned process can import it)."""

    def __init__(self, source, folder):
        self.source, self.folder = source, folder
        self.root, self.slices = source.root, source.slices

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        (self.folder / f"{index}-{os.getpid()}").touch()
        return self.source[index]


def test_a_pack_made_by_two_processes_is_byte_identical_to_the_serial_one(folder, tmp_path):
    from unet_lib.data import pack, write_slice

    (folder / "volume_2_slice_4.h5").write_text("broken")  # skipped, listed
    write_slice(folder / "volume_3_slice_1.h5", np.ones((16, 16, 4)),  # another size
                np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "pids").mkdir()
    with pytest.warns(UserWarning, match="volume_2_slice_4.h5"):
        serial = pack(BraTSSlices(folder), tmp_path / "serial", progress=False, workers=1)
    parallel = pack(PidRecording(BraTSSlices(folder), tmp_path / "pids"),
                    tmp_path / "parallel", progress=False, workers=2)
    reads = [path.name.split("-") for path in (tmp_path / "pids").iterdir()]
    here = str(os.getpid())
    assert {int(row) for row, pid in reads if pid == here} == {0}  # the size, from the first
    packers = {pid for row, pid in reads if pid != here}
    assert {int(row) for row, pid in reads if pid != here} == set(range(18))
    assert 1 <= len(packers) <= 2
    for name in ("images.npy", "masks.npy", "index.npy"):
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name
    meta = [json.loads((out / "packed.json").read_text()) for out in (serial, parallel)]
    assert meta[0] == meta[1] and meta[0]["slices"] == 16 and len(meta[0]["skipped"]) == 2
    assert "volume_2_slice_4.h5" in meta[0]["skipped"][0]  # in the order of the rows
    assert "volume_3_slice_1.h5: size 16×16 differs" in meta[0]["skipped"][1]


def test_the_pack_command_passes_its_workers_on_and_says_what_it_packed(folder, tmp_path,
                                                                       monkeypatch, capsys):
    import unet_lib.data as data
    from unet_lib.cli import main

    asked, real = [], data.pack_folder
    monkeypatch.setattr(data, "pack_folder", lambda *a, **k: (asked.append(k["workers"]),
                                                               real(*a, **k))[1])
    assert main(["pack", "--data", str(folder), "--out", str(tmp_path / "p"),
                 "--workers", "1"]) == 0
    assert asked == [1] and "packed 18 slices of" in capsys.readouterr().out
    assert main(["pack", "--data", str(folder), "--out", str(tmp_path / "q")]) == 0
    assert asked == [1, None]  # the default: one per core for BraTS-sized data


class DiesInAWorker(PidRecording):
    """Item 7 kills the worker process reading it (as the kernel's out-of-memory killer
    would); read here, in the parent, it is an ordinary item."""

    def __getitem__(self, index):
        if index == 7 and multiprocessing.parent_process() is not None:
            os._exit(9)
        return self.source[index]


def test_a_worker_that_dies_is_a_clear_error_and_leaves_nothing_behind(folder, tmp_path):
    from unet_lib.data import pack

    with pytest.raises(ChildProcessError, match="a worker process died .*use fewer.*__main__"):
        pack(DiesInAWorker(BraTSSlices(folder), tmp_path), tmp_path / "packed", progress=False,
             workers=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ph"]  # no half-written pack


def test_default_workers_follow_the_usable_cores_capped_for_memory(monkeypatch):
    import unet_lib.parallel as parallel

    monkeypatch.setattr(parallel, "usable_cores", lambda: 64)
    assert parallel.default_workers(369) == parallel.MOST_WORKERS == 8
    assert parallel.default_workers(369, most=None) == 64  # the phantom: all cores
    assert parallel.default_workers(3) == 3  # no more than there are volumes
    assert parallel.default_workers(369, worth_it=False) == 1
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    assert parallel.default_workers(369) == 2


def test_a_pack_keeps_each_volume_s_depth_at_its_source_for_per_patient_scoring(tmp_path):
    from unet_lib.data import BraTSSlices, PackedSlices, make_phantom, pack_folder

    make_phantom(tmp_path / "ph", n_volumes=2, image_size=16, n_slices=6, seed=0)
    (tmp_path / "ph" / "volume_1_slice_5.h5").write_bytes(b"truncated")  # its last slice
    with pytest.warns(UserWarning):
        packed = PackedSlices(pack_folder(tmp_path / "ph", tmp_path / "packed", workers=1))
    assert max(s for v, s, _ in packed.slices if v == 1) == 4  # slice 5 was not packed
    source = BraTSSlices(tmp_path / "ph")
    assert [packed.depth_of(v) for v in packed.volumes] == [source.depth_of(v) for v in
                                                             source.volumes] == [6, 6]


def test_a_pack_and_its_source_score_a_patient_alike_around_an_unusable_slice(folder, tmp_path):
    """The pack leaves the unusable slice out of its index, the source yields a stand-in for
    it: both count it empty in its place, so the patient's 3-D scores agree."""
    import warnings

    from torch import nn

    from unet_lib.patients import evaluate_patients

    (folder / "volume_3_slice_2.h5").write_text("broken")  # tumour in slices 1 to 3
    with pytest.warns(UserWarning, match="volume_3_slice_2.h5"):
        out = pack_folder(folder, tmp_path / "packed", progress=False)
    everywhere = nn.Conv2d(4, 3, 1)  # tumour predicted in every voxel: depth matters to HD95
    nn.init.zeros_(everywhere.weight)
    nn.init.constant_(everywhere.bias, 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unusable file, the partial volume
        source, packed = (evaluate_patients(everywhere.eval(), dataset, device="cpu").rows
                          for dataset in (BraTSSlices(folder), PackedSlices(out)))
    assert [row["slices"] for row in source] == [row["slices"] for row in packed] == [6, 6, 5]
    assert [row["hd95"] for row in source] == [row["hd95"] for row in packed]
    assert [row["dice"] for row in source] == [row["dice"] for row in packed]
