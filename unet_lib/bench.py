"""Speed and size of the three U-Nets beside their closest peers in MONAI, in one run.

``unet-lib bench`` (or :func:`run_benchmark`) measures, for each model:

* parameters, and forward FLOPs per image (``torch.utils.flop_counter``; a training step is
  counted as 3× forward, since the counter miscounts depthwise convolutions' backward);
* training throughput: images/s of forward + backward + AdamW step at ``batch_size``;
* inference throughput at ``batch_size`` and latency at batch 1;
* peak GPU memory of a training step, and on a GPU with a known peak rate the share of the
  dense bf16 peak that training reaches.

On CUDA it lets cuDNN time its convolution algorithms (``cudnn.benchmark``), as ``fit()`` does
(the H200 tables of 2026-11-27 were measured before, with cuDNN's heuristic choice).

Each figure is the median of ``repeats`` timed runs after a warm-up. Machines are noisy: compare
ratios from one run (``vs peer`` columns), not figures from different runs. The peers are
MONAI's ``BasicUNet`` (features 32-64-128-256-512, for the Classic U-Net) and ``AttentionUnet``
(channels 32-64-128-256-512, strides 2, for the Attention U-Net), 4 → 3 channels; MONAI is
optional (``pip install monai``), without it the peers are left out.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .models import count_parameters
from .variants import bench_model, variant_of, variant_setting

#: Dense bf16 peak FLOP/s of GPUs the course meets, for the "share of peak" column.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12,
             "T4": 65e12, "V100": 125e12, "RTX 4090": 165e12}

#: Which peer each of our models is compared with.
PEERS = {"classic": "monai BasicUNet", "attention": "monai AttentionUnet"}


@dataclass
class BenchRow:
    """One model's measurements. Times in seconds, rates in images/s, memory in MiB."""

    model: str
    parameters: int
    gflops_forward: float
    train_images_per_s: float
    infer_images_per_s: float
    latency_ms: float
    peak_memory_mib: float | None
    share_of_peak: float | None


def peer_models() -> dict[str, Callable[[], nn.Module]]:
    """MONAI's counterparts, or an empty dict when MONAI is not installed."""
    try:
        from monai.networks.nets import AttentionUnet, BasicUNet
    except ImportError:
        return {}
    return {
        "monai BasicUNet": lambda: BasicUNet(spatial_dims=2, in_channels=4, out_channels=3,
                                             features=(32, 64, 128, 256, 512, 32)),
        "monai AttentionUnet": lambda: AttentionUnet(spatial_dims=2, in_channels=4,
                                                     out_channels=3,
                                                     channels=(32, 64, 128, 256, 512),
                                                     strides=(2, 2, 2, 2)),
    }


