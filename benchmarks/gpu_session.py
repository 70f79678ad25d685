"""Every GPU check the project needs, in one command, in order of need, within a time budget.

A lent GPU comes for a few minutes at a time (15 minutes of device time a session, a start
included): this is the one script to run there, from the checkout (``PYTHONPATH`` = the
checkout; the machine's own PyTorch, NumPy, SciPy, h5py, tqdm, matplotlib and pytest are
enough, and the ``env`` step stops the session at once if one is missing; MONAI is not
needed)::

    PYTHONUNBUFFERED=1 python benchmarks/gpu_session.py "$OUT" --budget 560 \
        --work /tmp/gpu-session                                   # timeout_s 590
    python benchmarks/gpu_session.py OUT --tiny        # CPU rehearsal (tests/test_gpu_session.py)

The budget must end before the device tool stops the command: one command may run 600 s at
most, and the session's device time also pays a cold machine's start (one to two minutes).
Pass ``--budget`` = min(570, ``budget_left_s`` − 210) (``status`` gives ``budget_left_s``;
with a machine already warm, min(570, ``budget_left_s`` − 30)) and ``timeout_s`` =
``--budget`` + 30, so that the script's own budget runs out first and every step it started
writes its files.

Each step runs as a child process (and its own process group: a step stopped at its limit
leaves nothing running on the GPU) with its own time limit; a step that fails or runs out of
time is logged and the next one runs, and a step is not started when less time is left than
it needs. Each step writes its files after each model, so a step stopped part-way keeps what
it measured. The phantom and the reference's runs are kept in ``--work``: a second call with
the same ``--work`` (``--only fit bench profile``, or a retry) reuses the phantom, and the
reference resumes the models it had not finished. Everything lands flat in OUT (the device
tool brings back at most 8 files):

1. ``env``: the GPU, its driver, PyTorch and the commit (into ``session.log``); without a
   CUDA GPU the session stops here (the rest would measure the CPU at full size);
2. ``tests``: ``tests/test_cuda.py``: training and scoring on CUDA, and that neither makes
   the CPU wait for the GPU step by step (into ``session.log``);
3. ``bench``: the models of :data:`TIMED` with channels_last: images/s and share of the bf16
   peak (``bench.md``, ``bench.json``; targets: Classic ≥ 25 %, Improved ≥ 50 % of the
   Classic's images/s), the Improved U-Net with and without its depthwise convolutions in NCHW,
   and last, where PyTorch has ``torch.backends.cudnn.depthwise_kernel`` (2.13 on), under each
   of its kernel choices (:mod:`unet_lib.variants`); then, in the same process (cuDNN tuned
   already), the profile of :data:`PROFILED`;
4. ``reference``: ``unet-lib reference``, the slides' full configuration (``reference.json``,
   ``showcase.npz``, written after each model, so a step stopped at its limit keeps the models
   it finished: commit them as ``benchmarks/reference-<gpu>-<date>/``; target ≤ 6 min on an
   H100, phantom included);
5. ``fit``: ``fit()`` against the bare training step for :data:`FIT_MODELS`, two epochs of
   the reference's phantom (20 volumes of 240×240), both in the layout ``fit()`` picks
   (``fit.md``, ``fit.json``; target: 85 %);
6. ``profile``: that profile alone, for the models the bench step did not profile (those it
   did are kept): the CUDA kernels that take the Improved U-Net's (both ways) and the Classic
   U-Net's training step (``profile.md``).

A retry in what is left of the session: ``--only <the steps not finished> --budget <the
seconds left, less 40>`` with the same ``--work`` (``status`` says what is left; the machine
stays warm for 30 s only, and a later call starts a bare one without the phantom).

Results of the first run (one H200, 2026-11-27): ``benchmarks/h200-2026-11-27-session/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

#: (step, seconds it needs at least to be worth starting, seconds it may take at most), in
#: order of need. On one H200 (2026-11-27) tests took 21 s (3 tests then; 14 now, about a
#: dozen fit() calls: 45 to 75 s expected), profile 30 s, reference about 280 s (its first
#: run stopped at the last model's maps); fit needed more than 120 s with two models (one
#: now). An H100 is expected slower. The bench step comes before the reference: its answers
#: (the depthwise layout, the Improved U-Net's share of the Classic's speed) decide defaults
#: and take two minutes; the reference, which an H200 has run once already, gets what is
#: left and resumes its unfinished models in a retry. The reference makes the phantom (its
#: time counts in the reference's), and fit reuses it.
STEPS = [("env", 5, 30), ("tests", 30, 120), ("bench", 40, 180), ("reference", 120, 420),
         ("fit", 60, 200), ("profile", 45, 75)]

MODELS = ("classic", "improved", "attention")

#: what the fit step compares with its step: the Classic U-Net, the one fit() must feed
#: fastest (the Improved's costly first epoch, cuDNN's autotuning, is in the reference
#: bundle's history already; a second model cost a minute the bench step needs)
FIT_MODELS = ("classic",)

#: what the bench step times, the Improved U-Net first, with and without its depthwise
#: convolutions in NCHW (cuDNN's channels_last kernel took 30 % of its step: the question the
#: next run must answer), then the other presets
TIMED = ("improved", "improved-nchw-depthwise", "classic", "attention",
         # last, and only where PyTorch lets one choose the depthwise kernel (2.13 on; the
         # device machine had 2.11): PyTorch's own answer to the same question
         "improved-cudnn-depthwise", "improved-native-depthwise")

#: what the bench step then profiles, in the same process (cuDNN has chosen its algorithms for
#: these shapes by then: a process of its own would spend its first steps choosing again);
#: the profile step does the same alone, for a retry
PROFILED = ("improved-nchw-depthwise", "improved", "classic")


def sizes(tiny: bool) -> dict:
    """The sizes of every step: the slides' on a GPU (the reference run takes the ``full``
    scale's own phantom and epochs), a few seconds' worth for the rehearsal."""
    if tiny:
        return dict(image_size=32, batch_size=4, base_filters=4, n_volumes=4, n_slices=6,
                    epochs=1, scale="quick")
    return dict(image_size=240, batch_size=32, base_filters=32, scale="full")


def write_json_and_md(out: Path, stem: str, rows, markdown: str) -> None:
    """``stem.json`` and ``stem.md`` in ``out``, through temporary files: a step stopped while
    writing leaves the previous model's complete files, not half of the new ones."""
    written = []
    for suffix, text in ((".json", json.dumps(rows, indent=1)), (".md", markdown)):
        temporary = out / f".{stem}{suffix}.tmp"
        temporary.write_text(text)
        written.append((temporary, out / f"{stem}{suffix}"))
    for temporary, final in written:  # both written before either replaces its file
        temporary.replace(final)


