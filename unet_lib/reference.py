"""The slides' full configuration as a reference run, and the results bundle the book reads.

``unet-lib reference --out DIR`` trains the three models at a scale (``full``: the 20-volume
240×240 phantom or real BraTS, 20 epochs, the slides' settings), each from the same split, and
writes ``DIR/reference.json`` — the machine, the date, the commit, the settings, whether all
models finished, the seconds spent making the data and holding it on the device
(``"stages"``), and per model its history, its kept epoch, its held-out test scores, the
reliability bins of its test pixels at the model's image size (``"calibration"``,
:mod:`unet_lib.calibration`; the scores are on the data's own grid) and its
seconds of training (checkpoints included) and of scoring (an extra that failed — the
calibration, the attention maps — is left out and its error kept under ``"failed"``) — and
``DIR/showcase.npz``: a few test slices with each model's probabilities and the Attention
U-Net's maps (float16, compressed), so that a reader without a GPU sees what the slides'
configuration does.
``--scale quick`` with small sizes rehearses the same on a CPU (``tests/test_reference.py``).
"""

from __future__ import annotations

import datetime
import io
import json
import platform
import subprocess
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch

from . import runfolder
from .checkpoint import model_from_checkpoint, read_checkpoint
from .data import SkippedSample, locate
from .attention import attention_maps
from .calibration import reliability
from .inference import predict
from .recipe import MODEL_NAMES, RunRecipe
from .results import held_out_scores, json_plain
from .run import RUN_FILE, PreparedRun, prepare_run, read_run, train_run
from .runtime import pick_device
from .sampling import held_as_configured

T = TypeVar("T")

BUNDLE, SHOWCASE = "reference.json", "showcase.npz"


def machine() -> dict:
    """What ran it: the device's name, the CPU, torch's version."""
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f"CPU ({platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads)")
    return {"device": device, "torch": torch.__version__, "python": platform.python_version()}


def commit(root: Path | None = None) -> str:
    """The checkout's commit (``unknown`` outside a git checkout)."""
    root = root or Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def showcase_indices(dataset, count: int = 4) -> list[int]:
    """The slice with the most tumour in each of the first ``count`` volumes of ``dataset``."""
    best: dict[int, tuple[float, int]] = {}
    for index in range(len(dataset)):
        sample = dataset[index]
        if isinstance(sample, SkippedSample):
            continue
        volume = locate(dataset, index)[0]
        area = float(sample[1].amax(0).sum())
        if area > best.get(volume, (0.0, -1))[0]:
            best[volume] = (area, index)
    return [index for _, (_, index) in sorted(best.items())[:count]]


def run_reference(out: str | Path, scale: str = "full", data: str | Path | None = None,
                  models=MODEL_NAMES, progress: bool | str = "epochs",
                  work: str | Path | None = None, **changes) -> Path:
    """Train ``models`` at ``scale`` (with ``changes`` to its settings and phantom) into
    ``work/runs/<model>`` (``work`` defaults to ``out``; the phantom goes to ``work/data``),
    score each on the held-out test volumes and write the bundle into ``out``.

    The bundle is written after each model, ``"complete": false`` until the last: a run
    stopped part-way (a GPU lent for minutes) still leaves the models it finished.

    Returns:
        The path of ``reference.json``.
    """
    out = Path(out)
    work = Path(work) if work is not None else out
    check_work_folder(work)  # before anything is written
    recipes = {name: RunRecipe.for_scale(scale, model=name, data=data, **changes)
               for name in models}  # each checked before the folder is made
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    entries, arrays, held = {}, {}, {}
    stages = {"data": 0.0, "upload": 0.0}  # where the run's time went, besides each model's
    path = out / BUNDLE
    for name, recipe in recipes.items():
        clock = time.perf_counter()
        run = prepare_run(recipe, work / "runs" / name, phantom_home=work / "data")  # the phantom
        stages["data"] += time.perf_counter() - clock
        clock = time.perf_counter()
        datasets = held_once(run, held, bool(progress))
        stages["upload"] += time.perf_counter() - clock
        clock = time.perf_counter()
        done = finished_epochs(run)
        if done < recipe.config.epochs:  # a rerun finishes what a stopped one left
            # without a whole epoch (done 0) the folder's files are a stopped run's: restart
            train_run(run, resume=done > 0, overwrite=done == 0, progress=progress,
                      datasets=datasets)
        elif progress:
            print(f"the {name} U-Net in {run.folder} is trained already: kept", flush=True)
        seconds = time.perf_counter() - clock
        history = read_checkpoint(run.folder / "last.pt")["history"]
        if done > 0:  # trained (in part) by an earlier call: its epochs, all of them
            seconds = sum(record["seconds"] for record in history)
        clock = time.perf_counter()
        best = read_checkpoint(run.folder / "best.pt")
        model = model_from_checkpoint(best).eval()
        test = run.dataset("test")
        if "images" not in arrays:  # the same slices for every model: the split is shared
            shown = showcase_indices(test)
            arrays["images"] = torch.stack([test[i][0] for i in shown]).half().numpy()
            arrays["targets"] = torch.stack([test[i][1] for i in shown]).bool().numpy()
            arrays["names"] = np.array([f"volume {locate(test, i)[0]}, slice "
                                        f"{locate(test, i)[1]}" for i in shown])
        images = torch.from_numpy(arrays["images"]).float()
        arrays[f"probs_{name}"] = predict(model, images).half().numpy()
        failed = {}  # the extras that failed: the model's scores are kept without them
        maps = or_failure(failed, "attention maps", name, partial(attention_maps, model, images)
                          ) if model.attention else None
        for level, alpha in enumerate(maps or ()):
            arrays[f"attention_{name}_{level}"] = alpha.half().numpy()
        entries[name] = {"best_epoch": int(best["epoch"]), "seconds": seconds,
                         "history": history, "test": held_out_scores(run, model)}
        binned = or_failure(failed, "calibration", name, partial(
            reliability, model, test, batch_size=recipe.config.batch_size,
            amp=recipe.config.amp))
        if binned is not None:  # the test pixels' reliability bins, per patient too
            entries[name]["calibration"] = binned.to_json()
        if failed:
            entries[name]["failed"] = failed
        entries[name]["scoring_seconds"] = time.perf_counter() - clock
        bundle = {"scale": scale, "date": datetime.date.today().isoformat(),
                  "commit": commit(), "machine": machine(),
                  "seconds": time.perf_counter() - started, "stages": stages,
                  "complete": len(entries) == len(models),
                  "recipe": recipe.to_json(), "models": entries}
        packed = io.BytesIO()
        np.savez_compressed(packed, **arrays)
        runfolder.write_bytes_atomic(out / SHOWCASE, packed.getvalue())  # before the bundle
        path = runfolder.write_text_atomic(out / BUNDLE, json.dumps(bundle, indent=1,
                                                                    default=json_plain))
    return path


