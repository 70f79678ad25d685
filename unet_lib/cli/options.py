"""The ``unet-lib`` parser, generated from the run recipe and the training settings so that
every subcommand speaks one grammar:

* one name per thing, the Python name with dashes: ``--image-size``, ``--batch-size``,
  ``--n-volumes`` (a count; ``volumes`` elsewhere are lists of volume numbers);
* on/off settings are flags with a ``--no-`` form: ``--channels-last`` / ``--no-channels-last``;
* every option has a help line; the help of a :class:`~unet_lib.config.TrainConfig` field is
  the first sentence of its docstring entry, in plain text.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from .. import __version__
from ..config import TrainConfig
from ..recipe import MODEL_NAMES, SCALES
from .datacheck import add_parser as add_check_parser
from .scoring import add_parsers as add_scoring_parsers, trust_option

DESCRIPTION = """\
Train, evaluate and benchmark the course's U-Nets on BraTS 2020 or its phantom.

  unet-lib phantom  --out data/phantom                  write the phantom (Kaggle format)
  unet-lib train    --model attention --data BRATS_DIR  train; checkpoints in --out
  unet-lib train    --scale quick                       small CPU run on a small phantom
  unet-lib train    --out runs/classic --resume         continue a run (e.g. with --lr 1e-4)
  unet-lib evaluate --checkpoint runs/classic/best.pt   Dice/precision/recall, held-out set
  unet-lib segment  --checkpoint … --data CASES --out P  BraTS label maps of unlabelled cases
  unet-lib check    --data BRATS_DIR                   read it once: what it holds, what is wrong
  unet-lib pack     --data BRATS_DIR --out BRATS.packed one-time copy that loads much faster
  unet-lib bench    --out benchmarks/cpu.md             speed and size beside MONAI's peers

Without --data, train uses a phantom cached under data/ (made on first use)."""


def plain_text(text: str) -> str:
    """Docstring markup as plain text: ``x`` → x, :class:`X` → X, *x* → x."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    text = text.replace("``", "")
    return re.sub(r"\*([^*]+)\*", r"\1", " ".join(text.split()))


def attribute_help(cls) -> dict[str, str]:
    """``{attribute: first sentence}`` from the ``Attributes:`` block of ``cls``'s docstring."""
    entries: dict[str, str] = {}
    name, in_block = None, False
    for line in (cls.__doc__ or "").splitlines():
        if line.strip() == "Attributes:":
            in_block = True
            continue
        match = re.match(r"^ {8}(\w+): (.*)$", line)
        if in_block and match:
            name, entries[match[1]] = match[1], match[2]
        elif in_block and name and line.startswith(" " * 12):
            entries[name] += " " + line.strip()
        elif in_block and line.strip():
            break
    return {key: _first_sentence(plain_text(value)) for key, value in entries.items()}


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one of "e.g."), without it."""
    match = re.search(r"\. (?=[A-Z])", text)
    return (text[: match.start()] if match else text).rstrip(".")


def _shown(value) -> str:
    """A default as one would type it: on/off, none, 5,2,5."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return str(value)


def floats(text: str) -> tuple[float, ...] | None:
    """``"5,2,5"`` → ``(5.0, 2.0, 5.0)``; ``"none"`` → ``None``."""
    if text.lower() == "none":
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas (e.g. 5,2,5) "
                                         f"or none, got {text!r}") from None


def _or_none(kind: type, what: str):
    """A reader of option text: ``"none"`` → ``None``, else ``kind(text)`` (``what`` names
    the kind in its error)."""
    def read(text: str):
        if text.lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or none, got {text!r}") from None

    return read


float_or_none = _or_none(float, "a number")  # "0.8" → 0.8
int_or_none = _or_none(int, "a whole number")  # "4" → 4