def step_env(out: Path, tiny: bool, work: Path) -> None:
    import torch

    from unet_lib.reference import commit, machine

    print(json.dumps({**machine(), "commit": commit(), "cuda": torch.version.cuda,
                      "cudnn": torch.backends.cudnn.version(),
                      "cpus": os.cpu_count()}, indent=1))
    if shutil.which("nvidia-smi"):
        subprocess.run(["nvidia-smi"], check=False)
    # the loaders' readers pass batches through /dev/shm: missing or small, fewer readers
    subprocess.run(["df", "-h", "/dev/shm"], check=False)
    missing = []  # what the later steps import: fit() its progress bar, HD95 scipy
    for module in ("numpy", "scipy", "h5py", "tqdm", "matplotlib", "pytest"):
        try:
            print(module, __import__(module).__version__)
        except ImportError:
            missing.append(module)
    if missing:  # found now, not after the reference's first model has trained
        print(f"missing: {', '.join(missing)}: install them (pip install ...) and start again")
        raise SystemExit(4)
    if not tiny and not torch.cuda.is_available():  # the other steps would run on the CPU,
        print("no CUDA GPU: the session stops here")  # at full size, and report CPU figures
        raise SystemExit(3)


def step_tests(out: Path, tiny: bool, work: Path) -> None:
    # in this step's process group: stopped at the step's limit, pytest goes with it
    # each test named as it ends, a stuck one's traceback after 60 s: a step stopped at its
    # limit still says which test ran and where
    # where pytest-timeout is installed (the device's image has it), a stuck test is stopped
    # at 60 s and the others run; without it the step's own limit stops them all
    import importlib.util

    stop_stuck = (["-o", "timeout=60"] if importlib.util.find_spec("pytest_timeout") else [])
    result = subprocess.run([sys.executable, "-m", "pytest", "-v", "-rfEs", "--tb=short",
                             "--durations=0", *stop_stuck,
                             "-p", "no:cacheprovider", "-o", "faulthandler_timeout=60",
                             str(ROOT / "tests" / "test_cuda.py")], cwd=ROOT,
                            preexec_fn=_die_with_parent)
    if result.returncode:
        raise SystemExit(result.returncode)


