"""Where and how tensors run: the device, the CPU threads, seeds, mixed precision,
``torch.compile``."""

from __future__ import annotations

import functools
import os
import random
import warnings
from contextlib import contextmanager, nullcontext
from typing import Callable

import numpy as np
import torch
from torch import nn


def pick_device(preference: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, then Apple MPS, else the CPU; otherwise ``preference``."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


#: the environment variables that set PyTorch's CPU threads: where one is set, it was chosen
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def threads_within_usable_cores(report: Callable[[str], None] = print) -> int | None:
    """Lower PyTorch's CPU threads to the cores this process may use, where it would run more.

    PyTorch starts one thread per physical core it may run on: it follows a ``taskset``, but
    not a container's CPU quota. A JupyterHub pod limited to 2 CPUs on a node of 32 physical
    cores starts 32 threads, which the quota stops whenever they have spent its 2 CPUs' share;
    each step waits for the slowest. (Run on 2 cores, 32 threads made a quick-scale training
    step 7 to 11 times slower than 2: ``benchmarks/threads-cpu.md``; a quota was not measured.)
    The entry points call this (``setup`` in chapters 4–9, the ``unet-lib`` commands); a
    script of one's own may too. Nothing changes where ``$OMP_NUM_THREADS`` or
    ``$MKL_NUM_THREADS`` is set (a choice, as ``torchrun`` makes one) or where PyTorch runs no
    more threads than :func:`~unet_lib.parallel.usable_cores`.

    Returns:
        The new number of threads, or ``None`` where nothing changed; ``report`` is given a
        line saying what changed and why.
    """
    from .parallel import usable_cores

    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return None
    cores, threads = usable_cores(), torch.get_num_threads()
    if threads <= cores:
        return None
    torch.set_num_threads(cores)
    report(f"PyTorch would compute with {threads} threads on the {cores} CPU"
           f"{'s' * (cores != 1)} this process may use (a container's CPU limit): it now uses "
           f"{cores}, as more threads than CPUs make each step several times slower (to choose "
           f"another count: torch.set_num_threads(n) after this, or OMP_NUM_THREADS before "
           f"Python starts)")
    return cores


def resolve_device(device: torch.device | str | None) -> torch.device:
    """The device a predicting or scoring function runs on: ``None`` or ``"auto"`` as
    :func:`pick_device` chooses; a name (``"cpu"``, ``"cuda:1"``) is checked first.

    Raises:
        ConfigError: ``device`` is not a device name, or names one not present here.
    """
    from .config import check_device  # config imports the models; they import nothing here

    device = "auto" if device is None else str(device)
    check_device(device)
    return pick_device(device)


class CompiledWithFallback(nn.Module):
    """``torch.compile(model)`` that falls back to ``model`` itself, with a warning, when
    compiling fails — which it does at the first call, not when ``torch.compile`` returns.

    The backward graph is compiled inside each call that compiles (with gradients on): left
    to itself PyTorch compiles a static graph's backward lazily, at the first ``backward()``,
    where a compiler failure would stop training instead of falling back. Each new batch size
    compiles anew (a split's smaller last batch), so a compiler failure on a later call falls
    back too."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.eager = model
        self.checked = False
        try:
            # static shapes: a split's smaller last batch gets a graph of its own instead
            # of turning every batch size into a symbol (slower kernels for the full ones)
            self.compiled = torch.compile(model, dynamic=False)
        except Exception as error:  # no compiler toolchain, unsupported platform, ...
            self._fall_back(error)

    def _fall_back(self, error: Exception) -> None:
        cause = getattr(error, "inner_exception", None) or error  # dynamo wraps the compiler's
        first_line = (str(cause).strip().splitlines() or [""])[0]
        warnings.warn(f"torch.compile failed ({type(cause).__name__}: {first_line}); training "
                      "without it", RuntimeWarning, stacklevel=3)
        self.compiled, self.checked = self.eager, True

    def forward(self, *args, **kwargs):
        if self.compiled is self.eager:
            return self.eager(*args, **kwargs)
        # the first call may fail in many ways (no compiler, an unsupported platform); later
        # ones, recompiling for a new shape, by a compiler error only
        expected = (torch._dynamo.exc.BackendCompilerFailed if self.checked else Exception)
        try:
            with _backward_compiled_with_forward():
                output = self.compiled(*args, **kwargs)
        except expected as error:
            if is_out_of_memory(error):  # the batch, not the compiler: fit() says so
                raise
            self._fall_back(error)
            output = self.eager(*args, **kwargs)
        # a call without gradients compiles no backward: the first training call checks that
        self.checked = self.checked or torch.is_grad_enabled()
        return output


def _backward_compiled_with_forward():
    """A context in which ``torch.compile`` compiles a graph's backward with its forward (the
    AOTAutograd setting ``force_non_lazy_backward_lowering``; a no-op where this PyTorch
    lacks it)."""
    from torch._functorch import config as functorch_config

    if not hasattr(functorch_config, "force_non_lazy_backward_lowering"):
        return nullcontext()
    return functorch_config.patch(force_non_lazy_backward_lowering=True)


def compile_model(model: nn.Module) -> nn.Module:
    """``model`` compiled with ``torch.compile``, falling back to eager where that fails."""
    return CompiledWithFallback(model)


def memory_format(channels_last: bool | None, device: torch.device) -> torch.memory_format:
    """The layout of images and weights for a ``channels_last`` setting (``TrainConfig``'s):
    ``None`` means NHWC (channels_last) on a CUDA GPU, where cuDNN's convolutions run faster in
    it, and NCHW elsewhere; ``True``/``False`` as given. ``fit()`` and the benchmark that
    compares with it both decide here, so that they time the same thing."""
    wanted = device.type == "cuda" if channels_last is None else channels_last
    return torch.channels_last if wanted else torch.contiguous_format


def layout_of(model: nn.Module) -> torch.memory_format:
    """The layout ``model``'s convolution weights are stored in: channels_last after
    ``model.to(memory_format=torch.channels_last)`` (as :func:`~unet_lib.train.fit` leaves a
    model it trained in NHWC), else NCHW. Images fed in the same layout spare cuDNN a
    transpose before and after every convolution. Judged on the first weight of 4 dimensions
    whose two layouts differ (a 1×1 or single-input-channel kernel looks like both)."""
    for weight in model.parameters():
        if weight.dim() == 4 and weight.shape[1] > 1 and weight.shape[2] * weight.shape[3] > 1:
            nhwc = weight.is_contiguous(memory_format=torch.channels_last)
            return torch.channels_last if nhwc else torch.contiguous_format
    return torch.contiguous_format


def moved(tensor: torch.Tensor, device: torch.device,
          memory_format: torch.memory_format = torch.preserve_format) -> torch.Tensor:
    """``tensor`` on ``device``, copied without waiting only onto a CUDA GPU: there the
    GPU's own stream orders the copy before whatever uses it. A copy from a GPU to the CPU
    that did not wait would hand the CPU a buffer still being filled."""
    return tensor.to(device, non_blocking=device.type == "cuda", memory_format=memory_format)


def tally_device(device: torch.device) -> torch.device:
    """Where running sums (losses, Dice counts) are kept, in float64: on a CUDA GPU itself, so
    that adding to them never makes the CPU wait for the GPU; elsewhere on the CPU (Apple's
    MPS has no float64)."""
    return device if device.type == "cuda" else torch.device("cpu")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a GPU out of memory: CUDA's own error, or the ``RuntimeError``
    Apple's MPS raises ("MPS backend out of memory")."""
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "MPS backend out of memory" in str(error))


