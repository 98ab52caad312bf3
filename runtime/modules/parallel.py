"""``Parallel``: run many ``(program, inputs)`` pairs at once, results in order.

The programs may differ from pair to pair (generated predictors, module kinds, user
:class:`~sigforge.runtime.module.Module` pipelines): each pair is called as
``program(**inputs)`` on a thread, or awaited as ``program.acall(**inputs)`` on the event
loop. Inputs are a mapping of keyword arguments or an inputs model (its fields). The
work is done by :mod:`sigforge.runtime.batch` (bounded concurrency, the caller's context
in every item, a progress bar), so errors follow its rules: with
``return_exceptions=True`` (the default) a pair that fails with a
:class:`~sigforge.runtime.errors.SigforgeError` gets that error in its place; with
``False`` the first error is raised and no further pairs start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from ..batch import arun_batch, run_batch
from ..errors import SigforgeError

__all__ = ["AsyncProgram", "Parallel"]


class AsyncProgram(Protocol):
    """What :meth:`Parallel.arun` calls: anything with ``acall(**inputs)``."""

    def acall(self, **kwargs: Any) -> Awaitable[Any]: ...


Inputs = Mapping[str, Any] | BaseModel


def _keywords(inputs: Inputs) -> dict[str, Any]:
    """The keyword arguments of a pair: a mapping's items, or an inputs model's fields."""
    return dict(inputs)


class Parallel:
    """Runs ``(program, inputs)`` pairs with up to ``concurrency`` at once, in input order.

    ``progress`` shows a progress bar (default: when stderr is a terminal).
    """

    def __init__(
        self,
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        progress: bool | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.return_exceptions = return_exceptions
        self.progress = progress

    def run(
        self, pairs: Sequence[tuple[Callable[..., Any], Inputs]]
    ) -> list[Any | SigforgeError]:
        """Call every ``program(**inputs)`` on threads; each result (or error) in order."""

        def one(pair: tuple[Callable[..., Any], Inputs]) -> Any:
            program, inputs = pair
            return program(**_keywords(inputs))

        return run_batch(
            one,
            list(pairs),
            concurrency=self.concurrency,
            return_exceptions=self.return_exceptions,
            progress=self.progress,
            description="parallel",
        )

    async def arun(self, pairs: Sequence[tuple[AsyncProgram, Inputs]]) -> list[Any | SigforgeError]:
        """Await every ``program.acall(**inputs)`` on this event loop; results in order."""

        async def one(pair: tuple[AsyncProgram, Inputs]) -> Any:
            program, inputs = pair
            return await program.acall(**_keywords(inputs))

        return await arun_batch(
            one,
            list(pairs),
            concurrency=self.concurrency,
            return_exceptions=self.return_exceptions,
            progress=self.progress,
            description="parallel",
        )

    __call__ = run
