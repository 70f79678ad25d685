"""The unet-lib command line, end to end on a tiny phantom, in a subprocess."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest


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
    assert "2 volumes" in trained.stdout and "1 volumes" in trained.stdout
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


def test_bad_data_folder_is_a_one_line_error_not_a_traceback(tmp_path):
    result = run("train", "--data", "missing", "--quick", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: missing: no such data folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_phantom_too_small_for_the_split_is_refused_before_it_is_made(tmp_path):
    # the default split holds out a test volume, so it needs three
    result = run("train", "--quick", "--n-volumes", "2", "--out", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --n-volumes: must be at least 3, got 2")
    assert "test volume" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


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


def test_a_skipped_file_is_one_warning_line_naming_it(tmp_path):
    assert run("phantom", "--out", "ph", "--image-size", "32", "--n-volumes", "3",
               "--n-slices", "4", cwd=tmp_path).returncode == 0
    (tmp_path / "ph" / "volume_1_slice_2.h5").write_text("not an HDF5 file")
    trained = run("train", "--data", "ph", "--quick", "--image-size", "32", "--base-filters",
                  "4", "--batch-size", "4", "--epochs", "1", "--val-fraction", "0.34",
                  "--test-fraction", "0", "--resident-data", "off", "--out", "run",
                  cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    warned = [line for line in trained.stderr.splitlines() if "volume_1_slice_2.h5" in line]
    assert warned and all(line.startswith("warning: skipping ") for line in warned), warned
    assert "BadSampleWarning" not in trained.stderr and "warnings.warn" not in trained.stderr
    # the reason is given once, in the warning; the epoch line names the file only
    epoch_line = next(line for line in trained.stdout.splitlines() if line.startswith("epoch 1"))
    assert re.search(r"first ph/volume_1_slice_2\.h5 \(\d+ s\)$", epoch_line), epoch_line