def waiting_for(device: torch.device) -> Callable[[], None]:
    """The call that waits until ``device`` has done the work queued so far (a GPU runs behind
    the Python that queues its work: a timing must wait for it): CUDA's or Apple MPS's
    ``synchronize``; nothing to wait for on the CPU."""
    if device.type == "cuda":
        return functools.partial(torch.cuda.synchronize, device)  # that GPU, not the current
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def float64_home(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` where float64 sums of it can be made: on its own device, or copied to the CPU
    from Apple's MPS, which has no float64 (``.double()`` there raises ``TypeError``)."""
    return tensor.cpu() if tensor.device.type == "mps" else tensor


def same_device(device: torch.device | str) -> torch.device:
    """``device`` as tensors report theirs, to compare with: ``"cuda"`` is the current GPU,
    ``cuda:0`` when nothing else was chosen (``torch.device("cuda") != "cuda:0"``)."""
    return torch.empty(0, device=device).device


@contextmanager
def running_on(model: nn.Module, device: torch.device):
    """``model`` in eval mode on ``device`` inside the block, and back on the device and in
    the mode it came with after it (a caller's model stays as the caller left it: one being
    trained keeps training its batch norm)."""
    home = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.to(device).eval()
    try:
        yield model
    finally:
        model.to(home).train(was_training)


@contextmanager
def randomness_kept():
    """Run the block without changing its caller's random streams: Python's, NumPy's global
    one and torch's (the CPU's, and each GPU's, CUDA or Apple MPS) are, after it, as they were
    before, however the block seeded or drew from them, and if it raised (a notebook's next
    ``torch.rand`` is the same whether a cell trained a model or loaded it). A CUDA GPU not yet
    in use is left so (its stream is not read, which would start CUDA on every GPU)."""
    python, numpy = random.getstate(), np.random.get_state()
    gpu = torch.accelerator.current_accelerator()  # cuda, mps or None
    in_use = gpu is not None and (gpu.type != "cuda" or torch.cuda.is_initialized())
    try:
        with torch.random.fork_rng(devices=range(torch.accelerator.device_count()) if in_use
                                   else [], device_type=gpu.type if gpu else None):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The mixed-precision dtype for ``amp`` on ``device``: bfloat16 or float16 on CUDA, else
    ``None`` (float32)."""
    if not amp or device.type != "cuda":
        return None
    # bfloat16 where the GPU computes in it (Ampere and later); older GPUs (V100, T4) would
    # only emulate it, slowly: they get float16 with loss scaling
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native else torch.float16


def autocast(device: torch.device, amp: bool):
    """Mixed-precision context for ``amp`` on CUDA (bfloat16 where supported, else float16);
    a no-op elsewhere."""
    dtype = autocast_dtype(device, amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def autotuning_allowed(device: torch.device) -> bool:
    """Whether cuDNN may time its convolution algorithms once per shape on ``device``: on a
    CUDA GPU, unless asked to repeat exactly (deterministic algorithms)."""
    return device.type == "cuda" and not (torch.are_deterministic_algorithms_enabled()
                                          or torch.backends.cudnn.deterministic)


@contextmanager
def cudnn_autotuning(device: torch.device):
    """cuDNN's autotuning (``cudnn.benchmark``) on inside the block where
    :func:`autotuning_allowed` says so, as :func:`~unet_lib.train.fit` trains there, and the
    flag back as it was after (a benchmark that left it on would have cuDNN time its
    algorithms in every later convolution of the process, FLOP-counting passes included)."""
    before = torch.backends.cudnn.benchmark
    if autotuning_allowed(device):
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


@contextmanager
def tuned_for_full_batches(batch: int, full: int):
    """cuDNN's autotuning (``cudnn.benchmark``, on while :func:`~unet_lib.train.fit` runs on a
    CUDA GPU) for batches of ``full`` items only: a smaller ``batch`` runs inside the block with
    the algorithms cuDNN's heuristics pick, and the flag is back as it was after.

    With autotuning cuDNN times every algorithm of every convolution, forward and backward,
    the first time it meets a shape, and each batch size is a new shape. A split's last batch
    is usually smaller (930 slices in batches of 32 end with 2 of them; a volume's 155 slices
    with 27), so it would cost one more tuning per odd size, each about as long as tuning the
    full batch: on the H200 the Improved U-Net's first epoch took 31.5 s and each later one
    2.6 s (``benchmarks/reference-h200-2026-11-27``). One batch an epoch without tuning costs
    little even where the heuristics choose a slower algorithm.
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before and batch >= full
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
