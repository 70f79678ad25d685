"""Which slices an epoch visits: the tumour share of :mod:`unet_lib.sampling`."""

from __future__ import annotations

import shutil

import warnings

import numpy as np
import pytest
import torch

from unet_lib.config import ConfigError, TrainConfig
from unet_lib.data import (BraTSSlices, PackedSlices, channel_flags, pack, split_train_val_test,
                           tumour_grades)
from unet_lib.data.contents import ENHANCING
from unet_lib.distributed import GlobalBatchSampler
from unet_lib.sampling import tumour_flags, tumour_share_order


def _flags(n_tumour: int, n_healthy: int) -> np.ndarray:
    return np.array([True] * n_tumour + [False] * n_healthy)


def test_an_epoch_has_the_asked_share_of_tumour_slices_and_keeps_its_length():
    flags = _flags(10, 30)
    order = tumour_share_order(flags, 0.75)(torch.Generator().manual_seed(0))
    assert len(order) == 40
    assert sum(flags[i] for i in order) == 30  # round(0.75 · 40)


def test_each_pool_is_used_up_before_any_slice_comes_twice():
    flags = _flags(10, 30)
    order = tumour_share_order(flags, 0.75)(torch.Generator().manual_seed(1))
    tumour = [i for i in order if flags[i]]
    healthy = [i for i in order if not flags[i]]
    counts = np.bincount(tumour, minlength=10)[:10]
    assert counts.min() == 3 and counts.max() == 3  # 30 draws from 10: three full passes
    assert len(set(healthy)) == len(healthy) == 10  # 10 of 30, none twice


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_training_loader_visits_the_configured_share_of_tumour_slices(datasets, share):
    from unet_lib.distributed import Context
    from unet_lib.sampling import make_train_loader

    train, _ = datasets
    config = TrainConfig.quick(batch_size=5, tumour_share=share, num_workers=0,
                               resident_data=False)
    loader = make_train_loader(train, config, torch.device("cpu"),
                               torch.Generator().manual_seed(0), Context())
    has_tumour = torch.cat([masks.flatten(1).any(1) for _, masks, _ in loader])  # as read
    assert len(has_tumour) == len(train)  # an epoch keeps its length
    assert int(has_tumour.sum()) == round(share * len(train))


def test_share_zero_and_one_and_an_empty_pool():
    flags = _flags(4, 6)
    generator = torch.Generator().manual_seed(2)
    assert not any(flags[i] for i in tumour_share_order(flags, 0.0)(generator))
    assert all(flags[i] for i in tumour_share_order(flags, 1.0)(generator))
    only_healthy = _flags(0, 5)
    assert sorted(tumour_share_order(only_healthy, 0.8)(generator)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="tumour_share"):
        tumour_share_order(flags, 1.5)


def test_the_order_is_seeded():
    flags = _flags(5, 15)
    first = tumour_share_order(flags, 0.5)(torch.Generator().manual_seed(3))
    again = tumour_share_order(flags, 0.5)(torch.Generator().manual_seed(3))
    other = tumour_share_order(flags, 0.5)(torch.Generator().manual_seed(4))
    assert first == again and first != other


def test_tumour_and_healthy_slices_are_shuffled_together_not_one_pool_after_the_other():
    # 20 tumour and 20 healthy slices, half of each drawn: in a shuffle of the two pools
    # together the first 20 of the order hold about 10 tumour slices (a hypergeometric count,
    # standard deviation 1.6); the pools one after the other would give all 20 or none, and
    # batches of one kind only, which batch norm would normalize alone
    flags = _flags(20, 20)
    order = tumour_share_order(flags, 0.5)
    for seed in range(5):
        drawn = order(torch.Generator().manual_seed(seed))
        assert 4 <= sum(flags[i] for i in drawn[:20]) <= 16, seed


