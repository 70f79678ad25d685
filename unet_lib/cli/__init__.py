"""The ``unet-lib`` command line (also ``python -m unet_lib``); ``unet-lib --help`` lists the
subcommands. The parser is generated in :mod:`.options`, the subcommands live in
:mod:`.commands`, and :func:`main` turns every expected failure into one ``error:`` line."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import warnings

from .options import build_parser

__all__ = ["build_parser", "main"]

#: the exit status of a command whose output's reader went away, as a shell reports one ended
#: by SIGPIPE (128 + 13)
BROKEN_PIPE = 141


#: a number written with a minus sign, 1e-3 notation included (argparse takes "-1e-3" for an
#: option, and answers "expected one argument" instead of the option's own range check)
_NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\S*)?")


def negative_numbers_attached(argv: list[str]) -> list[str]:
    """``["--lr", "-1e-3"]`` as ``["--lr=-1e-3"]`` (also ``--pos-weight -1,2,3``), so that an
    option's negative value reaches its own check, which names what the option accepts."""
    joined, i = [], 0
    while i < len(argv):
        token = str(argv[i])
        following = str(argv[i + 1]) if i + 1 < len(argv) else ""
        if (token.startswith("--") and "=" not in token and token != "--"
                and _NEGATIVE_NUMBER.fullmatch(following)):
            joined.append(f"{token}={following}")
            i += 2
        else:
            joined.append(token)
            i += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; every expected failure ends in one ``error:`` line and exit 2."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # no command: what there is, and how
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(negative_numbers_attached(sys.argv[1:] if argv is None else argv))
    from ..checkpoint import CheckpointError, CheckpointWriteError
    from ..config import ConfigError
    from ..data import BadSampleWarning, BraTSDataError
    from ..patients import PartialVolumeWarning
    from ..runtime import threads_within_usable_cores
    from ..runfolder import RunFolderBusy
    from ..train import OutOfMemory, TrainingDiverged
    from . import commands, datacheck, scoring

    handlers = {"phantom": commands.cmd_phantom, "train": commands.cmd_train,
                "evaluate": scoring.cmd_evaluate, "segment": scoring.cmd_segment,
                "check": datacheck.cmd_check, "pack": commands.cmd_pack,
                "bench": commands.cmd_bench, "reference": commands.cmd_reference}
    before = _stop_on_sigterm()
    formatted = _one_line_warnings(BadSampleWarning, PartialVolumeWarning)
    threads_within_usable_cores(lambda line: print(f"note: {line}", file=sys.stderr))
    # under torchrun every process may report: say which one (rank 0, or alone: no prefix)
    label = f"[rank {os.environ['RANK']}] error" if os.environ.get("RANK", "0") != "0" else "error"
    try:
        status = handlers[args.command](args)
        sys.stdout.flush()  # a reader that left is found here, not at the interpreter's exit
        return status
    except ConfigError as problem:
        print(f"{label}: --{problem.field.replace('_', '-')}: {problem.problem}",
              file=sys.stderr)
    except (FileNotFoundError, FileExistsError, BraTSDataError, CheckpointError,
            CheckpointWriteError, RunFolderBusy, TrainingDiverged, OutOfMemory,
            ValueError) as problem:
        print(f"{label}: {problem}", file=sys.stderr)
    except BrokenPipeError:  # the reader left (``unet-lib evaluate … | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return BROKEN_PIPE
    except OSError as problem:  # a read-only or full disk, a path through a file
        where = f"{problem.filename}: " if problem.filename else ""
        print(f"{label}: {where}{problem.strerror or problem}", file=sys.stderr)
    except KeyboardInterrupt:  # train says more itself; these can be taken up again
        again = {"reference": ": run the same command to finish it (the models it finished "
                              "are kept, one cut short resumes)",
                 "segment": ": the label maps written are complete; run the same command with "
                            "--missing-only to write the others"}
        print(f"\ninterrupted{again.get(args.command, '')}", file=sys.stderr)
        return commands.INTERRUPTED
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)
        warnings.formatwarning = formatted
    return 2


def _one_line_warnings(*categories):
    """Format warnings of ``categories`` as one ``warning:`` line on stderr, not Python's
    ``file:line: Category: message`` and source line (the file is the user's, not the code's
    that warned). Only the text changes: a caller recording warnings still gets them. Returns
    the formatter it replaced. Loader processes started by fork inherit it."""
    formatted = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None):
        if issubclass(category, categories):
            return f"warning: {message}\n"
        return formatted(message, category, filename, lineno, line)

    warnings.formatwarning = one_line
    return formatted


def _stop_on_sigterm():
    """Make SIGTERM (a cluster's scheduler ending or pre-empting a job, ``kill``) stop a
    command as Ctrl-C does: training says where its last checkpoint is and how to resume.
    Returns the handler it replaced (``None`` outside the main thread, where none is set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
