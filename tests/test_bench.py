"""The benchmark runs (a smoke test on tiny sizes: timings are never asserted)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unet_lib.bench import format_table, forward_flops, run_benchmark, write_result
from unet_lib.models import ClassicUNet, count_parameters


def test_forward_flops_count_a_convolution_by_hand():
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    assert forward_flops(conv, 16) == 2 * 4 * 8 * 9 * 16 * 16


def test_forward_flops_count_depthwise_convolutions_by_hand():
    depthwise = nn.Sequential(nn.Conv2d(4, 4, 7, padding=3, groups=4, bias=False))
    assert forward_flops(depthwise, 16) == 2 * 4 * 49 * 16 * 16


def test_benchmark_rows_for_our_models_and_the_monai_peers(tmp_path):
    pytest.importorskip("monai")
    result = run_benchmark(image_size=32, batch_size=2, device="cpu", steps=1, repeats=1)
    rows = {r["model"]: r for r in result["rows"]}
    assert list(rows) == ["classic", "improved", "attention", "monai BasicUNet",
                          "monai AttentionUnet"]
    assert rows["classic"]["parameters"] == count_parameters(ClassicUNet()) == 7_760_451
    assert rows["improved"]["gflops_forward"] < rows["classic"]["gflops_forward"]
    assert all(r["train_images_per_s"] > 0 and r["latency_ms"] > 0 for r in rows.values())
    table = format_table(result)
    assert table.count("×") >= 4  # ratios against the peers for classic and attention
    assert "beside its MONAI peer -->" in table
    alone = run_benchmark(image_size=32, batch_size=2, device="cpu", steps=1, repeats=1,
                          peers=False, models=("classic",))
    assert "batch 2 -->" in format_table(alone)  # no peer timed: the caption names none
    # amp is asked for by default but autocast acts on CUDA only: the table must not claim it
    assert result["speedups"]["amp"] is False and "speed-ups none" in table
    path = write_result(result, tmp_path / "bench.md")
    assert path.read_text() == table and path.with_suffix(".json").exists()
    # a name without an extension gets one, as the book's `--out benchmarks/my-machine`
    assert write_result(result, tmp_path / "my-machine") == tmp_path / "my-machine.md"
    assert (tmp_path / "my-machine.json").exists() and not (tmp_path / "my-machine").exists()


def test_gpu_check_script_rehearses_on_the_cpu(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("monai")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "--tiny"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("bench", "loader", "train"):
        assert (tmp_path / f"{name}.md").exists() and (tmp_path / f"{name}.json").exists()
    assert "packed (memory-mapped)" in (tmp_path / "loader.md").read_text()
    assert (tmp_path / "train.md").read_text().count("| classic |") == 2
    assert done.stdout.count("making a") == 1  # the fit-vs-step rows train on the same phantom


@pytest.mark.slow
def test_fit_against_step_rehearsal_reports_both_rates_and_their_ratio(tmp_path):
    from unet_lib.fitbench import fit_vs_step, format_fit_table

    row = fit_vs_step("classic", "quick", epochs=2, phantom_home=tmp_path, n_volumes=4,
                      n_slices=8, image_size=32, base_filters=4, batch_size=4,
                      channels_last=False, test_fraction=0.0)
    assert row["images"] == 3 * 8  # 4 volumes: 3 train, 1 validation (not used by fit here)
    assert row["fit_images_per_s"] > 0 and row["step_images_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["fit_images_per_s"] / row["step_images_per_s"])
    assert row["first_epoch_s"] > 0 and row["channels_last"] is False
    assert row["resident"] is True  # what fit() did ("auto": 24 small slices fit in RAM)
    table = format_fit_table([row])
    assert "| classic | cpu | 24 | 4 | 32 |" in table
    assert table.strip().endswith(f"% | {row['first_epoch_s']:.1f} s |")


def test_a_variant_is_its_preset_run_differently():
    from unet_lib.variants import bench_model
    from unet_lib.config import ConfigError
    from unet_lib.models import DepthwiseConv2d

    torch.manual_seed(0)
    variant = bench_model("improved-nchw-depthwise", base_filters=4)
    torch.manual_seed(0)
    preset = bench_model("improved", base_filters=4)
    depthwise = [m for m in variant.modules() if isinstance(m, DepthwiseConv2d)]
    assert depthwise and all(m.nchw for m in depthwise)
    assert not any(m.nchw for m in preset.modules() if isinstance(m, DepthwiseConv2d))
    assert all(torch.equal(a, b) for a, b in zip(variant.state_dict().values(),
                                                  preset.state_dict().values()))
    with pytest.raises(ConfigError, match="improved-nchw-depthwise"):
        bench_model("improved-nhwc")


def test_a_kernel_variant_sets_pytorchs_depthwise_choice_only_while_it_runs(monkeypatch):
    from unet_lib import bench
    from unet_lib.variants import bench_model, variant_setting

    if not hasattr(torch.backends.cudnn, "depthwise_kernel"):
        pytest.skip("this PyTorch has no torch.backends.cudnn.depthwise_kernel (before 2.13)")
    before = torch.backends.cudnn.depthwise_kernel
    torch.manual_seed(0)
    variant = bench_model("improved-native-depthwise", base_filters=4)
    torch.manual_seed(0)
    preset = bench_model("improved", base_filters=4)  # the same model, weights included
    assert type(variant) is type(preset) and variant.hparams == preset.hparams
    assert all(torch.equal(a, b) for a, b in zip(variant.state_dict().values(),
                                                  preset.state_dict().values()))
    with pytest.raises(KeyError):  # restored when the block fails too
        with variant_setting("improved-cudnn-depthwise"):
            assert torch.backends.cudnn.depthwise_kernel == "cudnn"
            raise KeyError("a failed measurement")
    assert torch.backends.cudnn.depthwise_kernel == before

    seen = {}  # what each model was measured under, through run_benchmark

    def measure(name, model, *args, **kwargs):
        seen[name] = torch.backends.cudnn.depthwise_kernel
        return bench.BenchRow(name, 0, 0.0, 1.0, 1.0, 1.0, None, None)

    monkeypatch.setattr(bench, "measure", measure)
    names = ("improved-native-depthwise", "improved", "improved-cudnn-depthwise")
    bench.run_benchmark(image_size=32, base_filters=4, models=names, peers=False, device="cpu")
    assert seen == {"improved-native-depthwise": "native", "improved": before,
                    "improved-cudnn-depthwise": "cudnn"}
    assert torch.backends.cudnn.depthwise_kernel == before


def test_a_variant_this_pytorch_cannot_run_is_refused_before_anything_is_timed(monkeypatch):
    from unet_lib import bench, variants
    from unet_lib.config import ConfigError

    monkeypatch.setattr(variants, "chooses_depthwise_kernel", lambda: False)  # PyTorch 2.11
    assert variants.available_variants() == ["improved-nchw-depthwise"]
    timed = []
    monkeypatch.setattr(bench, "measure", lambda name, *args, **kwargs: timed.append(name))
    for names, expected in ((("classic", "improved-cudnn-depthwise"), "from 2.13 on"),
                            (("classic", "improved-nhwc"), "unknown model 'improved-nhwc'")):
        with pytest.raises(ConfigError, match=expected) as error:
            bench.run_benchmark(image_size=32, base_filters=4, models=names, peers=False,
                                device="cpu")
        assert error.value.field == "models"
    assert timed == []  # the first, valid, name was not timed either


def test_cudnn_autotuning_is_on_while_timing_on_cuda_and_back_as_it_was_after():
    from unet_lib.runtime import cudnn_autotuning

    before = torch.backends.cudnn.benchmark
    try:
        for start in (False, True):
            torch.backends.cudnn.benchmark = start
            with pytest.raises(KeyError):  # put back when the timing fails too
                with cudnn_autotuning(torch.device("cuda")):
                    assert torch.backends.cudnn.benchmark is True
                    raise KeyError("a failed measurement")
            assert torch.backends.cudnn.benchmark is start
            with cudnn_autotuning(torch.device("cpu")):  # nothing to tune off CUDA
                assert torch.backends.cudnn.benchmark is start
    finally:
        torch.backends.cudnn.benchmark = before


def test_every_timing_of_a_benchmark_runs_with_cudnns_autotuning_as_fit_trains(monkeypatch):
    from contextlib import contextmanager

    from unet_lib import bench, fitbench, runtime

    inside, entered = [], []

    @contextmanager
    def recording(device):
        entered.append(device)
        inside.append(True)
        try:
            yield
        finally:
            inside.pop()

    def rate(step, images_per_step, steps, repeats, sync):
        timed.append(bool(inside))
        return 1.0

    monkeypatch.setattr(runtime, "cudnn_autotuning", recording)
    monkeypatch.setattr(bench, "_median_rate", rate)
    timed = []
    bench.measure("classic", bench.bench_model("classic", 4), 16, 2, torch.device("cpu"))
    assert timed == [True, True, True]  # training, inference, latency
    assert entered == [torch.device("cpu")] and not inside  # left after the timing

    entered.clear()
    steps = []
    monkeypatch.setattr(fitbench, "cudnn_autotuning", recording)
    monkeypatch.setattr(fitbench, "training_step", lambda *args: (
        lambda: steps.append(bool(inside)), None))
    fitbench.profile_step("classic", image_size=16, batch_size=2, base_filters=4, steps=2)
    assert steps == [True] * 5 and len(entered) == 1 and not inside  # warm-up and profiled


def _random_streams() -> tuple:
    """The states of Python's, NumPy's global and torch's CPU random streams."""
    import random

    import numpy as np

    return random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state()


@pytest.mark.parametrize("benchmark", ["bench", "profile", "fit"])
def test_benchmarks_leave_the_callers_random_streams_as_they_were(benchmark, tmp_path):
    # a notebook or script that times a model and then draws random numbers gets the same
    # numbers as without the timing (each benchmark seeds its models: that must stay inside)
    from unet_lib.fitbench import fit_vs_step, profile_step

    torch.manual_seed(123)
    before = _random_streams()
    if benchmark == "bench":
        run_benchmark(image_size=16, batch_size=1, device="cpu", steps=1, repeats=1,
                      peers=False, models=("classic",), base_filters=4)
    elif benchmark == "profile":
        profile_step("classic", image_size=16, batch_size=1, base_filters=4, steps=1)
    else:
        fit_vs_step("classic", "quick", epochs=1, phantom_home=tmp_path, n_volumes=4,
                    n_slices=4, image_size=16, base_filters=4, batch_size=4,
                    channels_last=False, test_fraction=0.0)
    after = _random_streams()
    assert after[0] == before[0] and after[1] == before[1]
    assert torch.equal(after[2], before[2])
