"""The command line keeps a researcher's runs and scores honest: a refused resume changes
nothing, an evaluation says which volumes it scored, outputs are checked before the work."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from unet_lib import cli
from unet_lib.data import make_phantom
from unet_lib.progress import unusable
from unet_lib.runtime import pick_device


def main(*argv) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture
def trained_run(tmp_path):
    """A one-epoch run on a 6-volume phantom split 2/2/2; returns ``(phantom, run folder)``."""
    phantom = make_phantom(tmp_path / "ph", n_volumes=6, image_size=32, n_slices=4, seed=0)
    out = tmp_path / "run"
    assert main("train", "--data", phantom, "--model", "classic", "--quick", "--image-size",
                "32", "--base-filters", "4", "--batch-size", "4", "--val-fraction", "0.34",
                "--test-fraction", "0.34", "--epochs", "1", "--out", out) == 0
    return phantom, out


def test_an_evaluation_on_data_lacking_test_volumes_says_which_it_scored(trained_run, tmp_path,
                                                                        capsys):
    phantom, out = trained_run
    test_volumes = json.loads((out / "run.json").read_text())["test_volumes"]
    assert len(test_volumes) == 2
    part = tmp_path / "part"
    shutil.copytree(phantom, part)
    for path in part.glob(f"volume_{test_volumes[1]}_slice_*.h5"):
        path.unlink()
    capsys.readouterr()
    assert main("evaluate", "--checkpoint", out / "best.pt", "--data", part,
                "--split", "test") == 0
    said = capsys.readouterr()
    assert (f"holds no usable slice of the volumes [{test_volumes[1]}] of the run's split"
            in said.err and "the scores are of 1 of its 2 volumes" in said.err)
    assert (f"on 4 slices of the test volumes [{test_volumes[0]}] (of {test_volumes}; "
            f"[{test_volumes[1]}] not found)") in said.out

    # none of them there: the folder's own format says so, not "neither format found"
    for path in part.glob(f"volume_{test_volumes[0]}_slice_*.h5"):
        path.unlink()
    assert main("evaluate", "--checkpoint", out / "best.pt", "--data", part,
                "--split", "test") == 2
    assert "no slice files named volume_<v>_slice_<s>.h5 here for volumes" in capsys.readouterr(
    ).err


def test_a_refused_resume_on_moved_data_leaves_the_run_record_as_it_was(trained_run, tmp_path,
                                                                       capsys):
    phantom, out = trained_run
    moved = tmp_path / "moved"
    shutil.copytree(phantom, moved)
    record = (out / "run.json").read_bytes()
    capsys.readouterr()
    assert main("train", "--out", out, "--resume", "--epochs", "2", "--data", moved,
                "--model", "attention") == 2
    assert capsys.readouterr().err.startswith(
        "error: --model: cannot change from 'classic' to 'attention'")
    assert (out / "run.json").read_bytes() == record


def test_the_same_command_with_resume_continues_and_says_its_scale_is_the_runs(trained_run,
                                                                              capsys):
    _, out = trained_run
    capsys.readouterr()
    assert main("train", "--out", out, "--resume", "--epochs", "2", "--scale", "full") == 0
    assert "note: --scale/--quick do not apply when resuming" in capsys.readouterr().err
    state = json.loads((out / "run.json").read_text())["recipe"]["config"]
    assert state["image_size"] == 32 and state["epochs"] == 2  # the run's, not full's 240


def test_an_unwritable_csv_folder_is_refused_before_the_scoring(trained_run, tmp_path, capsys,
                                                               monkeypatch):
    import tempfile

    _, out = trained_run

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    capsys.readouterr()
    assert main("evaluate", "--checkpoint", out / "best.pt", "--csv", tmp_path / "s.csv") == 2
    said = capsys.readouterr()
    assert said.err.strip() == (f"error: --csv: {tmp_path / 's.csv'}: its folder {tmp_path} "
                                f"cannot be written (Read-only file system)")
    assert "dice" not in said.out  # nothing was scored first


def test_a_reference_run_is_not_put_into_a_training_runs_folder(trained_run, capsys):
    _, out = trained_run
    before = sorted(path.name for path in out.iterdir())
    assert main("reference", "--out", out, "--scale", "quick") == 2
    assert "not an earlier reference's files" in capsys.readouterr().err
    assert sorted(path.name for path in out.iterdir()) == before


def test_skipped_slices_are_counted_as_slices_and_their_files_once():
    nifti = ["case/t1.nii.gz: cannot be read"] * 155
    assert unusable(nifti) == "155 unusable slices from 1 file"
    assert unusable(["a.h5: NaN", "b.h5: NaN"]) == "2 unusable slices"
    assert unusable(["a.h5: NaN"]) == "1 unusable slice"


def test_a_run_resumes_on_its_data_moved_or_packed_not_on_a_lookalike_of_another_seed(
        trained_run, tmp_path, capsys):
    from unet_lib.data import pack_folder

    phantom, out = trained_run
    record = json.loads((out / "run.json").read_text())
    assert record["data_layout"].startswith("v2:")
    # the same layout, volume for volume and slice for slice, made from another seed
    lookalike = make_phantom(tmp_path / "lookalike", n_volumes=6, image_size=32, n_slices=4, seed=1)
    capsys.readouterr()
    assert main("train", "--out", out, "--resume", "--epochs", "2", "--data", lookalike) == 2
    assert "other pixels than the run's" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text()) == record
    packed = pack_folder(phantom, tmp_path / "packed", progress=False)
    assert main("train", "--out", out, "--resume", "--epochs", "2", "--data", packed) == 0
    assert json.loads((out / "run.json").read_text())["data_root"] == str(packed.resolve())


def test_a_run_recorded_before_contents_were_is_still_checked_by_its_layout(trained_run,
                                                                           tmp_path):
    from unet_lib.data import open_dataset
    from unet_lib.datamove import checked_new_place, split_layout
    from unet_lib.run import read_run

    phantom, out = trained_run
    run = read_run(out)
    volumes = run.train_volumes + run.val_volumes + run.test_volumes
    run.data_layout = split_layout(open_dataset(phantom), volumes, content=False)
    assert not run.data_layout.startswith("v2:")
    moved = tmp_path / "moved"
    shutil.copytree(phantom, moved)
    assert checked_new_place(run, moved) == moved


def test_scoring_the_runs_own_data_says_so_in_its_own_place_or_a_copy_not_for_other_data(
        trained_run, tmp_path, capsys):
    phantom, out = trained_run
    copy = tmp_path / "elsewhere" / "ph"
    shutil.copytree(phantom, copy)  # the same slices in another place, as a moved download
    other = make_phantom(tmp_path / "other", n_volumes=6, image_size=32, n_slices=4, seed=1)
    said = {}
    for name, data in (("own", phantom), ("copy", copy), ("other", other)):
        capsys.readouterr()
        assert main("evaluate", "--checkpoint", out / "best.pt", "--data", data) == 0
        said[name] = capsys.readouterr().err
    note = "is the run's own data: every volume is scored, its training volumes too"
    assert note in said["own"] and note in said["copy"]
    assert note not in said["other"]  # the same volume numbers, other pixels


def test_evaluate_and_segment_run_on_the_device_asked_for_and_name_a_wrong_one(
        trained_run, tmp_path, capsys, monkeypatch):
    import unet_lib.patients
    import unet_lib.segment

    phantom, out = trained_run
    asked = []  # the device each scoring function was given
    for module, name in ((unet_lib.patients, "evaluate_patients"),
                         (unet_lib.segment, "segment_folder")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, **k: (
            asked.append(k.get("device")), real(*a, **k))[1])
    (tmp_path / "cases").mkdir()
    assert main("segment", "--checkpoint", out / "best.pt", "--data", tmp_path / "cases",
                "--out", tmp_path / "none", "--device", "cpu") == 2  # no case there
    capsys.readouterr()
    assert main("evaluate", "--checkpoint", out / "best.pt") == 0
    by_default = capsys.readouterr().out
    assert main("evaluate", "--checkpoint", out / "best.pt", "--device", "cpu") == 0
    on_cpu = capsys.readouterr().out
    if pick_device("auto").type == "cpu":  # "auto" is the CPU here: the very same scores
        assert on_cpu == by_default
    assert asked == ["cpu", "auto", "cpu"]  # segment, evaluate by default, evaluate on the CPU
    for command in (["evaluate", "--checkpoint", out / "best.pt"],
                    ["segment", "--checkpoint", out / "best.pt", "--data", tmp_path / "cases",
                     "--out", tmp_path / "labels"]):
        assert main(*command, "--device", "cpuu") == 2
        assert capsys.readouterr().err.startswith("error: --device: 'cpuu' is not a device")
    assert not (tmp_path / "labels").exists()


def test_run_json_says_what_a_resumed_run_trained_with_even_when_it_is_stopped(
        trained_run, monkeypatch, capsys):
    from unet_lib import train
    from unet_lib.checkpoint import read_checkpoint

    _, out = trained_run
    real_epoch, calls = train._train_epoch, []

    def stopped_in_the_second(*args, **kwargs):  # Ctrl-C during the resumed run's 2nd epoch
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train, "_train_epoch", stopped_in_the_second)
    main("train", "--out", out, "--resume", "--epochs", "3", "--lr", "1e-3")
    assert read_checkpoint(out / "last.pt")["epoch"] == 2  # one epoch at the new rate ran
    config = json.loads((out / "run.json").read_text())["recipe"]["config"]
    assert (config["lr"], config["epochs"]) == (1e-3, 3)  # the settings that ran, not 2e-3
    monkeypatch.setattr(train, "_train_epoch", real_epoch)

    # continued without options, at the run's own settings (with the earlier run.json it was
    # refused: "epochs: is 1, but last.pt has trained 2 epochs already")
    assert main("train", "--out", out, "--resume") == 0
    assert read_checkpoint(out / "last.pt")["config"]["lr"] == 1e-3

    # refused before its first epoch (fewer epochs than trained): run.json as it was
    record = (out / "run.json").read_bytes()
    capsys.readouterr()
    assert main("train", "--out", out, "--resume", "--epochs", "2") == 2
    assert "epochs: is 2, but" in capsys.readouterr().err
    assert (out / "run.json").read_bytes() == record


def test_a_resume_with_nothing_left_to_train_changes_neither_the_run_nor_its_record(
        trained_run, capsys):
    from unet_lib.checkpoint import read_checkpoint

    _, out = trained_run
    record, last = (out / "run.json").read_bytes(), (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main("train", "--out", out, "--resume", "--loss", "bce+dice", "--epochs", "1") == 0
    said = capsys.readouterr().out
    assert "all 1 epochs are trained already, nothing to do" in said
    assert "the changed settings (loss) apply to no epoch" in said
    assert "resuming with changed settings" not in said
    assert (out / "run.json").read_bytes() == record
    assert (out / "last.pt").read_bytes() == last
    # a later resume does not take up the loss of the one that trained nothing
    assert main("train", "--out", out, "--resume", "--epochs", "2") == 0
    assert "resuming with changed settings: epochs 1 → 2\n" in capsys.readouterr().out
    assert read_checkpoint(out / "last.pt")["config"]["loss"] == "bce"
    # one that trains with another loss: history.csv says which loss each epoch had
    assert main("train", "--out", out, "--resume", "--epochs", "3", "--loss", "bce+dice") == 0
    rows = list(csv.DictReader((out / "history.csv").open(newline="")))
    assert [row["loss"] for row in rows] == ["bce", "bce", "bce+dice"]


def test_a_run_s_data_folder_replaced_by_other_data_is_refused_not_scored_or_trained_on(
        trained_run, tmp_path, capsys):
    phantom, out = trained_run
    record = (out / "run.json").read_bytes()
    other = make_phantom(tmp_path / "other", n_volumes=6, image_size=32, n_slices=4, seed=1)
    # the same volume numbers and slices, other pixels: --split would pick "held-out" volumes
    capsys.readouterr()
    assert main("evaluate", "--checkpoint", out / "best.pt", "--data", other,
                "--split", "test") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --split: picks the volumes ") and "other pixels" in err
    assert main("evaluate", "--checkpoint", out / "best.pt", "--data", other) == 0  # all of it
    # the run's own folder replaced by that other phantom (e.g. re-made, or re-packed)
    shutil.rmtree(phantom)
    shutil.copytree(other, phantom)
    capsys.readouterr()
    for command in (("evaluate", "--checkpoint", out / "best.pt"),
                    ("train", "--out", out, "--resume", "--epochs", "2")):
        assert main(*command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --data: {phantom}, which {out} trained on, holds other "
                              f"data now: its volumes"), err
        assert "give --data with the run's own data" in err
    assert (out / "run.json").read_bytes() == record
    # a folder that cannot be read says so itself, not "drop --split"
    assert main("evaluate", "--checkpoint", out / "best.pt", "--data", tmp_path / "typo",
                "--split", "test") == 2
    err = capsys.readouterr().err
    assert "typo" in err and "drop --split" not in err
    # other data of fewer volumes cannot be compared: said, and the absent volumes named
    shutil.rmtree(phantom)
    make_phantom(phantom, n_volumes=2, image_size=32, n_slices=4, seed=2)
    main("evaluate", "--checkpoint", out / "best.pt")
    err = capsys.readouterr().err
    assert f"note: {phantom} cannot be checked to still hold the data {out} trained on: it " \
           f"lacks volumes" in err


def test_packing_over_a_pack_of_other_data_says_what_it_replaced(tmp_path, capsys):
    one = make_phantom(tmp_path / "one", n_volumes=2, image_size=16, n_slices=2, seed=0)
    two = make_phantom(tmp_path / "two", n_volumes=2, image_size=16, n_slices=2, seed=1)
    packed = tmp_path / "data.packed"
    assert main("pack", "--data", one, "--out", packed) == 0
    assert main("pack", "--data", one, "--out", packed) == 0  # the same data packed again
    assert "note:" not in capsys.readouterr().err
    assert main("pack", "--data", two, "--out", packed) == 0
    assert f"note: this replaced a pack of {one} in {packed}" in capsys.readouterr().err


@pytest.mark.parametrize("channels", [(3, 3), (4, 2)])
def test_a_checkpoint_of_other_channels_is_refused_by_name_before_the_data_are_read(
        channels, tmp_path, capsys):
    from unet_lib.checkpoint import save_checkpoint
    from unet_lib.models import UNet

    checkpoint = tmp_path / "other.pt"
    save_checkpoint(checkpoint, UNet(in_channels=channels[0], out_channels=channels[1],
                                     base_filters=4))
    said = (f"error: {checkpoint}: holds a model of {channels[0]} input and {channels[1]} "
            f"output channels; these commands score BraTS models of 4")
    assert main("evaluate", "--checkpoint", checkpoint, "--data", tmp_path / "nowhere") == 2
    assert capsys.readouterr().err.startswith(said)
    assert main("segment", "--checkpoint", checkpoint, "--data", tmp_path / "nowhere",
                "--out", tmp_path / "maps") == 2
    assert capsys.readouterr().err.startswith(said)
    assert not (tmp_path / "maps").exists()


def test_training_on_data_of_another_size_says_it_resizes_them_unless_asked(tmp_path, capsys):
    phantom = make_phantom(tmp_path / "ph", n_volumes=6, image_size=16, n_slices=2, seed=0)
    common = ("train", "--data", phantom, "--quick", "--base-filters", "4", "--batch-size", "4",
              "--val-fraction", "0.34", "--test-fraction", "0.34", "--epochs", "1")
    assert main(*common, "--out", tmp_path / "a") == 0  # the quick scale's 96×96
    assert (f"note: {phantom} holds 16×16 slices; they are resized to 96×96, the scale's size "
            f"(--image-size 16 trains at their own)") in capsys.readouterr().err
    assert main(*common, "--image-size", "32", "--out", tmp_path / "b") == 0
    assert "resized" not in capsys.readouterr().err
    assert main(*common, "--image-size", "16", "--max-volumes", "100", "--out",
                tmp_path / "c") == 0
    assert (f"note: {phantom} holds 6 volumes, fewer than --max-volumes 100: all 6 are used"
            in capsys.readouterr().err)


def test_evaluate_json_holds_every_printed_score_and_what_was_scored(trained_run, tmp_path,
                                                                     capsys):
    import numpy as np

    _, out = trained_run
    report_file, table = tmp_path / "scores.json", tmp_path / "patients.csv"
    capsys.readouterr()
    assert main("evaluate", "--checkpoint", out / "best.pt", "--json", report_file,
                "--csv", table) == 0
    said = capsys.readouterr().out
    assert f"{out / 'best.pt'} (classic U-Net, epoch 1) on " in said
    report = json.loads(report_file.read_text())
    test_volumes = json.loads((out / "run.json").read_text())["test_volumes"]
    assert (report["model"], report["epoch"], report["threshold"]) == ("classic", 1, 0.5)
    assert report["scored"].startswith(f"the test volumes {test_volumes}")
    assert [row["volume"] for row in report["per_patient"]] == sorted(test_volumes)
    assert report["volumes"] == sorted(test_volumes) and report["split"] == "test"
    dice_wt = [row["dice"]["WT"] for row in report["per_patient"]]
    summary = report["summary_over_patients"]["dice"]["WT"]
    assert summary["mean"] == pytest.approx(np.mean(dice_wt))
    assert summary["std"] == pytest.approx(np.std(dice_wt, ddof=0))  # as the header says
    assert f"{report['all_pixels']['dice']['WT']:9.3f}" in said  # the printed all-pixel table
    # written again over its own file; someone's notes, or the CSV's name, are refused
    assert main("evaluate", "--checkpoint", out / "best.pt", "--json", report_file) == 0
    assert "(it replaced the file there)" in capsys.readouterr().out
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    assert main("evaluate", "--checkpoint", out / "best.pt", "--json", notes) == 2
    assert "--json: " in capsys.readouterr().err and notes.read_text() == '{"mine": 1}'
    assert main("evaluate", "--checkpoint", out / "best.pt", "--json", table, "--csv",
                table) == 2
    assert "is the --csv file too" in capsys.readouterr().err


def test_a_failure_to_put_run_json_back_never_hides_what_stopped_the_run(trained_run,
                                                                        monkeypatch):
    from unet_lib import run as run_module
    from unet_lib import train
    from unet_lib.checkpoint import CheckpointWriteError

    _, out = trained_run
    record = (out / "run.json").read_bytes()

    def disk_full_at_the_first_checkpoint(*args, **kwargs):
        raise CheckpointWriteError(f"{out / 'last.pt'}: disk full; the previous one is intact")

    write_bytes_atomic = run_module.runfolder.write_bytes_atomic

    def no_space_to_put_it_back(path, data, *args, **kwargs):
        if data == record:
            raise OSError(28, "No space left on device")
        return write_bytes_atomic(path, data, *args, **kwargs)

    monkeypatch.setattr(train, "fit", disk_full_at_the_first_checkpoint)
    monkeypatch.setattr(run_module.runfolder, "write_bytes_atomic", no_space_to_put_it_back)
    resumed = run_module.resumed_run(out, {"epochs": 3})
    with pytest.raises(CheckpointWriteError, match="disk full; the previous one is intact"):
        run_module.train_run(resumed, resume=True, progress=False,
                             report=lambda *args, **kwargs: None)
    assert (out / "run.json").read_bytes() != record  # could not be put back: said nowhere else


def test_training_the_full_scale_on_the_cpu_is_said_to_take_hours(capsys, monkeypatch):
    import dataclasses

    from unet_lib.cli.checks import note_a_long_run
    from unet_lib.config import TrainConfig

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("torch.backends.mps.is_available", lambda: False)
    note_a_long_run("full", TrainConfig())
    assert capsys.readouterr().err.startswith(
        "note: the full scale (240×240, 32 filters, 20 epochs) trains for hours on a CPU")
    note_a_long_run("quick", TrainConfig.quick())
    note_a_long_run("full", dataclasses.replace(TrainConfig(), image_size=32))  # shrunk
    note_a_long_run("full", dataclasses.replace(TrainConfig(), device="cuda"))  # not the CPU
    assert capsys.readouterr().err == ""


def test_evaluate_keep_largest_scores_each_patient_cleaned_and_says_so(trained_run, tmp_path,
                                                                       capsys):
    import csv

    from unet_lib.checkpoint import model_from_checkpoint, read_checkpoint
    from unet_lib.inference import predict
    from unet_lib.patients import evaluate_patients
    from unet_lib.postprocess import keep_largest_tumour
    from unet_lib.run import read_run

    _, out = trained_run
    model = model_from_checkpoint(read_checkpoint(out / "best.pt")).eval()
    test_set = read_run(out).dataset("test")
    # a threshold that marks about a fifth of the pixels: a one-epoch model's map in pieces
    threshold = f"{float(predict(model, test_set, device='cpu').quantile(0.8)):.6f}"
    tables = {}
    for option in ((), ("--keep-largest",)):
        csv_path = tmp_path / f"scores{len(option)}.csv"
        capsys.readouterr()
        assert main("evaluate", "--checkpoint", out / "best.pt", "--csv", csv_path,
                    "--threshold", threshold, *option) == 0
        said = capsys.readouterr().out
        with open(csv_path) as written:
            tables[option] = list(csv.reader(written))
    assert f"(threshold {threshold}; each patient's largest tumour piece kept)" in said
    assert "(predicted at 32×32, scored on their own grid)" in said  # the run's own size
    assert tables[()] != tables[("--keep-largest",)]  # the clean-up changed the scores
    expected = evaluate_patients(model, test_set, threshold=float(threshold), device="cpu",
                                 clean=keep_largest_tumour)
    expected.to_csv(tmp_path / "expected.csv")
    with open(tmp_path / "expected.csv") as library:
        assert tables[("--keep-largest",)] == list(csv.reader(library))
