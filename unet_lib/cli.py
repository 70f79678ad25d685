"""The ``unet-lib`` command line (also ``python -m unet_lib``).

    unet-lib phantom  --out data/phantom                  write the phantom (Kaggle format)
    unet-lib train    --model attention --data BRATS_DIR  train; checkpoints in --out
    unet-lib train    --quick                             small CPU run on a small phantom
    unet-lib evaluate --checkpoint runs/classic/best.pt   Dice/precision/recall, held-out set
    unet-lib pack     --data BRATS_DIR --out BRATS.packed one-time copy that loads much faster
    unet-lib bench    --out benchmarks/cpu.md             speed and size beside MONAI's peers

Without ``--data``, ``train`` uses a phantom cached under ``data/`` (made on first use).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

from . import __version__

SPLIT_FILE = "split.json"


def _add_phantom_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--volumes", type=int, default=None,
                        help="phantom volumes (default 20; 12 with --quick)")
    parser.add_argument("--slices", type=int, default=None,
                        help="slices per phantom volume (default 155; 32 with --quick)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unet-lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"unet_lib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    phantom = commands.add_parser("phantom", help="write the BraTS-like phantom dataset")
    phantom.add_argument("--out", type=Path, default=Path("data/phantom"))
    phantom.add_argument("--size", type=int, default=240, help="slice size in pixels")
    phantom.add_argument("--seed", type=int, default=0)
    _add_phantom_args(phantom)

    train = commands.add_parser("train", help="train a model")
    train.add_argument("--model", choices=("classic", "improved", "attention"),
                       default=None, help="default classic (with --resume: the run's model)")
    train.add_argument("--data", type=Path, default=None,
                       help="a BraTS folder: Kaggle slices (volume_*_slice_*.h5) or NIfTI "
                            "cases (BraTS20_Training_XXX); default: the phantom")
    train.add_argument("--out", type=Path, default=None,
                       help="checkpoint folder (default runs/<model>)")
    train.add_argument("--quick", action="store_true",
                       help="the small CPU configuration (TrainConfig.quick)")
    train.add_argument("--resume", action="store_true",
                       help="continue from <out>/last.pt with its settings and split; options "
                            "given change them where they can (e.g. --lr, --epochs)")
    train.add_argument("--trust-checkpoint", action="store_true",
                       help="resume from a checkpoint of unet_lib 0.1, whose pickle can run any "
                            "code: only for your own files")
    train.add_argument("--max-volumes", type=int, default=None,
                       help="use only the first N volumes of the data")
    defaults, quick = _config_class()(), _config_class().quick()
    for field in dataclasses.fields(defaults):
        if field.name == "model":
            continue
        default, small = getattr(defaults, field.name), getattr(quick, field.name)
        kind = (_floats if field.name == "pos_weight" else _bool if isinstance(default, bool)
                else type(default) if default is not None else int)
        train.add_argument("--" + field.name.replace("_", "-"), default=None, type=kind,
                           help=f"default {default}" + (f", {small} with --quick"
                                                        if small != default else ""))
    _add_phantom_args(train)

    packer = commands.add_parser("pack", help="pack a BraTS folder (Kaggle slices or NIfTI) "
                                              "into memory-mapped arrays that load much faster")
    packer.add_argument("--data", type=Path, required=True)
    packer.add_argument("--out", type=Path, required=True)

    bench = commands.add_parser("bench", help="measure speed and size beside MONAI's U-Nets")
    bench.add_argument("--size", type=int, default=240, help="image size (default 240)")
    bench.add_argument("--batch", type=int, default=None,
                       help="training batch (default 32 on a GPU, 4 on the CPU)")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--steps", type=int, default=3, help="steps per timed run")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    bench.add_argument("--no-peers", action="store_true", help="leave MONAI's models out")
    bench.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    bench.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
    bench.add_argument("--compile", action="store_true", help="torch.compile every model")
    bench.add_argument("--out", type=Path, default=None,
                       help="also write the table here (and the figures as .json beside it)")

    evaluate = commands.add_parser("evaluate", help="score a checkpoint on held-out data")
    evaluate.add_argument("--checkpoint", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, default=None,
                          help="default: the data and validation volumes the run used")
    evaluate.add_argument("--threshold", type=float, default=0.5)
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--trust-checkpoint", action="store_true",
                          help="open a checkpoint of unet_lib 0.1, whose pickle can run any "
                               "code: only for your own files")
    return parser


def _config_class():
    from .train import TrainConfig
    return TrainConfig


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas (e.g. 5,2,5), "
                                         f"got {text!r}") from None


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _print_scores(result: dict) -> None:
    if result.get("skipped"):
        print(f"skipped {len(result['skipped'])} unusable file(s):")
        for entry in result["skipped"][:20]:
            print(f"  {entry}")
    names = list(result["dice"])
    print(f"{'':10s}" + "".join(f"{n:>9s}" for n in names))
    for metric in ("dice", "precision", "recall"):
        print(f"{metric:10s}" + "".join(f"{result[metric][n]:9.3f}" for n in names))


def cmd_phantom(args) -> int:
    from .data import make_phantom
    from .train import ConfigError

    _check_counts(args)
    if args.size < 16:
        raise ConfigError("size", f"must be at least 16 pixels (BraTS is 240), got {args.size}")
    make_phantom(args.out, n_volumes=args.volumes or 20, size=args.size,
                 n_slices=args.slices or 155, seed=args.seed)
    print(f"wrote the phantom to {args.out}")
    return 0


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``, with an error naming the file when it is not one."""
    try:
        value = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _check_counts(args) -> None:
    """Refuse phantom sizes and volume counts that cannot make a run, before any work."""
    from .train import ConfigError

    for name, least in (("volumes", 2), ("slices", 1), ("max_volumes", 2)):
        value = getattr(args, name, None)
        if value is not None and value < least:
            raise ConfigError(name, f"must be at least {least}, got {value}"
                              + (" (a split needs a training and a validation volume)"
                                 if least == 2 else ""))


