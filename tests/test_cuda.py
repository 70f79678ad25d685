"""What only a CUDA GPU can show: training and scoring on it, and that they never make the CPU
wait for the GPU step by step. Skipped without a GPU (CI has none); ``benchmarks/gpu_session.py``
runs them on a lent one.

A CPU that waits for the GPU (a ``.item()``, a copy from ordinary host memory) cannot queue the
next kernels while the GPU computes: the GPU then idles between steps. PyTorch's sync debug
mode turns each such wait into a warning, which these tests count.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import Subset

from unet_lib.config import TrainConfig
from unet_lib.distributed import GlobalBatchSampler
from unet_lib.inference import evaluate
from unet_lib.models import build_model
from unet_lib.resident import ResidentBatches, ResidentSlices
from unet_lib.runtime import autocast
from unet_lib.train import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


def waits_for_the_gpu(work) -> int:
    """How many times ``work()`` makes the CPU wait for the GPU (sync debug mode's warnings)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            work()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_the_sync_detector_sees_a_wait():
    # so that "0 waits" below means none happened, not that none could be seen
    assert waits_for_the_gpu(lambda: torch.ones(1, device=CUDA).item()) >= 1


def test_fit_on_resident_data_waits_no_more_for_ten_steps_than_for_five(datasets, monkeypatch):
    import unet_lib.train as train_module

    monkeypatch.setattr(train_module, "SYNC_EVERY", 10 ** 6)  # the loss shown every N steps
    config = TrainConfig.quick(epochs=1, base_filters=8, batch_size=8, device="cuda",
                               tumour_share=None)
    model = build_model("classic", base_filters=8)
    held = {n: ResidentSlices.load(Subset(datasets[0], range(n)), CUDA) for n in (40, 80)}
    fit(model, held[40], None, config, progress=False)  # warm-up: cuDNN, the optimizer
    waits = [waits_for_the_gpu(lambda: fit(model, held[n], None, config, progress=False))
             for n in (40, 80)]  # 5 and 10 full batches: a wait per step would show
    assert waits[0] == waits[1], waits


def test_fit_trains_on_a_subset_of_data_held_on_the_gpu(datasets):
    held = ResidentSlices.load(Subset(datasets[0], range(24)), CUDA)
    config = TrainConfig.quick(epochs=1, base_filters=4, batch_size=4, device="cuda")
    history = fit(build_model("classic", base_filters=4), Subset(held, range(0, 24, 2)),
                  Subset(held, range(1, 24, 6)), config, progress=False)
    assert len(history) == 1  # no loader's readers given CUDA tensors


def test_a_run_trained_on_the_gpu_resumes_on_it(datasets, tmp_path):
    # read onto the GPU, the checkpoint's NumPy random state could not be restored
    train, val = Subset(datasets[0], range(0, 48, 2)), Subset(datasets[1], range(0, 30, 3))
    config = TrainConfig.quick(epochs=2, base_filters=8, batch_size=8, device="cuda")
    fit(build_model("classic", base_filters=8), train, val, config, tmp_path, progress=False)
    history = fit(build_model("classic", base_filters=8), train, val,
                  TrainConfig.quick(epochs=3, base_filters=8, batch_size=8, device="cuda"),
                  tmp_path, resume=True, progress=False)
    assert [r["epoch"] for r in history.records] == [1, 2, 3]


def test_training_on_the_gpu_autotunes_cudnn_and_leaves_the_setting_as_it_found_it(
        datasets, monkeypatch):
    import unet_lib.train as train_module

    seen = []
    real_evaluate = train_module.evaluate
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: (
        seen.append(torch.backends.cudnn.benchmark), real_evaluate(*a, **k))[1])
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    fit(build_model("classic", base_filters=8), Subset(datasets[0], range(16)),
        Subset(datasets[1], range(8)), TrainConfig.quick(epochs=1, base_filters=8,
                                                         batch_size=8, device="cuda"),
        progress=False)
    assert seen == [True]  # on while it trained
    assert torch.backends.cudnn.benchmark is False  # a notebook's later work as it set it
    torch.use_deterministic_algorithms(True, warn_only=True)  # asked to repeat exactly: off
    try:
        fit(build_model("classic", base_filters=8), Subset(datasets[0], range(16)),
            Subset(datasets[1], range(8)), TrainConfig.quick(epochs=1, base_filters=8,
                                                             batch_size=8, device="cuda"),
            progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    assert seen == [True, False]


def test_a_training_pass_over_resident_data_never_waits_for_the_gpu(datasets):
    train = ResidentSlices.load(Subset(datasets[0], range(40)), CUDA)
    model = build_model("classic", base_filters=8).to(CUDA, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def one_pass():
        sampler = GlobalBatchSampler(len(train), 8, torch.Generator().manual_seed(0))
        for images, masks, _ in ResidentBatches(train, sampler):
            with autocast(CUDA, True):
                logits = model(images.to(memory_format=torch.channels_last))
            loss = F.binary_cross_entropy_with_logits(logits.float(), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    one_pass()  # warm-up: cuDNN picks its algorithms, AdamW makes its state
    assert waits_for_the_gpu(one_pass) == 0


def test_scoring_on_the_gpu_waits_as_often_for_one_batch_as_for_five(datasets):
    val = ResidentSlices.load(Subset(datasets[1], range(40)), CUDA)
    model = build_model("classic", base_filters=8).to(CUDA)
    waits = [waits_for_the_gpu(lambda: evaluate(model, val, batch_size=size, device=CUDA))
             for size in (40, 8)]
    assert waits[0] == waits[1], waits  # the sums are read once, at the end



@pytest.mark.parametrize("argument", ["device", "map_location"])
def test_a_model_loaded_onto_the_gpu_is_on_the_gpu(tmp_path, argument):
    from unet_lib.checkpoint import load_model, save_checkpoint

    path = save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4))
    model = load_model(path, **{argument: "cuda"})  # it stayed on the CPU before 2026-12-07
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {b.device.type for b in model.buffers()} == {"cuda"}


def test_a_model_rebuilt_from_a_checkpoint_read_onto_the_gpu_is_on_the_gpu(tmp_path):
    from unet_lib.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "best.pt", build_model("classic", base_filters=4))
    model = model_from_checkpoint(read_checkpoint(path, map_location="cuda"))
    assert {p.device.type for p in model.parameters()} == {"cuda"}


