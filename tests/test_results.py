"""What a run folder records about its model: held-out scores and other measured figures
(``results.json``), tied to the checkpoint they describe."""

from __future__ import annotations

import json

import pytest
import torch

from unet_lib.inference import evaluate
from unet_lib.models import build_model
from unet_lib.patients import evaluate_patients
from unet_lib.recipe import RunRecipe
from unet_lib.results import held_out_scores, read_results, record_results
from unet_lib.run import prepare_run


@pytest.fixture
def run(phantom_root, tmp_path):
    recipe = RunRecipe.for_scale("quick", model="classic", data=phantom_root, image_size=64,
                                 base_filters=4)
    return prepare_run(recipe, tmp_path / "run")


def test_held_out_scores_are_the_test_volumes_scored_both_ways(run):
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4).eval()
    scores = held_out_scores(run, model, threshold=0.5, device="cpu")
    test = run.dataset("test")
    assert scores["volumes"] == run.test_volumes and len(run.test_volumes) >= 1
    pixels = evaluate(model, test, threshold=0.5, device="cpu")
    assert scores["all_pixels"]["dice"] == pytest.approx(pixels["dice"])
    patients = evaluate_patients(model, test, threshold=0.5, device="cpu")
    assert scores["per_patient"]["dice"]["WT"]["mean"] == pytest.approx(
        patients.summary()["dice"]["WT"]["mean"])
    assert [row["volume"] for row in scores["patients"]] == sorted(run.test_volumes)


def test_held_out_scores_read_each_test_slice_once(run, monkeypatch):
    test = run.dataset("test")
    source = type(test)
    reads = []
    real_getitem = source.__getitem__

    def counted(self, index):
        reads.append(index)
        return real_getitem(self, index)

    monkeypatch.setattr(source, "__getitem__", counted)
    held_out_scores(run, build_model("classic", base_filters=4), device="cpu")
    # both kinds of score from one pass; the first slice once more before it, for the size
    # the masks are stored at (SliceDataset.with_native_masks)
    assert reads[0] == 0 and sorted(reads[1:]) == list(range(len(test)))


def test_results_belong_to_one_checkpoint(tmp_path):
    record_results(tmp_path, epoch=3, test={"dice": 0.5})
    saved = record_results(tmp_path, epoch=3, contrast=[0.1, 0.2])
    assert saved == {"epoch": 3, "test": {"dice": 0.5}, "contrast": [0.1, 0.2]}
    assert read_results(tmp_path) == saved
    # a new best checkpoint: what was measured on the old one is dropped, not mixed in
    assert record_results(tmp_path, epoch=5, test={"dice": 0.7}) == {"epoch": 5,
                                                                    "test": {"dice": 0.7}}
    json.loads((tmp_path / "results.json").read_text())  # plain JSON


def test_unreadable_results_read_as_none_recorded(tmp_path):
    assert read_results(tmp_path) == {}
    (tmp_path / "results.json").write_text("{not json")
    assert read_results(tmp_path) == {}


def test_a_new_run_into_a_folder_holding_one_keeps_its_record_unless_told_to_start_again(
        run, phantom_root):
    from unet_lib.checkpoint import save_checkpoint
    from unet_lib.results import RESULTS_FILE
    from unet_lib.run import RUN_FILE, train_run

    run.folder.mkdir(parents=True)
    run.save()
    save_checkpoint(run.folder / "last.pt", build_model("classic", base_filters=4), epoch=1)
    record_results(run.folder, epoch=1, test={"dice": 0.5})
    kept = {name: (run.folder / name).read_bytes() for name in (RUN_FILE, RESULTS_FILE,
                                                                 "last.pt")}
    other = prepare_run(RunRecipe.for_scale("quick", model="attention", data=phantom_root,
                                            image_size=32, base_filters=4, epochs=1),
                        run.folder)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_run(other, progress=False, report=lambda *args, **kwargs: None)
    assert {name: (run.folder / name).read_bytes() for name in kept} == kept

    train_run(other, overwrite=True, progress=False, report=lambda *args, **kwargs: None)
    assert json.loads((run.folder / RUN_FILE).read_text())["recipe"]["model"] == "attention"
    assert not (run.folder / RESULTS_FILE).exists()  # the earlier model's scores went with it


def test_held_out_scores_of_a_test_set_that_cannot_be_read_say_so(run, monkeypatch):
    from unet_lib.data.samples import SkippedSample

    monkeypatch.setattr(type(run.dataset("test")), "__getitem__",
                        lambda self, i: SkippedSample(f"slice_{i}.h5", "cannot be read"))
    # not the empty-mask rule's perfect 1 for every region, nor an error about update()
    with pytest.raises(ValueError, match=r"no test slice could be read, nothing was scored "
                                         r"\(first: slice_\d+\.h5: cannot be read\)"):
        held_out_scores(run, build_model("classic", base_filters=4), device="cpu")


@pytest.mark.parametrize("seed", [0, 7])
def test_a_run_starts_from_the_weights_its_seed_gives(phantom_root, tmp_path, monkeypatch,
                                                      seed):
    from unet_lib import train
    from unet_lib.run import train_run

    recipe = RunRecipe.for_scale("quick", model="classic", data=phantom_root, image_size=32,
                                 base_filters=4, epochs=1, seed=seed)
    started = {}

    def record_start(model, *args, **kwargs):
        started.update({k: v.clone() for k, v in model.state_dict().items()})
        return None

    monkeypatch.setattr(train, "fit", record_start)
    torch.manual_seed(12345)  # whatever came before: the run's seed decides
    next_draw = torch.rand(3, generator=torch.Generator().manual_seed(12345))
    train_run(prepare_run(recipe, tmp_path / "run"), progress=False,
              report=lambda *args, **kwargs: None)
    # and the caller's stream goes on where it was, as if no run had been trained (a notebook
    # draws the same numbers whether its model was trained or loaded from the cache)
    assert torch.equal(torch.rand(3), next_draw)
    torch.manual_seed(seed)
    expected = build_model("classic", base_filters=4).state_dict()
    assert started.keys() == expected.keys()
    assert all(torch.equal(started[k], expected[k]) for k in expected)
    torch.manual_seed(seed + 1)  # and another seed gives other weights
    other = build_model("classic", base_filters=4).state_dict()
    assert not all(torch.equal(started[k], other[k]) for k in expected)
