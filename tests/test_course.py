"""The course's shared setup: scale selection, model cache, lab self-checks."""

import dataclasses
import subprocess
import sys
import threading
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import unet_course as course
from unet_course import exercises, labs, session
from unet_lib.checkpoint import save_checkpoint
from unet_lib.metrics import best_threshold_of_slice
from unet_lib.models import ClassicUNet, build_model, count_parameters
from unet_lib.runfolder import wait_while_busy
from unet_lib.train import History


def test_scale_variable_overrides_the_notebook_choice(monkeypatch):
    monkeypatch.setenv(course.SCALE_VARIABLE, "quick")
    assert course.resolve_scale("full") == "quick"
    monkeypatch.delenv(course.SCALE_VARIABLE)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert course.resolve_scale("full") == "full"
    assert course.resolve_scale("auto") == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert course.resolve_scale("auto") == "quick"
    with pytest.warns(UserWarning, match="scale = 'full' without a CUDA GPU.*hours on a CPU"):
        assert course.resolve_scale("full") == "full"  # allowed, but said


def test_unknown_scale_is_named(monkeypatch):
    monkeypatch.delenv(course.SCALE_VARIABLE, raising=False)
    with pytest.raises(ValueError, match="scale = 'huge'"):
        course.resolve_scale("huge")
    monkeypatch.setenv(course.SCALE_VARIABLE, "tiny")
    with pytest.raises(ValueError, match=r"\$UNET_COURSE_SCALE = 'tiny'"):
        course.resolve_scale("quick")


@pytest.fixture
def tiny_setup(phantom_root, tmp_path, monkeypatch):
    monkeypatch.setenv(course.HOME_VARIABLE, str(tmp_path))
    monkeypatch.delenv(course.SCALE_VARIABLE, raising=False)
    return course.setup("quick", data=phantom_root, epochs=1, base_filters=4, image_size=32,
                        max_volumes=4)


@pytest.fixture
def stubbed_training(monkeypatch):
    """Training replaced by writing its checkpoint: for the tests of the cache's bookkeeping.
    Returns the list of ``(run folder, resumed)`` of every training started."""
    started = []

    def write_checkpoint_only(run, resume=False, **kwargs):
        started.append((run.folder, resume))
        model = build_model(run.recipe.model, base_filters=run.recipe.config.base_filters)
        done = session.read_checkpoint(run.folder / "last.pt")["history"] if resume else []
        records = done + [{"epoch": e + 1, "seconds": 0.0, "skipped": [], "train_loss": 1.0}
                          for e in range(len(done), run.recipe.config.epochs)]
        save_checkpoint(run.folder / "last.pt", model, epoch=len(records), history=records)
        return model, History(records)

    monkeypatch.setattr(session, "train_run", write_checkpoint_only)
    return started


def test_setup_reads_the_given_data_and_splits_by_volume(tiny_setup, phantom_root):
    assert tiny_setup.real_data and tiny_setup.data_root == phantom_root.resolve()
    assert not set(tiny_setup.train_volumes) & set(tiny_setup.val_volumes)
    train, val = tiny_setup.datasets()
    assert train[0][0].shape == (4, 32, 32) and val.volumes == tiny_setup.val_volumes


def test_a_trained_model_is_cached_and_loaded_back(tiny_setup, capsys):
    first = tiny_setup.trained("classic", progress=False)
    assert not first.from_cache and len(first.history) == 1
    # even without progress lines a cell says when it trains (many minutes on a small GPU)
    said = capsys.readouterr().out
    assert said.startswith("training the classic U-Net for 1 epoch on cpu")
    assert "epoch 1" not in said  # no line per epoch
    second = tiny_setup.trained("classic", progress=False)
    assert second.from_cache and second.checkpoint == first.checkpoint
    assert capsys.readouterr().out == ""  # loaded: nothing to say
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert second.history.records == first.history.records
    assert second.parameters == count_parameters(first.model)


def test_a_variant_with_another_loss_says_so_when_it_trains(tiny_setup, capsys):
    """Chapter 9 trains the Classic again with BCE + Dice beside chapter 4's: the line that
    says a cell trains now names the loss (it read as the Classic of chapter 4 retrained)."""
    tiny_setup.variant(loss="bce+dice").trained("classic", progress=False)
    assert capsys.readouterr().out.startswith(
        "training the classic U-Net with the bce+dice loss for 1 epoch on cpu")


