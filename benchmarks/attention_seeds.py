"""Does the Attention U-Net trail the Classic at the quick scale, or was it the seed?

    UNET_COURSE_HOME=.course python benchmarks/attention_seeds.py [OUT.md]   # ~8 min, 2 cores
    ... attention_seeds.py OUT.md --seeds 2 3 4 --kinds classic attention      # more seeds

Trains, with the course's quick recipe and its split (the setup's volumes), the Classic
U-Net, the Attention U-Net, and the Attention U-Net with every gate started at α = 0.5 (ψ's
weights and bias at zero, instead of the U-Net paper's start that the library gives every
convolution), each with seeds 0 and 1 (the starting weights and the order of the batches),
and prints their test Dice WT/TC/ET (all pixels, threshold 0.5, ``best.pt``) as a Markdown
table, and the gates' mean α at the start. The instructor page's answer to exercise 4.4
quotes its results (``benchmarks/attention-seeds-cpu.md``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

import unet_course as course
from unet_lib.checkpoint import load_model, read_checkpoint
from unet_lib.inference import evaluate
from unet_lib.models import build_model
from unet_lib.models.layers import AttentionGate
from unet_lib.runtime import seed_everything
from unet_lib.train import fit

#: name → (row label, preset, gates started at α = 0.5)
KINDS = {"classic": ("Classic U-Net", "classic", False),
         "attention": ("Attention U-Net", "attention", False),
         "attention-even": ("Attention U-Net, gates started at α = 0.5", "attention", True)}
SEEDS = (0, 1)


def started(preset: str, even_gates: bool, seed: int, base_filters: int) -> torch.nn.Module:
    """The model as the course builds it with ``seed``; with ``even_gates`` every gate's ψ
    at zero, so that α = σ(0) = 0.5 everywhere at the start."""
    seed_everything(seed)
    model = build_model(preset, base_filters=base_filters)
    if even_gates:
        with torch.no_grad():
            for gate in (m for m in model.modules() if isinstance(m, AttentionGate)):
                gate.psi.weight.zero_()
                gate.psi.bias.zero_()
    return model


def gate_means(model: torch.nn.Module, images: torch.Tensor) -> list[float]:
    """Mean α of each gate (deepest first) over ``images`` (N, 4, S, S)."""
    with torch.no_grad():
        _, maps = model.eval()(images, return_attention=True)
    model.train()
    return [round(float(m.mean()), 2) for m in maps]


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="write the Markdown table here too")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    args = parser.parse_args()
    setup = course.setup("quick")
    train, val = setup.datasets()
    test = setup.test_dataset()
    sample = torch.stack([train[i][0] for i in range(0, min(len(train), 200), 10)])
    rows = ["| model | seed | test Dice WT / TC / ET | kept epoch | gates' mean α at the "
            "start (deepest first) |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as work:
        for label, preset, even in (KINDS[kind] for kind in args.kinds):
            for seed in args.seeds:
                config = dataclasses.replace(setup.recipe_of(preset).config, seed=seed)
                model = started(preset, even, seed, config.base_filters)
                alphas = gate_means(model, sample) if preset == "attention" else "–"
                clock = time.perf_counter()
                folder = Path(work) / f"{preset}-{even}-{seed}"
                fit(model, train, val, config, checkpoint_dir=folder, progress=False)
                best = load_model(folder / "best.pt")
                dice = evaluate(best, test, threshold=0.5)["dice"]
                epoch = read_checkpoint(folder / "best.pt")["epoch"]
                scores = " / ".join(f"{dice[r]:.2f}" for r in ("WT", "TC", "ET"))
                rows.append(f"| {label} | {seed} | {scores} | {epoch} | {alphas} |")
                print(rows[-1], f"({time.perf_counter() - clock:.0f} s)", flush=True)
    table = "\n".join(rows)
    heading = (f"Test Dice (all pixels, threshold 0.5, best.pt) on the quick phantom's "
               f"{len(setup.test_volumes)} test volumes {setup.test_volumes}; "
               f"{setup.describe().splitlines()[0]}; torch {torch.__version__}, "
               f"{os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}.\n\n")
    print("\n" + heading + table)
    if args.out:
        Path(args.out).write_text(heading + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
