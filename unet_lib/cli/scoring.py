"""The commands that run a trained model over data: ``unet-lib evaluate`` (scores on held-out
volumes, all pixels at once and per patient in 3-D) and ``unet-lib segment`` (BraTS label maps
of cases without a segmentation), their shared options, and the score table ``train`` prints
too."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..progress import unusable
from ..run import RUN_FILE
from ..runfolder import write_text_atomic
from .checks import EVALUATE_JSON_WRITER, check_evaluate_outputs, check_scoring_options


def add_parsers(commands) -> None:
    """The ``evaluate`` and ``segment`` subcommands' options, on the parser's ``commands``."""
    evaluate = commands.add_parser("evaluate", help="score a checkpoint on held-out data",
                                   description="Score a checkpoint on held-out data.")
    evaluate.add_argument("--checkpoint", type=Path, required=True,
                          help="a .pt file written by train (last.pt or best.pt)")
    evaluate.add_argument("--data", type=Path, default=None,
                          help="data to score on, every volume of it, resized to the size the "
                               "model was trained at (default: the run's own held-out volumes, "
                               "from run.json beside the checkpoint)")
    evaluate.add_argument("--split", choices=("test", "val"), default=None,
                          help="which of the run's held-out sides to score (default test, or "
                               "val for a run without a test set); with --data, those volumes "
                               "of the data in its new place")
    evaluate.add_argument("--csv", type=Path, default=None,
                          help="also write the per-patient scores to this CSV file")
    evaluate.add_argument("--json", type=Path, default=None,
                          help="also write every score printed (all pixels, per patient and "
                               "their summary) and what was scored to this JSON file")
    scoring_options(evaluate)

    segment = commands.add_parser(
        "segment", help="write BraTS label maps for cases without a segmentation",
        description="Segment every case folder of --data (<ID>/<ID>_{flair,t1,t1ce,t2}.nii.gz, "
                    "e.g. the challenge's validation cases) and write OUT/<ID>.nii.gz: labels "
                    "0, 1 (NCR/NET), 2 (ED), 4 (ET) on the input's grid, as BraTS submits them.")
    segment.add_argument("--checkpoint", type=Path, required=True,
                         help="a .pt file written by train (best.pt)")
    segment.add_argument("--data", type=Path, required=True, help="a folder of case folders")
    segment.add_argument("--out", type=Path, required=True,
                         help="the folder for the label maps (none is overwritten)")
    segment.add_argument("--missing-only", action="store_true",
                         help="write only the label maps --out lacks, e.g. after mending a case")
    scoring_options(segment)


def scoring_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that runs a trained model over data: evaluate, segment."""
    parser.add_argument("--threshold", type=float, default=None,
                        help="probability above which a pixel counts as tumour (default: the "
                             "run's own, as trained; 0.5 if the checkpoint has none)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="images per forward pass (default 32)")
    parser.add_argument("--device", default="auto",
                        help="auto (a GPU if there is one), cpu, cuda, cuda:N, mps (default auto)")
    parser.add_argument("--keep-largest", action="store_true",
                        help="keep only each patient's largest connected tumour piece and "
                             "remove every label outside it (a false blob far away can set "
                             "a patient's HD95; a second real focus goes too)")
    trust_option(parser, "open")


def trust_option(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help=f"{verb} a checkpoint of unet_lib 0.1, whose pickle can run any "
                             f"code: only for your own files")


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


def _trained_model(args):
    """``(model in eval mode, the run's settings as fit() saved them, its epoch or None)`` of
    ``--checkpoint``; ``args.threshold`` becomes the run's own when not given (0.5 without
    one)."""
    from ..checkpoint import CheckpointError, model_from_checkpoint, read_checkpoint
    from ..inference import threshold_of

    checkpoint = read_checkpoint(args.checkpoint, trust_checkpoint=args.trust_checkpoint)
    trained_with = checkpoint.get("config") or {}
    model = model_from_checkpoint(checkpoint).eval()
    args.threshold = threshold_of(model, args.threshold)  # the run's own when not given
    channels = (model.hparams.get("in_channels", 4), model.hparams.get("out_channels", 3))
    if channels != (4, 3):  # BraTS: 4 modalities in, 3 sub-regions out; said before any data
        raise CheckpointError(f"{args.checkpoint}: holds a model of {channels[0]} input and "
                              f"{channels[1]} output channels; these commands score BraTS "
                              f"models of 4 (the MRI modalities) and 3 (NCR/NET, ED, ET)")
    return model, trained_with, checkpoint.get("epoch")


def cmd_segment(args) -> int:
    from ..segment import segment_folder

    check_scoring_options(args)
    model, trained_with, _ = _trained_model(args)
    size = trained_with.get("image_size")  # the size it learnt at (fit() records the data's)
    written, skipped = segment_folder(model, args.data, args.out, image_size=size,
                                      threshold=args.threshold, batch_size=args.batch_size,
                                      device=args.device, missing_only=args.missing_only,
                                      keep_largest=args.keep_largest)
    print(f"wrote {len(written)} BraTS label map(s) (0 none, 1 NCR/NET, 2 ED, 4 ET) to "
          f"{args.out}: {args.checkpoint}, threshold {args.threshold}"
          + (f", predicted at {size}×{size}" if size else "")
          + (", each case's largest tumour piece kept" if args.keep_largest else ""))
    return 1 if skipped else 0  # some cases have no label map: a script must notice


def cmd_evaluate(args) -> int:
    from ..data import open_dataset
    from ..config import ConfigError
    from ..datamove import check_still_the_runs_data, data_difference, holds_the_runs_data
    from ..metrics import SegmentationScores
    from ..patients import evaluate_patients
    from ..postprocess import keep_largest_tumour
    from ..run import read_run

    check_scoring_options(args)
    check_evaluate_outputs(args.csv, args.json)  # before minutes of scoring, not after
    model, trained_with, epoch = _trained_model(args)
    run_file = args.checkpoint.parent / RUN_FILE
    if args.data is None and not run_file.is_file():
        raise FileNotFoundError(f"no --data given and no {run_file} to say which data the run "
                                f"used")
    if args.data is None:
        run = read_run(args.checkpoint.parent)
        check_still_the_runs_data(run)  # scores of other data, said of this run: refused
        side = args.split or ("test" if run.test_volumes else "val")
        args.split = side  # the side scored, as --json records it
        data_root, dataset = run.data_root, run.dataset(side)
        requested, label = getattr(run, side + "_volumes"), f"the {side} volumes"
        size = run.recipe.config.image_size
    else:
        # the size the model learnt at: the run's (train, the course) or the one fit() recorded
        run = read_run(args.checkpoint.parent) if run_file.is_file() else None
        size = run.recipe.config.image_size if run else trained_with.get("image_size")
        if args.split and run is None:
            raise FileNotFoundError(f"--split needs {run_file} to say which volumes the run "
                                    f"held out")
        difference = data_difference(run, Path(args.data)) if args.split else None
        if difference and difference[0] == "other":  # its numbers would pick other data's
            raise ConfigError("split", f"picks the volumes {run_file} held out, but "
                                       f"{args.data}: {difference[1]}; drop --split to score "
                                       f"every volume of {args.data}")
        if difference:  # volumes missing: said below, the rest scored
            print(f"note: {args.data} cannot be checked to hold the run's data: "
                  f"{difference[1]}", file=sys.stderr)
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
                                 batch_size=args.batch_size, device=args.device, pixels=pixels,
                                 clean=keep_largest_tumour if args.keep_largest else None)
    scored = len(dataset) - len(patients.skipped)
    if not len(dataset):
        raise ValueError(f"{data_root}: holds no slice of {what.removesuffix(' of')}"
                         + "".join(f"; {entry}" for entry in getattr(dataset, "skipped", [])[:3]))
    if not scored:
        raise ValueError(f"{data_root}: none of the {len(dataset)} slices chosen could be read "
                         f"(first: {patients.skipped[0]}); nothing was scored")
    result = {**pixels.compute(), "skipped": patients.skipped}
    trained = f"{model.preset_name} U-Net" + (f", epoch {epoch}" if epoch is not None else "")
    print(f"{args.checkpoint} ({trained}) on {scored} slices of {what} {data_root}"
          + (f" ({len(result['skipped'])} skipped)" if result["skipped"] else "")
          + f" (threshold {args.threshold}"
          + ("; each patient's largest tumour piece kept" if args.keep_largest else "")
          + "); all pixels at once:")
    left_out = getattr(dataset, "skipped", [])  # NIfTI cases unusable whole, found on opening
    if left_out:
        print(f"left out {len(left_out)} unusable case(s) whole:")
        for entry in left_out[:20]:
            print(f"  {entry}")
    print_scores(result)
    print("\nper patient, in 3-D (Dice; HD95 in mm; std: over the patients, population): a "
          "region empty in both prediction and reference scores Dice 1 and HD95 0, one empty "
          "in only one of them Dice 0 and HD95 373.13, as BraTS scores them:")
    print(patients.table())
    if args.csv:
        replaced = args.csv.exists()
        print(f"per-patient scores written to {patients.to_csv(args.csv)}"
              + (" (it replaced the file there)" if replaced else ""))
    if args.json:
        replaced = args.json.exists()
        report = scores_report(args, model, epoch, data_root, what, result, patients)
        write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
        print(f"every score written to {args.json}"
              + (" (it replaced the file there)" if replaced else ""))
    return 0


def scores_report(args, model, epoch, data_root, what: str, result: dict, patients) -> dict:
    """What ``evaluate --json`` writes: what was scored, how, and every score it printed."""
    return {"written_by": EVALUATE_JSON_WRITER, "checkpoint": str(args.checkpoint),
            "model": model.preset_name, "epoch": epoch, "data": str(data_root),
            "scored": what.removesuffix(" of"), "split": args.split,
            "volumes": sorted({row["volume"] for row in patients.rows}),
            "threshold": args.threshold,
            "keep_largest": args.keep_largest,
            "all_pixels": {metric: result[metric] for metric in ("dice", "precision", "recall")},
            "per_patient": patients.rows,
            "summary_over_patients": patients.summary(),  # std: population (ddof 0)
            "skipped": list(result["skipped"])}
