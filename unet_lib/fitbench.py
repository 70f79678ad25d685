"""How much of a model's step rate ``fit()`` delivers: both measured in one process.

The step rate (:func:`unet_lib.bench.measure`) times forward, backward and the optimizer on
one batch already on the device; ``fit()`` also reads the data, moves it, shuffles, logs and
checkpoints. On one H200 a Classic U-Net epoch delivered about a quarter of its step rate
(``benchmarks/h200-2026-11-27/``); the target is 85 %. ``unet-lib bench --fit`` (and
``benchmarks/gpu_check.py``) run :func:`fit_vs_step` and report the ratio.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from .bench import measure
from .config import TrainConfig
from .models import build_model
from .recipe import RunRecipe
from .run import prepare_run
from .runtime import pick_device, seed_everything
from .train import fit


def fit_vs_step(model_name: str = "classic", scale: str = "full", epochs: int = 2,
                data: str | Path | None = None, data_dir: str | Path | None = None,
                **changes) -> dict:
    """Train ``model_name`` for ``epochs`` epochs of the scale's training set with ``fit``
    (no validation: only training is compared) and time the same model's bare step at the
    same batch and size.

    Returns:
        ``{"model", "device", "images", "batch", "size", "step_images_per_s",
        "fit_images_per_s", "ratio", "resident"}``: the fit rate is training slices over
        the seconds of the last epoch (the first pays for warm-up and, with resident data,
        the upload).
    """
    recipe = RunRecipe.for_scale(scale, model=model_name, data=data, **changes)
    config: TrainConfig = dataclasses.replace(recipe.config, epochs=epochs)
    device = pick_device(config.device)
    with tempfile.TemporaryDirectory() as scratch:
        run = prepare_run(recipe, Path(scratch) / "run", data_dir or Path(scratch) / "data")
        train = run.dataset("train")
        seed_everything(config.seed)
        model = build_model(model_name, base_filters=config.base_filters)
        history = fit(model, train, None, config, progress=False)
        fit_rate = len(train) / history.records[-1]["seconds"]
        step = measure(model_name, build_model(model_name, base_filters=config.base_filters),
                       config.image_size, config.batch_size, device, steps=5, repeats=3,
                       amp=config.amp, channels_last=bool(config.channels_last),
                       compile=config.compile)
    return {"model": model_name, "device": str(device), "images": len(train),
            "batch": config.batch_size, "size": config.image_size,
            "step_images_per_s": step.train_images_per_s, "fit_images_per_s": fit_rate,
            "ratio": fit_rate / step.train_images_per_s,
            "resident": getattr(config, "resident_data", None)}


def format_fit_table(rows: list[dict]) -> str:
    """The measurements as a Markdown table."""
    lines = ["| model | device | images/epoch | batch | size | step img/s | fit img/s "
             "| fit / step |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['device']} | {r['images']} | {r['batch']} | "
                     f"{r['size']} | {r['step_images_per_s']:.1f} | {r['fit_images_per_s']:.1f} "
                     f"| {100 * r['ratio']:.0f} % |")
    return "\n".join(lines) + "\n"
