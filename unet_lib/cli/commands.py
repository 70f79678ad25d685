"""What each ``unet-lib`` subcommand does, once its options are parsed.

Each ``cmd_*`` returns the exit code; expected failures raise, and :func:`unet_lib.cli.main`
turns them into one ``error:`` line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from ..config import ConfigError, TrainConfig
from .checks import (check_bench_options, check_evaluate_csv, check_scoring_options,
                     check_train_data, check_train_folder, fit_models, note_a_long_run)
from ..progress import HISTORY_CSV, unusable
from ..recipe import SCALES, PhantomSpec, RunRecipe
from ..run import RUN_FILE, prepare_run, train_run

#: the exit code of a run stopped with Ctrl-C
INTERRUPTED = 130


def print_scores(result: dict) -> None:
    """Dice, precision and recall per channel and region, as a small table."""
    if result.get("skipped"):
        print(f"skipped {unusable(result['skipped'])}:")
        for entry in list(dict.fromkeys(result["skipped"]))[:20]:  # each file's reason once
            print(f"  {entry}")
    names = list(result["dice"])
    print(f"{'':10s}" + "".join(f"{n:>9s}" for n in names))
    for metric in ("dice", "precision", "recall"):
        print(f"{metric:10s}" + "".join(f"{result[metric][n]:9.3f}" for n in names))


def cmd_phantom(args) -> int:
    from ..data import make_phantom

    full = SCALES["full"].phantom
    spec = PhantomSpec(args.image_size,
                       full.n_volumes if args.n_volumes is None else args.n_volumes,
                       full.n_slices if args.n_slices is None else args.n_slices,
                       args.seed).validate()
    make_phantom(args.out, n_volumes=spec.n_volumes, image_size=spec.image_size,
                 n_slices=spec.n_slices, seed=spec.seed)
    print(f"wrote the phantom to {args.out}")
    return 0


def config_changes(args) -> dict:
    """The :class:`TrainConfig` fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def cmd_train(args) -> int:
    from ..runfolder import claim

    out = args.out or Path("runs") / (args.model or "classic")
    check_train_folder(out, args.resume)
    last = out / "last.pt"
    recipe = None
    if not args.resume:  # checked in full before the folder is touched or data is made
        check_train_data(args)
        scale = "quick" if args.quick else args.scale or "full"
        recipe = RunRecipe.for_scale(scale, args.model or "classic", args.data,
                                     args.max_volumes, args.n_volumes, args.n_slices,
                                     **config_changes(args))
    main_process = _is_main()
    try:
        # a run that fails or is stopped before its first epoch leaves no folder behind
        with claim(out, tidy=(RUN_FILE,)) if main_process else contextlib.nullcontext(out):
            run = _resumed(args, out) if args.resume else prepare_run(recipe, out)
            if recipe is not None and main_process:  # checked, about to train: say how long
                note_a_long_run(scale, recipe.config)
            _, history = train_run(run, resume=args.resume,
                                   trust_checkpoint=args.trust_checkpoint,
                                   report=print if main_process else _silent)
    except KeyboardInterrupt:
        what_next = (f"the last checkpoint is {last} (epoch {_epoch_of(last)}); run the same "
                     f"command with --resume to continue" if last.is_file() else
                     "no epoch had finished, so nothing was saved; run the same command again "
                     "(without --resume) to start over")
        if main_process:  # under torchrun the others were stopped with it: one hint is enough
            print(f"\ninterrupted: {what_next}", file=sys.stderr)
        return INTERRUPTED
    if not main_process:
        return 0
    skipped = sorted({entry for record in history.records for entry in record["skipped"]})
    if skipped:  # each file once (a NIfTI file's slices give the same entry)
        print(f"training skipped {len(skipped)} unusable file(s); the first: {skipped[0]}")
    final = history.records[-1]  # fit validated the final model already: no second pass
    print(f"validation after {final['epoch']} epochs (threshold "
          f"{run.recipe.config.threshold}):")
    print_scores(final["val"])
    kept = _epoch_of(out / "best.pt")  # the model evaluate, segment and the course use
    record = next((r for r in history.records if str(r["epoch"]) == kept), None)
    if record is not None:
        dice = record["val"]["dice"]
        print(f"best.pt holds epoch {kept}: mean validation Dice over WT, TC and ET "
              f"{sum(dice[r] for r in ('WT', 'TC', 'ET')) / 3:.3f}")
    if (out / HISTORY_CSV).is_file():
        print(f"every epoch's losses and scores: {out / HISTORY_CSV}")
    return 0


