"""``unet-lib check``: read a BraTS folder once and say what it holds and what is unusable,
before a long run (:mod:`unet_lib.data.survey`)."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError


def add_parser(commands) -> None:
    """The ``check`` subcommand's options, on the parser's ``commands``."""
    check = commands.add_parser(
        "check", help="read every slice of a BraTS folder once: what it holds, what is wrong",
        description="Read every slice of a BraTS folder (Kaggle slices, NIfTI cases or a "
                    "packed copy) once, without training or writing anything: its volumes and "
                    "slices, which tumour labels each volume has, slices missing from a "
                    "volume, and every file or case that training would leave out, with why. "
                    "Exit status 1 when any is missing or unusable.")
    check.add_argument("--data", type=Path, required=True, help="the BraTS folder to read")
    check.add_argument("--workers", type=int, metavar="N", default=None,
                       help="processes reading the volumes (default: one per CPU core, up to "
                            "8, for 300 slices or more; 1: this one)")


def cmd_check(args) -> int:
    from ..data.packed import is_packed
    from ..data.survey import survey

    if args.workers is not None and args.workers < 1:
        raise ConfigError("workers", f"must be at least 1 (1: read in this process), got "
                                     f"{args.workers}")
    found = survey(args.data, workers=args.workers)
    print("\n".join(found.report()))
    if not found.labels:
        return 1  # nothing usable to train on
    print(f"train on it: unet-lib train --data {args.data}"
          + ("" if is_packed(args.data) else f"; a packed copy reads faster: unet-lib pack "
                                              f"--data {args.data} --out <folder>"))
    return 1 if found.unusable or found.gaps else 0