def test_predicting_on_the_gpu_leaves_a_cpu_model_on_the_cpu():
    from unet_lib.attention import attention_maps
    from unet_lib.inference import predict

    model = build_model("attention", base_filters=8)  # as model_from_checkpoint builds it
    images = torch.randn(3, 4, 64, 64)
    predict(model, images, device=CUDA)
    assert next(model.parameters()).device.type == "cpu"
    maps = attention_maps(model, images, device=CUDA)  # the reference run failed here
    assert next(model.parameters()).device.type == "cpu"
    with torch.no_grad():
        _, on_cpu = model(images, return_attention=True)  # the caller's next call still works
    for ours, reference in zip(maps, on_cpu):
        assert torch.allclose(ours, reference, atol=2e-2)  # TF32 convolutions on the GPU

def test_training_on_the_gpu_learns_and_scores_as_on_the_cpu(datasets):
    train, val = Subset(datasets[0], range(0, 96, 2)), Subset(datasets[1], range(0, 60, 3))
    torch.manual_seed(0)
    model = build_model("classic", base_filters=8)
    history = fit(model, train, val, TrainConfig.quick(epochs=3, base_filters=8, batch_size=8,
                                                       device="cuda"), progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    # full float32 on the GPU as on the CPU: cuDNN's default TF32 convolutions flip a few
    # pixels near the threshold (a 1e-3 change of Dice in a CPU rehearsal of TF32 rounding)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        on_gpu = evaluate(model, val, device=CUDA, amp=False)
    on_cpu = evaluate(model.cpu(), val, device="cpu", amp=False)
    assert on_gpu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-3)
    for name, value in on_cpu["dice"].items():
        assert on_gpu["dice"][name] == pytest.approx(value, abs=1e-3), name
    # three epochs may find no tumour yet (Dice 0 both ways): the probabilities behind the
    # scores must agree too
    from unet_lib.inference import predict

    images = torch.stack([val[i][0] for i in range(8)])
    assert torch.allclose(predict(model, images, device=CUDA, amp=False),
                          predict(model, images, device="cpu", amp=False), atol=2e-2)


def test_checkpoints_written_in_the_background_hold_the_final_weights(datasets, tmp_path,
                                                                      monkeypatch):
    import threading

    import unet_lib.checkpoint as checkpoint
    from unet_lib.checkpoint import read_checkpoint

    writers = []  # the threads that wrote each file: not the training's own on a GPU
    real_write = checkpoint.write_checkpoint
    monkeypatch.setattr(checkpoint, "write_checkpoint", lambda *a, **k: (
        writers.append(threading.current_thread().name), real_write(*a, **k))[1])
    train, val = Subset(datasets[0], range(0, 48, 2)), Subset(datasets[1], range(0, 30, 3))
    model = build_model("classic", base_filters=8)
    fit(model, train, val, TrainConfig.quick(epochs=3, base_filters=8, batch_size=8,
                                             device="cuda"), tmp_path, progress=False)
    assert writers and all(name.startswith("checkpoints") for name in writers), writers
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 3 and len(last["history"]) == 3
    for name, value in model.state_dict().items():
        assert torch.equal(last["model_state"][name], value.cpu()), name


