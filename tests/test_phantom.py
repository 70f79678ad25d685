"""The phantom: the Kaggle schema, determinism, BraTS-like statistics, and hard enough."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from scipy import ndimage

from unet_lib.data import make_phantom, make_volume
from unet_lib.data.kaggle import METADATA_COLUMNS
from unet_lib.metrics import dice, to_regions
from unet_lib.train import predict


def arrays(root):
    """All slices of a phantom folder, as stored: dict name → (image, mask)."""
    out = {}
    for path in sorted(root.glob("*.h5")):
        with h5py.File(path) as f:
            out[path.name] = f["image"][()], f["mask"][()]
    return out


def test_files_follow_the_kaggle_schema(phantom_root):
    with h5py.File(phantom_root / "volume_1_slice_16.h5") as f:
        assert set(f) == {"image", "mask"}
        assert f["image"].dtype == np.float64 and f["image"].shape == (64, 64, 4)
        assert f["mask"].dtype == np.uint8 and f["mask"].shape == (64, 64, 3)
    assert len(list(phantom_root.glob("volume_*_slice_*.h5"))) == 12 * 32


def test_metadata_csv_has_the_release_columns_and_matches_the_masks(phantom_root):
    with open(phantom_root / "meta_data.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METADATA_COLUMNS
    assert len(rows) == 12 * 32
    for row in rows[::37]:
        with h5py.File(phantom_root / row["slice_path"]) as f:
            mask = f["mask"][()]
        counts = mask.sum(axis=(0, 1)).tolist()
        assert [int(row[f"label{c}_pxl_cnt"]) for c in range(3)] == counts
        assert int(row["target"]) == int(sum(counts) > 0)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    a = arrays(make_phantom(tmp_path / "a", n_volumes=2, image_size=32, n_slices=8, seed=5))
    b = arrays(make_phantom(tmp_path / "b", n_volumes=2, image_size=32, n_slices=8, seed=5))
    c = arrays(make_phantom(tmp_path / "c", n_volumes=2, image_size=32, n_slices=8, seed=6))
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1]) for k in a)
    assert not all(np.array_equal(a[k][0], c[k][0]) for k in a)


def test_each_slice_channel_is_z_scored_and_blank_slices_are_zero(phantom_root):
    blank = 0
    for image, _ in arrays(phantom_root).values():
        for c in range(4):
            channel = image[..., c]
            if not channel.any():
                blank += 1
                continue
            assert abs(channel.mean()) < 1e-9
            assert channel.std() == pytest.approx(1.0, abs=1e-9)  # population std
            assert channel.min() < 0 and channel[0, 0] == channel.min()  # background constant
    assert 0.03 < blank / (4 * 12 * 32) < 0.25


def test_brats_like_statistics():
    """Tumour on 30–50 % of slices on average (each volume 20–60 %), at most about 12 % of
    the frame, brain ≤ 40 %."""
    shares = []
    for volume in range(1, 7):
        phantom = make_volume(np.random.default_rng([0, volume]), image_size=64, n_slices=64)
        tumour = phantom.labels > 0
        per_slice = tumour.reshape(64, -1)
        shares.append(per_slice.any(axis=1).mean())
        assert 0.2 < shares[-1] < 0.6
        assert per_slice.mean(axis=1).max() < 0.13
        brain = phantom.image[..., 0] != phantom.image[:, :1, :1, 0]
        assert brain.reshape(64, -1).mean(axis=1).max() < 0.4
        assert set(np.unique(phantom.labels)) <= {0, 1, 2, 4}
    assert 0.3 < np.mean(shares) < 0.5


def test_tumour_regions_are_nested_core_inside_oedema():
    """The tumour core (labels 1 and 4) touches healthy tissue (label 0) almost nowhere: it is
    wrapped in oedema. In high-grade tumours necrosis (1) is wrapped in enhancing rim (4)."""
    low_grade = checked = 0
    for volume in range(1, 9):
        labels = make_volume(np.random.default_rng([0, volume]), image_size=64, n_slices=48).labels
        core = (labels == 1) | (labels == 4)
        if not core.any():
            continue
        checked += 1
        shell = ndimage.binary_dilation(core) & ~core
        assert (labels[shell] == 0).mean() < 0.1
        if not (labels == 4).any():
            low_grade += 1
            continue
        necrosis = labels == 1
        shell = ndimage.binary_dilation(necrosis) & ~necrosis
        assert (labels[shell] == 4).mean() > 0.6
    assert checked >= 6 and low_grade < checked  # most volumes checked, high grades among them


def test_healthy_tissue_overlaps_tumour_intensities_in_every_modality(datasets):
    """In each channel a good share of healthy brain pixels lie inside the tumour's
    interquartile intensity range: no single channel isolates the tumour."""
    images = torch.stack([datasets[0][i][0] for i in range(0, len(datasets[0]), 2)])
    masks = torch.stack([datasets[0][i][1] for i in range(0, len(datasets[0]), 2)])
    tumour = masks.amax(dim=1)
    brain = images[:, 0] != images[:, 0, :1, :1]
    for channel in range(4):
        values = images[:, channel]
        low, high = torch.quantile(values[tumour > 0], torch.tensor([0.25, 0.75]))
        healthy = values[(tumour == 0) & brain]
        inside = ((healthy > low) & (healthy < high)).float().mean().item()
        assert inside > 0.05, f"channel {channel}: only {inside:.1%} of healthy pixels overlap"


def best_single_channel_threshold_dice(train, val) -> float:
    """Whole-tumour Dice on ``val`` of the best rule 'channel c above (or below) t', the channel,
    direction and threshold chosen on ``train``."""
    def stack(ds):
        return (torch.stack([ds[i][0] for i in range(len(ds))]),
                to_regions(torch.stack([ds[i][1] for i in range(len(ds))]))[:, :1])
    (x_train, y_train), (x_val, y_val) = stack(train), stack(val)
    best = (-1.0, None)
    for channel in range(4):
        for sign in (1, -1):
            for t in torch.linspace(-3, 6, 46):
                pred = (sign * x_train[:, channel:channel + 1] > sign * t).float()
                score = dice(pred, y_train).item()
                if score > best[0]:
                    best = (score, (channel, sign, t))
    channel, sign, t = best[1]
    return dice((sign * x_val[:, channel:channel + 1] > sign * t).float(), y_val).item()


def test_no_single_modality_threshold_solves_it_a_trained_unet_does_far_better(datasets,
                                                                               trained):
    train, val = datasets
    baseline = best_single_channel_threshold_dice(train, val)
    model, _ = trained
    probs = predict(model, torch.stack([val[i][0] for i in range(len(val))]))
    targets = torch.stack([val[i][1] for i in range(len(val))])
    unet = dice(to_regions((probs > 0.5).float())[:, :1], to_regions(targets)[:, :1]).item()
    assert baseline < 0.6
    assert unet > baseline + 0.2, f"U-Net WT Dice {unet:.3f}, threshold baseline {baseline:.3f}"


def test_cached_phantom_is_made_once_and_remade_when_incomplete(tmp_path, capsys):
    from unet_lib.data import cached_phantom

    root = cached_phantom(tmp_path, image_size=32, n_volumes=2, n_slices=4, seed=3)
    assert root == tmp_path / "phantom-32px-2x4-seed3"
    assert len(list(root.glob("volume_*_slice_*.h5"))) == 2 * 4
    assert "making" in capsys.readouterr().out
    assert cached_phantom(tmp_path, 32, 2, 4, seed=3) == root
    assert "making" not in capsys.readouterr().out  # complete: reused
    (root / "meta_data.csv").unlink()  # as if interrupted before the last file
    cached_phantom(tmp_path, 32, 2, 4, seed=3)
    assert "making" in capsys.readouterr().out and (root / "meta_data.csv").is_file()


def test_a_process_asking_for_a_phantom_another_is_making_waits_and_does_not_remake_it(
        tmp_path, capsys):
    import threading

    from unet_lib.data import cached_phantom
    from unet_lib.runfolder import exclusively

    results = []
    waiter = threading.Thread(target=lambda: results.append(
        cached_phantom(tmp_path, 32, 2, 4, seed=3)))
    root = tmp_path / "phantom-32px-2x4-seed3"
    with exclusively(tmp_path / ".phantom-32px-2x4-seed3.lock"):  # as another process would
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive() and not root.exists()  # waits, writes nothing meanwhile
        make_phantom(root, n_volumes=2, image_size=32, n_slices=4, seed=3)
    waiter.join(timeout=60)
    assert results == [root]
    out = capsys.readouterr().out
    assert "another process is making the phantom" in out and "making a" not in out


def test_the_making_message_names_the_folder_as_the_reader_finds_it(tmp_path, monkeypatch,
                                                                    capsys):
    from unet_lib.data import cached_phantom

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "checkout" / "book").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout" / "book")  # a notebook of the book, as built
    cached_phantom(tmp_path / "checkout" / ".course", 32, 2, 4, seed=3)
    said = capsys.readouterr().out
    assert f"in {Path('..', '.course', 'phantom-32px-2x4-seed3')} ..." in said
    assert str(tmp_path) not in said  # no path of the machine that built the page
    cached_phantom(tmp_path / "home" / ".cache", 32, 2, 4, seed=3)  # outside: from the home
    assert f"in {Path('~', '.cache', 'phantom-32px-2x4-seed3')} ..." in capsys.readouterr().out


def test_a_phantom_made_in_parallel_is_byte_identical_to_the_serial_one(tmp_path):
    serial = make_phantom(tmp_path / "serial", n_volumes=3, image_size=32, n_slices=6, workers=1)
    parallel = make_phantom(tmp_path / "parallel", n_volumes=3, image_size=32, n_slices=6, workers=2)
    names = sorted(path.name for path in serial.iterdir())
    assert names == sorted(path.name for path in parallel.iterdir())
    assert len(names) == 3 * 6 + 2  # the slices, meta_data.csv and phantom.json
    for name in names:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name


def test_the_phantom_is_never_written_over_a_folder_it_did_not_make(tmp_path):
    brats = tmp_path / "BraTS2020_training_data"  # a real download: the same file names
    brats.mkdir()
    (brats / "meta_data.csv").write_text("slice_path,target\n")
    with pytest.raises(FileExistsError, match=r"not this library's phantom \(e.g. "
                                              r"meta_data.csv\).*Nothing was written"):
        make_phantom(brats, n_volumes=2, image_size=32, n_slices=2)
    assert [p.name for p in brats.iterdir()] == ["meta_data.csv"]
    assert (brats / "meta_data.csv").read_text() == "slice_path,target\n"

    made = make_phantom(tmp_path / "ph", n_volumes=2, image_size=32, n_slices=2)
    before = {p.name: p.read_bytes() for p in made.iterdir()}
    with pytest.raises(FileExistsError, match="a phantom made with other settings"):
        make_phantom(made, n_volumes=2, image_size=48, n_slices=2)  # would leave a 32/48 mix
    assert {p.name: p.read_bytes() for p in made.iterdir()} == before
    make_phantom(made, n_volumes=2, image_size=32, n_slices=2)  # the same phantom again: allowed
    assert {p.name: p.read_bytes() for p in made.iterdir()} == before


def test_a_phantom_is_made_in_parallel_only_when_it_is_big_enough_to_gain(tmp_path, monkeypatch):
    from unet_lib import parallel
    from unet_lib.data import phantom

    asked = []

    class Stop(Exception):
        pass

    def recording(function, jobs, workers, *args, **kwargs):
        asked.append(workers)
        raise Stop

    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    monkeypatch.setattr(phantom, "map_in_processes", recording)
    # four 96×96×155 volumes: measured slower in two processes than in one; a 20-volume
    # 240×240 phantom (the full scale): one process per core
    for n_volumes, size, n_slices in ((4, 96, 155), (20, 240, 155)):
        with pytest.raises(Stop):
            make_phantom(tmp_path / f"ph{size}", n_volumes=n_volumes, image_size=size,
                         n_slices=n_slices)
    assert asked == [1, 8]
