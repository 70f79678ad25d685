"""Training data held on the device (:mod:`unet_lib.resident`): the same training, without a
loader."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Subset

from unet_lib.config import ConfigError, TrainConfig
from unet_lib.data import SkippedSample
from unet_lib.distributed import GlobalBatchSampler
from unet_lib.inference import evaluate
from unet_lib.models import build_model
from unet_lib.resident import ResidentBatches, ResidentSlices, use_resident
from unet_lib.train import fit


def _tiny(datasets):
    train, val = datasets
    return Subset(train, range(0, 96, 4)), Subset(val, range(0, 60, 6))


def test_training_on_resident_data_gives_the_same_weights_as_the_loader(datasets):
    train, val = _tiny(datasets)
    config = TrainConfig.quick(epochs=2, base_filters=4, batch_size=8, tumour_share=0.5,
                               channels_last=False)
    models = {}
    for resident in (False, True):
        torch.manual_seed(0)
        models[resident] = build_model("classic", base_filters=4)
        history = fit(models[resident], train, val, TrainConfig(**{
            **config.__dict__, "resident_data": resident}), progress=False)
        assert len(history) == 2
    for a, b in zip(models[False].state_dict().values(), models[True].state_dict().values()):
        assert torch.equal(a, b)


def test_resident_slices_leave_unusable_items_out_and_score_like_the_source(datasets):
    _, val = _tiny(datasets)

    class WithABadItem(torch.utils.data.Dataset):
        def __len__(self):
            return len(val) + 1

        def __getitem__(self, index):
            return SkippedSample("broken.h5", "truncated") if index == 0 else val[index - 1]

    resident = ResidentSlices.load(WithABadItem(), "cpu", torch.float32)
    assert len(resident) == len(val) and resident.skipped == ["broken.h5: truncated"]
    # read by two worker processes, a few items at a time: the same tensors
    by_workers = ResidentSlices.load(WithABadItem(), "cpu", torch.float32, num_workers=2,
                                     batch_size=3)
    assert torch.equal(by_workers.images, resident.images)
    assert torch.equal(by_workers.masks, resident.masks)
    assert by_workers.skipped == resident.skipped
    images, masks = resident.batch([0, 2])
    assert images.dtype == masks.dtype == torch.float32 and images.shape[0] == 2
    assert torch.equal(images[1], val[2][0]) and torch.equal(masks[1], val[2][1])
    # each pass over the data names the unusable item once, as a loader's would
    passes = list(ResidentBatches(resident, [[0, 1, 2], [3, 4], list(range(5, len(val)))]))
    assert [skipped for _, _, skipped in passes] == [["broken.h5: truncated"]] + [[]] * (
        len(passes) - 1)
    assert sum(len(images) for images, _, _ in passes) == len(val)
    model = build_model("classic", base_filters=4)
    held, read = evaluate(model, resident, device="cpu"), evaluate(model, val, device="cpu")
    assert held["dice"] == pytest.approx(read["dice"])
    assert held["loss"] == pytest.approx(read["loss"], rel=1e-6)  # every pixel's logit agrees


def test_data_with_no_usable_slice_are_named_with_their_role_and_a_reason(datasets,
                                                                         unusable_folder):
    from unet_lib.resident import hold_on_device

    train, _ = _tiny(datasets)
    broken = unusable_folder("val_folder", 3, "mask has values [0, 3]")
    with pytest.raises(ValueError, match=r"^val_folder: no usable validation slice to upload: "
                                         r"all 3 were skipped, e\.g\. slice_0\.h5: mask has"):
        hold_on_device(train, broken, torch.device("cpu"), report=lambda *a, **k: None)


def test_auto_holds_data_that_take_at_most_half_the_free_memory(datasets, monkeypatch):
    from unet_lib import resident

    # the 64×64 test phantom's slices, float32 images + bool masks, counted by hand
    items = len(datasets[0]) + len(datasets[1])
    need = items * (4 * 64 * 64 * 4 + 3 * 64 * 64)
    assert sum(resident.estimated_bytes(d, torch.float32) for d in datasets) == need
    cpu = torch.device("cpu")
    for free, held in ((2 * need, True), (2 * need - 1, False), (None, False)):
        monkeypatch.setattr(resident, "available_ram", lambda: free)
        assert use_resident("auto", datasets, cpu) is held, free
    assert use_resident("auto", datasets, torch.device("meta")) is False  # nor MPS, XPU…
    assert use_resident(True, datasets, cpu) is True
    assert use_resident(False, datasets, cpu) is False
    # two torchrun processes on one machine: each holds a copy, each may take half the RAM
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    for free, held in ((4 * need, True), (4 * need - 2, False)):
        monkeypatch.setattr(resident, "available_ram", lambda: free)
        assert use_resident("auto", datasets, cpu) is held, free


def test_settings_of_the_data_path_are_checked():
    with pytest.raises(ConfigError, match="resident_data"):
        TrainConfig(resident_data="yes").validate()
    with pytest.raises(ConfigError, match="channels_last"):
        TrainConfig(channels_last="on").validate()


def test_a_pass_sends_its_indices_to_the_device_once_and_draws_the_samplers_order(datasets):
    """A copy of host memory to a GPU waits for the GPU to finish its queue: a pass copies its
    whole order at once and cuts each batch's rows out of that one tensor."""
    resident = ResidentSlices.load(_tiny(datasets)[0], "cpu", torch.float32)
    received = []

    def recording_batch(rows):
        received.append(rows)
        return ResidentSlices.batch(resident, rows)

    resident.batch = recording_batch
    sampler = GlobalBatchSampler(len(resident), 5, torch.Generator().manual_seed(3))
    batches = list(ResidentBatches(resident, sampler))
    expected = torch.randperm(len(resident), generator=torch.Generator().manual_seed(3))
    assert [len(rows) for rows in received] == [5] * (len(resident) // 5) + (
        [len(resident) % 5] if len(resident) % 5 else [])
    assert all(isinstance(rows, torch.Tensor) and rows.device == resident.images.device
               for rows in received)
    assert len({rows.untyped_storage().data_ptr() for rows in received}) == 1
    assert torch.equal(torch.cat(received), expected)
    for (images, masks, _), rows in zip(batches, expected.split(5)):
        assert torch.equal(images, resident.images[rows])
        assert torch.equal(masks, resident.masks[rows].float())