def test_a_changed_configuration_gets_its_own_cache(tiny_setup, phantom_root):
    other = course.setup("quick", data=phantom_root, epochs=2, base_filters=4, image_size=32,
                         max_volumes=4)
    assert other.run_dir("classic") != tiny_setup.run_dir("classic")
    assert tiny_setup.run_dir("classic") != tiny_setup.run_dir("attention")
    assert dataclasses.replace(tiny_setup, home=tiny_setup.home / "moved").run_dir(
        "classic").name == tiny_setup.run_dir("classic").name


def test_the_cache_key_is_what_the_data_is_not_where_it_lies(tiny_setup, phantom_root,
                                                             tmp_path):
    import shutil

    copy = shutil.copytree(phantom_root, tmp_path / "elsewhere")
    moved = course.setup("quick", data=copy, epochs=1, base_filters=4, image_size=32,
                         max_volumes=4)
    assert moved.run_dir("classic") == tiny_setup.run_dir("classic")


def test_a_variant_with_another_seed_records_the_phantom_it_trains_on(tmp_path, monkeypatch):
    monkeypatch.setenv(course.HOME_VARIABLE, str(tmp_path))
    monkeypatch.delenv(course.SCALE_VARIABLE, raising=False)
    made = course.setup("quick", epochs=1, base_filters=4, image_size=32, n_volumes=4,
                        n_slices=4)
    reseeded = made.variant(seed=1)
    recipe = reseeded.recipe_of("classic")
    assert recipe.config.seed == 1 and made.recipe_of("classic").config.seed == 0
    # the same data and split: the run's record names the seed-0 phantom it reads
    assert recipe.phantom == made.recipe.phantom and recipe.phantom.seed == 0
    run = reseeded.run("classic")
    assert run.data_root == made.data_root
    assert (run.train_volumes, run.val_volumes, run.test_volumes) == (
        made.train_volumes, made.val_volumes, made.test_volumes)
    assert reseeded.run_dir("classic") != made.run_dir("classic")  # cached apart


def test_an_interrupted_run_is_finished_not_loaded(tiny_setup, stubbed_training):
    longer = tiny_setup.variant(epochs=2)
    tiny_setup.trained("classic", progress=False)
    longer.run_dir("classic").mkdir(parents=True)
    (tiny_setup.run_dir("classic") / "last.pt").rename(longer.run_dir("classic") / "last.pt")
    resumed = longer.trained("classic", progress=False)
    assert not resumed.from_cache and [r["epoch"] for r in resumed.history.records] == [1, 2]
    assert stubbed_training[-1] == (longer.run_dir("classic"), True)


def test_a_run_stopped_in_its_first_epoch_is_trained_again_over_its_leftovers(tiny_setup):
    """No last.pt, but a best.pt and results of a run stopped before its first epoch was
    written whole: the course's own cache, so it starts again instead of refusing."""
    folder = tiny_setup.run_dir("classic")
    folder.mkdir(parents=True)
    (folder / "best.pt").write_bytes(b"half of a checkpoint")
    (folder / "results.json").write_text("{}")
    trained = tiny_setup.trained("classic", progress=False)
    assert not trained.from_cache and len(trained.history) == 1
    assert session.read_checkpoint(folder / "best.pt")["epoch"] == 1
    assert not (folder / "results.json").exists()  # the stopped run's record went with it


def test_tumour_slices_are_the_largest_one_per_volume(tiny_setup):
    _, val = course.setup("quick", data=tiny_setup.data_root, image_size=32).datasets()
    chosen = course.tumour_slices(val, count=2)
    areas = sorted((float(val[i][1].amax(0).sum()) for i in range(len(val))), reverse=True)
    assert float(val[chosen[0]][1].amax(0).sum()) == areas[0]
    volumes = {course.slice_name(val, i).split(",")[0] for i in chosen}
    assert len(volumes) == len(chosen)
    # every label on show: the largest such slice, even where a larger one lacks a label
    every = [i for i in range(len(val)) if bool(val[i][1].flatten(1).any(1).all())]
    shown = course.tumour_slices(val, count=1, every_label=True)
    assert shown[0] in every and float(val[shown[0]][1].amax(0).sum()) == max(
        float(val[i][1].amax(0).sum()) for i in every)


