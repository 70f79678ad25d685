"""Trust: a checkpoint runs no code when opened, a failed pack corrupts nothing, a resumed run
keeps its data, one run per folder, and every failure of the CLI is one clear line."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from unet_lib import cli
from unet_lib.checkpoint import (CheckpointError, CheckpointWriteError, load_model,
                                 read_checkpoint, save_checkpoint)
from unet_course import CourseSetup
from unet_lib.data import (BadSampleWarning, BraTSDataError, BraTSSlices, PackedSlices,
                           make_phantom, pack, pack_folder, write_slice)
from unet_lib.models import build_model
from unet_lib.runfolder import claim
from unet_lib.train import ConfigError, TrainConfig, fit


class RunsAShellCommand:
    """What a hostile checkpoint holds: unpickling it calls ``os.system``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that looks right in every field, with code that runs when it loads."""
    good = build_model("classic", base_filters=4)
    save_checkpoint(path, good)
    payload = torch.load(path, weights_only=True)
    payload["history"] = [RunsAShellCommand(marker)]
    torch.save(payload, path)
    return path


@pytest.fixture
def tiny_phantom(tmp_path):
    return make_phantom(tmp_path / "ph", n_volumes=3, image_size=32, n_slices=6, seed=0)


def main(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_the_payload_really_runs_code_when_loaded_unsafely(tmp_path):
    """Guards the test below: the file is truly malicious."""
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_malicious_checkpoint_runs_no_code_through_any_entry_point(tmp_path, tiny_phantom,
                                                                     capsys):
    marker = tmp_path / "pwned"
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker)
    refused = r"evil.pt: refused: it holds Python objects \(posix.system\)"

    with pytest.raises(CheckpointError, match=refused):
        read_checkpoint(evil)
    with pytest.raises(CheckpointError, match=refused):
        load_model(evil)

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(evil.read_bytes())
    data = BraTSSlices(tiny_phantom, [1])
    with pytest.raises(CheckpointError, match="last.pt: refused"):
        fit(build_model("classic", base_filters=4), data, None,
            TrainConfig.quick(epochs=2, image_size=32, base_filters=4), checkpoint_dir=run,
            resume=True, progress=False)

    assert main("evaluate", "--checkpoint", evil, "--data", tiny_phantom) == 2
    assert "refused" in capsys.readouterr().err
    from unet_lib.recipe import RunRecipe
    from unet_lib.run import PreparedRun

    PreparedRun(RunRecipe.for_scale("quick", data=tiny_phantom, image_size=32), run,
                tiny_phantom, [1, 2], [3]).save()
    assert main("train", "--out", run, "--resume") == 2
    assert "last.pt: refused" in capsys.readouterr().err

    from unet_lib.recipe import RunRecipe

    recipe = RunRecipe.for_scale("quick", data=tiny_phantom, image_size=32, base_filters=4,
                                 epochs=1)
    setup = CourseSetup("quick", recipe, tiny_phantom, True, [1], [2], [3], tmp_path / "home")
    cached = setup.run_dir("classic") / "last.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(evil.read_bytes())
    with pytest.raises(CheckpointError, match="refused.*retrain=True"):
        setup.trained("classic", progress=False)

    assert not marker.exists(), "loading ran the code in the checkpoint"


def test_an_old_format_checkpoint_opens_only_when_trusted(tmp_path):
    model = build_model("classic", base_filters=4)
    path = tmp_path / "old.pt"
    torch.save({"format": "unet_lib-checkpoint-1", "model_class": "ClassicUNet",
                "hparams": dict(model.hparams), "model_state": model.state_dict(),
                "rng": {"numpy": np.random.get_state()}}, path)
    with pytest.raises(CheckpointError, match="trust_checkpoint=True"):
        load_model(path)
    loaded = load_model(path, trust_checkpoint=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values()))


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.pop("model_state"), "malformed checkpoint: no 'model_state'"),
    (lambda p: p["hparams"].update(colour=9), "hparams .* do not build a U-Net"),
    (lambda p: p["model_state"].update(
        {k: torch.zeros(1) for k in list(p["model_state"])[:1]}), "weights do not fit"),
])
def test_a_malformed_checkpoint_is_one_line_naming_the_file(tmp_path, capsys, damage, message):
    path = tmp_path / "bad.pt"
    save_checkpoint(path, build_model("classic", base_filters=4))
    payload = torch.load(path, weights_only=True)
    damage(payload)
    torch.save(payload, path)
    assert main("evaluate", "--checkpoint", path, "--data", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}")
    assert re.search(message, err), err


def packed_copy(tiny_phantom, out):
    pack(BraTSSlices(tiny_phantom), out, progress=False)
    return {name: (out / name).read_bytes() for name in ("images.npy", "masks.npy",
                                                          "index.npy", "packed.json")}


class FailsHalfway(torch.utils.data.Dataset):
    """A source that crashes after ``after`` samples, as a bad file or a bug would."""

    def __init__(self, source, after: int):
        self.source, self.after, self.slices, self.root = source, after, source.slices, "src"

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        if index >= self.after:
            raise RuntimeError("crash in the middle of packing")
        return self.source[index]


def test_a_failed_repack_leaves_the_previous_pack_as_it_was(tiny_phantom, tmp_path):
    out = tmp_path / "packed"
    before = packed_copy(tiny_phantom, out)
    with pytest.raises(RuntimeError, match="crash"):
        pack(FailsHalfway(BraTSSlices(tiny_phantom), after=5), out, progress=False)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not list(tmp_path.glob(".packed.*")), "the temporary pack was not removed"
    assert len(PackedSlices(out)) == 18


@pytest.mark.slow
def test_a_killed_repack_leaves_the_previous_pack_readable(tiny_phantom, tmp_path):
    out = tmp_path / "packed"
    before = packed_copy(tiny_phantom, out)
    script = (
        "import sys, time\n"
        "from unet_lib.data import BraTSSlices, pack\n"
        "class Slow(BraTSSlices):\n"
        "    def __getitem__(self, i):\n"
        "        time.sleep(0.2)\n"
        "        return super().__getitem__(i)\n"
        "pack(Slow(sys.argv[1]), sys.argv[2], progress=False)\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(tiny_phantom), str(out)])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".packed.packing-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few slices into the new pack
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".packed.packing-*")), "the pack finished before the kill"
    assert {name: (out / name).read_bytes() for name in before} == before
    assert len(PackedSlices(out)) == 18
    pack(BraTSSlices(tiny_phantom), out, progress=False)  # the next pack clears the debris
    assert not list(tmp_path.glob(".packed.packing-*"))


def _edit_manifest(out, **changes):
    meta = json.loads((out / "packed.json").read_text())
    (out / "packed.json").write_text(json.dumps({**meta, **changes}))


@pytest.mark.parametrize("damage, culprit", [
    (lambda out: (out / "images.npy").write_bytes(b""), "images.npy"),
    (lambda out: (out / "masks.npy").write_bytes((out / "masks.npy").read_bytes()[:-100]),
     "masks.npy"),
    (lambda out: (out / "packed.json").write_text("{not json"), "packed.json"),
    (lambda out: np.save(out / "index.npy", np.array([[1, 0, 99]], np.int32)), "index.npy"),
    # a manifest that reads as JSON but is not a pack's: was a bare KeyError 'height'
    (lambda out: (out / "packed.json").write_text('{"files": {}}'),
     "packed.json: lacks 'height'"),
    (lambda out: _edit_manifest(out, files=[]), "packed.json: lacks 'files' or holds a wrong"),
    (lambda out: _edit_manifest(out, files={"images.npy": "big"}), "packed.json: lacks 'files'"),
    (lambda out: _edit_manifest(out, width="96"), "packed.json: lacks 'width' or holds a wrong"),
    (lambda out: _edit_manifest(out, height=0), "packed.json: lacks 'height' or holds a wrong"),
    (lambda out: _edit_manifest(out, case_ids={"1": 5}),
     "packed.json: lacks 'case_ids' or holds a wrong one"),
    (lambda out: _edit_manifest(out, extents_mm={"1": [155, 240]}),
     "packed.json: lacks 'extents_mm' or holds a wrong one"),
    (lambda out: _edit_manifest(out, format="unet_lib-packed-3"),
     "packed.json: is a pack of format 'unet_lib-packed-3'"),
])
def test_a_pack_that_does_not_match_its_manifest_is_refused_naming_the_file(
        tiny_phantom, tmp_path, capsys, damage, culprit):
    out = tmp_path / "packed"
    packed_copy(tiny_phantom, out)
    damage(out)
    with pytest.raises(BraTSDataError, match=culprit):
        PackedSlices(out)
    assert main("train", "--data", out, "--out", tmp_path / "run", "--quick") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and culprit in err


def test_an_index_out_of_range_is_refused_even_without_a_checksum(tiny_phantom, tmp_path):
    out = tmp_path / "packed"
    packed_copy(tiny_phantom, out)
    meta = json.loads((out / "packed.json").read_text())
    del meta["index_sha256"], meta["files"]  # as an older pack's manifest
    (out / "packed.json").write_text(json.dumps(meta))
    np.save(out / "index.npy", np.array([[1, 0, 99]], np.int32))
    with pytest.raises(BraTSDataError, match=r"index.npy: has rows outside 0..17"):
        PackedSlices(out)


def test_pixels_too_large_for_float16_are_skipped_and_listed_not_packed_as_inf(tiny_phantom,
                                                                               tmp_path):
    bad = tiny_phantom / "volume_2_slice_3.h5"
    image = np.zeros((32, 32, 4))
    image[5, 5, 0] = 1e30
    write_slice(bad, image, np.zeros((32, 32, 3)))
    pack(BraTSSlices(tiny_phantom), tmp_path / "packed", progress=False)
    meta = json.loads((tmp_path / "packed" / "packed.json").read_text())
    assert meta["slices"] == 17 and meta["skipped_slices"] == 1
    assert "volume_2_slice_3.h5: pixel values up to 1e+30 do not fit float16" in meta["skipped"][0]
    data = PackedSlices(tmp_path / "packed")
    assert all(torch.isfinite(data[i][0]).all() for i in range(len(data)))


def test_the_packed_reader_skips_a_row_with_non_finite_values(tiny_phantom, tmp_path):
    out = tmp_path / "packed"
    packed_copy(tiny_phantom, out)
    images = np.load(out / "images.npy", mmap_mode="r+")
    images[4, 1, 0, 0] = np.inf  # damage that keeps the file's size
    images.flush()
    del images
    data = PackedSlices(out)
    with pytest.warns(BadSampleWarning, match=r"images.npy: row 4 .*NaN or infinite"):
        assert str(data[4]).endswith("has NaN or infinite values")
    with pytest.raises(BraTSDataError, match="row 4"):
        PackedSlices(out, on_error="raise")[4]


def test_pack_skips_slices_of_another_size_and_refuses_when_nothing_is_usable(tiny_phantom,
                                                                              tmp_path):
    write_slice(tiny_phantom / "volume_3_slice_2.h5", np.zeros((40, 40, 4)),
                np.zeros((40, 40, 3)))
    pack(BraTSSlices(tiny_phantom), tmp_path / "packed", progress=False)
    meta = json.loads((tmp_path / "packed" / "packed.json").read_text())
    assert meta["slices"] == 17 and "size 40×40 differs from the pack's 32×32" in meta["skipped"][0]

    broken = tmp_path / "broken"
    broken.mkdir()
    for index in range(3):
        (broken / f"volume_1_slice_{index}.h5").write_text("not HDF5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadSampleWarning)
        with pytest.raises(BraTSDataError, match="nothing to pack: all 3 slice"):
            pack_folder(broken, tmp_path / "out", progress=False)


def test_pack_refuses_a_folder_that_holds_other_files(tiny_phantom, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a packed folder"):
        pack(BraTSSlices(tiny_phantom), out, progress=False)
    assert (out / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("dtype", ["S5", [("a", "f8"), ("b", "i4")]])
def test_an_h5_image_of_strings_or_records_is_skipped_naming_the_file(tiny_phantom, dtype):
    import h5py

    path = tiny_phantom / "volume_1_slice_2.h5"
    with h5py.File(path, "w") as f:
        f["image"] = np.zeros((32, 32, 4), dtype=dtype)
        f["mask"] = np.zeros((32, 32, 3), np.uint8)
    with pytest.warns(BadSampleWarning, match=r"volume_1_slice_2.h5: image has dtype"):
        assert "expected numbers" in str(BraTSSlices(tiny_phantom, [1])[2])


def nifti_case(root: Path, number: int, seg=None, shape=(32, 32, 6)) -> Path:
    import nibabel as nib

    case = root / f"BraTS20_Training_{number:03d}"
    case.mkdir(parents=True)
    rng = np.random.default_rng(number)
    for key in ("flair", "t1", "t1ce", "t2"):
        nib.save(nib.Nifti1Image(rng.random(shape).astype(np.float32), np.eye(4)),
                 case / f"{case.name}_{key}.nii")
    seg_path = case / f"{case.name}_seg.nii"
    if seg is None:
        nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)), seg_path)
    else:
        seg(seg_path)
    return case


@pytest.mark.parametrize("seg, problem", [
    (lambda p: p.write_bytes(b""), "cannot be read as NIfTI"),
    (lambda p: p.write_text("garbage" * 100), "cannot be read as NIfTI"),
    (lambda p: __import__("nibabel").save(__import__("nibabel").Nifti1Image(
        np.zeros((32, 32), np.uint8), np.eye(4)), p), r"has shape \(32, 32\), expected a 3-D"),
    (lambda p: __import__("nibabel").save(__import__("nibabel").Nifti1Image(
        np.zeros((32, 32, 6, 2), np.uint8), np.eye(4)), p), r"has shape \(32, 32, 6, 2\), expected"),
])
def test_a_nifti_case_whose_seg_is_unusable_is_skipped_and_named(tmp_path, seg, problem):
    from unet_lib.data import BraTSNifti

    nifti_case(tmp_path, 1)
    nifti_case(tmp_path, 2, seg=seg)
    with pytest.warns(BadSampleWarning, match=f"BraTS20_Training_002_seg.nii: {problem}"):
        data = BraTSNifti(tmp_path)
    assert data.volumes == [1] and len(data) == 6
    assert "BraTS20_Training_002_seg.nii" in data.skipped[0]
    with pytest.raises(BraTSDataError, match=problem):
        BraTSNifti(tmp_path, on_error="raise")


def test_evaluate_lists_a_nifti_case_left_out_whole_when_the_data_were_opened(tmp_path, capsys):
    nifti_case(tmp_path / "data", 1)
    nifti_case(tmp_path / "data", 2, seg=lambda p: p.write_bytes(b""))
    save_checkpoint(tmp_path / "model.pt", build_model("classic", base_filters=4))
    with pytest.warns(BadSampleWarning):
        assert main("evaluate", "--checkpoint", tmp_path / "model.pt", "--data",
                    tmp_path / "data") == 0
    out = capsys.readouterr().out
    assert "on 6 slices of every volume" in out  # case 1's; case 2 never had slices to count
    listed = out.split("left out 1 unusable case(s) whole:\n", 1)[1].splitlines()[0]
    assert "BraTS20_Training_002_seg.nii: cannot be read as NIfTI" in listed


def train_args(phantom, out, *extra):
    return ("train", "--data", phantom, "--model", "classic", "--quick", "--image-size", "32",
            "--base-filters", "4", "--batch-size", "4", "--val-fraction", "0.34", "--out", out,
            *extra)


def test_resume_applies_a_new_learning_rate_and_records_it(tiny_phantom, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 0
    assert main("train", "--out", out, "--resume", "--epochs", "2", "--lr", "1e-6") == 0
    said = capsys.readouterr().out
    # the next epoch's rate: 1e-6 instead of the 2e-3 · 0.9 that one epoch's decay scheduled
    assert ("lr 0.002 → 1e-06 (the next epoch's learning rate: 1e-06, where the run had "
            "scheduled 0.0018; decayed from there)") in said
    state = read_checkpoint(out / "last.pt")
    assert [r["lr"] for r in state["history"]] == [pytest.approx(2e-3), pytest.approx(1e-6)]
    assert state["config"]["lr"] == 1e-6 and state["config"]["epochs"] == 2
    assert state["resumed"] == [{"after_epoch": 1, "changed": {"epochs": [1, 2],
                                                                "lr": [2e-3, 1e-6]}}]
    assert json.loads((out / "run.json").read_text())["recipe"]["config"]["lr"] == 1e-6
    assert main("train", "--out", out, "--resume", "--epochs", "3", "--lr", "1e-3") == 0
    assert ("lr 1e-06 → 0.001 (the next epoch's learning rate: 0.001, where the run had "
            "scheduled 9e-07; decayed from there; a higher rate than scheduled)"
            in capsys.readouterr().out)


@pytest.mark.parametrize("change, flag", [
    (("--seed", "3"), "--seed"), (("--val-fraction", "0.5"), "--val-fraction"),
    (("--max-volumes", "2"), "--max-volumes"), (("--data", "elsewhere"), "--data"),
    (("--image-size", "48"), "--image-size"), (("--base-filters", "8"), "--base-filters"),
])
def test_resume_refuses_a_change_that_would_resplit_the_data(tiny_phantom, tmp_path, capsys,
                                                             change, flag):
    out = tmp_path / "run"
    assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 0
    (tmp_path / "elsewhere").mkdir()
    split = (out / "run.json").read_text()
    capsys.readouterr()
    assert main("train", "--out", out, "--resume", "--epochs", "2", *change) == 2
    said = capsys.readouterr()
    err = said.err.strip()
    assert err.startswith(f"error: {flag}: cannot change") and len(err.splitlines()) == 1
    assert "parameters" not in said.out  # refused before the run's header, not after
    assert (out / "run.json").read_text() == split
    assert read_checkpoint(out / "last.pt")["epoch"] == 1


def test_fit_refuses_a_seed_change_on_resume(tiny_phantom, tmp_path):
    data = BraTSSlices(tiny_phantom, [1], image_size=32)
    config = TrainConfig.quick(epochs=1, image_size=32, base_filters=4)
    fit(build_model("classic", base_filters=4), data, None, config, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="seed: cannot change from 0 to 1"):
        fit(build_model("classic", base_filters=4), data, None,
            dataclasses.replace(config, epochs=2, seed=1), tmp_path, resume=True,
            progress=False)


def test_fit_records_the_size_it_trained_at_and_evaluate_scores_at_it(tiny_phantom, tmp_path,
                                                                      capsys):
    # the tiny phantom's slices are 32 px; the config says 240 (the slides' size)
    data = BraTSSlices(tiny_phantom, [1, 2])
    fit(build_model("classic", base_filters=4), data, None,
        TrainConfig(epochs=1, batch_size=8, base_filters=4), tmp_path, progress=True)
    assert "the training slices are 32×32 pixels" in capsys.readouterr().out
    assert read_checkpoint(tmp_path / "last.pt")["config"]["image_size"] == 32
    # resuming with the same call is no change of size
    fit(build_model("classic", base_filters=4), data, None,
        TrainConfig(epochs=2, batch_size=8, base_filters=4), tmp_path, resume=True,
        progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    # evaluate on data of another size (no run.json) resizes to the size the model learnt at
    bigger = tmp_path / "bigger"
    make_phantom(bigger, n_volumes=2, n_slices=4, image_size=48, seed=0)
    assert main("evaluate", "--checkpoint", tmp_path / "last.pt", "--data", bigger) == 0
    assert ("every volume (predicted at 32×32, scored on their own grid) of"
            in capsys.readouterr().out)


def test_a_second_run_on_a_busy_folder_is_refused_naming_the_process(tiny_phantom, tmp_path,
                                                                     capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from unet_lib.runfolder import claim\n"
                               "with claim(sys.argv[1]):\n"
                               "    print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 2
        err = capsys.readouterr().err
        assert f"another training run (process {holder.pid}) is writing there" in err
        assert not (out / "run.json").exists() and not (out / "last.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 0  # released by the kill


def test_the_same_process_may_claim_a_folder_twice(tmp_path):
    with claim(tmp_path / "run"), claim(tmp_path / "run"):
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: loader processes on Linux and macOS")
def test_a_folder_is_free_again_while_a_process_forked_during_the_run_lives_on(tmp_path):
    # a DataLoader's worker forked during training has a copy of the lock's descriptor; an
    # interrupted run in a notebook keeps its workers alive, and the rerun waited forever
    with claim(tmp_path / "run"):
        child = os.fork()
        if child == 0:  # the "worker": outlives the run
            time.sleep(30)
            os._exit(0)
    try:
        with claim(tmp_path / "run"):  # RunFolderBusy naming this very process before
            pass
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_best_is_written_before_last_and_restored_if_a_kill_came_between(tiny_phantom,
                                                                        tmp_path, monkeypatch):
    import unet_lib.checkpoint as checkpoint

    written = []  # the order the files land in (fit() writes them in a thread of their own)
    real_write = checkpoint.write_checkpoint
    monkeypatch.setattr(checkpoint, "write_checkpoint",
                        lambda path, *a, **k: (written.append(Path(path).name),
                                               real_write(path, *a, **k))[1])
    data = BraTSSlices(tiny_phantom, [1, 2], image_size=32)
    val = BraTSSlices(tiny_phantom, [3], image_size=32)
    config = TrainConfig.quick(epochs=1, image_size=32, base_filters=4)
    fit(build_model("classic", base_filters=4), data, val, config, tmp_path, progress=False)
    assert written == ["best.pt", "last.pt"]

    (tmp_path / "best.pt").unlink()  # as if killed between the two writes of a new best
    fit(build_model("classic", base_filters=4), data, val, config, tmp_path, resume=True,
        progress=False)
    best, last = read_checkpoint(tmp_path / "best.pt"), read_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == last["best_epoch"] == 1
    assert all(torch.equal(best["model_state"][k], last["model_state"][k])
               for k in last["model_state"])


def test_a_resumed_fit_names_the_best_epoch_that_last_pt_records(tiny_phantom, tmp_path,
                                                               capsys):
    # fit hands restore_best last.pt's best epoch and its own epoch, in that order: with
    # best.pt lost and the best an earlier epoch (1 of 2), the run says which epoch to beat
    from unet_lib.checkpoint import write_checkpoint

    data = BraTSSlices(tiny_phantom, [1, 2], image_size=32)
    val = BraTSSlices(tiny_phantom, [3], image_size=32)
    config = TrainConfig.quick(epochs=2, image_size=32, base_filters=4)
    fit(build_model("classic", base_filters=4), data, val, config, tmp_path, progress=False)
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2
    write_checkpoint(tmp_path / "last.pt", {**last, "best_epoch": 1})
    (tmp_path / "best.pt").unlink()
    capsys.readouterr()
    fit(build_model("classic", base_filters=4), data, val,
        TrainConfig.quick(epochs=3, image_size=32, base_filters=4), tmp_path, resume=True,
        progress="epochs")
    assert "beats epoch 1's validation Dice" in capsys.readouterr().out


def test_stale_temporaries_are_removed_and_symlinks_are_not_followed(tiny_phantom, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / ".last.pt.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    outside = tmp_path / "outside.json"
    outside.write_text("keep me")
    (out / "run.json").symlink_to(outside)
    assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 0
    assert not stale.exists()
    assert outside.read_text() == "keep me" and not (out / "run.json").is_symlink()


def test_a_full_disk_is_one_line_saying_so_and_the_last_checkpoint_survives(
        tiny_phantom, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 0
    good = (out / "last.pt").read_bytes()

    import unet_lib.runfolder as runfolder

    real_temporary = runfolder.temporary_beside

    def checkpoints_to_a_full_disk(path):  # /dev/full: every write fails with ENOSPC
        fd, tmp = real_temporary(path)
        if Path(path).suffix != ".pt":  # run.json and the others land
            return fd, tmp
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), tmp

    monkeypatch.setattr(runfolder, "temporary_beside", checkpoints_to_a_full_disk)
    monkeypatch.setattr("shutil.disk_usage", lambda path: __import__("collections").namedtuple(
        "usage", "total used free")(10 ** 9, 10 ** 9, 0))
    assert main("train", "--out", out, "--resume", "--epochs", "2") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert "cannot be written: the disk is full (0 MiB free there)" in errors[0]
    assert "previous one there is intact" in errors[0]
    assert (out / "last.pt").read_bytes() == good
    assert not list(out.glob(".*.tmp"))


class FailingFile:
    """A file whose ``write`` raises ``failure`` (a checkpoint is written in one)."""

    def __init__(self, file, failure):
        self.file, self.failure = file, failure

    def write(self, data):
        raise self.failure

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.file.__exit__(*exc)


@pytest.mark.parametrize("failure", ["ctrl-c", "full disk"])
def test_what_stops_a_checkpoint_write_in_the_middle_is_reported_as_itself(tmp_path, monkeypatch,
                                                                           failure):
    import errno

    import unet_lib.checkpoint as checkpoint

    save_checkpoint(tmp_path / "last.pt", build_model("classic", base_filters=4), epoch=1)
    good = (tmp_path / "last.pt").read_bytes()
    raised = (KeyboardInterrupt() if failure == "ctrl-c"
              else OSError(errno.ENOSPC, "No space left on device"))
    real_fdopen = os.fdopen
    monkeypatch.setattr(checkpoint.os, "fdopen",
                        lambda *a: FailingFile(real_fdopen(*a), raised))
    # both were CheckpointWriteError: "cannot be written: [enforce fail ...] unexpected pos"
    expected = (pytest.raises(KeyboardInterrupt) if failure == "ctrl-c" else
                pytest.raises(CheckpointWriteError, match="cannot be written: the disk is full"))
    with expected:
        save_checkpoint(tmp_path / "last.pt", build_model("classic", base_filters=4), epoch=2)
    assert (tmp_path / "last.pt").read_bytes() == good
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_ctrl_c_as_torch_save_finishes_its_zip_does_not_abort_the_interpreter(tmp_path):
    """A Ctrl-C taken as torch.save's zip writer is about to finish (the first bytecode of its
    ``__exit__``) leaves the writer unfinished; it finishes when it is collected, after the
    checkpoint's file was closed: writing to a closed file from C++ aborted Python ("terminate
    called ... write to closed file", exit 134) after the CLI had said "interrupted". The
    checkpoint is serialized in memory now: the process ends as a Ctrl-C should, the previous
    checkpoint intact."""
    import subprocess
    import sys

    import torch.serialization

    if not hasattr(torch.serialization, "_open_zipfile_writer_buffer"):
        pytest.skip("this PyTorch saves to a file object another way")
    save_checkpoint(tmp_path / "last.pt", build_model("classic", base_filters=4), epoch=1)
    good = (tmp_path / "last.pt").read_bytes()
    script = (
        "import sys, torch.serialization as s\n"
        "def cut_short(self, *args):\n"
        "    raise KeyboardInterrupt\n"
        "s._open_zipfile_writer_buffer.__exit__ = cut_short\n"
        "from unet_lib.checkpoint import save_checkpoint\n"
        "from unet_lib.models import build_model\n"
        "try:\n"
        f"    save_checkpoint({str(tmp_path / 'last.pt')!r}, build_model('classic', "
        "base_filters=4), epoch=2)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n")
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=120)
    assert (ended.returncode, ended.stderr) == (130, "")
    assert (tmp_path / "last.pt").read_bytes() == good
    assert not list(tmp_path.glob(".*.tmp"))


def test_save_checkpoint_reports_a_read_only_folder(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(CheckpointWriteError, match="model.pt: cannot be written: the folder is "
                                                   "read-only"):
        save_checkpoint(tmp_path / "model.pt", build_model("classic", base_filters=4))


def test_a_diverged_run_is_one_line(tiny_phantom, tmp_path, capsys, monkeypatch):
    import unet_lib.train as train

    def diverges(*args, **kwargs):
        raise train.TrainingDiverged("the loss became nan in epoch 2; lower the learning rate")

    monkeypatch.setattr(train, "fit", diverges)
    assert main(*train_args(tiny_phantom, tmp_path / "run", "--epochs", "2")) == 2
    assert capsys.readouterr().err.strip() == ("error: the loss became nan in epoch 2; lower "
                                               "the learning rate")


BAD_ARGUMENTS = [
    (("train", "--epochs", "0"), "--epochs"),
    (("train", "--epochs", "-1"), "--epochs"),
    (("train", "--image-size", "0"), "--image-size"),
    (("train", "--image-size", "-5"), "--image-size"),
    (("train", "--image-size", "100000"), "--image-size: is too large"),
    (("train", "--device", "bogus"), "--device"),
    (("train", "--pos-weight", "1,2"), "--pos-weight"),
    (("train", "--pos-weight=-5,2,5"), "--pos-weight"),
    (("train", "--threshold", "2"), "--threshold"),
    (("train", "--lr-gamma", "-1"), "--lr-gamma"),
    (("train", "--lr", "0"), "--lr"),
    (("train", "--max-volumes", "-1"), "--max-volumes"),
    (("train", "--max-volumes", "0"), "--max-volumes"),
    (("train", "--resume", "--out", "mistyped"), "mistyped: holds no last.pt"),
    (("train", "--data", "nowhere"), "nowhere: no such data folder"),
    (("train", "--out", "a-file/run"), "a-file/run"),
    (("evaluate", "--checkpoint", "nothing.pt"), "nothing.pt: no such checkpoint file"),
    (("evaluate", "--checkpoint", "a-file", "--threshold", "2"), "--threshold"),
    (("phantom", "--n-volumes", "1"), "--n-volumes"),
    (("phantom", "--image-size", "8"), "--image-size"),
    (("train", "--n-slices", "0"), "--n-slices"),
    (("pack", "--data", "nowhere", "--out", "p"), "nowhere: no such data folder"),
    (("pack", "--data", "nowhere", "--out", "p", "--workers", "0"), "--workers: must be at "
                                                                    "least 1"),
    (("train", "--val-fraction", "0.9"), "--val-fraction: 0.9, with a test fraction of 0.2"),
    (("train", "--data", "a-file"), "a-file: is a file"),
    (("phantom", "--out", "a-file"), "a-file: is a file"),
    (("evaluate", "--checkpoint", "a-file"), "a-file: cannot be read as a checkpoint: not the "
                                             "zip archive"),
    (("evaluate", "--checkpoint", "a-file", "--csv", "nowhere/p.csv"), "--csv"),
]
if not torch.cuda.is_available():
    BAD_ARGUMENTS.append((("train", "--device", "cuda"), "--device: 'cuda': no CUDA GPU"))


@pytest.mark.parametrize("argv, culprit", BAD_ARGUMENTS,
                         ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_every_bad_argument_is_one_error_line_naming_it(tmp_path, monkeypatch, capsys,
                                                         argv, culprit):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    assert main(*argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and culprit in lines[0], lines
    assert not (tmp_path / "data").exists(), "work started before the arguments were checked"


def test_evaluate_counts_only_the_slices_it_scored(tiny_phantom, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(*train_args(tiny_phantom, out, "--epochs", "1")) == 0
    test = json.loads((out / "run.json").read_text())["test_volumes"][0]
    (tiny_phantom / f"volume_{test}_slice_2.h5").write_text("broken")
    capsys.readouterr()
    from unet_lib.patients import PartialVolumeWarning

    with pytest.warns(BadSampleWarning), pytest.warns(
            PartialVolumeWarning, match="5 of its 6 slices scored"):  # per patient, said too
        assert main("evaluate", "--checkpoint", out / "last.pt") == 0
    output = capsys.readouterr().out
    assert "on 5 slices of" in output and "(1 skipped)" in output


@pytest.mark.slow
def test_ctrl_c_during_training_is_one_line_saying_how_to_resume(tmp_path):
    make_phantom(tmp_path / "ph", n_volumes=3, image_size=48, n_slices=12, seed=1)
    args = [sys.executable, "-m", "unet_lib", "train", "--data", "ph", "--quick",
            "--image-size", "48", "--base-filters", "8", "--batch-size", "2", "--epochs", "2000",
            "--out", "run"]  # an epoch takes ~0.1 s with the slices held in memory: never ends
    # as from a terminal: a test run started in the background (``make test &``) ignores
    # SIGINT, and a child that inherits that would never see the Ctrl-C
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not (tmp_path / "run" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # the interrupt was not taken: stop the 2000 epochs
            process.kill()
    assert process.returncode == 130, err[-3000:]  # what it said, if it ended otherwise
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted: the last checkpoint is run/last.pt (epoch ")
    assert lines[-1].endswith("run the same command with --resume to continue")