def auto_or_bool(text: str) -> bool | str:
    """``"auto"`` → ``"auto"``; ``"on"``/``"off"`` (or yes/no, true/false) → ``True``/``False``."""
    value = text.lower()
    if value == "auto":
        return "auto"
    if value in ("on", "yes", "true", "1", "off", "no", "false", "0"):
        return value in ("on", "yes", "true", "1")
    raise argparse.ArgumentTypeError(f"expected auto, on or off, got {text!r}")


#: the fields whose default is not a plain value: how their option's text is read
OPTIONAL_KINDS = {"pos_weight": (floats, "W,W,W"), "num_workers": (int_or_none, "N"),
                  "tumour_share": (float_or_none, "X"),
                  "resident_data": (auto_or_bool, "auto|on|off")}
#: switches whose default ``None`` means "decided by the device" (--x / --no-x)
AUTO_SWITCHES = ("channels_last",)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field, default ``None`` (= the scale's value)."""
    helps = attribute_help(TrainConfig)
    full, quick = SCALES["full"].config, SCALES["quick"].config
    for field in dataclasses.fields(TrainConfig):
        default, small = getattr(full, field.name), getattr(quick, field.name)
        defaults = f"default {_shown(default)}" + (f"; {_shown(small)} at --scale quick"
                                                   if small != default else "")
        flag = "--" + field.name.replace("_", "-")
        text = f"{helps[field.name]} ({defaults})"
        if isinstance(default, bool) or field.name in AUTO_SWITCHES:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
            continue
        kind = OPTIONAL_KINDS.get(field.name, (type(default),))[0]
        metavar = (OPTIONAL_KINDS[field.name][1] if field.name in OPTIONAL_KINDS else
                   {int: "N", float: "X"}.get(kind, field.name.upper()))
        parser.add_argument(flag, type=kind, default=None, metavar=metavar, help=text)


def add_phantom_options(parser: argparse.ArgumentParser, defaults: str) -> None:
    phantom = SCALES["full"].phantom
    parser.add_argument("--n-volumes", type=int, default=None, metavar="N",
                        help=f"synthetic brains in the phantom ({defaults} "
                             f"{phantom.n_volumes})")
    parser.add_argument("--n-slices", type=int, default=None, metavar="N",
                        help=f"axial slices per phantom brain ({defaults} {phantom.n_slices})")


class BriefParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one ``error:`` line and where to read more, as
    the commands' own errors are, not a usage block of every option before the line that
    matters (``--help`` shows that)."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an option the subcommand does not have points at that
        subcommand's help (``unet-lib evaluate --help``), not the list of subcommands."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            where = f"{self.prog} {command}" if command else self.prog
            self.exit(2, f"error: unrecognized arguments: {' '.join(extras)}; see {where} "
                         f"--help\n")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = BriefParser(prog="unet-lib", description=DESCRIPTION,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"unet_lib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    phantom = commands.add_parser("phantom", help="write the BraTS-like phantom dataset",
                                  description="Write the BraTS-like phantom dataset.")
    phantom.add_argument("--out", type=Path, default=Path("data/phantom"),
                         help="folder to write the slice files into (default data/phantom)")
    phantom.add_argument("--image-size", type=int, default=SCALES["full"].phantom.image_size,
                         help="slice height and width in pixels (default 240, as BraTS)")
    phantom.add_argument("--seed", type=int, default=0,
                         help="the same seed gives byte-identical files (default 0)")
    add_phantom_options(phantom, "default")

    train = commands.add_parser("train", help="train a model",
                                description="Train a model; checkpoints after every epoch.")
    train.add_argument("--model", choices=MODEL_NAMES, default=None,
                       help="the model (default classic; with --resume, the run's)")
    train.add_argument("--data", type=Path, default=None,
                       help="a BraTS folder: Kaggle slices, NIfTI cases or a packed copy "
                            "(default: the scale's phantom)")
    train.add_argument("--out", type=Path, default=None,
                       help="the run folder for checkpoints and run.json (default runs/MODEL)")
    train.add_argument("--scale", choices=tuple(SCALES), default=None,
                       help="full: the slides' settings (default); quick: a small CPU run")
    train.add_argument("--quick", action="store_true", help="the same as --scale quick")
    train.add_argument("--resume", action="store_true",
                       help="continue OUT/last.pt with its settings and split; options given "
                            "change them where that is safe (e.g. --lr, --epochs)")
    trust_option(train, "resume from")
    train.add_argument("--max-volumes", type=int, default=None, metavar="N",
                       help="use only the first N volumes of the data")
    add_phantom_options(train, "default at --scale full:")
    add_config_options(train)

    add_scoring_parsers(commands)
    add_check_parser(commands)
    packer = commands.add_parser("pack", help="pack a BraTS folder into memory-mapped arrays "
                                              "that load much faster",
                                 description="Pack a BraTS folder (Kaggle slices or NIfTI) "
                                             "into memory-mapped arrays.")
    packer.add_argument("--data", type=Path, required=True,
                        help="the BraTS folder to pack (Kaggle slices or NIfTI cases)")
    packer.add_argument("--out", type=Path, required=True,
                        help="a new or empty folder, or an earlier pack to replace")
    packer.add_argument("--workers", type=int, metavar="N",
                        help="processes reading the volumes (default: one per CPU core, up to "
                             "8, for 300 slices of 240×240 or as many pixels; 1: this one)")

    reference = commands.add_parser(
        "reference", help="train the three models at a scale and write a results bundle",
        description="Train the classic, improved and attention U-Nets with the same split at "
                    "a scale (full: the slides' configuration, for a GPU), score each on the "
                    "held-out test volumes and write OUT/reference.json and OUT/showcase.npz, "
                    "which the book reads.")
    reference.add_argument("--out", type=Path, required=True,
                           help="the bundle's folder (runs and phantom go below it)")
    reference.add_argument("--scale", choices=tuple(SCALES), default="full",
                           help="full: the slides' settings (default); quick: a CPU rehearsal")
    reference.add_argument("--data", type=Path, default=None,
                           help="a BraTS folder (default: the scale's phantom)")
    add_phantom_options(reference, "default at --scale full:")
    add_config_options(reference)

    bench = commands.add_parser("bench", help="measure speed and size beside MONAI's U-Nets",
                                description="Measure speed and size beside MONAI's U-Nets.")
    bench.add_argument("--image-size", type=int, default=240, help="image side (default 240)")
    bench.add_argument("--batch-size", type=int, default=None,
                       help="training batch (default 32 on a GPU, 4 on the CPU)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    bench.add_argument("--steps", type=int, default=3, help="steps per timed run (default 3)")
    bench.add_argument("--repeats", type=int, default=3,
                       help="timed runs; the median is reported (default 3)")
    bench.add_argument("--models", nargs="+", default=["classic", "improved", "attention"],
                       metavar="NAME", help="models to time: classic, improved, attention, or a "
                       "variant: improved-nchw-depthwise, improved-cudnn-depthwise or "
                       "improved-native-depthwise (default: the three presets)")
    bench.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                       help="measure MONAI's BasicUNet and AttentionUnet too (default on)")
    bench.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                       help="mixed precision on CUDA (default on)")
    bench.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                       help="NHWC memory layout (default off)")
    bench.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                       help="torch.compile every model (default off)")
    bench.add_argument("--out", type=Path, default=None,
                       help="also write the table here (and the figures as .json beside it)")
    bench.add_argument("--fit", action="store_true",
                       help="also train each model for two epochs with fit() on a phantom and "
                            "report fit's images/s against the step rate (written beside "
                            "--out as NAME-fit.md)")
    bench.add_argument("--fit-volumes", type=int, default=8, metavar="N",
                       help="phantom volumes for --fit (default 8)")
    bench.add_argument("--fit-slices", type=int, default=155, metavar="N",
                       help="slices per phantom volume for --fit (default 155)")
    return parser