def or_failure(failed: dict[str, str], what: str, model: str, work: Callable[[], T]
               ) -> T | None:
    """``work()``, or ``None`` if it raises: the error is kept as ``failed[what]`` and said in
    a warning, so that one picture's failure does not cost the bundle a model trained for
    minutes (its history and scores)."""
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - any failure of an extra; the run goes on
        failed[what] = f"{type(error).__name__}: {error}"
        warnings.warn(f"reference: the {model} U-Net's {what} failed ({failed[what]}); its "
                      f"entry is written without them", RuntimeWarning, stacklevel=2)
        return None


def check_work_folder(work: Path) -> None:
    """Refuse to put the phantom and the runs (``data/``, ``runs/``) into a folder that holds
    anything but an earlier reference's files (and the ``README.md`` committed beside a
    bundle): a training run's, a data folder.

    Raises:
        FileExistsError: naming the folder and some of what it holds.
    """
    if not work.is_dir():
        return
    others = sorted(path.name for path in work.iterdir()
                    if path.name not in {"data", "runs", BUNDLE, SHOWCASE, "README.md"}
                    and not path.name.startswith("."))
    if others:
        raise FileExistsError(f"{work}: holds {', '.join(others[:3])}"
                              + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                              + ", not an earlier reference's files; give a new folder or an "
                                "earlier reference's (nothing was changed there)")


def finished_epochs(run: PreparedRun) -> int:
    """The epochs trained in ``run.folder`` by an earlier reference run of this very recipe
    (0 where none); another recipe's run there is refused, never trained over.

    Raises:
        FileExistsError: the folder holds a run of other settings or data.
    """
    last = run.folder / "last.pt"
    if not last.is_file():
        return 0
    earlier = read_run(run.folder).recipe if (run.folder / RUN_FILE).is_file() else None
    if earlier is None or earlier.key() != run.recipe.key():
        differ = "" if earlier is None else recipe_differences(earlier, run.recipe)
        raise FileExistsError(f"{run.folder}: holds a model trained with other settings or "
                              f"data" + (f" ({differ})" if differ else "")
                              + "; give another --out (nothing was changed there)")
    return int(read_checkpoint(last)["epoch"])


def recipe_differences(earlier, now) -> str:
    """What differs between two recipes' identities, e.g. ``"epochs 20 → 2, data: other"``
    (at most 6 settings named)."""
    def flat(value, prefix=""):
        if isinstance(value, dict):
            return {k: v for key, item in value.items()
                    for k, v in flat(item, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): value}

    before, after = flat(earlier.identity()), flat(now.identity())
    names = [name for name in sorted(before.keys() | after.keys())
             if before.get(name) != after.get(name)]
    words = [f"{name.removeprefix('config.')} {before.get(name)!r} → {after.get(name)!r}"
             if not name.startswith("data.") else "the data" for name in names]
    return ", ".join(list(dict.fromkeys(words))[:6])


def held_once(run: PreparedRun, held: dict, report: bool = True) -> tuple:
    """The run's ``(train, val)`` datasets, held on its device (as :func:`unet_lib.train.fit`
    would hold them) once for all the models trained on the same split: uploading the
    20-volume phantom took about 7 s per model on an H200 (2026-11-27). ``held`` keeps them
    between calls, one split at a time."""
    config = run.recipe.config
    key = (str(run.data_root), config.image_size, tuple(run.train_volumes),
           tuple(run.val_volumes))
    if key not in held:
        held.clear()  # another split: free the device's memory first
        held[key] = held_as_configured(*run.datasets(), config, pick_device(config.device),
                                       print if report else _silent)
    return held[key]


def _silent(*args, **kwargs) -> None:
    """A report that says nothing."""


def read_reference(folder: str | Path) -> tuple[dict, dict]:
    """``(bundle, showcase arrays)`` written by :func:`run_reference`."""
    folder = Path(folder)
    bundle = json.loads((folder / BUNDLE).read_text())
    with np.load(folder / SHOWCASE) as showcase:
        return bundle, {key: showcase[key] for key in showcase.files}
