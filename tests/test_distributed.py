"""torchrun: two CPU processes (Gloo) train to the same result as one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from unet_lib.checkpoint import read_checkpoint
from unet_lib.config import ConfigError
from unet_lib.data import make_phantom
from unet_lib.distributed import Context, GlobalBatchSampler

SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from unet_lib.data import BraTSSlices
    from unet_lib.models import build_model
    from unet_lib.train import TrainConfig, fit

    root, out = sys.argv[1], sys.argv[2]
    epochs, resume = (int(sys.argv[3]), True) if len(sys.argv) > 3 else (2, False)
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    fit(model, BraTSSlices(root, [1, 2]), BraTSSlices(root, [3]),
        TrainConfig.quick(epochs=epochs, batch_size=4, image_size=32), checkpoint_dir=out,
        resume=resume, progress="epochs")
''')


def two_processes(script: Path, *args) -> subprocess.CompletedProcess:
    """Run ``script`` with ``args`` under ``torchrun``, two CPU processes (Gloo), one thread
    each; fails the test unless both end well."""
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", str(script), *map(str, args)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    root = make_phantom(tmp_path / "ph", n_volumes=3, image_size=32, n_slices=10, seed=4)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(script), str(root), str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert single.returncode == 0, single.stderr
    double = two_processes(script, root, tmp_path / "two")
    # rank 0 alone reports, and says how the batch is shared (no synchronized norm on Gloo)
    assert "torchrun" not in single.stdout
    assert double.stdout.count("torchrun: 2 processes, each training on 2 of every 4 images\n") == 1

    one, two = read_checkpoint(tmp_path / "one" / "last.pt"), read_checkpoint(
        tmp_path / "two" / "last.pt")
    assert one["epoch"] == two["epoch"] == 2
    # The two all-reduce the gradients, so they add in another order: round-off only. Adam
    # divides each step by the gradient's running size, so a round-off difference in a tiny
    # gradient moves its weight by up to ~1e-6 a step (measured at most 4e-6 after these 2
    # epochs); one wrong batch would move weights by the learning rate, 2e-3.
    for key, weight in one["model_state"].items():
        assert torch.allclose(weight, two["model_state"][key], rtol=1e-4, atol=2e-5), key
    for a, b in zip(one["history"], two["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        for name, value in a["val"]["dice"].items():
            assert b["val"]["dice"][name] == pytest.approx(value, abs=0.02)

    # stopped after one epoch and resumed under torchrun: the same run as the uninterrupted one
    # (each process restores the shuffle's generator from last.pt, so the batches continue)
    for epochs in ("1", "2"):
        two_processes(script, root, tmp_path / "resumed", epochs)
    resumed = read_checkpoint(tmp_path / "resumed" / "last.pt")
    assert [r["epoch"] for r in resumed["history"]] == [1, 2]
    for key, weight in two["model_state"].items():
        assert torch.allclose(weight, resumed["model_state"][key], rtol=1e-5, atol=1e-6), key


SKIPPING = textwrap.dedent('''
    import atexit
    import os
    import sys
    import warnings
    from pathlib import Path
    import torch
    from unet_lib.data import BraTSSlices
    from unet_lib.models import build_model
    from unet_lib.train import TrainConfig, fit

    warnings.simplefilter("ignore")
    rank = os.environ['RANK']
    # registered first, so run last: whether fit() left the process group it joined
    atexit.register(lambda: Path(sys.argv[2], f"group{rank}.txt").write_text(
        str(torch.distributed.is_initialized())))
    torch.manual_seed(0)
    model = build_model("improved", base_filters=4)
    history = fit(model, BraTSSlices(sys.argv[1], [1, 2]), BraTSSlices(sys.argv[1], [3]),
                  TrainConfig.quick(epochs=2, batch_size=2, image_size=32,
                                    resident_data=False, tumour_share=None),
                  progress=False)
    # one file per process: two processes printing to one pipe can interleave their lines
    Path(sys.argv[2], f"rank{rank}.txt").write_text(str(history.records[-1]["skipped"]))
    torch.save(dict(model.named_buffers()), Path(sys.argv[2], f"buffers{rank}.pt"))
''')


@pytest.mark.slow
def test_a_process_whose_share_is_all_unusable_files_still_steps_with_the_others(tmp_path):
    # batch 2 on two processes: a share of one image, so one broken file empties a share;
    # before, that process skipped the step and the other waited for it (Gloo aborted)
    root = make_phantom(tmp_path / "ph", n_volumes=3, image_size=32, n_slices=6, seed=4)
    (root / "volume_1_slice_3.h5").write_text("not an HDF5 file")
    script = tmp_path / "train.py"
    script.write_text(SKIPPING)
    two_processes(script, root, tmp_path)
    # one process's share held the file; the epoch's record lists it on both (the history and
    # checkpoints rank 0 writes must name every process's skipped files)
    for rank in (0, 1):
        skipped = (tmp_path / f"rank{rank}.txt").read_text()
        assert skipped.count("volume_1_slice_3.h5") == 1, (rank, skipped)
    # validation scored on both with rank 0's batch-norm statistics, the ones it saves (each
    # process's last training step had updated its own from its own share)
    # and each left the process group fit() had joined, at the program's end
    assert [(tmp_path / f"group{rank}.txt").read_text() for rank in (0, 1)] == ["False"] * 2
    first, second = (torch.load(tmp_path / f"buffers{rank}.pt") for rank in (0, 1))
    assert any("running_mean" in name for name in first)
    for name, buffer in first.items():
        assert torch.equal(buffer, second[name]), name


def test_global_batches_are_split_into_equal_shares_of_the_same_shuffle():
    def batches(rank, world):
        generator = torch.Generator().manual_seed(7)
        return list(GlobalBatchSampler(10, 4, generator, Context(rank, world)))

    alone = batches(0, 1)
    first, second = batches(0, 2), batches(1, 2)
    assert [len(b) for b in alone] == [4, 4, 2]
    assert [a + b for a, b in zip(first, second)] == alone
    assert len(GlobalBatchSampler(10, 4, torch.Generator(), Context(0, 2))) == 3
    # a batch that does not split evenly is refused by name (it used to leave images out)
    with pytest.raises(ConfigError, match="30 images do not split into 4 equal.*28 or 32"):
        GlobalBatchSampler(100, 30, torch.Generator(), Context(0, 4))
    with pytest.raises(ConfigError, match="choose a multiple of 4, e.g. 4$"):
        GlobalBatchSampler(10, 2, torch.Generator(), Context(0, 4))


def test_batch_norm_is_synchronized_for_training_and_plain_again_after():
    import copy

    from torch import nn

    from unet_lib.distributed import plain_batch_norm, synchronized_batch_norm
    from unet_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("improved", base_filters=4)
    twin = copy.deepcopy(model)  # stays plain: a training pass on it is what to expect
    count = sum(type(m) is nn.BatchNorm2d for m in model.modules())
    tensors = {name: t.data_ptr() for name, t in model.state_dict().items()}
    images = torch.randn(2, 4, 32, 32)

    assert synchronized_batch_norm(model) == count > 0
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules()) == count
    # the same tensors under the same names: an optimizer built before keeps training them
    assert {name: t.data_ptr() for name, t in model.state_dict().items()} == tensors
    # outside a process group a SyncBatchNorm normalizes (and gathers statistics) as before
    assert torch.allclose(model(images), twin(images), atol=1e-6)

    assert plain_batch_norm(model) == count
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert {name: t.data_ptr() for name, t in model.state_dict().items()} == tensors
    for name, value in twin.state_dict().items():  # the running statistics it gathered
        assert torch.equal(model.state_dict()[name], value), name
    assert plain_batch_norm(model) == 0
    # a model's own SyncBatchNorm layers are none of fit()'s business
    model.head = nn.Sequential(model.head, nn.SyncBatchNorm(3))
    assert plain_batch_norm(model) == 0 and type(model.head[1]) is nn.SyncBatchNorm


def test_a_batch_that_does_not_split_is_refused_before_any_data_is_read(monkeypatch, capsys):
    from unet_lib import distributed, train
    from unet_lib.models import build_model
    from unet_lib.train import TrainConfig, fit

    class Unread(torch.utils.data.Dataset):
        def __len__(self):
            return 100

        def __getitem__(self, index):
            raise AssertionError("a slice was read before the batch size was checked")

    monkeypatch.setattr(distributed, "setup", lambda device_type: Context(0, 4))
    monkeypatch.setattr(distributed, "_failed", False)
    monkeypatch.setattr(train, "held_as_configured", lambda *a, **k: pytest.fail("data held"))
    with pytest.raises(ConfigError, match="30 images do not split into 4"):
        fit(build_model("classic", base_filters=4), Unread(), None,
            TrainConfig.quick(batch_size=30, image_size=32))
    assert "torchrun" not in capsys.readouterr().out  # no line claiming 7 of every 30
    # a failed fit leaves the process group alone at exit: the others may wait in a collective
    assert distributed._failed


def test_torchrun_on_a_mac_s_gpu_is_refused_with_what_to_do_instead(monkeypatch):
    from unet_lib import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; no group is joined
    with pytest.raises(ConfigError, match=r"^device: 'mps' under torchrun.*--device cpu"):
        distributed.setup("mps")
    assert not torch.distributed.is_initialized()


EVALUATE_IN_SHARES = textwrap.dedent('''
    import sys
    import torch
    from unet_lib import distributed
    from unet_lib.data import BraTSSlices
    from unet_lib.inference import evaluate
    from unet_lib.models import build_model

    context = distributed.setup("cpu")
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    slices = BraTSSlices(sys.argv[1], [1])
    for count in (1, 3):  # one slice: rank 1's share is none; three: two and one
        part = torch.utils.data.Subset(slices, list(range(count)))
        scores = evaluate(model, part, device="cpu", context=context)
        open(f"{sys.argv[2]}/scores{count}-{context.rank}.txt", "w").write(
            repr({"dice": scores["dice"], "loss": scores["loss"]}))
''')


@pytest.mark.slow
def test_every_process_reports_the_whole_validation_sets_scores_even_with_no_share(tmp_path):
    root = make_phantom(tmp_path / "ph", n_volumes=1, image_size=32, n_slices=3, seed=4)
    script = tmp_path / "evaluate.py"
    script.write_text(EVALUATE_IN_SHARES)
    two_processes(script, root, tmp_path)
    import ast

    from unet_lib.data import BraTSSlices
    from unet_lib.inference import evaluate
    from unet_lib.models import build_model

    # every process reports the scores of all the slices, as one process alone scores them:
    # with one slice rank 1 scored none of its own; with three, each process only its share
    torch.manual_seed(0)
    model = build_model("classic", base_filters=4)
    for count in (1, 3):
        part = torch.utils.data.Subset(BraTSSlices(root, [1]), list(range(count)))
        alone = evaluate(model, part, device="cpu")
        for rank in (0, 1):
            reported = ast.literal_eval((tmp_path / f"scores{count}-{rank}.txt").read_text())
            assert reported["dice"] == pytest.approx(alone["dice"], rel=1e-9), (count, rank)
            assert reported["loss"] == pytest.approx(alone["loss"], rel=1e-6), (count, rank)