# --- lab checks: right answers worked out by hand pass, wrong ones raise ----------------------

RIGHT_AND_WRONG = [
    # 4·32·9 + 32 + 32·32·9 + 32
    (labs.check_first_level_parameters, 10432, 10368),
    (labs.check_bottleneck_shape, (1, 512, 15, 15), (1, 512, 16, 16)),
    # depthwise 64·49, pointwise 64·64 + 64
    (labs.check_separable_parameters, 7296, 64 * 64 * 49),
    # W_x 64·16, W_g (the coarser level, 128 wide) 128·16 + 16, ψ 16 + 1
    (labs.check_gate_parameters, 3105, 2081),
    (lambda a: labs.check_learning_rate(a, epoch=10), 2e-3 * 0.9 ** 10, 2e-3 * 0.9 ** 9),
    (lambda a: labs.check_steps_per_epoch(a, n_slices=100, batch_size=32), 4, 3),
    (lambda a: labs.check_mask_channels(a, colour=(1, 0, 1)), {"NCR/NET", "ET"}, {"ET"}),
    # probabilities 0.9, 0.6, 0.1 binarized at 0.5: the first two; at 0.7 the first alone
    (lambda a: labs.check_mask_channels(a, colour=(0.9, 0.6, 0.1), threshold=0.5),
     {"NCR/NET", "ED"}, {"NCR/NET", "ED", "ET"}),
    (lambda a: labs.check_mask_channels(a, colour=(0.9, 0.6, 0.1), threshold=0.7),
     {"NCR/NET"}, {"NCR/NET", "ED"}),
    (lambda a: labs.check_gate_sizes(a, image_size=64), [8, 16, 32, 64], [4, 8, 16, 32]),
    # a full 7×7 convolution has C² · 49 weights against C · 49 + C² for the separable one
    (labs.check_biggest_growth, "separable", "batch_norm"),
    # the smallest in absolute value, whatever the sign: answered by the gate's map size
    (lambda a: labs.check_least_selective_gate(a, [0.4, -0.1, 0.2], [8, 16, 32]), 16, 32),
    # -0.1004 shows as -0.100, the size of the smallest, 0.1001: a tie on screen is right
    (lambda a: labs.check_least_selective_gate(a, [0.4, -0.1004, 0.1001], [8, 16, 32]), 16, 8),
    # but -0.100 against 0.098 is not: the table tells them apart
    (lambda a: labs.check_least_selective_gate(a, [0.4, -0.1, 0.098], [8, 16, 32]), 32, 16),
    # a clean sweep on n patients gives p = 2 / 2^n: 0.0625 for 5, 0.03125 for 6
    (labs.check_patients_to_settle, 6, 5),
    (lambda a: labs.check_patients_to_settle(a, alpha=0.01), 8, 7),  # 2/256 < 0.01 ≤ 2/128
]


@pytest.mark.parametrize("check, right, wrong", RIGHT_AND_WRONG)
def test_lab_check_accepts_the_answer_and_rejects_another(check, right, wrong, capsys):
    check(None)
    assert "Not answered yet" in capsys.readouterr().out
    check(right)
    assert "Right" in capsys.readouterr().out
    with pytest.raises(labs.NotYet, match="Not yet"):
        check(wrong)


def test_hand_scores_check():
    # prediction 4 pixels, target 3, overlap 2: TP 2, FP 2, FN 1
    labs.check_scores_by_hand(4 / 7, 2 / 4, 2 / 3)
    with pytest.raises(labs.NotYet, match="precision"):
        labs.check_scores_by_hand(4 / 7, 2 / 3, 2 / 4)
    labs.check_empty_slice_dice(1.0, 0.0)
    with pytest.raises(labs.NotYet):
        labs.check_empty_slice_dice(math.nan, 0.0)


def test_two_ways_check():
    # large tumour TP 900, FP 50, FN 50: Dice 1800/1900; small TP 10, FP 10, FN 30: 20/60;
    # all pixels TP 910, FP 60, FN 80: 1820/1960
    assert labs.TWO_PATIENTS == {"large tumour": (900, 50, 50), "small tumour": (10, 10, 30)}
    labs.check_two_ways((1800 / 1900 + 20 / 60) / 2, 1820 / 1960)
    with pytest.raises(labs.NotYet, match="all pixels"):
        labs.check_two_ways((1800 / 1900 + 20 / 60) / 2, (1800 / 1900 + 20 / 60) / 2)


