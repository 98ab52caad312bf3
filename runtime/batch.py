"""Many predictions at once: bounded concurrency, results in input order, a progress bar.

:func:`run_batch` uses a pool of threads (for the blocking API), :func:`arun_batch` a
pool of asyncio tasks; both run each item in a copy of the caller's
:mod:`contextvars` context, so ``with context(lm=...)`` and callbacks set around the
batch apply to every item.

``return_exceptions`` (as in :func:`asyncio.gather`):

* ``True`` (the default): every item gets its result or the
  :class:`~sigforge.runtime.errors.SigforgeError` it ended with, in input order; the
  batch itself never fails because an item did. Exceptions that are not sigforge
  errors (a bug, ``KeyboardInterrupt``) still propagate.
* ``False``: the first failure is raised as soon as it happens; items not yet started
  are not started (items in flight finish and are discarded).

The progress bar (tqdm, on stderr) is shown when ``progress`` is true, or when it is
``None`` and stderr is a terminal.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import SigforgeError

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["arun_batch", "run_batch"]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


def run_batch(
    fn: Callable[[ItemT], ResultT],
    items: Sequence[ItemT],
    *,
    concurrency: int = 8,
    return_exceptions: bool = True,
    progress: bool | None = None,
    description: str = "",
) -> list[ResultT | SigforgeError]:
    """``fn`` over ``items`` with up to ``concurrency`` threads; results in input order."""
    from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

    _check_concurrency(concurrency)
    results: list[ResultT | SigforgeError] = [None] * len(items)  # type: ignore[list-item]
    if not items:
        return results
    bar = _progress_bar(progress, len(items), description)
    context = contextvars.copy_context()
    failed = threading.Event()

    def one(index: int) -> None:
        if failed.is_set():  # fail-fast: an earlier item failed, start nothing more
            return
        # Each item runs in its own copy of the caller's context (a Context cannot be
        # entered by two threads at once).
        try:
            results[index] = context.copy().run(fn, items[index])
        except BaseException as error:
            if return_exceptions and isinstance(error, SigforgeError):
                results[index] = error
            else:
                failed.set()
                raise
        finally:
            if bar is not None:
                bar.update(1)

    executor = ThreadPoolExecutor(
        max_workers=min(concurrency, len(items)), thread_name_prefix="sigforge-batch"
    )
    try:
        futures: list[Future[None]] = [executor.submit(one, i) for i in range(len(items))]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                executor.shutdown(wait=True, cancel_futures=True)
                future.result()  # raises it
        wait(futures)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return results


async def arun_batch(
    fn: Callable[[ItemT], Awaitable[ResultT]],
    items: Sequence[ItemT],
    *,
    concurrency: int = 8,
    return_exceptions: bool = True,
    progress: bool | None = None,
    description: str = "",
) -> list[ResultT | SigforgeError]:
    """``await fn(item)`` for each item with up to ``concurrency`` in flight, in order."""
    import asyncio

    _check_concurrency(concurrency)
    results: list[ResultT | SigforgeError] = [None] * len(items)  # type: ignore[list-item]
    if not items:
        return results
    bar = _progress_bar(progress, len(items), description)
    pending = iter(range(len(items)))

    async def worker() -> None:
        # Workers share one iterator of indices: each item is taken exactly once.
        for index in pending:
            try:
                results[index] = await fn(items[index])
            except SigforgeError as error:
                if not return_exceptions:
                    raise
                results[index] = error
            finally:
                if bar is not None:
                    bar.update(1)

    # Tasks copy the current context when created, so settings apply inside them.
    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return results


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")


def _progress_bar(progress: bool | None, total: int, description: str) -> tqdm[Any] | None:
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=description or None, unit="call", file=sys.stderr)