def test_the_batch_sampler_cuts_the_drawn_order_into_batches():
    flags = _flags(3, 7)
    sampler = GlobalBatchSampler(10, 4, torch.Generator().manual_seed(4),
                                 order=tumour_share_order(flags, 0.6))
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4, 2] and len(sampler) == 3
    assert sum(flags[i] for b in batches for i in b) == 6


def test_channel_flags_from_metadata_and_from_a_pack_equal_reading_every_mask(phantom_root,
                                                                              tmp_path,
                                                                              monkeypatch):
    dataset = BraTSSlices(phantom_root)
    by_reading = np.array([dataset[i][1].flatten(1).any(1).numpy() for i in range(len(dataset))])
    assert 0 < by_reading[:, 2].sum() < by_reading.any(1).sum() < len(dataset)
    assert np.array_equal(dataset.channel_flags(), by_reading)  # meta_data.csv's counts
    (phantom_root / "meta_data.csv").rename(tmp_path / "moved.csv")
    try:  # without the metadata: read from the masks
        assert np.array_equal(BraTSSlices(phantom_root).channel_flags(), by_reading)
    finally:
        (tmp_path / "moved.csv").rename(phantom_root / "meta_data.csv")
    # the release's layout: a meta_data.csv without the counts beside the slices, the counts
    # in "BraTS20 Training Metadata.csv" at the top; read from there, no slice file opened
    release = tmp_path / "release"
    shutil.copytree(phantom_root, release / "data")
    table = (release / "data" / "meta_data.csv").read_text().splitlines()
    (release / "BraTS20 Training Metadata.csv").write_text("\n".join(table) + "\n")
    (release / "data" / "meta_data.csv").write_text(
        "\n".join(",".join(row.split(",")[:4]) for row in table) + "\n")
    monkeypatch.setattr("unet_lib.data.kaggle._channels_present",
                        lambda path: pytest.fail(f"{path} was opened"))
    assert np.array_equal(BraTSSlices(release).channel_flags(), by_reading)
    monkeypatch.undo()
    packed = PackedSlices(pack(dataset, tmp_path / "packed", progress=False))
    assert np.array_equal(packed.channel_flags(), by_reading)
    subset = torch.utils.data.Subset(dataset, range(5))  # no method of its own: read
    assert np.array_equal(channel_flags(subset), by_reading[:5])
    assert np.array_equal(tumour_flags(dataset), by_reading.any(1))


def test_tumour_grades_name_the_volumes_without_enhancing_tumour(phantom_root):
    dataset = BraTSSlices(phantom_root)
    flags = dataset.channel_flags()
    with_et = {dataset.locate(i)[0] for i in range(len(dataset)) if flags[i, 2]}
    grades = tumour_grades(dataset)
    assert set(grades) == set(dataset.volumes)
    assert {v for v, g in grades.items() if g == ENHANCING} == with_et


def test_a_stratified_split_puts_each_kind_of_tumour_on_every_side():
    rare = {4, 5, 8, 11}  # four volumes of sixteen without an enhancing part
    groups = {v: v in rare for v in range(1, 17)}
    for seed in range(20):
        split = split_train_val_test(range(1, 17), 0.2, 0.25, seed, groups=groups)
        assert (len(split.train), len(split.val), len(split.test)) == (9, 3, 4)
        for side in split:  # each side holds its share of the rare kind, to within one
            assert abs(len(rare & set(side)) - len(side) * 4 / 16) < 1
    unstratified = [split_train_val_test(range(1, 17), 0.2, 0.25, seed) for seed in range(20)]
    assert any(abs(len(rare & set(s.test)) - 1) >= 1 for s in unstratified)  # which happens


