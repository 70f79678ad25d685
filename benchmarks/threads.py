"""What too many CPU threads cost: one quick-scale training step (96×96 slices, batch 8, 16
first filters) with PyTorch's threads at this machine's usable cores, and at 4× and 16× as
many, as a JupyterHub pod limited to a few CPUs on a large node gets by default (PyTorch
starts one thread per physical core of the node). Ratios in one run.

    python benchmarks/threads.py [OUT.md]

``unet_lib.runtime.threads_within_usable_cores`` (called by ``unet-lib`` and by each
notebook's ``setup``) keeps the threads at the usable cores.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch

from unet_lib.models import build_model
from unet_lib.parallel import usable_cores

STEPS, WARM_UP = 8, 2


def step_seconds(name: str, threads: int) -> float:
    """Mean seconds of a training step of model ``name`` with ``threads`` CPU threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(name, base_filters=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    images = torch.randn(8, 4, 96, 96)
    masks = (torch.rand(8, 3, 96, 96) > 0.9).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), masks).backward()
        optimizer.step()

    for _ in range(WARM_UP):
        step()
    started = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - started) / STEPS


def main() -> int:
    cores = usable_cores()
    counts = [cores, 4 * cores, 16 * cores]
    lines = [f"One quick-scale training step (96×96, batch 8, 16 first filters; mean of "
             f"{STEPS} after {WARM_UP}) with PyTorch's CPU threads at the {cores} usable cores "
             f"and more, torch {torch.__version__}, {platform.processor() or platform.machine()}"
             f", {time.strftime('%Y-%m-%d')}:", "",
             "<!-- table: Seconds per training step with more CPU threads than cores, and how "
             "many times slower than with one thread per core -->",
             "| model | " + " | ".join(f"{n} threads" for n in counts) + " |",
             "|---|" + "---|" * len(counts)]
    for name in ("classic", "improved", "attention"):
        seconds = [step_seconds(name, n) for n in counts]
        lines.append(f"| {name} | " + " | ".join(
            f"{s:.2f} s ({s / seconds[0]:.1f}×)" for s in seconds) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
