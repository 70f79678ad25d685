"""Holding up: bad files are skipped and reported, an interrupted run resumes to the same
result, out-of-memory and bad arguments give clear messages, any valid size works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unet_lib.checkpoint import read_checkpoint
from unet_lib.data import BadSampleWarning, BraTSSlices, make_phantom
from unet_lib.models import build_model
from unet_lib.train import OutOfMemory, TrainConfig, evaluate, fit


def test_a_bad_file_among_many_is_skipped_counted_and_named(tmp_path):
    root = make_phantom(tmp_path / "ph", n_volumes=2, image_size=32, n_slices=8)
    bad = root / "volume_1_slice_3.h5"
    bad.write_bytes(bad.read_bytes()[:300])  # a truncated transfer
    data = BraTSSlices(root, volumes=[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(build_model("classic", base_filters=4), data, BraTSSlices(root, [2]),
                      TrainConfig.quick(epochs=2, batch_size=4, tumour_share=None),
                      progress=False)
    assert len(history) == 2
    for record in history.records:
        assert len(record["skipped"]) == 1 and record["skipped"][0].startswith(str(bad))
        assert "cannot be read as HDF5" in record["skipped"][0]
    assert any(issubclass(w.category, BadSampleWarning) and str(bad) in str(w.message)
               for w in caught)


def test_evaluation_reports_skipped_files_and_scores_the_rest(tmp_path):
    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=6)
    (root / "volume_1_slice_2.h5").write_text("not an HDF5 file")
    with pytest.warns(BadSampleWarning):
        result = evaluate(build_model("classic", base_filters=4), BraTSSlices(root),
                          batch_size=4, device="cpu")
    assert len(result["skipped"]) == 1 and "volume_1_slice_2.h5" in result["skipped"][0]
    assert set(result["dice"]) == {"NCR/NET", "ED", "ET", "WT", "TC"}


def test_predicting_refuses_a_bad_file_rather_than_shift_later_slices_onto_its_place(tmp_path):
    from unet_lib.data import BraTSDataError
    from unet_lib.inference import predict

    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=3)
    (root / "volume_1_slice_1.h5").write_text("not an HDF5 file")
    with pytest.warns(BadSampleWarning), pytest.raises(
            BraTSDataError, match=r"volume_1_slice_1\.h5: cannot predict: cannot be read"):
        predict(build_model("classic", base_filters=4), BraTSSlices(root), batch_size=3,
                device="cpu")


def test_strict_mode_stops_at_the_bad_file(tmp_path):
    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=4)
    (root / "volume_1_slice_1.h5").write_text("x")
    with pytest.raises(ValueError, match=r"volume_1_slice_1.h5: cannot be read as HDF5"):
        BraTSSlices(root, on_error="raise")[1]
    with pytest.raises(ValueError, match="on_error must be 'skip' or 'raise'"):
        BraTSSlices(root, on_error="ignore")


def cli(*args):
    return [sys.executable, "-m", "unet_lib", *args]


#: ``python -c STOPPED EPOCH SIGNAL ARGS...``: the CLI, sending itself ``SIGNAL`` as epoch
#: ``EPOCH`` (from 0) starts, before its first step: a kill at a known point, whatever the
#: machine's speed (the checkpoint of the epoch before is written by then: on the CPU the
#: writes are not in the background)
STOPPED = """
import os, signal, sys
import unet_lib.train as train
from unet_lib.cli import main

stop_at, stop_with, train_epoch = int(sys.argv[1]), int(sys.argv[2]), train._train_epoch

def stopping(steps, epoch, *args, **kwargs):
    if epoch == stop_at:
        os.kill(os.getpid(), stop_with)
    return train_epoch(steps, epoch, *args, **kwargs)

