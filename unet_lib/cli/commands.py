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
from ..metrics import regions_mean_dice
from .checks import (check_bench_options, check_train_data, check_train_folder, fit_models,
                     note_a_long_run, note_fewer_volumes, note_resized_data)
from .scoring import print_scores
from ..runfolder import HISTORY_CSV
from ..recipe import SCALES, PhantomSpec, RunRecipe
from ..run import RUN_FILE, prepare_run, train_run

#: the exit code of a run stopped with Ctrl-C
INTERRUPTED = 130


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
                note_resized_data(run, size_given=args.image_size is not None)
                note_fewer_volumes(run)
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
              f"{regions_mean_dice(dice):.3f}")
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


def cmd_pack(args) -> int:
    from ..data import pack_folder

    if args.workers is not None and args.workers < 1:
        raise ConfigError("workers", f"must be at least 1 (1: pack in this process), got "
                                     f"{args.workers}")
    earlier = _packed_source(args.out)  # a pack there is replaced: say of what, below
    out = pack_folder(args.data, args.out, workers=args.workers)
    meta = json.loads((out / "packed.json").read_text())
    left_out = [f"{meta['skipped_slices']} unusable slice(s)"] if meta["skipped_slices"] else []
    if meta.get("skipped_cases"):  # NIfTI cases left out whole, before any slice was read
        left_out.append(f"{meta['skipped_cases']} case(s) left out whole")
    print(f"packed {meta['slices']} slices of {args.data} into {out}"
          + (f"; skipped {' and '.join(left_out)} ({len(meta['skipped'])} problem(s), listed "
             f"in packed.json; the first: {meta['skipped'][0]})" if meta["skipped"] else ""))
    if earlier is not None and Path(earlier).resolve() != Path(args.data).resolve():
        print(f"note: this replaced a pack of {earlier} in {out}; a run trained on that pack "
              f"refuses this one if its data differ (give it --data with a copy of its own "
              f"data)", file=sys.stderr)
    return 0


def _packed_source(folder: Path) -> str | None:
    """The data folder the pack in ``folder`` was made from; ``None`` where there is none."""
    try:
        return json.loads((Path(folder) / "packed.json").read_text())["source"] or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    with tempfile.TemporaryDirectory() as phantom_home:  # one phantom for every model
        rows = [fit_vs_step(name, "full", epochs=2, phantom_home=phantom_home,
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
