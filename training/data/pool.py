"""Running a function over jobs in worker processes, results in job order, with an optional progress bar."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def _context() -> multiprocessing.context.BaseContext:
    # fork skips re-importing torch in every worker (seconds each); the workers only touch PIL and numpy, so it is
    # safe.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def ordered_map(function: Callable[[Job], Result], jobs: Sequence[Job], workers: int) -> Iterator[Result]:
    """function(job) for every job, in order: in this process for one worker (or one job), else in a pool."""
    workers = min(max(1, workers), len(jobs))
    if workers <= 1:
        yield from map(function, jobs)
        return
    with _context().Pool(workers) as pool:
        yield from pool.imap(function, jobs)


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar counting images, or None when progress is off (callers check before updating)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img")