def test_attention_parameters_check_counts_four_gates():
    classic = count_parameters(ClassicUNet())
    # gates on skips of widths 32, 64, 128, 256 with intermediate width 8:
    # w_x c·8, w_g from the level below 2c·8 + 8, psi 8 + 1
    gates = sum(c * 8 + 2 * c * 8 + 8 + 9 for c in (32, 64, 128, 256))
    labs.check_attention_parameters(classic + gates, inter_channels=8)


def test_best_threshold_picks_the_highest_whole_tumour_dice():
    target = torch.zeros(3, 4, 4)
    target[1, :2] = 1  # 8 oedema pixels
    probs = torch.zeros(3, 4, 4)
    probs[1, :2] = 0.6  # the tumour at 0.6
    probs[1, 2] = 0.3  # 4 false pixels at 0.3
    assert best_threshold_of_slice(probs, target, [0.2, 0.5, 0.7]) == 0.5


def test_tumour_slices_take_more_of_a_volume_when_volumes_run_out(tiny_setup):
    _, val = course.setup("quick", data=tiny_setup.data_root, image_size=32).datasets()
    n_volumes = len(val.volumes)
    chosen = course.tumour_slices(val, count=n_volumes + 2, min_gap=4)
    assert len(chosen) == n_volumes + 2 and len(set(chosen)) == len(chosen)
    by_volume = {}
    for index in chosen:
        volume, slice_index = val.slices[index][:2]
        by_volume.setdefault(volume, []).append(slice_index)
    assert set(by_volume) == set(val.volumes)  # every volume first
    for slices in by_volume.values():
        slices.sort()
        assert all(b - a >= 4 for a, b in zip(slices, slices[1:]))


def test_retrain_replaces_the_cached_run(tiny_setup, stubbed_training):
    first = tiny_setup.trained("classic", progress=False)
    again = tiny_setup.trained("classic", progress=False, retrain=True)
    assert not again.from_cache and len(again.history) == 1
    assert tiny_setup.trained("classic", progress=False).from_cache
    assert first.checkpoint == again.checkpoint
    assert stubbed_training == [(tiny_setup.run_dir("classic"), False)] * 2


def test_a_course_run_can_be_scored_from_the_command_line(tiny_setup, capsys):
    from unet_lib import cli

    trained = tiny_setup.trained("classic", progress=False)
    assert cli.main(["evaluate", "--checkpoint", str(trained.checkpoint)]) == 0
    out = capsys.readouterr().out
    test = tiny_setup.test_dataset()
    size = tiny_setup.config.image_size
    assert (f"on {len(test)} slices of the test volumes {tiny_setup.test_volumes} (predicted "
            f"at {size}×{size}, scored on their own grid) of {tiny_setup.data_root}") in out
    assert "per patient, in 3-D" in out


def test_a_scale_can_give_one_model_more_epochs(tiny_setup, monkeypatch):
    import dataclasses

    from unet_lib import recipe
    from unet_lib.recipe import RunRecipe

    assert {RunRecipe.for_scale("quick", model=n).config.epochs for n in recipe.MODEL_NAMES
            } == {10}
    monkeypatch.setitem(recipe.SCALES, "quick", dataclasses.replace(
        recipe.SCALES["quick"], per_model={"attention": {"epochs": 16}}))
    epochs = {name: RunRecipe.for_scale("quick", model=name).config.epochs
              for name in ("classic", "improved", "attention")}
    assert epochs == {"classic": 10, "improved": 10, "attention": 16}
    assert RunRecipe.for_scale("quick", model="attention", epochs=3).config.epochs == 3
    assert {RunRecipe.for_scale("full", model=n).config.epochs for n in epochs} == {20}
    # a course setup's changes win over the scale's per-model settings, for every model
    assert {tiny_setup.recipe_of(n).config.epochs for n in epochs} == {1}


def test_tumour_slices_with_every_label_fall_back_to_any_tumour_when_none_has_all():
    oedema_only = []
    for area in (2, 6, 4):  # low-grade: no slice shows NCR/NET or ET
        mask = torch.zeros(3, 8, 8)
        mask[1, :area, :area] = 1
        oedema_only.append((torch.zeros(4, 8, 8), mask))
    assert course.tumour_slices(oedema_only, count=2, min_gap=1, every_label=True) == [1, 2]


