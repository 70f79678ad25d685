"""The command line's checks of its arguments, made before any work starts: each problem is one
:class:`~unet_lib.config.ConfigError` naming the option, and no file is written or replaced
that the command did not write itself."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..config import ConfigError, check_batch_size, check_device, check_threshold
from ..recipe import MODEL_NAMES

#: how the files the commands write begin: such a file may be replaced by the same command
EVALUATE_CSV_START = b"volume,slices,"
EVALUATE_JSON_WRITER = "unet-lib evaluate"
EVALUATE_JSON_START = b'{\n "written_by": "' + EVALUATE_JSON_WRITER.encode()
BENCH_TABLE_START = b"Machine:"


def check_scoring_options(args) -> None:
    """The options ``evaluate`` and ``segment`` share."""
    if args.threshold is not None:
        check_threshold(args.threshold)
    check_batch_size(args.batch_size)
    check_device(args.device)


def check_train_data(args) -> None:
    """``train --data``: a folder, and no phantom option beside it."""
    from ..data import check_data_folder

    if args.data is None:
        return
    for name in ("n_volumes", "n_slices"):
        if getattr(args, name) is not None:
            raise ConfigError(name, "shapes the phantom, which --data replaces (fewer volumes "
                                    "of your data: --max-volumes)")
    check_data_folder(args.data)


def note_a_long_run(scale: str, config) -> None:
    """Say on stderr, before a ``train`` at the full scale's image size on the CPU, that it
    takes hours (the quick scale, minutes)."""
    from ..recipe import SCALES
    from ..runtime import pick_device

    full_size = config.image_size >= SCALES["full"].config.image_size
    if scale == "full" and full_size and pick_device(config.device).type == "cpu":
        print(f"note: the full scale ({config.image_size}×{config.image_size}, "
              f"{config.base_filters} filters, {config.epochs} epochs) trains for hours on a "
              f"CPU; --scale quick trains in minutes", file=sys.stderr)


def note_resized_data(run, size_given: bool) -> None:
    """Say on stderr when ``train --data`` resizes the data's slices to the scale's image size
    without ``--image-size`` asking for it (a 64×64 phantom trained at 240×240: 14 times the
    pixels, and no more detail)."""
    from ..data import open_dataset
    from ..data.base import first_usable

    if size_given or run.recipe.data is None:
        return
    sample = first_usable(open_dataset(run.data_root))
    size = run.recipe.config.image_size
    if sample is not None and tuple(sample[0].shape[-2:]) != (size, size):
        height, width = sample[0].shape[-2:]
        print(f"note: {run.data_root} holds {height}×{width} slices; they are resized to "
              f"{size}×{size}, the scale's size (--image-size {height} trains at their own)",
              file=sys.stderr)


def note_fewer_volumes(run) -> None:
    """Say on stderr when ``--max-volumes`` asks for more volumes than the data hold."""
    held = len(run.train_volumes) + len(run.val_volumes) + len(run.test_volumes)
    wanted = run.recipe.max_volumes
    if wanted and wanted > held:
        print(f"note: {run.data_root} holds {held} volumes, fewer than --max-volumes {wanted}: "
              f"all {held} are used", file=sys.stderr)


def check_train_folder(out: Path, resume: bool) -> None:
    """``train --out``: a folder holding a run to resume (``last.pt``) with ``--resume``;
    without, none of the files a new run writes (a model or its record there is kept)."""
    from ..run import RECIPE_RUN_OUTPUTS
    from ..runfolder import present

    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: is a file; --out takes the folder for the run")
    last = out / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"{out}: holds no last.pt to resume from (a mistyped --out?); "
                                f"drop --resume to start a new run there")
    if not resume and last.is_file():
        raise FileExistsError(f"{out}: already holds a run (last.pt); continue it with "
                              f"--resume, or choose another --out")
    earlier = present(out, RECIPE_RUN_OUTPUTS)
    if not resume and earlier:  # no last.pt, but a model or its record
        raise FileExistsError(f"{out}: already holds {', '.join(p.name for p in earlier)}, "
                              f"which a new run would replace; choose another --out (or move "
                              f"them away)")


def check_evaluate_outputs(csv: Path | None, json: Path | None) -> None:
    """``evaluate --csv`` and ``--json``: each a file in an existing, writable folder, new or
    one evaluate wrote, and not the same file."""
    if csv is not None and json is not None and csv.resolve() == json.resolve():
        raise ConfigError("json", f"{json} is the --csv file too; give each its own name")
    for option, path, start, example in (("csv", csv, EVALUATE_CSV_START, "patients.csv"),
                                         ("json", json, EVALUATE_JSON_START, "scores.json")):
        if path is None:
            continue
        if not path.parent.is_dir():
            raise ConfigError(option, f"{path}: its folder {path.parent} does not exist")
        check_replaceable(path, start, option, "unet-lib evaluate", example)
        try:  # a read-only folder is said now, not after the scoring
            tempfile.TemporaryFile(dir=path.parent).close()
        except OSError as error:
            raise ConfigError(option, f"{path}: its folder {path.parent} cannot be written "
                                      f"({error.strerror or error})") from None


def check_bench_options(args) -> None:
    """``bench``: the models known (and runnable by this PyTorch), sizes and counts in range,
    the device present, ``--fit``'s models among the course's, and ``--out`` new or a table
    bench wrote."""
    from ..variants import variant_of

    check_device(args.device)
    for name in args.models:
        variant_of(name)
    for name, least in (("image_size", 16), ("steps", 1), ("repeats", 1)):
        if getattr(args, name) < least:
            raise ConfigError(name, f"must be at least {least}, got {getattr(args, name)}")
    if args.batch_size is not None:
        check_batch_size(args.batch_size)
    if args.fit:
        if args.fit_volumes < 2:
            raise ConfigError("fit_volumes", f"must be at least 2 (a training and a validation "
                                             f"volume), got {args.fit_volumes}")
        if args.fit_slices < 1:
            raise ConfigError("fit_slices", f"must be at least 1, got {args.fit_slices}")
        if not fit_models(args):
            raise ConfigError("models", f"--fit trains through fit(), which takes the course's "
                                        f"models only: name one of {', '.join(MODEL_NAMES)}")
    if args.out is not None:
        for path, start in bench_files(args.out, args.fit).items():
            check_replaceable(path, start, "out", "unet-lib bench", "bench.md")


def bench_files(out: Path, fit: bool) -> dict[Path, bytes]:
    """The files ``bench --out OUT`` writes (the table, its JSON, and with ``--fit`` the fit
    table and its JSON), each with the bytes it begins with."""
    table = out if out.suffix else out.with_suffix(".md")  # as bench.write_result names it
    files = {table: BENCH_TABLE_START, table.with_suffix(".json"): b"{"}
    if fit:
        fit_table = out.with_name(out.stem + "-fit.md")
        files.update({fit_table: b"| model |", fit_table.with_suffix(".json"): b"["})
    return files


def fit_models(args) -> list[str]:
    """The models of ``bench --models`` that ``--fit`` trains: the course's presets."""
    return [name for name in args.models if name in MODEL_NAMES]


def check_replaceable(path: Path, start: bytes, option: str, writer: str, example: str) -> None:
    """Refuse ``path`` when it is a folder, or a file that does not begin with ``start`` (one
    ``writer`` did not write: a checkpoint, someone's notes); an empty file may be replaced."""
    if path.is_dir():
        raise ConfigError(option, f"{path} is a folder; give a file name, e.g. "
                                  f"{path / example}")
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            ours = f.read(len(start)) == start
        if not ours:
            raise ConfigError(option, f"{path} exists and is not a table written by {writer}; "
                                      f"give another file name (nothing was written)")
