"""A training run's folder: one run at a time, no stale temporaries, files written whole.

* :func:`claim` takes an exclusive lock on ``<folder>/.lock`` for as long as a run writes
  there, so two runs started on one folder cannot interleave their checkpoints: the second is
  refused with a message naming the process that holds the folder. The lock is held by the
  operating system, so a killed run leaves no stale lock behind. The same process may claim
  a folder again (``unet-lib train`` claims it, then :func:`unet_lib.train.fit` does).
  :func:`wait_while_busy` waits for another process's run to end (the course's notebooks
  wait so, rather than fail, when a classmate trains the model of a shared course home).
* :func:`make_room` keeps a new run from overwriting an earlier one's checkpoints unless
  told to (then it deletes them all, so that none outlives the run it belonged to).
* Once the lock is held, temporaries that a killed run left (``.last.pt.XXXX.tmp``, about
  93 MB each at the default size) are removed.
* :func:`write_text_atomic` writes a small file (``run.json``, ``results.json``) through a
  temporary and a rename, as the checkpoints are: a reader never sees half a file, and a
  symlink placed at that name is replaced, not followed out of the folder.
* :func:`write_failure` says in one line why a file could not be written (a full disk, a
  read-only folder) and that the previous one is intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator


try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not protected from each other
    fcntl = None

LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # folder → how many claims this process holds on it


class RunFolderBusy(RuntimeError):
    """Another process is training into the same run folder."""


#: the run folder's per-epoch table, rewritten after every epoch
#: (:func:`unet_lib.progress.history_csv`)
HISTORY_CSV = "history.csv"
#: what :func:`unet_lib.train.fit` writes into its checkpoint folder (guarded by make_room)
RUN_OUTPUTS = ("best.pt", "last.pt", HISTORY_CSV)


def make_room(folder: Path, outputs: tuple[str, ...], overwrite: bool) -> None:
    """Before a new run (not a resumed one) writes ``outputs`` into ``folder``, which this
    process holds (:func:`claim`): refuse where any of them is already there (an earlier run's
    checkpoint, or a file of the same name), or with ``overwrite`` delete them first.

    Raises:
        FileExistsError: ``folder`` holds one of ``outputs`` and ``overwrite`` is false, or
            one of them is a folder; nothing is touched.
    """
    found = present(folder, outputs)
    in_the_way = [path for path in found if path.is_dir() and not path.is_symlink()]
    if in_the_way:
        raise FileExistsError(f"{in_the_way[0]}: is a folder, where the run writes a file; "
                              f"move it away or choose another folder")
    if found and not overwrite:
        how = ("continue it with resume=True, " if (folder / "last.pt").is_file() else "")
        raise FileExistsError(f"{folder}: already holds a run "
                              f"({', '.join(path.name for path in found)}); {how}train again "
                              f"from the start with overwrite=True (these files are deleted), "
                              f"or choose another folder")
    for path in found:
        path.unlink()


def present(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """The entries of ``folder`` named in ``names`` that are there (a broken link included)."""
    return [folder / name for name in names
            if (folder / name).exists() or (folder / name).is_symlink()]


def is_fresh(folder: Path, resume: bool) -> bool:
    """Whether a run asked to ``resume`` in ``folder`` starts from scratch: without
    ``last.pt`` there is nothing to resume (and :func:`make_room` must guard what is there)."""
    return not resume or not (folder / "last.pt").is_file()


@contextlib.contextmanager
def claim(folder: str | Path, tidy: tuple[str, ...] = ()) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for one training run; see the module docstring.
    With ``tidy`` (e.g. ``("run.json",)``): when the run fails or is stopped, a folder this call
    made that holds nothing but its lock and such files is removed, not left behind empty.

    Raises:
        RunFolderBusy: another process holds the folder (the message gives its process id).
        OSError: the folder cannot be created or written (e.g. read-only).
    """
    folder = Path(folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                raise RunFolderBusy(f"{folder}: another training run (process {holder}) is "
                                    f"writing there; wait for it to finish or choose another "
                                    f"--out") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _held[key] = 1
        remove_stale_temporaries(folder)
        try:
            yield folder
        except BaseException:
            if made and tidy:
                _remove_if_unused(folder, tidy)
            raise
        finally:
            del _held[key]
    finally:
        _unlock_and_close(fd)


def _remove_if_unused(folder: Path, tidy: tuple[str, ...]) -> None:
    """Remove ``folder`` if it holds nothing but its lock and files named in ``tidy``."""
    names = {path.name for path in folder.iterdir()}
    if names <= {LOCK_NAME, *tidy}:
        for name in names:
            (folder / name).unlink()
        folder.rmdir()


def _unlock_and_close(fd: int) -> None:
    """Release a lock taken with ``flock`` on ``fd``, then close it. Unlocked first: a loader
    process forked while the lock was held has a copy of the descriptor, which alone would
    keep it locked for as long as that process lives."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def exclusively(lock: str | Path, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created if needed) for the block; when
    another process holds it, call ``on_wait`` and wait for it. For work that several
    processes may start at once and one should do (``torchrun``'s processes, or two notebooks,
    making the same phantom). A no-op where there are no locks (Windows)."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        _unlock_and_close(fd)


def wait_while_busy(folder: str | Path, on_wait: Callable[[], None] = lambda: None) -> bool:
    """Return once no other process holds ``folder``: at once where none does (or where there
    are no locks, on Windows), else after calling ``on_wait`` and blocking until the run that
    trains there ends. Returns whether it waited."""
    lock = Path(folder) / LOCK_NAME
    if fcntl is None or not lock.is_file() or Path(folder).resolve() in _held:
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            on_wait()
            fcntl.flock(fd, fcntl.LOCK_SH)  # granted when the training run's lock is released
            return True
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``.<name>.XXXX.tmp`` files of interrupted writes in ``folder``; call only
    while holding the folder (another run's temporaries would be in flight)."""
    removed = []
    for path in folder.glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# the process's umask, read once at import (setting it to read it is not thread-safe)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temporary_beside(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file in ``path``'s folder, for a write that a rename
    then puts in place. Its permissions are those of an ordinary new file (``0o666`` less the
    umask, as ``open`` gives), not ``mkstemp``'s owner-only ``0o600``: a model trained into a
    shared course home or a cluster's project folder stays readable by the others there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    if hasattr(os, "fchmod"):  # not on Windows, where mode bits mean little
        os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


def write_bytes_atomic(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename;
    ``durable``: on the disk (``fsync``) before the rename, which can wait for other writes to
    the same disk to land (a checkpoint written in the background meanwhile)."""
    path = Path(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str, durable: bool = True) -> Path:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode(), durable)


def write_failure(path: Path, error: Exception) -> str:
    """One line saying why ``path`` could not be written, and that the old file is intact."""
    if getattr(error, "errno", None) == errno.ENOSPC:
        try:
            free = shutil.disk_usage(path.parent).free / 2 ** 20
        except OSError:
            free = None
        reason = "the disk is full" + (f" ({free:.0f} MiB free there)" if free is not None else "")
    elif isinstance(error, PermissionError) or getattr(error, "errno", None) == errno.EROFS:
        reason = "the folder is read-only (permission denied)"
    else:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
    kept = "the previous one there is intact" if path.exists() else "nothing was written"
    return f"{path}: cannot be written: {reason}; {kept}"