train._train_epoch = stopping
sys.exit(main(sys.argv[3:]))
"""


#: the CLI on the CPU, where checkpoints are written before the next epoch starts (on a GPU a
#: thread writes them while it trains)
ON_THE_CPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def stopped(epoch: int, sent: signal.Signals, *args) -> list[str]:
    """The command line of the CLI that receives ``sent`` as epoch ``epoch`` starts."""
    return [sys.executable, "-c", STOPPED, str(epoch), str(int(sent)), *args]


TRAIN = ("train", "--data", "ph", "--model", "classic", "--quick", "--image-size", "48",
         "--base-filters", "8", "--batch-size", "2", "--epochs", "10", "--val-fraction", "0.34")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_training_process_resumes_to_the_same_weights_and_history(tmp_path):
    make_phantom(tmp_path / "ph", n_volumes=3, image_size=48, n_slices=12, seed=1)
    env = {**ON_THE_CPU, "OMP_NUM_THREADS": "1"}  # the same arithmetic in every process

    straight = subprocess.run(cli(*TRAIN, "--out", "straight"), cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr

    killed = subprocess.run(stopped(4, signal.SIGKILL, *TRAIN, "--out", "killed"),
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    last = tmp_path / "killed" / "last.pt"
    assert read_checkpoint(last)["epoch"] == 4  # killed as its fifth epoch started

    resumed = subprocess.run(cli(*TRAIN, "--out", "killed", "--resume"),
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = read_checkpoint(tmp_path / "straight" / "last.pt"), read_checkpoint(last)
    assert a["epoch"] == b["epoch"] == 10
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert [r["val"] for r in a["history"]] == [r["val"] for r in b["history"]]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_terminated_training_says_where_its_checkpoint_is_as_ctrl_c_does(tmp_path):
    make_phantom(tmp_path / "ph", n_volumes=3, image_size=48, n_slices=12, seed=1)
    # as a cluster's scheduler ends a job, here in the second epoch
    ended = subprocess.run(stopped(1, signal.SIGTERM, *TRAIN, "--out", "ended"), cwd=tmp_path,
                           env=ON_THE_CPU, capture_output=True, text=True, timeout=300)
    assert ended.returncode == 130, ended.stderr
    assert "interrupted: the last checkpoint is" in ended.stderr and "--resume" in ended.stderr
    assert read_checkpoint(tmp_path / "ended" / "last.pt")["epoch"] == 1


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_stopped_before_its_first_epoch_a_run_says_to_start_again_not_to_resume(tmp_path):
    make_phantom(tmp_path / "ph", n_volumes=3, image_size=48, n_slices=12, seed=1)
    early = subprocess.run(stopped(0, signal.SIGTERM, *TRAIN, "--out", "early"), cwd=tmp_path,
                           env=ON_THE_CPU, capture_output=True, text=True, timeout=300)
    # stopped as its first epoch started: nothing trained, so no run folder is left behind
    assert not (tmp_path / "early").exists()
    assert early.returncode == 130, early.stderr
    assert "no epoch had finished" in early.stderr and "without --resume" in early.stderr
    again = subprocess.run(cli(*TRAIN, "--epochs", "1", "--out", "early"), cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)  # as the message says
    assert again.returncode == 0, again.stderr


OUT_OF_MEMORY = {  # as each GPU says it
    "cuda": lambda: torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 79.11 "
        "GiB"),
    "mps": lambda: RuntimeError(
        "MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.00 MB, max "
        "allowed: 18.13 GB). Tried to allocate 2.50 GB on private pool. Use "
        "PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to disable upper limit for memory allocations "
        "(may cause system failure).")}


@pytest.mark.parametrize("gpu", ["cuda", "mps"])
def test_out_of_memory_names_the_batch_size_and_what_to_do(tmp_path, monkeypatch, gpu):
    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=4)
    model = build_model("classic", base_filters=4)

    def exhausted(*args, **kwargs):
        raise OUT_OF_MEMORY[gpu]()

    monkeypatch.setattr(model, "forward", exhausted)
    with pytest.raises(OutOfMemory, match=r"batch size 32 .*allocating 2.50 Gi?B.*e\.g\. to 16"
                       r".*restart the kernel"):
        fit(model, BraTSSlices(root), None, TrainConfig(epochs=1, image_size=32),
            progress=False)


@pytest.mark.parametrize("gpu", ["cuda", "mps"])
def test_out_of_memory_in_a_compiled_model_is_not_taken_for_a_compiler_failure(tmp_path,
                                                                               monkeypatch, gpu):
    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=4)

    def compiled_that_runs_out_of_memory(model, **options):
        def exhausted(*args, **kwargs):
            raise OUT_OF_MEMORY[gpu]()
        return exhausted

    monkeypatch.setattr(torch, "compile", compiled_that_runs_out_of_memory)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "torch.compile failed; training without it"
        with pytest.raises(OutOfMemory, match=r"batch size 32 .*allocating 2.50 Gi?B"):
            fit(build_model("classic", base_filters=4), BraTSSlices(root), None,
                TrainConfig(epochs=1, image_size=32, compile=True), progress=False)


def test_out_of_memory_in_the_optimizers_first_step_names_the_batch_size(tmp_path,
                                                                         monkeypatch):
    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=4)

    def exhausted(self, *args, **kwargs):  # AdamW's moments are made at the first step
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB.")

    monkeypatch.setattr(torch.optim.AdamW, "step", exhausted)
    with pytest.raises(OutOfMemory, match=r"batch size 32 .*allocating 1.00 GiB"):
        fit(build_model("classic", base_filters=4), BraTSSlices(root), None,
            TrainConfig(epochs=1, image_size=32), progress=False)


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(["classic", "improved", "attention"]),
       height=st.integers(16, 80), width=st.integers(16, 80), batch=st.integers(1, 2))
def test_any_valid_size_in_gives_the_same_size_out(name, height, width, batch):
    model = build_model(name, base_filters=2).eval()
    with torch.no_grad():
        assert model(torch.randn(batch, 4, height, width)).shape == (batch, 3, height, width)


@pytest.mark.parametrize("size", [0, 8, 15])
def test_sizes_below_16_are_refused_clearly(size):
    with pytest.raises(ValueError, match="at least 16×16"):
        build_model("attention", base_filters=2)(torch.zeros(1, 4, size, 32))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_files_written_whole_get_an_ordinary_files_permissions_not_owner_only(tmp_path):
    from unet_lib.checkpoint import save_checkpoint
    from unet_lib.models import build_model
    from unet_lib.runfolder import write_text_atomic

    umask = os.umask(0o022)
    os.umask(umask)
    ordinary = 0o666 & ~umask  # what open() gives a new file; mkstemp alone gives 0o600
    save_checkpoint(tmp_path / "last.pt", build_model("classic", base_filters=4), epoch=1)
    write_text_atomic(tmp_path / "run.json", "{}")
    for name in ("last.pt", "run.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == ordinary, name


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_the_locks_of_a_shared_course_home_follow_the_umask_so_a_classmate_can_take_them(
        tmp_path):
    """In a course home a whole lab shares (umask 002, one group), a run folder or a phantom
    one student locked must be lockable by the next: its lock file writable by the group."""
    from unet_lib.runfolder import LOCK_NAME, claim, exclusively

    umask = os.umask(0o002)
    try:
        with claim(tmp_path / "run"):
            pass
        with exclusively(tmp_path / "phantom.lock"):
            pass
    finally:
        os.umask(umask)
    for lock in (tmp_path / "run" / LOCK_NAME, tmp_path / "phantom.lock"):
        assert lock.stat().st_mode & 0o777 == 0o664, lock


def test_best_pt_after_a_kill_between_the_two_writes_is_restored_or_said_to_be_ahead(tmp_path):
    """A kill between writing ``best.pt`` and ``last.pt`` (best first) leaves either a
    ``best.pt`` one epoch ahead of ``last.pt``, or, where the write of ``best.pt`` itself was
    lost, none for the epoch ``last.pt`` names as best."""
    from unet_lib.checkpoint import save_checkpoint
    from unet_lib.resume import restore_best

    model = build_model("classic", base_filters=4)
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    said = []
    save_checkpoint(last, model, epoch=3, best_epoch=3)
    restore_best(last, 3, 3, said.append)  # best.pt of epoch 3 lost
    assert read_checkpoint(best)["epoch"] == 3 and "restored" in said[-1]

    save_checkpoint(last, model, epoch=3, best_epoch=2)
    save_checkpoint(best, model, epoch=4)  # epoch 4 was best; the kill came before last.pt
    restore_best(last, 2, 3, said.append)
    assert read_checkpoint(best)["epoch"] == 4  # left: the resumed run replays epoch 4
    assert "holds epoch 4" in said[-1] and "trains epoch 4 again" in said[-1]
    assert len(said) == 2