def _saved_run(out: Path, trust: bool) -> tuple[dict, dict]:
    """``(split, config)`` of the run in ``out``: ``split.json`` and the config it ran with."""
    from .checkpoint import read_checkpoint

    split_file = out / SPLIT_FILE
    split = _read_json(split_file) if split_file.is_file() else {}
    config = split.get("config") or read_checkpoint(out / "last.pt", trust=trust)["config"]
    return split, config


def _resume_data(args, split: dict) -> tuple[Path, list[int], list[int]]:
    """The data and split a resumed run keeps; a flag that would change them is refused."""
    from .train import ConfigError

    if not split:
        raise ValueError(f"{args.out / SPLIT_FILE}: missing, so the run's data and split are "
                         f"unknown; resume this run from Python with unet_lib.train.fit")
    saved_root = Path(split["data"])
    given = {"data": args.data and str(Path(args.data).resolve()),
             "max_volumes": args.max_volumes, "volumes": args.volumes, "slices": args.slices}
    saved = {"data": str(saved_root.resolve()), "max_volumes": split.get("max_volumes"),
             **(split.get("phantom") or {"volumes": None, "slices": None})}
    for name, value in given.items():
        if value is not None and value != saved[name]:
            raise ConfigError(name, f"cannot change from {saved[name]!r} to {value!r} when "
                                    f"resuming {args.out}: the run keeps its data and split "
                                    f"({SPLIT_FILE}); drop the option or start a new run")
    return saved_root, split["train_volumes"], split["val_volumes"]


def cmd_train(args) -> int:
    from .data import cached_phantom, open_dataset, split_volumes
    from .models import build_model, count_parameters
    from .runfolder import claim, write_text_atomic
    from .train import TrainConfig, fit, pick_device, seed_everything

    _check_counts(args)
    out = args.out = args.out or Path("runs") / (args.model or "classic")
    last = out / "last.pt"
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
               if getattr(args, f.name, None) is not None}
    if args.resume:
        if not last.is_file():
            raise FileNotFoundError(f"{out}: holds no last.pt to resume from (a mistyped "
                                    f"--out?); drop --resume to start a new run there")
        split, saved = _saved_run(out, args.trust_checkpoint)
        saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = dataclasses.replace(TrainConfig(**{k: v for k, v in saved.items()
                                                    if k in known}), **changes).validate()
        data_root, train_volumes, val_volumes = _resume_data(args, split)
    else:
        if last.is_file():
            raise FileExistsError(f"{out}: already holds a run (last.pt); continue it with "
                                  f"--resume, or choose another --out")
        base = TrainConfig.quick() if args.quick else TrainConfig()
        config = dataclasses.replace(base, **{"model": "classic", **changes}).validate()
        data_root = args.data
        split = {}
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 reports
    report = print if main_process else (lambda *a, **k: None)
    try:
        folder = claim(out) if main_process else contextlib.nullcontext(out)
        with folder:
            if not args.resume:
                phantom = None
                if data_root is None:
                    phantom = {"volumes": args.volumes or (12 if args.quick else 20),
                               "slices": args.slices or (32 if args.quick else 155)}
                    data_root = cached_phantom("data", config.image_size, phantom["volumes"],
                                               phantom["slices"], config.seed)
                everything = open_dataset(data_root)
                volumes = everything.volumes
                volumes = volumes[: args.max_volumes] if args.max_volumes else volumes
                train_volumes, val_volumes = split_volumes(volumes, config.val_fraction,
                                                           config.seed)
                if main_process:
                    split = {"data": str(Path(data_root).resolve()),
                             "train_volumes": train_volumes, "val_volumes": val_volumes,
                             "image_size": config.image_size, "max_volumes": args.max_volumes,
                             "phantom": phantom, "config": dataclasses.asdict(config)}
                    write_text_atomic(out / SPLIT_FILE, json.dumps(split, indent=1))
            train_set = open_dataset(data_root, train_volumes, config.image_size)
            val_set = open_dataset(data_root, val_volumes, config.image_size)
            seed_everything(config.seed)
            model = build_model(config.model, base_filters=config.base_filters)
            report(f"{config.model} U-Net, {count_parameters(model):,} parameters, on "
                   f"{pick_device(config.device)}; {len(train_set)} training slices from "
                   f"{len(train_volumes)} volumes, {len(val_set)} validation slices from "
                   f"{len(val_volumes)} volumes; checkpoints in {out}", flush=True)
            history = fit(model, train_set, val_set, config, checkpoint_dir=out,
                          resume=args.resume, trust_checkpoint=args.trust_checkpoint)
            if args.resume and main_process:
                split["config"] = dataclasses.asdict(config)  # what the run goes on with
                write_text_atomic(out / SPLIT_FILE, json.dumps(split, indent=1))
    except KeyboardInterrupt:
        where = (f"the last checkpoint is {last} (epoch {_epoch_of(last)})" if last.is_file()
                 else "no epoch had finished, so nothing was saved")
        print(f"\ninterrupted: {where}; run the same command with --resume to continue",
              file=sys.stderr)
        return 130
    if not main_process:
        return 0
    skipped = sorted({entry for record in history.records for entry in record["skipped"]})
    if skipped:
        print(f"training skipped {len(skipped)} unusable file(s); the first: {skipped[0]}")
    if not history.records or history.records[-1]["epoch"] < 1:
        return 0
    last_record = history.records[-1]  # fit validated the final model already: no second pass
    print(f"validation after {last_record['epoch']} epochs (threshold {config.threshold}):")
    _print_scores(last_record["val"])
    return 0