class CountingSlices(list):
    """Slices that count how many of them are read."""

    reads = 0

    def __getitem__(self, index):
        self.reads += 1
        return super().__getitem__(index)


def test_tumour_slices_read_at_most_the_slices_they_scan():
    slices = CountingSlices((torch.zeros(4, 4, 4), torch.ones(3, 4, 4)) for _ in range(799))
    course.tumour_slices(slices, count=1, scan=400)
    assert slices.reads == 400  # every second slice: 0, 2, …, 798


def test_a_showcase_of_slices_without_tumour_says_there_is_nothing_to_show():
    empty = [(torch.zeros(4, 8, 8), torch.zeros(3, 8, 8)) for _ in range(3)]
    with pytest.raises(ValueError, match="no slice of the 3 given has any tumour"):
        course.showcase({"classic": None}, empty)


# Another process training into a run folder: it holds the folder's lock until told to stop,
# and leaves a file named by its second argument just before it lets go.
HOLD_THE_FOLDER = """
import fcntl, os, sys, pathlib
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
pathlib.Path(sys.argv[2]).touch()
os.close(fd)
"""


def release_once_waiting(monkeypatch, release) -> list:
    """Make the course's wait for a classmate's run call ``release`` (in a thread) as it
    starts waiting, not after a guessed delay; returns the list of waits begun. ``release``
    also runs after 60 s, so that a test whose wait never begins fails instead of hanging."""
    waits, backstop = [], threading.Timer(60, release)
    backstop.start()

    def waiting_then_released(folder, on_wait=lambda: None):
        def begun():
            waits.append(folder)
            on_wait()
            if not backstop.finished.is_set():
                backstop.cancel()
                threading.Thread(target=release).start()
        return wait_while_busy(folder, on_wait=begun)

    monkeypatch.setattr(session, "wait_while_busy", waiting_then_released)
    return waits


@pytest.mark.skipif(sys.platform == "win32", reason="no advisory locks on Windows")
def test_a_model_a_classmate_is_training_is_waited_for_not_refused(tiny_setup, tmp_path,
                                                                  capsys, monkeypatch):
    folder = tiny_setup.run_dir("classic")
    folder.mkdir(parents=True)
    released = tmp_path / "released"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_FOLDER, str(folder / ".lock"),
                               str(released)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"
    waits = release_once_waiting(monkeypatch, lambda: holder.communicate(b"go\n"))
    trained = tiny_setup.trained("classic", progress="epochs")
    assert waits == [folder]
    assert released.exists()  # it returned only after the other process let go
    said = capsys.readouterr().out
    assert "another process is training the classic U-Net" in said and "waiting" in said
    assert len(trained.history) == 1  # and then trained it (the other left no model)


def test_figures_that_cannot_be_kept_in_a_read_only_course_home_are_a_warning(tiny_setup,
                                                                             monkeypatch):
    trained = tiny_setup.trained("classic", progress=False)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(session, "record_results", read_only)
    with pytest.warns(RuntimeWarning, match=r"could not keep contrast in .*Permission denied"):
        trained.record(contrast=0.5)


def test_a_whole_number_for_a_float_setting_is_the_same_recipe():
    from unet_lib.recipe import RunRecipe

    def key(**changes):
        return RunRecipe.for_scale("quick", model="classic", **changes).key()

    assert key(pos_weight=(5, 2, 5)) == key(pos_weight=(5.0, 2.0, 5.0))
    assert key(weight_decay=0) == key(weight_decay=0.0)
    assert key(pos_weight=(5, 2, 4)) != key(pos_weight=(5, 2, 5)) != key()
    assert key(epochs=12) != key()  # whole-number settings hash as they are


