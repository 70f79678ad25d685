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
                       default="classic")
    train.add_argument("--data", type=Path, default=None,
                       help="a BraTS folder: Kaggle slices (volume_*_slice_*.h5) or NIfTI "
                            "cases (BraTS20_Training_XXX); default: the phantom")
    train.add_argument("--out", type=Path, default=None,
                       help="checkpoint folder (default runs/<model>)")
    train.add_argument("--quick", action="store_true",
                       help="the small CPU configuration (TrainConfig.quick)")
    train.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
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

    make_phantom(args.out, n_volumes=args.volumes or 20, size=args.size,
                 n_slices=args.slices or 155, seed=args.seed)
    print(f"wrote the phantom to {args.out}")
    return 0


def cmd_train(args) -> int:
    from .data import cached_phantom, open_dataset, split_volumes
    from .models import build_model, count_parameters
    from .train import TrainConfig, fit, pick_device, seed_everything

    base = TrainConfig.quick() if args.quick else TrainConfig()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
               if f.name != "model" and getattr(args, f.name, None) is not None}
    config = dataclasses.replace(base, model=args.model, **changes)
    data_root = args.data
    if data_root is None:
        size = config.image_size
        n_volumes = args.volumes or (12 if args.quick else 20)
        n_slices = args.slices or (32 if args.quick else 155)
        data_root = cached_phantom("data", size, n_volumes, n_slices, config.seed)
    everything = open_dataset(data_root)
    volumes = everything.volumes[: args.max_volumes] if args.max_volumes else everything.volumes
    train_volumes, val_volumes = split_volumes(volumes, config.val_fraction, config.seed)
    train_set = open_dataset(data_root, train_volumes, config.image_size)
    val_set = open_dataset(data_root, val_volumes, config.image_size)
    out = args.out or Path("runs") / config.model
    out.mkdir(parents=True, exist_ok=True)
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 reports
    if main_process:
        split = {"data": str(Path(data_root).resolve()), "train_volumes": train_volumes,
                 "val_volumes": val_volumes, "image_size": config.image_size}
        (out / SPLIT_FILE).write_text(json.dumps(split, indent=1))
    seed_everything(config.seed)
    model = build_model(config.model, base_filters=config.base_filters)
    report = print if main_process else (lambda *a, **k: None)
    report(f"{config.model} U-Net, {count_parameters(model):,} parameters, on "
          f"{pick_device(config.device)}; {len(train_set)} training slices from "
          f"{len(train_volumes)} volumes, {len(val_set)} validation slices from "
          f"{len(val_volumes)} volumes; checkpoints in {out}", flush=True)
    history = fit(model, train_set, val_set, config, checkpoint_dir=out, resume=args.resume)
    if not main_process:
        return 0
    skipped = sorted({entry for record in history.records for entry in record["skipped"]})
    if skipped:
        print(f"training skipped {len(skipped)} unusable file(s); the first: {skipped[0]}")
    last = history.records[-1]  # fit validated the final model already: no second pass
    print(f"validation after {last['epoch']} epochs (threshold {config.threshold}):")
    _print_scores(last["val"])
    return 0


def cmd_pack(args) -> int:
    from .data import pack_folder

    out = pack_folder(args.data, args.out)
    meta = json.loads((out / "packed.json").read_text())
    print(f"packed {meta['slices']} slices of {args.data} into {out}"
          + (f"; skipped {len(meta['skipped'])} unusable file(s), listed in packed.json"
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
    from .train import evaluate

    model = load_model(args.checkpoint)
    split_file = args.checkpoint.parent / SPLIT_FILE
    split = json.loads(split_file.read_text()) if split_file.exists() else {}
    if args.data is None and not split:
        print(f"error: no --data given and no {split_file} to say which data the run used",
              file=sys.stderr)
        return 2
    data_root = args.data or Path(split["data"])
    volumes = split.get("val_volumes") if args.data is None else None
    dataset = open_dataset(data_root, volumes, split.get("image_size"))
    result = evaluate(model, dataset, threshold=args.threshold, batch_size=args.batch_size)
    print(f"{args.checkpoint} on {len(dataset)} slices of {data_root} "
          f"(threshold {args.threshold}):")
    _print_scores(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .data import BraTSDataError

    try:
        commands = {"phantom": cmd_phantom, "train": cmd_train, "evaluate": cmd_evaluate,
                    "pack": cmd_pack, "bench": cmd_bench}
        return commands[args.command](args)
    except (FileNotFoundError, BraTSDataError, CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