def step_fit(out: Path, tiny: bool, work: Path) -> None:
    from unet_lib.fitbench import fit_report, fit_vs_step

    size = sizes(tiny)
    # the reference's phantom (made once in work/data), or the rehearsal's
    phantom = phantom_changes(tiny)
    rows = []
    for name in FIT_MODELS:
        rows.append(fit_vs_step(name, size["scale"], epochs=2, phantom_home=work / "data",
                                **phantom, test_fraction=0.0))
        print(rows[-1], flush=True)
        write_json_and_md(out, "fit", rows, fit_report(rows))  # after each model
    print((out / "fit.md").read_text())


def phantom_changes(tiny: bool) -> dict:
    """The changes to the scale's settings and phantom that every step makes: none on a GPU
    (the ``full`` scale's own 20 volumes, 240×240, batch 32, 32 filters), tiny ones for the
    rehearsal. The same for the reference and fit steps, so that they share one phantom."""
    size = sizes(tiny)
    keys = ("image_size", "batch_size", "base_filters", "n_volumes", "n_slices")
    return {k: size[k] for k in keys} if tiny else {}


def step_reference(out: Path, tiny: bool, work: Path) -> None:
    from unet_lib.reference import BUNDLE, run_reference

    size = sizes(tiny)
    changes = {**phantom_changes(tiny), **({"epochs": size["epochs"]} if tiny else {})}
    # runs and phantom in work (a retry resumes them); the bundle, after each model, in OUT
    run_reference(out, scale=size["scale"], work=work, **changes)
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


def step_profile(out: Path, tiny: bool, work: Path) -> None:
    from unet_lib.fitbench import profile_step

    done = out / "profile.md"
    text = done.read_text() if done.is_file() else ""  # the models the bench step profiled
    if all(f"## {name}:" in text for name in PROFILED):
        print("profile.md holds every profiled model already (the bench step's)")
        return
    size = sizes(tiny)
    parts = [text.rstrip("\n")] if text else []
    for name in PROFILED:
        if f"## {name}:" in text:
            continue  # kept, not measured again
        parts.append(profile_step(name, size["image_size"], size["batch_size"],
                                  size["base_filters"]))
        temporary = out / ".profile.md.tmp"  # after each model
        temporary.write_text("\n".join(parts))
        temporary.replace(out / "profile.md")
    print((out / "profile.md").read_text())


def step_bench(out: Path, tiny: bool, work: Path) -> None:
    import torch

    from unet_lib.bench import format_table, run_benchmark
    from unet_lib.variants import VARIANTS, available_variants

    size = sizes(tiny)
    result = None
    for name in TIMED:  # one model at a time, the files rewritten after each
        if name in VARIANTS and name not in available_variants():
            print(f"bench: {name} skipped: PyTorch {torch.__version__} cannot run it", flush=True)
            continue
        # channels_last as fit() on CUDA; no torch.compile: compiling every model outlasts
        # the step (the H200 tables of 2026-11-27 have the compiled figures)
        try:
            one = run_benchmark(image_size=size["image_size"], batch_size=size["batch_size"],
                                base_filters=size["base_filters"], steps=1 if tiny else 5,
                                repeats=1 if tiny else 3, peers=False, channels_last=True,
                                models=(name,))
        except Exception as error:  # one model's failure leaves the others to measure
            print(f"bench: {name} failed: {type(error).__name__}: {error}", flush=True)
            continue
        result = one if result is None else {**result, "rows": result["rows"] + one["rows"]}
        write_json_and_md(out, "bench", result, format_table(result))
    if result is None:
        raise SystemExit("bench: no model could be timed")
    print(format_table(result))
    step_profile(out, tiny, work)  # the same shapes, already tuned: see PROFILED