@pytest.mark.skipif(sys.platform == "win32", reason="no advisory locks on Windows")
def test_retrain_while_a_classmate_trains_loads_their_model_and_deletes_nothing(
        tiny_setup, stubbed_training, tmp_path, monkeypatch):
    tiny_setup.trained("classic", progress=False)
    folder = tiny_setup.run_dir("classic")
    kept = (folder / "last.pt").read_bytes()
    released = tmp_path / "released"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_FOLDER, str(folder / ".lock"),
                               str(released)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"

    seen_while_held = []

    def release():
        seen_while_held.append((folder / "last.pt").read_bytes() == kept)
        holder.communicate(b"go\n")

    waits = release_once_waiting(monkeypatch, release)
    again = tiny_setup.trained("classic", progress=False, retrain=True)
    assert waits == [folder]
    assert seen_while_held == [True]  # nothing deleted while the other process held it
    assert released.exists() and again.from_cache  # the model it finished, loaded
    assert stubbed_training == [(folder, False)]  # trained once, by the first call


@pytest.mark.parametrize("tumour, false_pixels, counts", [
    (400, 1, True),  # Dice 800/801 = 0.999, shown 1.00 as the best is: a tie on screen
    (50, 1, False),  # Dice 100/101 = 0.990, shown 0.99: worse on screen, though by < 0.01
])
def test_a_threshold_counts_for_exercise_5_2_when_the_slider_shows_the_best_dice(
        tumour, false_pixels, counts):
    target = torch.zeros(3, 30, 30)
    target[1].view(-1)[:tumour] = 1  # oedema: the whole tumour
    probs = 0.9 * target
    probs[1].view(-1)[-false_pixels:] = 0.4  # marked at 0.3, not at 0.5
    thresholds = [0.3, 0.5]
    assert best_threshold_of_slice(probs, target, thresholds) == 0.5  # Dice 1
    if counts:  # as typed, or read off NumPy or PyTorch (0.3 in float32 is 0.30000001…)
        for answer in (0.3, np.float32(0.3), torch.tensor(0.3)):
            labs.check_best_threshold(answer, probs, target, thresholds)
    else:
        with pytest.raises(labs.NotYet):
            labs.check_best_threshold(0.3, probs, target, thresholds)


