"""A CPU rehearsal of ``benchmarks/gpu_session.py``, the one command a lent GPU runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unet_lib.reference import read_reference
from unet_lib.variants import chooses_depthwise_kernel

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.py"


def session(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_every_step_runs_and_leaves_at_most_eight_flat_files(tmp_path):
    done = session(tmp_path / "out", "--tiny", "--budget", "500")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(["session.log", "fit.md", "fit.json", "reference.json",
                            "showcase.npz", "profile.md", "bench.md", "bench.json"])
    log = (tmp_path / "out" / "session.log").read_text()
    for step in ("env", "tests", "fit", "reference", "profile", "bench"):
        assert f"== {step}: ok" in log, step
    fits = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert [row["model"] for row in fits] == ["classic"]
    assert all(row["ratio"] > 0 for row in fits)
    bundle, showcase = read_reference(tmp_path / "out")
    assert set(bundle["models"]) == {"classic", "improved", "attention"}
    assert "probs_improved" in showcase and "attention_attention_0" in showcase
    profile = (tmp_path / "out" / "profile.md").read_text()
    assert profile.count("## ") == 3 and "convolution" in profile  # improved both ways, classic
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    # the Improved U-Net both ways first: the question the next GPU run must answer; PyTorch's
    # own depthwise kernel choices last, where this PyTorch has them
    timed = ["improved", "improved-nchw-depthwise", "classic", "attention"]
    if chooses_depthwise_kernel():
        timed += ["improved-cudnn-depthwise", "improved-native-depthwise"]
    else:
        assert "improved-native-depthwise skipped: PyTorch" in log
    assert [row["model"] for row in bench["rows"]] == timed


def test_without_a_cuda_gpu_the_session_stops_after_its_env_step(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    done = session(tmp_path / "out", "--budget", "120", "--only", "env", "tests")
    assert done.returncode == 1
    log = (tmp_path / "out" / "session.log").read_text()
    assert "== env: failed (exit 3)" in log and "no CUDA GPU" in log
    assert "the other steps are not started" in log and "== tests (" not in log


def test_the_profile_step_keeps_the_models_the_bench_step_profiled(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    kept = "## improved-nchw-depthwise: from the bench step\n\n## improved: from it too\n"
    (out / "profile.md").write_text(kept)
    done = session(out, "--tiny", "--budget", "200", "--only", "profile")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    profile = (out / "profile.md").read_text()
    assert profile.startswith(kept.rstrip("\n"))  # not measured again, not lost
    assert profile.count("## ") == 3 and "## classic:" in profile


def test_a_step_is_not_started_without_the_time_it_needs(tmp_path):
    done = session(tmp_path / "out", "--tiny", "--budget", "3", "--only", "env", "tests")
    assert done.returncode == 1
    log = (tmp_path / "out" / "session.log").read_text()
    assert "== env: not started, 3 s left of the budget (needs 5)" in log
    assert "== tests: not started" in log
    assert not (tmp_path / "out" / "fit.json").exists()


def test_a_step_stopped_at_its_limit_takes_its_own_children_with_it(tmp_path):
    import importlib.util
    import os
    import time

    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pid_file = tmp_path / "grandchild.pid"
    # a step that starts a process of its own (as pytest or a DataLoader would) and hangs
    step = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    with (tmp_path / "log").open("w") as sink:
        status = module.run_step([sys.executable, "-c", step], sink, limit=5)
    assert status == "stopped at its time limit"
    grandchild = int(pid_file.read_text())
    for _ in range(50):  # killed at once; reaped by init within moments
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process {grandchild}, started by the step, outlived it")


@pytest.mark.slow
def test_a_second_call_with_the_same_work_folder_keeps_the_trained_models(tmp_path):
    work = tmp_path / "work"
    for out in ("first", "second"):
        done = session(tmp_path / out, "--tiny", "--only", "reference", "--work", str(work))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (tmp_path / "second" / "session.log").read_text()
    for name in ("classic", "improved", "attention"):
        assert f"the {name} U-Net in" in log and "is trained already: kept" in log, name
    assert set(read_reference(tmp_path / "second")[0]["models"]) == {"classic", "improved",
                                                                     "attention"}


def test_a_session_stopped_by_sigterm_leaves_no_temporary_file_among_its_files(tmp_path):
    import signal
    import time

    out = tmp_path / "out"
    out.mkdir()
    (out / ".bench.json.tmp").write_text("{")  # as a write cut short by the stop leaves it
    running = subprocess.Popen([sys.executable, str(SCRIPT), str(out), "--tiny", "--budget",
                                "300", "--only", "reference"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(1)  # inside the reference step (its process still importing torch)
    running.send_signal(signal.SIGTERM)
    assert running.wait(timeout=60) != 0
    assert not list(out.glob(".*.tmp"))


def test_on_a_pytorch_without_the_depthwise_switch_the_bench_step_skips_those_variants(
        tmp_path, monkeypatch, capsys):
    """The device machine's PyTorch (2.11) has no torch.backends.cudnn.depthwise_kernel: the
    bench step times the other models and says which it skipped."""
    import importlib.util

    from unet_lib import bench, variants

    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(variants, "chooses_depthwise_kernel", lambda: False)
    timed = []

    def run_benchmark(models, **kwargs):  # what the step asks for, one model at a time
        timed.extend(models)
        return {"machine": "test", "torch": "2.11", "size": 32, "batch": 4, "steps": 1,
                "repeats": 1, "speedups": {},
                "rows": [dict(model=models[0], parameters=1, gflops_forward=1.0,
                              train_images_per_s=1.0, infer_images_per_s=1.0, latency_ms=1.0,
                              peak_memory_mib=None, share_of_peak=None)]}

    monkeypatch.setattr(bench, "run_benchmark", run_benchmark)
    monkeypatch.setattr(module, "step_profile", lambda out, tiny, work: None)
    module.step_bench(tmp_path, tiny=True, work=tmp_path)
    assert timed == ["improved", "improved-nchw-depthwise", "classic", "attention"]
    said = capsys.readouterr().out
    assert "bench: improved-cudnn-depthwise skipped: PyTorch" in said
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [row["model"] for row in rows] == timed