def test_a_stratified_split_follows_its_seed_and_can_hold_out_any_volume():
    rare = {4, 5, 8, 11}
    groups = {v: v in rare for v in range(1, 17)}
    splits = [split_train_val_test(range(1, 17), 0.2, 0.25, seed, groups=groups)
              for seed in range(20)]
    assert len({tuple(sorted(s.test)) for s in splits}) > 1  # another seed, another split
    # each group shuffled: over 20 seeds every volume is held out for testing at least once
    assert set().union(*(s.test for s in splits)) == set(range(1, 17))
    again = split_train_val_test(range(1, 17), 0.2, 0.25, 7, groups=groups)
    assert again == splits[7]  # the same seed, the same split


@pytest.mark.parametrize("share", [-0.1, 1.2, "half"])
def test_a_tumour_share_out_of_range_is_a_config_error(share):
    with pytest.raises(ConfigError, match="tumour_share"):
        TrainConfig(tumour_share=share).validate()


def test_files_are_read_by_worker_processes_for_a_gpu_only_and_never_more_than_batches(
        monkeypatch):
    from unet_lib import sampling
    from unet_lib.sampling import loader_workers, reading_workers, scoring_workers

    gib = 2 ** 30
    monkeypatch.setattr(sampling, "_warned_of_shared_memory", [])
    monkeypatch.setattr(sampling, "usable_cores", lambda: 16)
    monkeypatch.setattr(sampling, "shared_memory_free", lambda: 8 * gib)
    cuda = torch.device("cuda")
    assert reading_workers(torch.device("cpu")) == 0
    assert reading_workers(cuda) == 8  # at most 8
    assert reading_workers(cuda, batches=1) == 1  # one batch: one reader
    assert reading_workers(cuda, batches=100) == 8
    assert loader_workers(TrainConfig(num_workers=0), cuda) == 0  # as asked
    assert scoring_workers(cuda, 100) == 8
    assert scoring_workers(torch.device("mps"), 100) == 0  # a Mac would start them per pass
    monkeypatch.setattr(sampling, "usable_cores", lambda: 2)  # e.g. a pod's CPU quota
    assert reading_workers(cuda) == 2
    with pytest.MonkeyPatch.context() as patch:  # torchrun: 4 processes share this machine
        patch.setattr(sampling, "usable_cores", lambda: 16)
        patch.setenv("LOCAL_WORLD_SIZE", "4")
        assert reading_workers(cuda) == 4
        patch.setattr(sampling, "shared_memory_free", lambda: 2 * gib)  # 512 MiB each
        with pytest.warns(RuntimeWarning, match="2 file-reading process.*instead of 4"):
            assert reading_workers(cuda) == 2
    # a container's default 64 MB of /dev/shm holds no worker's batches: read them here
    monkeypatch.setattr(sampling, "_warned_of_shared_memory", [])
    monkeypatch.setattr(sampling, "shared_memory_free", lambda: 64 * 2 ** 20)
    with pytest.warns(RuntimeWarning, match="/dev/shm has 64 MB free.*--shm-size"):
        assert reading_workers(cuda) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not for every pass of scoring
        assert reading_workers(cuda, batches=3) == 0
    monkeypatch.setattr(sampling, "shared_memory_free", lambda: None)  # no /dev/shm (macOS)
    assert reading_workers(cuda) == 2


def test_the_cores_a_container_may_use_follow_its_cgroup_quota(tmp_path):
    from unet_lib.parallel import cpu_quota

    assert cpu_quota(str(tmp_path)) is None  # no cgroup files
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(str(tmp_path)) is None  # v2 without a quota
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(str(tmp_path)) == 2  # 1.5 CPUs: rounded up
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(str(tmp_path)) is None  # v1 without a quota
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    assert cpu_quota(str(tmp_path)) == 4


def test_scores_read_by_worker_processes_equal_those_read_in_turn(datasets):
    from unet_lib.inference import evaluate
    from unet_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    val = torch.utils.data.Subset(datasets[1], range(0, 40, 2))
    in_turn = evaluate(model, val, batch_size=4, device="cpu", num_workers=0)
    in_parallel = evaluate(model, val, batch_size=4, device="cpu", num_workers=2)
    assert in_parallel == in_turn
