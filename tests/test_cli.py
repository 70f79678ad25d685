"""The unet-lib command line, end to end on a tiny phantom, in a subprocess."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "unet_lib", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def dice_row(output: str) -> list[float]:
    line = next(line for line in output.splitlines() if line.startswith("dice"))
    return [float(v) for v in line.split()[1:]]


@pytest.mark.slow
def test_phantom_train_evaluate_end_to_end(tmp_path):
    made = run("phantom", "--out", "ph", "--image-size", "32", "--n-volumes", "3", "--n-slices", "6",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert len(list((tmp_path / "ph").glob("volume_*_slice_*.h5"))) == 18

    common = ("--data", "ph", "--model", "improved", "--quick", "--image-size", "32",
              "--base-filters", "4", "--batch-size", "4", "--val-fraction", "0.34",
              "--test-fraction", "0", "--threshold", "0.3")
    trained = run("train", *common, "--epochs", "1", "--out", "run", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "2 volumes" in trained.stdout and "from 1 volume (0 test volumes" in trained.stdout
    assert re.search(r"^best\.pt holds epoch 1: mean validation Dice over WT, TC and ET "
                     r"\d\.\d{3}$", trained.stdout, re.M)
    assert trained.stdout.rstrip().endswith(f"every epoch's losses and scores: "
                                            f"{Path('run') / 'history.csv'}")
    header = next(line for line in trained.stdout.splitlines() if line.split()[:1] == ["NCR/NET"])
    assert header.split() == ["NCR/NET", "ED", "ET", "WT", "TC"]
    assert len(dice_row(trained.stdout)) == 5
    split = json.loads((tmp_path / "run" / "run.json").read_text())
    assert not set(split["train_volumes"]) & set(split["val_volumes"])

    scored = run("evaluate", "--checkpoint", "run/last.pt", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert re.search(r"on 6 slices", scored.stdout)
    assert "(threshold 0.3)" in scored.stdout  # the run's own threshold, as in training
    assert dice_row(scored.stdout) == pytest.approx(dice_row(trained.stdout), abs=1e-3)

    # other data is scored at the size the model learnt at, not at its own
    run("phantom", "--out", "big", "--image-size", "48", "--n-volumes", "2", "--n-slices", "2",
        cwd=tmp_path)
    elsewhere = run("evaluate", "--checkpoint", "run/best.pt", "--data", "big", cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert ("every volume (predicted at 32×32, scored on their own grid) of big"
            in elsewhere.stdout)
    # data that moved: its held-out volumes in the new place, as scored in training
    shutil.copytree(tmp_path / "ph", tmp_path / "moved")
    moved = run("evaluate", "--checkpoint", "run/last.pt", "--data", "moved", "--split", "val",
                cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert re.search(r"the val volumes \[\d+\] \(predicted at 32×32, scored on their own "
                     r"grid\) of moved", moved.stdout)
    assert dice_row(moved.stdout) == pytest.approx(dice_row(trained.stdout), abs=1e-3)
    # a --csv that cannot be written is refused before the scoring, not after it
    refused = run("evaluate", "--checkpoint", "run/best.pt", "--csv", "nowhere/p.csv",
                  cwd=tmp_path)
    assert refused.returncode == 2 and "nowhere" in refused.stderr
    assert "per patient" not in refused.stdout
    # nor does it write over a file it did not write: a checkpoint stays a checkpoint
    kept = (tmp_path / "run" / "best.pt").read_bytes()
    refused = run("evaluate", "--checkpoint", "run/best.pt", "--csv", "run/best.pt",
                  cwd=tmp_path)
    assert refused.returncode == 2 and "not a table written by unet-lib evaluate" in refused.stderr
    assert (tmp_path / "run" / "best.pt").read_bytes() == kept
    # its own table it may replace; scoring the run's own folder says training volumes count
    for _ in range(2):
        own = run("evaluate", "--checkpoint", "run/best.pt", "--data", "ph", "--csv", "p.csv",
                  cwd=tmp_path)
        assert own.returncode == 0, own.stderr
    assert "its training volumes too (--split test" in own.stderr
    assert (tmp_path / "p.csv").read_text().startswith("volume,slices,")
    # a folder where nothing can be read scores nothing, and says so, rather than Dice 1
    shutil.copytree(tmp_path / "ph", tmp_path / "broken")
    for h5 in (tmp_path / "broken").glob("*.h5"):
        h5.write_bytes(b"not an h5 file")
    broken = run("evaluate", "--checkpoint", "run/best.pt", "--data", "broken", cwd=tmp_path)
    assert broken.returncode == 2 and "nothing was scored" in broken.stderr, broken.stderr
    assert "1.000" not in broken.stdout
    # a run resumes on its data moved elsewhere, and not on other data: fewer volumes, or
    # the same volume numbers holding other slices
    run("phantom", "--out", "lookalike", "--image-size", "32", "--n-volumes", "3",
        "--n-slices", "4", cwd=tmp_path)
    for other_data in ("big", "lookalike"):
        other = run("train", "--out", "run", "--resume", "--epochs", "2", "--data", other_data,
                    cwd=tmp_path)
        assert other.returncode == 2 and "not the run's data moved" in other.stderr, other.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data_root"] == str(
        (tmp_path / "ph").resolve())
    resumed = run("train", "--out", "run", "--resume", "--epochs", "2", "--data", "moved",
                  cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["data_root"] == str((tmp_path / "moved").resolve())


def test_bad_data_folder_is_a_one_line_error_not_a_traceback(tmp_path):
    result = run("train", "--data", "missing", "--quick", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: missing: no such data folder" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "afile").write_text("")
    result = run("train", "--quick", "--out", "afile", cwd=tmp_path)
    assert result.returncode == 2 and "error: afile: is a file; --out takes" in result.stderr
    # the phantom's options mean nothing beside --data: said, not silently ignored
    (tmp_path / "mine").mkdir()
    result = run("train", "--data", "mine", "--n-volumes", "2", "--quick", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --n-volumes: shapes the phantom, which --data")


def test_a_phantom_too_small_for_the_split_is_refused_before_it_is_made(tmp_path):
    # the default split holds out a test volume, so it needs three
    result = run("train", "--quick", "--n-volumes", "2", "--out", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --n-volumes: must be at least 3, got 2")
    assert "test volume" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


def test_bench_refuses_bad_arguments_by_name_before_it_measures_anything(tmp_path):
    (tmp_path / "notes.md").write_text("my notes\n")
    cases = {("--steps", "0"): "--steps: must be at least 1",
             ("--repeats", "-1"): "--repeats: must be at least 1",
             ("--batch-size", "0"): "--batch-size: must be a whole number of at least 1",
             ("--image-size", "7"): "--image-size: must be at least 16",
             ("--fit", "--fit-volumes", "1"): "--fit-volumes: must be at least 2",
             ("--fit", "--models", "improved-nchw-depthwise"): "--models: --fit trains",
             ("--models", "classic", "improved-nhwc"): "--models: unknown model 'improved-nhwc'",
             ("--out", "notes.md"): "--out: notes.md exists and is not a table written by",
             ("--out", "notes"): "--out: notes.md exists and is not a table written by",
             ("--out", "mine.md"): "--out: mine.json exists and is not a table written by",
             ("--fit", "--out", "run.md"): "--out: run-fit.json exists and is not a table"}
    (tmp_path / "mine.json").write_text("my numbers\n")
    (tmp_path / "run-fit.json").write_text("my fit numbers\n")
    if not torch.cuda.is_available():
        cases[("--device", "cuda")] = "--device: 'cuda': no CUDA GPU is available here"
    for options, expected in cases.items():
        result = run("bench", "--image-size", "32", *options, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {expected}"), (
            options, result.stderr[-500:])
        assert "Traceback" not in result.stderr and not result.stdout, options
    assert (tmp_path / "notes.md").read_text() == "my notes\n"
    assert (tmp_path / "mine.json").read_text() == "my numbers\n"


def test_a_negative_seed_is_refused_by_name_and_leaves_no_folder_behind(tmp_path):
    result = run("phantom", "--out", "ph", "--seed", "-3", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --seed: must be a whole number of at least 0")
    assert not (tmp_path / "ph").exists()  # no marker left to refuse the next phantom


@pytest.mark.parametrize("option, value, said", [
    ("--lr", "-1e-3", "error: --lr: must be a positive number, got -0.001"),
    ("--pos-weight", "-1,2,3", "error: --pos-weight: weights must be positive numbers"),
    ("--weight-decay", "-1e-2", "error: --weight-decay: must be 0 or more"),
])
def test_a_negative_number_reaches_the_option_s_own_check_not_argparse_s(option, value, said,
                                                                         capsys):
    from unet_lib import cli
    from unet_lib.cli import negative_numbers_attached

    # argparse alone takes "-1e-3" for an option: "argument --lr: expected one argument"
    assert cli.main(["train", "--quick", option, value]) == 2
    assert capsys.readouterr().err.startswith(said)
    assert negative_numbers_attached(["--out", "runs", "--lr", "-1e-3", "-h"]) == [
        "--out", "runs", "--lr=-1e-3", "-h"]
    assert negative_numbers_attached(["--resume", "--", "-1"]) == ["--resume", "--", "-1"]


def test_under_torchrun_a_process_other_than_rank_0_names_itself_in_its_error(
        tmp_path, monkeypatch, capsys):
    from unet_lib.cli import main

    monkeypatch.setenv("RANK", "3")
    assert main(["phantom", "--out", str(tmp_path / "ph"), "--seed", "-3"]) == 2
    assert capsys.readouterr().err.startswith("[rank 3] error: --seed: must be a whole")


def test_output_to_a_reader_that_left_ends_quietly_as_a_shell_pipe_does(tmp_path):
    # ``unet-lib … | head -1``: head exits; here the reader is gone before the first line
    command = subprocess.Popen([sys.executable, "-m", "unet_lib", "phantom", "--out", "ph",
                                "--image-size", "32", "--n-volumes", "2", "--n-slices", "2"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    command.stdout.close()
    errors = command.stderr.read().decode()
    assert command.wait() == 141 and errors == "", errors


def test_a_mistyped_option_is_one_error_line_not_the_usage_block(tmp_path):
    result = run("train", "--model", "resnet", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'resnet'" in result.stderr
    assert result.stderr.startswith("error: argument --model:")
    assert result.stderr.strip().endswith("see unet-lib train --help")
    assert len(result.stderr.strip().splitlines()) == 1
    # no command at all: the overview with its examples, not an error about COMMAND
    bare = run(cwd=tmp_path)
    assert bare.returncode == 2 and "unet-lib evaluate --checkpoint" in bare.stderr


def subcommands():
    import argparse

    from unet_lib.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action


def test_every_subcommand_and_option_has_a_plain_text_help_line():
    parser, action = subcommands()
    assert {choice.dest: bool(choice.help) for choice in action._choices_actions} == {
        name: True for name in action.choices}
    for name, sub in action.choices.items():
        for option in sub._actions:
            assert option.help, f"{name} {option.option_strings} has no help"
        text = sub.format_help()
        assert "``" not in text and ":class:" not in text and ":func:" not in text, name
    assert "``" not in parser.format_help()


def test_one_grammar_across_subcommands():
    import argparse

    _, action = subcommands()
    flags = {flag for sub in action.choices.values() for option in sub._actions
             for flag in option.option_strings}
    assert not flags & {"--size", "--batch", "--volumes", "--slices", "--no-amp-"}
    assert {"--image-size", "--batch-size"} <= flags
    for sub in action.choices.values():
        for option in sub._actions:
            if option.dest in ("amp", "channels_last", "compile", "peers"):
                assert isinstance(option, argparse.BooleanOptionalAction), option.dest


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_skipped_file_is_one_warning_line_naming_it(tmp_path, workers):
    assert run("phantom", "--out", "ph", "--image-size", "32", "--n-volumes", "3",
               "--n-slices", "4", cwd=tmp_path).returncode == 0
    (tmp_path / "ph" / "volume_1_slice_2.h5").write_text("not an HDF5 file")
    # read in this process, or by two worker processes over two epochs (each of which met the
    # file, and whose warnings went to the server's log in a notebook): one line either way
    trained = run("train", "--data", "ph", "--quick", "--image-size", "32", "--base-filters",
                  "4", "--batch-size", "4", "--epochs", "2", "--val-fraction", "0.34",
                  "--test-fraction", "0", "--resident-data", "off", "--num-workers", workers,
                  "--out", "run", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    warned = [line for line in trained.stderr.splitlines() if "volume_1_slice_2.h5" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: skipping "), warned
    assert "BadSampleWarning" not in trained.stderr and "warnings.warn" not in trained.stderr
    # the reason is given once, in the warning; the epoch line names the file only
    epoch_line = next(line for line in trained.stdout.splitlines() if line.startswith("epoch 1"))
    assert re.search(r"first ph/volume_1_slice_2\.h5 \(\d+ s\)$", epoch_line), epoch_line


def test_train_keeps_a_model_it_finds_in_its_folder_without_a_last_checkpoint(tmp_path, capsys):
    from unet_lib.cli import main

    out = tmp_path / "runs" / "mine"
    out.mkdir(parents=True)
    (out / "best.pt").write_bytes(b"a model trained elsewhere")
    assert main(["train", "--out", str(out), "--image-size", "32", "--base-filters", "4",
                 "--epochs", "1", "--n-volumes", "4", "--n-slices", "4"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {out}: already holds best.pt, which a new run would replace")
    assert (out / "best.pt").read_bytes() == b"a model trained elsewhere"
    assert sorted(p.name for p in out.iterdir()) == ["best.pt"]  # nothing made beside it


@pytest.mark.parametrize("command, hint", [("segment", "--missing-only"),
                                           ("reference", "run the same command to finish it")])
def test_ctrl_c_in_a_command_that_can_be_taken_up_again_says_how(command, hint, monkeypatch,
                                                                 capsys, tmp_path):
    from unet_lib import cli
    from unet_lib.cli import commands, scoring

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring if command == "segment" else commands, f"cmd_{command}",
                        interrupted)
    argv = {"segment": ["segment", "--checkpoint", str(tmp_path / "best.pt"), "--data",
                        str(tmp_path), "--out", str(tmp_path / "labels")],
            "reference": ["reference", "--out", str(tmp_path / "ref")]}[command]
    assert cli.main(argv) == commands.INTERRUPTED
    error = capsys.readouterr().err
    assert error.startswith("\ninterrupted: ") and hint in error


@pytest.mark.parametrize("stop", [ValueError("no usable slice"), KeyboardInterrupt()])
def test_a_run_that_fails_or_is_stopped_before_its_first_epoch_leaves_no_folder(
        stop, tmp_path, monkeypatch, capsys):
    from unet_lib.cli import commands, main

    def stopped(run, **kwargs):
        run.save()  # as train_run does before it opens the data
        raise stop

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "train_run", stopped)
    argv = ["train", "--out", "runs/new", "--quick", "--image-size", "32", "--base-filters", "4",
            "--n-volumes", "4", "--n-slices", "4", "--epochs", "1", "--test-fraction", "0.25"]
    assert main(argv) == (commands.INTERRUPTED if isinstance(stop, KeyboardInterrupt) else 2)
    assert not (tmp_path / "runs" / "new").exists()
    # a folder that was there before is left as it was, with what it held
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "notes.txt").write_text("mine")
    main(argv[:2] + ["runs/mine"] + argv[3:])
    assert sorted(p.name for p in (tmp_path / "runs" / "mine").iterdir()) == [
        ".lock", "notes.txt", "run.json"]
    capsys.readouterr()


def test_bench_fit_makes_one_phantom_for_all_its_models(tmp_path):
    result = run("bench", "--fit", "--models", "classic", "attention", "--image-size", "32",
                 "--fit-volumes", "3", "--fit-slices", "4", "--device", "cpu",
                 "--batch-size", "2", "--steps", "1", "--repeats", "1", "--no-peers",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-800:]
    assert result.stdout.count("making a 3-volume phantom") == 1, result.stdout
    fit_rows = [line for line in result.stdout.splitlines() if line.startswith("| ")
                and "| cpu |" in line]
    assert [row.split("|")[1].strip() for row in fit_rows] == ["classic", "attention"]


def test_an_option_a_subcommand_lacks_points_at_that_subcommand_s_help(capsys):
    from unet_lib.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", "--checkpoint", "best.pt", "--image-size", "96"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == ("error: unrecognized arguments: --image-size 96; see "
                                       "unet-lib evaluate --help\n")
