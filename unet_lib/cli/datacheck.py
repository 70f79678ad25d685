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
    try:
        found = survey(args.data, workers=args.workers)
    except FileNotFoundError as no_training_data:
        unlabelled = check_unlabelled_cases(args.data)  # the challenge's validation cases?
        if unlabelled is None:
            raise no_training_data from None
        return unlabelled
    print("\n".join(found.report()))
    if not found.labels:
        return 1  # nothing usable to train on
    print(f"train on it: unet-lib train --data {args.data}"
          + ("" if is_packed(args.data) else f"; a packed copy reads faster: unet-lib pack "
                                              f"--data {args.data} --out <folder>"))
    return 1 if found.unusable or found.gaps else 0


def check_unlabelled_cases(data: Path) -> int | None:
    """``check`` of a folder of NIfTI cases without segmentations (the challenge's validation
    cases, what ``segment`` reads): each case's four modalities there, their headers readable
    and of one shape (the voxels are read by ``segment``). Prints what it found and returns
    the exit status (1 when any case is unusable); ``None`` when ``data`` holds no such
    case."""
    import nibabel as nib

    from ..segment import find_unlabelled_cases

    try:
        cases = find_unlabelled_cases(data)
    except FileNotFoundError:
        return None
    problems = []
    for case, files in cases.items():
        missing = [key for key, path in files.items() if path is None]
        if missing:
            problems.append(f"{case}: no {', '.join(missing)} file")
            continue
        try:
            shapes = {key: tuple(nib.load(path).shape) for key, path in files.items()}
        except Exception as error:  # nibabel raises many kinds for a damaged header
            problems.append(f"{case}: cannot be read ({type(error).__name__}: {error})")
            continue
        if len(set(shapes.values())) > 1:
            problems.append(f"{case}: its modalities differ in shape ({shapes})")
    print(f"{data}: {len(cases)} case(s) without segmentations (as the challenge's validation "
          f"cases): nothing to train or score on; segment writes their label maps"
          + (f"; {len(problems)} case(s) unusable:" if problems else
             ", every case's four headers readable and of one shape (the voxels are read when "
             "segment runs)"))
    for problem in problems:
        print(f"  {problem}")
    print(f"segment them: unet-lib segment --checkpoint <run>/best.pt --data {data} "
          f"--out <folder>")
    return 1 if problems else 0