def _epoch_of(last: Path) -> str:
    from .checkpoint import CheckpointError, read_checkpoint

    try:
        return str(read_checkpoint(last)["epoch"])
    except (CheckpointError, OSError, KeyError):
        return "?"


def cmd_pack(args) -> int:
    from .data import pack_folder

    out = pack_folder(args.data, args.out)
    meta = _read_json(out / "packed.json")
    print(f"packed {meta['slices']} slices of {args.data} into {out}"
          + (f"; skipped {meta['skipped_slices']} unusable slice(s) ({len(meta['skipped'])} "
             f"problem(s), listed in packed.json; the first: {meta['skipped'][0]})"
             if meta["skipped"] else ""))
    return 0


def cmd_bench(args) -> int:
    from .bench import format_table, peer_models, run_benchmark, write_result

    if not args.no_peers and not peer_models():
        print("MONAI is not installed: the peers are left out (pip install monai)",
              file=sys.stderr)
    result = run_benchmark(size=args.size, batch=args.batch, device=args.device,
                           steps=args.steps, repeats=args.repeats, peers=not args.no_peers,
                           amp=not args.no_amp, channels_last=args.channels_last,
                           compile=args.compile)
    print(format_table(result))
    if args.out:
        print(f"written to {write_result(result, args.out)}")
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoint import load_model
    from .data import open_dataset
    from .train import ConfigError, evaluate

    if not 0 <= args.threshold <= 1:
        raise ConfigError("threshold", f"must be a probability in [0, 1], got {args.threshold}")
    if args.batch_size < 1:
        raise ConfigError("batch_size", f"must be at least 1, got {args.batch_size}")
    model = load_model(args.checkpoint, trust=args.trust_checkpoint)
    split_file = args.checkpoint.parent / SPLIT_FILE
    split = _read_json(split_file) if split_file.exists() else {}
    if args.data is None and not split:
        print(f"error: no --data given and no {split_file} to say which data the run used",
              file=sys.stderr)
        return 2
    data_root = args.data or Path(split["data"])
    volumes = split.get("val_volumes") if args.data is None else None
    dataset = open_dataset(data_root, volumes, split.get("image_size"))
    result = evaluate(model, dataset, threshold=args.threshold, batch_size=args.batch_size)
    scored = len(dataset) - len(result["skipped"])
    print(f"{args.checkpoint} on {scored} slices of {data_root}"
          + (f" ({len(result['skipped'])} skipped)" if result["skipped"] else "")
          + f" (threshold {args.threshold}):")
    _print_scores(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; every expected failure ends in one ``error:`` line and exit 2."""
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError, CheckpointWriteError
    from .data import BraTSDataError
    from .runfolder import RunFolderBusy
    from .train import ConfigError, OutOfMemory, TrainingDiverged

    commands = {"phantom": cmd_phantom, "train": cmd_train, "evaluate": cmd_evaluate,
                "pack": cmd_pack, "bench": cmd_bench}
    try:
        return commands[args.command](args)
    except ConfigError as error:
        print(f"error: --{error.field.replace('_', '-')}: {error.problem}", file=sys.stderr)
    except (FileNotFoundError, FileExistsError, BraTSDataError, CheckpointError,
            CheckpointWriteError, RunFolderBusy, TrainingDiverged, OutOfMemory,
            ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    except OSError as error:  # a read-only or full disk, a path through a file
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 2
