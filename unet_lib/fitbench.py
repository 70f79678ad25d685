"""How much of a model's step rate ``fit()`` delivers: both measured in one process.

The step rate (:func:`unet_lib.bench.measure`) times forward, backward and the optimizer on
one batch already on the device; ``fit()`` also reads the data, moves it, shuffles, logs and
checkpoints. On one H200 a Classic U-Net epoch delivered about a quarter of its step rate
(``benchmarks/h200-2026-11-27/``); the target is 85 %. ``unet-lib bench --fit`` (and
``benchmarks/gpu_check.py``, ``benchmarks/gpu_session.py``) run :func:`fit_vs_step` and report
the ratio. :func:`profile_step` says which operators take a training step's time.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from .bench import measure, training_step
from .config import TrainConfig
from .models import build_model
from .recipe import RunRecipe
from .resident import use_resident
from .run import prepare_run
from .runtime import (cudnn_autotuning, memory_format, pick_device, randomness_kept,
                      seed_everything, waiting_for)
from .train import fit
from .variants import bench_model, variant_setting


def fit_vs_step(model_name: str = "classic", scale: str = "full", epochs: int = 2,
                data: str | Path | None = None, phantom_home: str | Path | None = None,
                **changes) -> dict:
    """Train ``model_name`` for ``epochs`` epochs of the scale's training set with ``fit``
    (no validation: only training is compared) and time the same model's bare step at the
    same batch and size.

    Returns:
        ``{"model", "device", "images", "batch", "size", "step_images_per_s",
        "fit_images_per_s", "ratio", "first_epoch_s", "channels_last", "resident"}``: the fit
        rate is training slices over the seconds of the last epoch; the first pays for
        warm-up (on a GPU cuDNN times its algorithms for every new shape: 31 s of the Improved
        U-Net's first epoch on an H200, against 2.6 s for the next); with resident data the
        upload comes before the first epoch's clock starts.
    """
    recipe = RunRecipe.for_scale(scale, model=model_name, data=data, **changes)
    config: TrainConfig = dataclasses.replace(recipe.config, epochs=epochs)
    device = pick_device(config.device)
    nhwc = memory_format(config.channels_last, device) == torch.channels_last  # as fit() does
    with tempfile.TemporaryDirectory() as scratch:
        run = prepare_run(recipe, Path(scratch) / "run", phantom_home or Path(scratch) / "data")
        train = run.dataset("train")
        resident = use_resident(config.resident_data, (train,), device)  # fit() decides alike
        with randomness_kept():  # seeded as a run is; the caller's streams as they were
            seed_everything(config.seed)
            model = build_model(model_name, base_filters=config.base_filters)
            history = fit(model, train, None, config, progress=False)
            fit_rate = len(train) / history.records[-1]["seconds"]
            step = measure(model_name, build_model(model_name, base_filters=config.base_filters),
                           config.image_size, config.batch_size, device, steps=5, repeats=3,
                           amp=config.amp, channels_last=nhwc, compile=config.compile)
    return {"model": model_name, "device": str(device), "images": len(train),
            "batch": config.batch_size, "size": config.image_size,
            "step_images_per_s": step.train_images_per_s, "fit_images_per_s": fit_rate,
            "ratio": fit_rate / step.train_images_per_s,
            "first_epoch_s": history.records[0]["seconds"], "channels_last": nhwc,
            "resident": resident}


def fit_report(rows: list[dict]) -> str:
    """``fit.md``: what was measured, and the table of :func:`fit_vs_step`'s rows."""
    first = rows[0]
    return (f"fit() against the bare training step, in one process: two epochs of "
            f"{first['images']} training slices ({first['size']}×{first['size']}, batch "
            f"{first['batch']}), the rate of the second epoch; the defaults of the device "
            f"({first['device']}: on CUDA bf16, channels_last, cuDNN autotuning, the data held "
            f"on the GPU when they fit).\n\n" + format_fit_table(rows))


def profile_step(model_name: str, image_size: int = 240, batch_size: int = 32,
                 base_filters: int = 32, steps: int = 3, rows: int = 25) -> str:
    """Where a training step's time goes: PyTorch's profiler over ``steps`` steps (after a
    warm-up) of ``model_name`` with the device's training defaults (bf16 autocast,
    channels_last and cuDNN's autotuning on CUDA), operators grouped by input shape (a
    depthwise and a pointwise convolution differ there) and sorted by their own device time
    (CPU time on a CPU).

    Returns:
        A Markdown section: a heading naming the model, sizes and device, and the table.
    """
    from torch.profiler import ProfilerActivity, profile

    device = pick_device("auto")
    cuda = device.type == "cuda"
    layout = memory_format(None, device)
    with randomness_kept():  # the same weights and batch each time; the caller's streams kept
        torch.manual_seed(0)
        model = bench_model(model_name, base_filters).to(device, memory_format=layout)
        step, _ = training_step(model, image_size, batch_size, device, layout)
    sync = waiting_for(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with variant_setting(model_name), cudnn_autotuning(device):
        for _ in range(3):
            step()
        sync()
        with profile(activities=activities, record_shapes=True) as profiler:
            for _ in range(steps):
                step()
            sync()
    table = profiler.key_averages(group_by_input_shape=True).table(
        sort_by="self_device_time_total" if cuda else "self_cpu_time_total", row_limit=rows,
        max_name_column_width=50, max_shapes_column_width=70)
    return (f"## {model_name}: {steps} training steps, batch {batch_size}, "
            f"{image_size}×{image_size}, {base_filters} filters, {device}"
            + (", bf16, channels_last" if cuda else "") + f"\n\n```\n{table}\n```\n")


def format_fit_table(rows: list[dict]) -> str:
    """The measurements as a Markdown table."""
    lines = ["| model | device | images/epoch | batch | size | step img/s | fit img/s "
             "| fit / step | first epoch |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        first = f"{r['first_epoch_s']:.1f} s" if "first_epoch_s" in r else "–"
        lines.append(f"| {r['model']} | {r['device']} | {r['images']} | {r['batch']} | "
                     f"{r['size']} | {r['step_images_per_s']:.1f} | {r['fit_images_per_s']:.1f} "
                     f"| {100 * r['ratio']:.0f} % | {first} |")
    return "\n".join(lines) + "\n"