def child_env() -> dict:
    """The environment of a step: unbuffered output, the checkout first on the path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


def _die_with_parent() -> None:
    """In a step's process, on Linux: be killed when the session's process dies, even by a
    SIGKILL that gives it no chance to stop its step (a step in a session of its own would
    otherwise go on using the GPU, and hold the reference's run folder)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_step(command: list[str], sink, limit: float) -> str:
    """Run ``command`` in a process group of its own for at most ``limit`` seconds; stopped
    there, the whole group is killed (pytest's or a DataLoader's processes included)."""
    child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=child_env(),
                             start_new_session=True, preexec_fn=_die_with_parent)
    try:
        code = child.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        return "stopped at its time limit"
    except BaseException:  # Ctrl-C or SIGTERM to this process: its step goes with it
        os.killpg(child.pid, signal.SIGKILL)
        raise
    try:  # whatever the step left behind (a worker that outlived it)
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return "ok" if code == 0 else f"failed (exit {code})"


@contextlib.contextmanager
def _no_temporaries_left(out: Path):
    """Remove the temporary files a write cut short left in ``out``, also when the session
    itself is stopped (a SIGTERM unwinds to here): they are not among the 8 files to bring
    back, and would crowd one out."""
    try:
        yield
    finally:
        remove_temporaries(out)


def remove_temporaries(out: Path) -> None:
    """The temporary files of writes cut short (:func:`write_json_and_md`), out of ``out``."""
    for temporary in out.glob(".*.tmp"):
        temporary.unlink(missing_ok=True)


def run_steps(out: Path, budget: float, tiny: bool, only: list[str] | None,
              work: Path) -> int:
    """Run each step in a child process within what is left of ``budget`` seconds; log to
    ``out/session.log``. Returns the number of steps that failed or were not run."""
    deadline = time.monotonic() + budget
    log = out / "session.log"
    missed = 0
    with log.open("a") as sink, _no_temporaries_left(out):
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
            command = [sys.executable, __file__, str(out), "--step", name,
                       "--work", str(work)] + (["--tiny"] if tiny else [])
            status = run_step(command, sink, limit)
            missed += status != "ok"
            remove_temporaries(out)  # a write cut short: not one of the 8 files
            say(f"== {name}: {status} in {time.monotonic() - started:.0f} s")
            if name == "env" and status != "ok":  # no GPU, or no PyTorch: nothing to measure
                say("== the other steps are not started: see the env step above")
                return missed + sum(1 for step, _, _ in STEPS
                                    if step != "env" and (not only or step in only))
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
    parser.add_argument("--work", type=Path,
                        help="where the phantom and the reference's runs are kept, for a "
                             "second call to reuse (default: a temporary folder, removed)")
    parser.add_argument("--step", choices=[name for name, _, _ in STEPS],
                        help=argparse.SUPPRESS)  # one step, in this process (the children)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step:
        globals()[f"step_{args.step}"](args.out, args.tiny, args.work)
        return 0
    # a SIGTERM (a timeout's) unwinds like Ctrl-C: run_step then stops the step it runs
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        return 1 if run_steps(args.out, args.budget, args.tiny, args.only, args.work) else 0
    with tempfile.TemporaryDirectory(prefix="gpu-session-") as work:
        return 1 if run_steps(args.out, args.budget, args.tiny, args.only, Path(work)) else 0


if __name__ == "__main__":
    sys.exit(main())