def _resumed(args, out: Path):
    """The run in ``out`` with the options given; the model and the data cannot change."""
    from ..run import resumed_run

    if args.quick or args.scale:  # "the same command with --resume" gives them again
        print(f"note: --scale/--quick do not apply when resuming {out}: the run keeps the "
              f"settings in {RUN_FILE} (change one with its own option, e.g. --epochs)",
              file=sys.stderr)
    return resumed_run(out, config_changes(args), data=args.data, model=args.model,
                       max_volumes=args.max_volumes, n_volumes=args.n_volumes,
                       n_slices=args.n_slices)


def _is_main() -> bool:
    from ..distributed import is_main_process

    return is_main_process()


def _silent(*args, **kwargs) -> None:
    pass


def _epoch_of(last: Path) -> str:
    from ..checkpoint import CheckpointError, read_checkpoint

    try:
        return str(read_checkpoint(last)["epoch"])
    except (CheckpointError, OSError, KeyError):
        return "?"


def _trained_model(args):
    """``(model in eval mode, the run's settings as fit() saved them)`` of ``--checkpoint``;
    ``args.threshold`` becomes the run's own when not given (0.5 without one)."""
    from ..checkpoint import model_from_checkpoint, read_checkpoint

    checkpoint = read_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    trained_with = checkpoint.get("config") or {}
    if args.threshold is None:
        args.threshold = trained_with.get("threshold", 0.5)
    return model_from_checkpoint(checkpoint).eval(), trained_with


def cmd_segment(args) -> int:
    from ..segment import segment_folder

    check_scoring_options(args)
    model, trained_with = _trained_model(args)
    size = trained_with.get("image_size")  # the size it learnt at (fit() records the data's)
    written, skipped = segment_folder(model, args.data, args.out, image_size=size,
                                      threshold=args.threshold, batch_size=args.batch_size,
                                      device=args.device, missing_only=args.missing_only)
    print(f"wrote {len(written)} BraTS label map(s) (0 none, 1 NCR/NET, 2 ED, 4 ET) to "
          f"{args.out}: {args.checkpoint}, threshold {args.threshold}"
          + (f", predicted at {size}×{size}" if size else ""))
    return 1 if skipped else 0  # some cases have no label map: a script must notice


def cmd_evaluate(args) -> int:
    from ..data import open_dataset
    from ..datamove import holds_the_runs_data
    from ..metrics import SegmentationScores
    from ..patients import evaluate_patients
    from ..run import read_run

    check_scoring_options(args)
    check_evaluate_csv(args.csv)  # before minutes of scoring, not after
    model, trained_with = _trained_model(args)
    run_file = args.checkpoint.parent / RUN_FILE
    if args.data is None and not run_file.is_file():
        raise FileNotFoundError(f"no --data given and no {run_file} to say which data the run "
                                f"used")
    if args.data is None:
        run = read_run(args.checkpoint.parent)
        side = args.split or ("test" if run.test_volumes else "val")
        data_root, dataset = run.data_root, run.dataset(side)
        requested, label, detail = getattr(run, side + "_volumes"), f"the {side} volumes", ""
    else:
        # the size the model learnt at: the run's (train, the course) or the one fit() recorded
        run = read_run(args.checkpoint.parent) if run_file.is_file() else None
        size = run.recipe.config.image_size if run else trained_with.get("image_size")
        if args.split and run is None:
            raise FileNotFoundError(f"--split needs {run_file} to say which volumes the run "
                                    f"held out")
        requested = getattr(run, f"{args.split}_volumes") if args.split else None  # data moved
        data_root, dataset = args.data, open_dataset(args.data, requested, image_size=size)
        if (run and not args.split and set(run.train_volumes) <= set(dataset.volumes)
                and holds_the_runs_data(run, Path(args.data))):  # its pixels checked only then
            print(f"note: {args.data} is the run's own data: every volume is scored, its "
                  f"training volumes too (--split test scores the held-out ones)", file=sys.stderr)
        label = f"the {args.split} volumes" if args.split else "every volume"
        detail = f" (predicted at {size}×{size}, scored on their own grid)" if size else ""
    absent = sorted(set(requested or ()) - set(dataset.volumes))  # a volume the data lack
    if absent:
        print(f"warning: {data_root} holds no usable slice of the volumes {absent} of the "
              f"run's split (not there, or unreadable and listed below): "
              f"the scores are of "
              f"{len(requested) - len(absent)} of its {len(requested)} volumes", file=sys.stderr)
    shown = ("" if requested is None else f" {requested}" if not absent else
             f" {sorted(set(requested) - set(absent))} (of {requested}; {absent} not found)")
    what = f"{label}{shown}{detail} of"
    pixels = SegmentationScores()  # the all-pixel scores, summed in the patients' pass
    patients = evaluate_patients(model, dataset, threshold=args.threshold,
                                 batch_size=args.batch_size, device=args.device, pixels=pixels)
    scored = len(dataset) - len(patients.skipped)
    if not len(dataset):
        raise ValueError(f"{data_root}: holds no slice of {what.removesuffix(' of')}"
                         + "".join(f"; {entry}" for entry in getattr(dataset, "skipped", [])[:3]))
    if not scored:
        raise ValueError(f"{data_root}: none of the {len(dataset)} slices chosen could be read "
                         f"(first: {patients.skipped[0]}); nothing was scored")
    result = {**pixels.compute(), "skipped": patients.skipped}
    print(f"{args.checkpoint} on {scored} slices of {what} {data_root}"
          + (f" ({len(result['skipped'])} skipped)" if result["skipped"] else "")
          + f" (threshold {args.threshold}); all pixels at once:")
    left_out = getattr(dataset, "skipped", [])  # NIfTI cases unusable whole, found on opening
    if left_out:
        print(f"left out {len(left_out)} unusable case(s) whole:")
        for entry in left_out[:20]:
            print(f"  {entry}")
    print_scores(result)
    print("\nper patient, in 3-D (Dice; HD95 in mm): a region empty in both prediction and "
          "reference scores Dice 1 and HD95 0, one empty in only one of them Dice 0 and HD95 "
          "373.13, as BraTS scores them:")
    print(patients.table())
    if args.csv:
        replaced = args.csv.exists()
        print(f"per-patient scores written to {patients.to_csv(args.csv)}"
              + (" (it replaced the file there)" if replaced else ""))
    return 0


