"""What a run folder records about its trained model: its scores on the held-out test volumes
(:func:`held_out_scores`), kept in ``results.json`` beside the checkpoints
(:func:`record_results`, :func:`read_results`) for the checkpoint they were measured on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from . import runfolder

if TYPE_CHECKING:
    from .run import PreparedRun

#: what a run folder records about its model after training (:func:`record_results`)
RESULTS_FILE = "results.json"

#: where :func:`held_out_scores` scores (scores kept from before, on the model's grid, lack it)
SCORED_ON = "the data's own grid"


def held_out_scores(run: PreparedRun, model, threshold: float | None = None,
                    device=None) -> dict:
    """The model's scores on the run's test volumes, both ways BraTS results are reported.

    Returns:
        ``{"threshold", "scored on", "volumes", "all_pixels": {"dice"|"precision"|"recall":
        {name: v}},
        "per_patient": PatientScores.summary(), "patients": [one row per volume]}``: the
        all-pixel scores sum TP/FP/FN over every test slice; the per-patient ones score each
        volume in 3-D (Dice, precision, recall, HD95 per region) and summarize over volumes.
        Both are scored on the data's own grid (the model's probabilities resized to it).
    """
    from .metrics import SegmentationScores
    from .patients import evaluate_patients

    config = run.recipe.config
    threshold = config.threshold if threshold is None else threshold
    pixels = SegmentationScores()  # summed in the same pass as the patients' scores
    patients = evaluate_patients(model, run.dataset("test"), threshold=threshold,
                                 batch_size=config.batch_size, device=device, amp=config.amp,
                                 pixels=pixels)
    if not pixels.batches:
        raise ValueError(f"{run.data_root}: no test slice could be read, nothing was scored"
                         + (f" (first: {patients.skipped[0]})" if patients.skipped else ""))
    return {"threshold": threshold, "scored on": SCORED_ON, "volumes": list(run.test_volumes),
            "all_pixels": pixels.compute(), "per_patient": patients.summary(),
            "patients": patients.rows}


def record_results(folder: str | Path, epoch: int, **entries) -> dict:
    """Merge ``entries`` into the run folder's ``results.json`` for the checkpoint of
    ``epoch`` (entries of another epoch's checkpoint are dropped: they describe another
    model); returns what the file now holds."""
    path = Path(folder) / RESULTS_FILE
    saved = read_results(folder)
    if saved.get("epoch") != epoch:
        saved = {"epoch": epoch}
    saved.update(entries)
    runfolder.write_text_atomic(path, json.dumps(saved, indent=1, default=json_plain))
    return saved


def read_results(folder: str | Path) -> dict:
    """What ``results.json`` in ``folder`` holds; ``{}`` when there is none or it is
    unreadable (results are recomputed, never trusted blindly)."""
    try:
        saved = json.loads((Path(folder) / RESULTS_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return saved if isinstance(saved, dict) else {}


def json_plain(value):
    """``json.dumps``'s ``default``: numpy numbers and arrays as JSON numbers and lists."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