def test_a_ranks_share_of_resident_data_is_scored_without_a_loader(datasets, monkeypatch):
    import unet_lib.inference as inference

    _, val = _tiny(datasets)
    resident = ResidentSlices.load(val, "cpu", torch.float32)
    model = build_model("classic", base_filters=4)
    share = [1, 3, 5, 7, 9]  # what evaluate() keeps for rank 1 of 2 under torchrun
    expected = evaluate(model, Subset(val, share), device="cpu")  # read from the files
    # a share of a split of held data: the split lists rows 1, 2, ..., 9, so its items 1, 3,
    # 5, 7 are rows 2, 4, 6, 8
    expected_nested = evaluate(model, Subset(val, [2, 4, 6, 8]), device="cpu")

    def no_loader(*args, **kwargs):  # on a GPU: pinning CUDA tensors fails, workers too
        raise AssertionError("a DataLoader over data already on the device")

    monkeypatch.setattr(inference, "DataLoader", no_loader)
    scored = evaluate(model, Subset(resident, share), device="cpu")
    assert scored["dice"] == pytest.approx(expected["dice"])
    assert scored["loss"] == pytest.approx(expected["loss"])
    nested = evaluate(model, Subset(Subset(resident, range(1, 10)), [1, 3, 5, 7]), device="cpu")
    assert nested["dice"] == pytest.approx(expected_nested["dice"])
    assert nested["loss"] == pytest.approx(expected_nested["loss"])
    assert nested["loss"] != pytest.approx(evaluate(model, Subset(resident, [1, 3, 5, 7]),
                                                    device="cpu")["loss"])  # not the share's


def test_a_subset_of_held_data_is_held_data_of_its_rows_and_trains(datasets, monkeypatch):
    from unet_lib import sampling
    from unet_lib.resident import resident_rows

    train, val = _tiny(datasets)
    held = ResidentSlices.load(train, "cpu", torch.float32)
    picked = resident_rows(Subset(Subset(held, [1, 3, 5, 7, 9, 11]), [0, 2, 4]))  # 1, 5, 9
    assert isinstance(picked, ResidentSlices) and len(picked) == 3
    assert torch.equal(picked.images, held.images[[1, 5, 9]])
    assert torch.equal(picked.masks, held.masks[[1, 5, 9]])
    assert resident_rows(train) is train and resident_rows(None) is None  # not held: as given
    # fit reads such a subset by index on its device, never through a loader's readers (on a
    # GPU, CUDA tensors cannot go to forked readers)
    held_val = ResidentSlices.load(val, "cpu", torch.float32)
    from unet_lib import resident

    for module in (sampling, resident):  # a loader, or a re-upload through one, fails: None()
        monkeypatch.setattr(module, "DataLoader", None)
    torch.manual_seed(0)
    history = fit(build_model("classic", base_filters=4), Subset(held, range(8)), held_val,
                  TrainConfig.quick(epochs=1, batch_size=4, base_filters=4), progress=False)
    assert len(history) == 1