def cmd_pack(args) -> int:
    from ..data import pack_folder

    if args.workers is not None and args.workers < 1:
        raise ConfigError("workers", f"must be at least 1 (1: pack in this process), got "
                                     f"{args.workers}")
    out = pack_folder(args.data, args.out, workers=args.workers)
    meta = json.loads((out / "packed.json").read_text())
    print(f"packed {meta['slices']} slices of {args.data} into {out}"
          + (f"; skipped {meta['skipped_slices']} unusable slice(s) ({len(meta['skipped'])} "
             f"problem(s), listed in packed.json; the first: {meta['skipped'][0]})"
             if meta["skipped"] else ""))
    return 0


def cmd_bench(args) -> int:
    from ..bench import format_table, peer_models, run_benchmark, write_result

    check_bench_options(args)
    if args.peers and not peer_models():
        print("MONAI is not installed: the peers are left out (pip install monai)",
              file=sys.stderr)
    result = run_benchmark(image_size=args.image_size, batch_size=args.batch_size,
                           device=args.device, steps=args.steps, repeats=args.repeats,
                           peers=args.peers, amp=args.amp, channels_last=args.channels_last,
                           compile=args.compile, models=tuple(args.models))
    print(format_table(result))
    if args.out:
        print(f"written to {write_result(result, args.out)}")
    if args.fit:
        _bench_fit(args)
    return 0


def _bench_fit(args) -> None:
    """``bench --fit``: each course model through ``fit()`` on a phantom, beside its step."""
    from ..fitbench import fit_vs_step, format_fit_table

    batch = args.batch_size or 32
    with tempfile.TemporaryDirectory() as data_dir:  # one phantom for every model
        rows = [fit_vs_step(name, "full", epochs=2, data_dir=data_dir,
                            image_size=args.image_size, batch_size=batch,
                            n_volumes=args.fit_volumes, n_slices=args.fit_slices, amp=args.amp,
                            channels_last=args.channels_last, compile=args.compile,
                            device=args.device, val_fraction=0.2, test_fraction=0.0)
                for name in fit_models(args)]
    print(format_fit_table(rows))
    if args.out:
        fit_out = Path(args.out).with_name(Path(args.out).stem + "-fit.md")
        fit_out.write_text(format_fit_table(rows))
        fit_out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
        print(f"written to {fit_out}")


def cmd_reference(args) -> int:
    from ..reference import run_reference

    phantom = {k: v for k, v in (("n_volumes", args.n_volumes), ("n_slices", args.n_slices))
               if v is not None}
    bundle = run_reference(args.out, scale=args.scale, data=args.data, **phantom,
                           **config_changes(args))
    print(f"wrote {bundle} and {bundle.parent / 'showcase.npz'}")
    return 0