def forward_flops(model: nn.Module, image_size: int) -> int:
    """FLOPs of one forward pass of a (1, 4, image_size, image_size) image."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 4, image_size, image_size, device=next(model.parameters()).device))
    model.train(was_training)
    return counter.get_total_flops()


def _median_rate(step: Callable[[], None], images_per_step: int, steps: int, repeats: int,
                 sync: Callable[[], None]) -> float:
    """Median images/s over ``repeats`` runs of ``steps`` calls of ``step``, after a warm-up."""
    for _ in range(2):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(images_per_step * steps / (time.perf_counter() - started))
    return statistics.median(rates)


def training_step(model: nn.Module, image_size: int, batch_size: int, device: torch.device,
                  memory_format: torch.memory_format = torch.contiguous_format,
                  amp: bool = True) -> tuple[Callable[[], None], torch.Tensor]:
    """One training step of ``model`` on a fixed random batch already on ``device``: forward
    (under :func:`unet_lib.runtime.autocast` with ``amp``), BCE-with-logits, backward and
    ``fit()``'s AdamW step. Call it inside :func:`unet_lib.runtime.cudnn_autotuning` to time
    it as ``fit()`` runs on CUDA. Returns ``(step, images)``: the step to call, and its
    (batch_size, 4, image_size, image_size) images in ``memory_format``."""
    from .config import TrainConfig
    from .runtime import autocast
    from .schedule import make_optimizer

    images = torch.randn(batch_size, 4, image_size, image_size, device=device)
    images = images.to(memory_format=memory_format)
    masks = (torch.rand(batch_size, 3, image_size, image_size, device=device) > 0.95).float()
    optimizer = make_optimizer(model, TrainConfig())  # fit()'s: fused on CUDA

    def step() -> None:
        with autocast(device, amp):
            loss = F.binary_cross_entropy_with_logits(model(images).float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, images


def measure(name: str, model: nn.Module, image_size: int, batch_size: int, device: torch.device,
            steps: int = 3, repeats: int = 3, amp: bool = True, channels_last: bool = False,
            compile: bool = False) -> BenchRow:
    """Measure one model (see the module docstring); ``amp`` (bf16 on CUDA),
    ``channels_last`` and ``compile`` are the speed-ups, each switchable alone. ``model`` is
    trained by the timed steps: it is left changed, on ``device``, in eval mode (give a copy
    of one you mean to keep)."""
    from .runtime import autocast, compile_model, cudnn_autotuning, waiting_for

    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    cuda = device.type == "cuda"
    sync = waiting_for(device)  # timings wait for the GPU (CUDA or Apple MPS)
    flops = forward_flops(model, image_size)
    parameters = count_parameters(model)
    if compile:
        model = compile_model(model)
    with cudnn_autotuning(device):
        train_step, x = training_step(model, image_size, batch_size, device, memory_format, amp)
        model.train()
        if cuda:  # the peak of training, not of cuDNN trying its algorithms in the first step
            train_step()
            sync()
            torch.cuda.reset_peak_memory_stats(device)
        train_rate = _median_rate(train_step, batch_size, steps, repeats, sync)
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if cuda else None

        model.eval()

        def infer(batch_x):
            def step():
                with torch.no_grad(), autocast(device, amp):
                    model(batch_x)
            return step

        infer_rate = _median_rate(infer(x), batch_size, steps, repeats, sync)
        latency = 1000 / _median_rate(infer(x[:1]), 1, steps, repeats, sync)
    share = None
    if cuda:
        peak_rate = next((v for k, v in PEAK_BF16.items()
                          if k in torch.cuda.get_device_name(device)), None)
        if peak_rate:
            share = 3 * flops * train_rate / peak_rate
    return BenchRow(name, parameters, flops / 1e9, train_rate, infer_rate, latency,
                    peak, share)


def run_benchmark(image_size: int = 240, batch_size: int | None = None, device: str = "auto",
                  steps: int = 3, repeats: int = 3, base_filters: int = 32,
                  models: tuple[str, ...] = ("classic", "improved", "attention"),
                  peers: bool = True, amp: bool = True, channels_last: bool = False,
                  compile: bool = False) -> dict:
    """Benchmark our models (presets or :data:`unet_lib.variants.VARIANTS`, each timed inside
    its :func:`~unet_lib.variants.variant_setting`) and MONAI's peers; returns
    ``{"machine": ..., "rows": [...]}``.

    ``batch_size`` defaults to 32 on a GPU and 4 on the CPU.
    """
    from .runtime import pick_device, randomness_kept

    for name in models:  # every name known before the first is timed
        variant_of(name)
    torch_device = pick_device(device)
    batch_size = batch_size or (32 if torch_device.type == "cuda" else 4)
    rows = []
    speedups = dict(amp=amp, channels_last=channels_last, compile=compile)
    with randomness_kept():  # each model seeded alike; the caller's streams as they were
        for name in models:
            torch.manual_seed(0)
            with variant_setting(name):
                rows.append(measure(name, bench_model(name, base_filters), image_size,
                                    batch_size, torch_device, steps, repeats, **speedups))
        if peers:
            for name, make in peer_models().items():
                torch.manual_seed(0)
                rows.append(measure(name, make(), image_size, batch_size, torch_device, steps,
                                    repeats, **speedups))
    machine = (torch.cuda.get_device_name(torch_device) if torch_device.type == "cuda"
               else "Apple MPS" if torch_device.type == "mps"
               else f"CPU {_cpu_name()}, {torch.get_num_threads()} threads")
    return {"machine": machine, "torch": torch.__version__, "size": image_size, "batch": batch_size,
            "steps": steps, "repeats": repeats,  # as they acted: autocast is CUDA's only
            "speedups": {**speedups, "amp": amp and torch_device.type == "cuda"},
            "rows": [asdict(r) for r in rows]}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _speedups(flags: dict) -> str:
    names = {"amp": "mixed precision (CUDA only: bf16, else fp16)",
             "channels_last": "channels_last",
             "compile": "torch.compile"}
    return ", ".join(names[k] for k, on in flags.items() if on) or "none"


def format_table(result: dict) -> str:
    """The result as a Markdown table, with the ratios against each model's peer. A column
    that no row can fill (GPU memory and the share of the bf16 peak on a CPU) is left out."""
    rows = {r["model"]: r for r in result["rows"]}
    columns = {  # heading: the cell of a row, or None where the row has no value
        "model": lambda name, r, peer: name,
        "params (M)": lambda name, r, peer: f"{r['parameters'] / 1e6:.2f}",
        "GFLOPs fwd/image": lambda name, r, peer: f"{r['gflops_forward']:.1f}",
        "train img/s": lambda name, r, peer: f"{r['train_images_per_s']:.1f}",
        "infer img/s": lambda name, r, peer: f"{r['infer_images_per_s']:.1f}",
        "latency bs1 (ms)": lambda name, r, peer: f"{r['latency_ms']:.1f}",
        "peak mem (MiB)": lambda name, r, peer: (None if r["peak_memory_mib"] is None
                                                 else f"{r['peak_memory_mib']:.0f}"),
        "share of bf16 peak": lambda name, r, peer: (None if r["share_of_peak"] is None
                                                     else f"{100 * r['share_of_peak']:.1f} %"),
        "train vs peer": lambda name, r, peer: peer and
        f"{r['train_images_per_s'] / peer['train_images_per_s']:.2f}×",
        "latency vs peer": lambda name, r, peer: peer and
        f"{r['latency_ms'] / peer['latency_ms']:.2f}×",
    }
    cells = {heading: [cell(name, r, rows.get(PEERS.get(name, "")))
                       for name, r in rows.items()] for heading, cell in columns.items()}
    kept = [heading for heading, values in cells.items() if any(values)]
    lines = [f"Machine: {result['machine']}; torch {result['torch']}; images "
             f"{result['size']}×{result['size']}; training batch {result['batch']}; median of "
             f"{result['repeats']} runs of {result['steps']} steps; speed-ups "
             f"{_speedups(result.get('speedups', {}))}.", "",
             f"<!-- table: Speed of each model on {result['machine']} at {result['size']}×"
             f"{result['size']}, batch {result['batch']}"
             + (", beside its MONAI peer" if any(name in PEERS.values() for name in rows)
                else "") + " -->",
             "| " + " | ".join(kept) + " |", "|" + "---|" * len(kept)]
    for i in range(len(rows)):
        lines.append("| " + " | ".join(cells[h][i] or "" for h in kept) + " |")
    return "\n".join(lines) + "\n"


def write_result(result: dict, out: str | Path) -> Path:
    """Write the Markdown table to ``out`` (``.md`` added when it has no extension) and the
    raw figures beside it as JSON; returns the table's path."""
    out = Path(out)
    if not out.suffix:
        out = out.with_suffix(".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(format_table(result))
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return out