def test_the_optimizer_on_the_gpu_is_fused_and_steps_as_the_cpus():
    from unet_lib.schedule import make_optimizer

    torch.manual_seed(0)
    on_cpu = build_model("classic", base_filters=4)
    on_gpu = build_model("classic", base_filters=4).to(CUDA)
    on_gpu.load_state_dict(on_cpu.state_dict())
    config = TrainConfig()
    optimizers = make_optimizer(on_cpu, config), make_optimizer(on_gpu, config)
    assert optimizers[1].param_groups[0]["fused"] is True
    assert not optimizers[0].param_groups[0].get("fused")
    for _ in range(3):  # the same gradients on both: only the update's arithmetic differs
        grads = [torch.randn_like(p) for p in on_cpu.parameters()]
        for model, optimizer in zip((on_cpu, on_gpu), optimizers):
            for parameter, grad in zip(model.parameters(), grads):
                parameter.grad = grad.to(parameter.device)
            optimizer.step()
    for (name, a), b in zip(on_cpu.state_dict().items(), on_gpu.state_dict().values()):
        assert torch.allclose(a, b.cpu(), atol=1e-6), name


def what_the_chapters_compute(model, dataset, device) -> None:
    """Chapters 6-8's calls on ``device`` with ``model`` loaded on the CPU, as the course loads
    it: each must leave the model on the CPU and bring its results back to the CPU."""
    from unet_lib.attention import attention_contrast
    from unet_lib.calibration import reliability
    from unet_lib.inference import threshold_sweep
    from unet_lib.patients import evaluate_patients
    from unet_lib.segment import labels_from_probabilities

    inside, outside = attention_contrast(model, dataset, [0, 1, 2], batch_size=2, device=device)
    assert len(inside) == len(outside) == 4  # one per gate
    sweep = threshold_sweep(model, dataset, [0.3, 0.5], batch_size=4, device=device)
    assert sorted(sweep) == [0.3, 0.5] and set(sweep[0.5]["dice"]) >= {"WT", "TC", "ET"}
    patients = evaluate_patients(model, dataset, batch_size=4, device=device)
    assert len(patients.rows) == len(dataset.volumes)
    binned = reliability(model, dataset, batch_size=4, device=device)  # chapter 9's diagram
    assert binned.patients == tuple(sorted(dataset.volumes))
    assert binned.count.sum() == 3 * len(dataset) * dataset[0][1][0].numel()
    probs = torch.rand(3, 2, 8, 8, device=device)  # chapter 7's label map, from a GPU's output
    assert (labels_from_probabilities(probs) == labels_from_probabilities(probs.cpu())).all()
    assert next(model.parameters()).device.type == "cpu"


def test_what_the_chapters_compute_runs_on_the_gpu_with_a_model_kept_on_the_cpu(datasets):
    what_the_chapters_compute(build_model("attention", base_filters=4).eval(), datasets[1],
                              CUDA)


def test_float16_with_loss_scaling_trains_and_resumes(datasets, tmp_path, monkeypatch):
    # a GPU without bfloat16 (Colab's T4) trains in float16 with a scaled loss: forced here
    import unet_lib.runtime as runtime
    import unet_lib.train as train_module
    from unet_lib.checkpoint import read_checkpoint

    def half(device, amp):
        return torch.float16 if device.type == "cuda" and amp else None

    monkeypatch.setattr(runtime, "autocast_dtype", half)
    monkeypatch.setattr(train_module, "autocast_dtype", half)
    train, val = Subset(datasets[0], range(0, 48, 2)), Subset(datasets[1], range(0, 30, 3))
    config = TrainConfig.quick(epochs=2, base_filters=8, batch_size=8, device="cuda")
    fit(build_model("classic", base_filters=8), train, val, config, tmp_path, progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["scaler_state"]["scale"] > 0  # it scaled
    history = fit(build_model("classic", base_filters=8), train, val,
                  TrainConfig.quick(epochs=3, base_filters=8, batch_size=8, device="cuda"),
                  tmp_path, resume=True, progress=False)
    assert [r["epoch"] for r in history.records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor([r["train_loss"], r["val_loss"]])).all()
               for r in history.records)


def test_a_weighted_bce_plus_dice_run_trains_and_validates_on_the_gpu(datasets):
    train, val = Subset(datasets[0], range(0, 48, 2)), Subset(datasets[1], range(0, 30, 3))
    config = TrainConfig.quick(epochs=1, base_filters=8, batch_size=8, device="cuda",
                               pos_weight=(5.0, 2.0, 5.0), loss="bce+dice")
    model = build_model("classic", base_filters=8)
    record = fit(model, train, val, config, progress=False).records[-1]
    # its validation loss is the weighted BCE plus a Dice term: above the plain BCE
    plain = evaluate(model, val, batch_size=8, device=CUDA)["loss"]
    assert 0 < plain < record["val_loss"] < float("inf")
    # the same loss made as a researcher makes it, its weights on the CPU (the default)
    from unet_lib.losses import make_loss

    loss = make_loss(config)
    weighted = evaluate(model, val, batch_size=8, device=CUDA, loss_fn=loss)["loss"]
    assert weighted == pytest.approx(record["val_loss"], rel=1e-3)
    assert loss.bce.pos_weight.device.type == "cpu"  # the caller's loss stays where it was
