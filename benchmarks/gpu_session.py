"""Every GPU check the project needs, in one command, in order of need, within a time budget.

A lent GPU comes for a few minutes at a time (15 minutes of device time a session, a start
included): this is the one script to run there, from the checkout (``PYTHONPATH`` = the
checkout; the machine's own PyTorch, h5py, matplotlib and pytest are enough; MONAI is not
needed)::

    PYTHONUNBUFFERED=1 python benchmarks/gpu_session.py "$OUT" --budget 540   # timeout_s 570
    python benchmarks/gpu_session.py OUT --tiny        # CPU rehearsal (tests/test_gpu_session.py)

Each step runs as a child process with its own time limit; a step that fails or runs out of
time is logged and the next one runs, and a step is not started when less time is left than
it needs. Everything lands flat in OUT (the device tool brings back at most 8 files):

1. ``env``: the GPU, its driver, PyTorch and the commit (into ``session.log``);
2. ``tests``: ``tests/test_cuda.py``: training and scoring on CUDA, and that neither makes
   the CPU wait for the GPU step by step (into ``session.log``);
3. ``reference``: ``unet-lib reference``, the slides' full configuration (``reference.json``,
   ``showcase.npz``, written after each model, so a step stopped at its limit keeps the models
   it finished: commit them as ``benchmarks/reference-<gpu>-<date>/``; target ≤ 6 min on an
   H100, phantom included);
4. ``bench``: the models of :data:`TIMED` with channels_last: images/s and share of the bf16
   peak (``bench.md``, ``bench.json``; targets: Classic ≥ 25 %, Improved ≥ 50 % of the
   Classic's images/s), the Improved U-Net with and without its depthwise convolutions in NCHW;
5. ``fit``: ``fit()`` against the bare training step for :data:`FIT_MODELS`, two epochs of an
   8-volume 240×240 phantom, both in the layout ``fit()`` picks (``fit.md``, ``fit.json``;
   target: 85 %);
6. ``profile``: the CUDA kernels that take the Improved U-Net's (both ways) and the Classic
   U-Net's training step (``profile.md``).

Results of the first run (one H200, 2026-11-27): ``benchmarks/h200-2026-11-27-session/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

#: (step, seconds it needs at least to be worth starting, seconds it may take at most), in
#: order of need. On one H200 (2026-11-27) tests took 21 s, profile 30 s, reference about
#: 280 s (its first run stopped at the last model's maps); fit needed more than 120 s.
STEPS = [("env", 5, 30), ("tests", 30, 90), ("reference", 120, 420), ("bench", 40, 150),
         ("fit", 60, 200), ("profile", 20, 75)]

MODELS = ("classic", "improved", "attention")

#: what the fit step compares with its step: the Classic U-Net is the one fit() must feed
#: fastest, the Improved the one with the costliest first epoch (cuDNN's autotuning)
FIT_MODELS = ("classic", "improved")

#: what the bench and profile steps time: the presets and the Improved U-Net with its
#: depthwise convolutions in NCHW (cuDNN's channels_last kernel took 30 % of its step)
TIMED = ("classic", "improved", "improved-nchw-depthwise", "attention")


def sizes(tiny: bool) -> dict:
    """The sizes of every step: the slides' on a GPU (the reference run takes the ``full``
    scale's own phantom and epochs), a few seconds' worth for the rehearsal."""
    if tiny:
        return dict(image_size=32, batch_size=4, base_filters=4, n_volumes=4, n_slices=6,
                    epochs=1, scale="quick")
    return dict(image_size=240, batch_size=32, base_filters=32, scale="full")


def step_env(out: Path, tiny: bool) -> None:
    import torch

    from unet_lib.reference import commit, machine

    print(json.dumps({**machine(), "commit": commit(), "cuda": torch.version.cuda,
                      "cudnn": torch.backends.cudnn.version(),
                      "cpus": os.cpu_count()}, indent=1))
    if shutil.which("nvidia-smi"):
        subprocess.run(["nvidia-smi"], check=False)


def step_tests(out: Path, tiny: bool) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(ROOT / "tests" / "test_cuda.py")], cwd=ROOT)
    if result.returncode:
        raise SystemExit(result.returncode)


def step_fit(out: Path, tiny: bool) -> None:
    from unet_lib.fitbench import fit_report, fit_vs_step

    size = sizes(tiny)
    volumes, slices = (3, 6) if tiny else (8, 155)
    with tempfile.TemporaryDirectory() as data:
        rows = []
        for name in FIT_MODELS:
            rows.append(fit_vs_step(name, size["scale"], epochs=2, data_dir=data,
                                    n_volumes=volumes, n_slices=slices,
                                    image_size=size["image_size"],
                                    batch_size=size["batch_size"],
                                    base_filters=size["base_filters"], test_fraction=0.0))
            print(rows[-1], flush=True)
    (out / "fit.json").write_text(json.dumps(rows, indent=1))
    (out / "fit.md").write_text(fit_report(rows))
    print((out / "fit.md").read_text())


def step_reference(out: Path, tiny: bool) -> None:
    from unet_lib.reference import BUNDLE, run_reference

    size = sizes(tiny)
    changes = {}
    if tiny:  # the full scale's own settings otherwise
        changes = {k: size[k] for k in ("image_size", "batch_size", "base_filters",
                                        "n_volumes", "n_slices", "epochs")}
    with tempfile.TemporaryDirectory() as scratch:  # runs and phantom; the bundle goes to OUT
        run_reference(out, scale=size["scale"], work=scratch, **changes)  # after each model
    summary = json.loads((out / BUNDLE).read_text())
    stages = summary["stages"]
    print(f"reference: {summary['seconds']:.0f} s on {summary['machine']['device']} (making "
          f"the data {stages['data']:.0f} s, holding it on the device {stages['upload']:.0f} s)")
    for name, entry in summary["models"].items():
        dice = entry["test"]["all_pixels"]["dice"]
        print(f"  {name}: {entry['seconds']:.0f} s training (first epoch "
              f"{entry['history'][0]['seconds']:.1f} s), {entry['scoring_seconds']:.0f} s "
              f"scoring, best epoch {entry['best_epoch']}, "
              + ", ".join(f"{k} {v:.3f}" for k, v in dice.items()))


def step_profile(out: Path, tiny: bool) -> None:
    from unet_lib.fitbench import profile_step

    size = sizes(tiny)
    parts = [profile_step(name, size["image_size"], size["batch_size"], size["base_filters"])
             for name in ("improved", "improved-nchw-depthwise", "classic")]
    (out / "profile.md").write_text("\n".join(parts))
    print((out / "profile.md").read_text())


def step_bench(out: Path, tiny: bool) -> None:
    from unet_lib.bench import format_table, run_benchmark, write_result

    size = sizes(tiny)
    # channels_last as fit() on CUDA; no torch.compile: compiling four models outlasts the
    # step (the H200 tables of 2026-11-27 have the compiled figures)
    result = run_benchmark(size=size["image_size"], batch=size["batch_size"],
                           base_filters=size["base_filters"], steps=1 if tiny else 5,
                           repeats=1 if tiny else 3, peers=False, channels_last=True,
                           models=TIMED)
    write_result(result, out / "bench.md")
    print(format_table(result))


def child_env() -> dict:
    """The environment of a step: unbuffered output, the checkout first on the path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