def test_the_setup_says_where_its_course_home_is(tiny_setup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a notebook run beside its course home sees it relative
    assert tiny_setup.describe().splitlines()[-1] == (
        "course home: . ($UNET_COURSE_HOME): phantoms in data/, trained models in runs/course/")


@pytest.mark.parametrize("check, answer", [
    (labs.check_first_level_parameters, np.int64(10432)),  # a NumPy sum
    (labs.check_first_level_parameters, torch.tensor(10432)),  # a tensor's .sum()
    (lambda a: labs.check_least_selective_gate(a, np.array([0.4, 0.1, 0.2]), [8, 16, 32]),
     np.array([8, 16, 32])[np.argmin([0.4, 0.1, 0.2])]),
    (lambda a: labs.check_gate_sizes(a, image_size=64), np.array([8, 16, 32, 64])),
    (labs.check_bottleneck_shape, torch.Size([1, 512, 15, 15])),
    (lambda a: labs.check_learning_rate(a, epoch=10), 7.0e-4),  # 2 significant figures
])
def test_a_right_answer_in_numpy_or_torch_form_or_rounded_as_the_page_rounds_is_right(
        check, answer, capsys):
    check(answer)
    assert capsys.readouterr().out.startswith("Right")


@pytest.mark.parametrize("check, answer, said", [
    (lambda a: labs.check_gate_sizes(a, image_size=64), [(8, 8), (16, 16), (32, 32), (64, 64)],
     "a list of 4 whole numbers"),
    (labs.check_bottleneck_shape, 512, "a tuple of four numbers (N, C, H, W), not int"),
    (labs.check_biggest_growth, {"separable": True}, "is not a change's name"),
    (lambda a: labs.check_best_threshold(a, torch.rand(3, 4, 4), torch.ones(3, 4, 4),
                                         [0.3, 0.5]), "0.5", "a number, one of the slider's"),
])
def test_an_answer_of_the_wrong_form_gets_a_hint_not_a_traceback(check, answer, said):
    with pytest.raises(labs.NotYet, match=re.escape(said)):
        check(answer)


def test_a_tie_is_right_and_says_which_answer_it_ties_with(capsys):
    labs.check_least_selective_gate(16, [0.4, -0.1004, 0.1001], [8, 16, 32])
    assert capsys.readouterr().out.startswith("Right: the contrast of the 16×16 gate shows as "
                                              "-0.100 in the table, the same size as the 32×32 "
                                              "gate's")


def test_a_wrong_gate_is_told_its_own_contrast_not_too_high_or_too_low():
    with pytest.raises(labs.NotYet) as wrong:
        labs.check_least_selective_gate(8, [0.4, -0.1, 0.098], [8, 16, 32])
    assert "the 8×8 gate, +0.400, is not the smallest" in str(wrong.value)
    assert "too high" not in str(wrong.value) and "too low" not in str(wrong.value)


def test_a_scores_function_returning_another_form_gets_a_hint():
    with pytest.raises(labs.NotYet, match=r"should return a tuple of three numbers.*not dict"):
        exercises.check_scores(lambda tp, fp, fn: {"dice": 1.0, "precision": 1.0, "recall": 1.0})


def test_a_quoted_value_is_printed_where_no_book_build_fills_the_text_in(monkeypatch, capsys):
    from unet_course import notebook

    monkeypatch.delenv(notebook.BOOK_BUILD_VARIABLE, raising=False)
    course.glue("slowest", "attention")  # JupyterLab shows the bare {glue:text}`slowest`
    assert capsys.readouterr().out.startswith("slowest = attention  (quoted in the text")


def test_the_book_build_stores_quoted_values_for_its_pages_instead(monkeypatch, capsys):
    import importlib.util

    import myst_nb

    from unet_course import notebook

    spec = importlib.util.spec_from_file_location(
        "book_build", Path(__file__).parents[1] / "book" / "_ext" / "book_build.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    monkeypatch.setenv(notebook.BOOK_BUILD_VARIABLE, "")  # what setup sets is undone after
    extension.setup(app=None)  # as Sphinx loads it, before the notebooks run
    stored = []
    monkeypatch.setattr(myst_nb, "glue", lambda *args, **kwargs: stored.append(args))
    course.glue("slowest", "attention")
    assert stored == [("slowest", "attention")] and capsys.readouterr().out == ""


def test_the_quick_scale_on_real_data_takes_as_many_volumes_as_the_quick_phantom_has(
        tmp_path, monkeypatch):
    from unet_lib.data import make_phantom

    monkeypatch.setenv(course.HOME_VARIABLE, str(tmp_path / "home"))
    monkeypatch.delenv(course.SCALE_VARIABLE, raising=False)
    make_phantom(tmp_path / "brats", n_volumes=18, image_size=16, n_slices=3, seed=0)  # "369"
    quick = course.setup("quick", data=tmp_path / "brats")
    used = quick.train_volumes + quick.val_volumes + quick.test_volumes
    assert len(used) == 16 == session.QUICK_REAL_VOLUMES  # a CPU lab, not hours
    assert "(its first 16 volumes: max_volumes)" in quick.describe()
    every = course.setup("quick", data=tmp_path / "brats", max_volumes=18)
    assert len(every.train_volumes + every.val_volumes + every.test_volumes) == 18


def test_names_in_a_glued_sentence_take_the_plural_and_an_and():
    from unet_course import counted

    assert counted("patient", [5]) == "patient 5"
    assert counted("patient", [2, 5]) == "patients 2 and 5"
    assert counted("Patient", (2, 3, 5)) == "Patients 2, 3 and 5"
    with pytest.raises(ValueError, match="no patient to name"):
        counted("patient", [])


def test_a_shown_table_prints_its_caption_heading_and_rows_outside_a_notebook(capsys):
    from unet_course import show_table

    show_table([{"model": "Classic", "Dice": 0.8123}], formats={"Dice": ".2f"},
               caption="Dice per model", heading="Quick run")
    assert capsys.readouterr().out.splitlines() == [
        "**Quick run**", "", "<!-- table: Dice per model -->", "| model | Dice |", "|---|---|",
        "| Classic | 0.81 |"]
    with pytest.raises(TypeError, match="caption"):
        show_table([{"model": "Classic"}])  # every table in the book says what it shows


def test_a_shown_table_is_displayed_as_markdown_in_a_notebook(monkeypatch):
    import IPython
    import IPython.display

    from unet_course import show_markdown

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # a kernel is running
    monkeypatch.setattr(IPython.display, "display",
                        lambda *items, **how: shown.append((items, how)))
    show_markdown("**bold**")
    # a notebook renders the Markdown; a terminal IPython shows the text, not "<... object>"
    assert shown == [(({"text/markdown": "**bold**", "text/plain": "**bold**"},),
                      {"raw": True})]
