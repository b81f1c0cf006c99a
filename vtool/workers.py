"""The one worker pool: I/O-bound work (requests, file hashing that releases the GIL) spread over threads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def pooled(action: Callable[[T], R], items: Iterable[T], jobs: int) -> Iterator[R]:
    """Map action over items on up to `jobs` threads, yielding results in item order; one item or job runs inline."""
    work = list(items)
    if jobs <= 1 or len(work) <= 1:
        yield from map(action, work)
        return
    with ThreadPoolExecutor(min(jobs, len(work))) as pool:
        yield from pool.map(action, work)


def completed(action: Callable[[T], R], items: Iterable[T], jobs: int) -> Iterator[tuple[T, Future[R]]]:
    """Run action over items on `jobs` threads, yielding each item with its future as it finishes.

    Submission follows item order (callers put the largest first); when the consumer stops early (an
    exception), work not yet started is cancelled.
    """
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(action, item): item for item in items}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut
        finally:
            for fut in futures:
                fut.cancel()