def run_steps(out: Path, budget: float, tiny: bool, only: list[str] | None) -> int:
    """Run each step in a child process within what is left of ``budget`` seconds; log to
    ``out/session.log``. Returns the number of steps that failed or were not run."""
    deadline = time.monotonic() + budget
    log = out / "session.log"
    missed = 0
    with log.open("a") as sink:
        def say(text: str) -> None:
            print(text, flush=True)
            sink.write(text + "\n")
            sink.flush()

        for name, least, most in STEPS:
            if only and name not in only:
                continue
            left = deadline - time.monotonic()
            if left < least:
                say(f"== {name}: not started, {left:.0f} s left of the budget (needs {least})")
                missed += 1
                continue
            limit = min(most, left)
            say(f"== {name} (at most {limit:.0f} s)")
            started = time.monotonic()
            command = [sys.executable, __file__, str(out), "--step", name] + (
                ["--tiny"] if tiny else [])
            try:
                done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT,
                                      timeout=limit, env=child_env())
                status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            except subprocess.TimeoutExpired:
                status = "stopped at its time limit"
            missed += status != "ok"
            for temporary in out.glob(".*.tmp"):  # a write cut short: not one of the 8 files
                temporary.unlink()
            say(f"== {name}: {status} in {time.monotonic() - started:.0f} s")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--budget", type=float, default=540,
                        help="seconds for all the steps together (default 540)")
    parser.add_argument("--tiny", action="store_true", help="small sizes, for a CPU rehearsal")
    parser.add_argument("--only", nargs="+", choices=[name for name, _, _ in STEPS],
                        help="run only these steps (a retry of what did not finish)")
    parser.add_argument("--step", choices=[name for name, _, _ in STEPS],
                        help=argparse.SUPPRESS)  # one step, in this process (the children)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step:
        globals()[f"step_{args.step}"](args.out, args.tiny)
        return 0
    missed = run_steps(args.out, args.budget, args.tiny, args.only)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
