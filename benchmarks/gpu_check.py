"""The GPU check: benchmark, loader speed and two full-configuration epochs, in one script.

On a GPU lent for a few minutes use ``benchmarks/gpu_session.py`` instead: it keeps to a time
budget, writes each result as it comes, and leaves the eight files the device tool brings
back (this script writes ten, at the end of each part).

On a machine with an NVIDIA GPU and PyTorch installed (MONAI optional; nothing heavy is
installed), from the repository root:

    python benchmarks/gpu_check.py OUT_DIR            # about 8 minutes on an H100
    python benchmarks/gpu_check.py OUT_DIR --tiny     # a CPU rehearsal in about a minute

writes ``bench.md`` (models beside MONAI's peers at 240×240, batch 32, bf16 autocast),
``bench-channels-last.md`` (the same with the channels_last layout), ``loader.md``
(slices/s from the Kaggle h5 folder and from the packed copy) and ``train.md`` (two epochs of
the slides' configuration for each model on a phantom of 8 volumes × 155 slices) and
``fit.md`` (each model's images/s through ``fit()`` against its bare step rate, with the data
held on the GPU when they fit: the target is 85 %), each with a ``.json`` of the raw figures.

The slides' full configuration as a reference (the three models, 20 epochs, the 20-volume
240×240 phantom) is a separate command, about 6 minutes on an H100:

    unet-lib reference --out benchmarks/reference-<gpu>-<date>

whose bundle (``reference.json``, ``showcase.npz``) chapter 7 of the book shows when present.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from unet_lib.bench import run_benchmark, write_result  # noqa: E402
from unet_lib.data import (BraTSSlices, PackedSlices, collate_samples, cached_phantom,  # noqa: E402
                           pack_folder, split_volumes)
from unet_lib.models import build_model  # noqa: E402
from unet_lib.config import TrainConfig  # noqa: E402
from unet_lib.fitbench import fit_report, fit_vs_step  # noqa: E402
from unet_lib.runtime import pick_device  # noqa: E402
from unet_lib.train import fit  # noqa: E402


def loader_rate(dataset, batch: int, workers: int, limit: int) -> float:
    """Slices/s delivered by a shuffled DataLoader over the first ``limit`` batches."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                        collate_fn=collate_samples, persistent_workers=False)
    started, seen = time.perf_counter(), 0
    for i, (images, _, _) in enumerate(loader):
        seen += len(images)
        if i + 1 == limit:
            break
    return seen / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tiny", action="store_true", help="small sizes, for a CPU rehearsal")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tiny = args.tiny
    size, batch, volumes, slices = (32, 2, 3, 8) if tiny else (240, 32, 8, 155)
    device = pick_device("auto")
    print(f"device {device}, torch {torch.__version__}", flush=True)

    started = time.perf_counter()
    for name, channels_last in (("bench", False), ("bench-channels-last", True)):
        result = run_benchmark(image_size=size, batch_size=batch, steps=1 if tiny else 5,
                               repeats=1 if tiny else 3, channels_last=channels_last)
        write_result(result, args.out / f"{name}.md")
        print((args.out / f"{name}.md").read_text(), f"({time.perf_counter() - started:.0f} s)",
              flush=True)

    work = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    # where fit_vs_step below looks for it (phantom_home=work), so that it is made once
    folder = cached_phantom(work, size, volumes, slices)
    phantom_s = time.perf_counter() - started
    started = time.perf_counter()
    packed = pack_folder(folder, work / "packed", progress=False)
    pack_s = time.perf_counter() - started
    workers = 0 if tiny else 8
    rates = {name: loader_rate(dataset, batch, workers, limit=4 if tiny else 30)
             for name, dataset in (("kaggle h5 folder", BraTSSlices(folder)),
                                   ("packed (memory-mapped)", PackedSlices(packed)))}
    loader = {"phantom_seconds": phantom_s, "pack_seconds": pack_s, "workers": workers,
              "batch": batch, "slices_per_s": rates}
    (args.out / "loader.json").write_text(json.dumps(loader, indent=1))
    (args.out / "loader.md").write_text(
        f"Phantom {volumes}×{slices} slices of {size}×{size} made in {phantom_s:.0f} s, packed in "
        f"{pack_s:.0f} s. DataLoader, batch {batch}, {workers} workers, shuffled:\n\n"
        "<!-- table: Slices per second the DataLoader delivers from each format -->\n"
        "| format | slices/s |\n|---|---|\n"
        + "".join(f"| {k} | {v:.0f} |\n" for k, v in rates.items()))
    print((args.out / "loader.md").read_text(), flush=True)

    train_volumes, val_volumes = split_volumes(range(1, volumes + 1), 0.25, seed=0)
    train_set, val_set = PackedSlices(packed, train_volumes), PackedSlices(packed, val_volumes)
    config = TrainConfig(epochs=2, image_size=size, batch_size=batch,
                         base_filters=4 if tiny else 32, num_workers=workers)
    rows = []
    for name in ("classic", "improved", "attention"):
        torch.manual_seed(0)
        model = build_model(name, base_filters=config.base_filters)
        history = fit(model, train_set, val_set, config, progress=False)
        for record in history.records:
            rows.append({"model": name, "epoch": record["epoch"], "seconds": record["seconds"],
                         "train_images_per_s": len(train_set) / record["seconds"],
                         "train_loss": record["train_loss"], "val_dice": record["val"]["dice"]})
        print(rows[-1], flush=True)
    (args.out / "train.json").write_text(json.dumps(rows, indent=1))
    names = list(rows[0]["val_dice"])
    (args.out / "train.md").write_text(
        f"Two epochs of the slides' configuration ({size}×{size}, batch {batch}, "
        f"{config.base_filters} filters, bf16 autocast on CUDA) on {len(train_set)} training "
        f"slices, {len(val_set)} validation slices, device {result['machine']}. Epoch time "
        f"includes validation.\n\n<!-- table: Two epochs of the slides' configuration through "
        f"fit(), per model: time, training rate, loss and validation Dice -->\n"
        f"| model | epoch | s | img/s | loss | "
        + " | ".join(f"Dice {n}" for n in names) + " |\n|---|---|---|---|---|"
        + "---|" * len(names) + "\n"
        + "".join(f"| {r['model']} | {r['epoch']} | {r['seconds']:.1f} | "
                  f"{r['train_images_per_s']:.0f} | {r['train_loss']:.4f} | "
                  + " | ".join(f"{r['val_dice'][n]:.3f}" for n in names) + " |\n"
                  for r in rows))
    print((args.out / "train.md").read_text(), flush=True)

    fits = [fit_vs_step(name, "full", epochs=2, phantom_home=work, n_volumes=volumes,
                        n_slices=slices, image_size=size, batch_size=batch,
                        base_filters=config.base_filters, test_fraction=0.0)
            for name in ("classic", "improved", "attention")]
    (args.out / "fit.json").write_text(json.dumps(fits, indent=1))
    (args.out / "fit.md").write_text(fit_report(fits))
    print((args.out / "fit.md").read_text(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
