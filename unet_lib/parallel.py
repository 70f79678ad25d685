"""Work spread over processes, one job per volume: making the phantom and packing a folder.

>>> results = list(map_in_processes(write_volume, jobs, workers=8))  # in the order of jobs

Processes are *spawned*, not forked: a forked copy of a process that already ran torch can
hang in OpenMP. Where spawning cannot work (a script read from standard input, which a new
process cannot re-import) or one worker is asked for, the jobs run here, in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator, Sequence


def spawn_works() -> bool:
    """Whether worker processes can start: a spawned process re-imports ``__main__``, which
    fails for a script read from standard input (``python -``)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


#: the most processes started by default: each imports torch (about 230 MB) and may hold a
#: decoded volume or two, so a 64-core host does not get 64 of them
MOST_WORKERS = 8


def usable_cores() -> int:
    """The CPU cores this process may run on, not all the machine's: ``taskset``'s or a
    container's set of cores, and a container's CPU quota (a JupyterHub pod limited to 2 CPUs
    on a 64-core node sees all 64 in ``os.cpu_count()``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, quota)) if quota else cores


def cpu_quota(cgroup: str = "/sys/fs/cgroup") -> int | None:
    """The CPUs a Linux container may use by its cgroup's quota, rounded up (``cpu.max`` of
    cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of v1); ``None`` without one."""
    try:
        quota, period = (Path(cgroup) / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (Path(cgroup) / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (Path(cgroup) / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        quota, period = int(quota), int(period)  # "max" (v2) or -1 (v1): no quota
    except ValueError:
        return None
    return -(-quota // period) if quota > 0 and period > 0 else None


def default_workers(jobs: int, worth_it: bool = True, most: int | None = MOST_WORKERS) -> int:
    """One process per usable CPU core, at most ``most`` (``None``: no limit) and one per job;
    1 (no start-up cost, a second or two a process) when the work is too small to be
    ``worth_it``."""
    return max(1, min(usable_cores(), most or jobs, jobs)) if worth_it else 1


def map_in_processes(function: Callable, jobs: Sequence[tuple], workers: int,
                     initializer: Callable | None = None, initargs: tuple = ()
                     ) -> Iterator:
    """``function(*job)`` for each of ``jobs``, yielded in the order of ``jobs``, computed by
    ``workers`` spawned processes (each first runs ``initializer(*initargs)``, e.g. to receive
    a dataset once rather than with every job), or here when ``workers`` ≤ 1 or processes
    cannot be spawned. An exception in a job is raised here, and the remaining jobs are
    cancelled; a worker that dies (killed for memory) is a ``ChildProcessError`` saying so."""
    if workers <= 1 or len(jobs) <= 1 or not spawn_works():
        if initializer is not None:
            initializer(*initargs)
        yield from (function(*job) for job in jobs)
        return
    context = multiprocessing.get_context("spawn")
    workers = min(workers, len(jobs))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer,
                             initargs=initargs) as pool:
        futures = [pool.submit(function, *job) for job in jobs]
        try:
            for future in futures:
                yield future.result()
        except BrokenProcessPool:
            raise ChildProcessError(
                f"a worker process died while {workers} ran at once: out of memory (use "
                f"fewer: workers=, --workers), or, from a script of your own, the call is not "
                f"under `if __name__ == \"__main__\":`, which a spawned process needs (it "
                f"imports the script again)") from None
        finally:
            for future in futures:
                future.cancel()
