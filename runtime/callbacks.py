"""Hooks around module (predictor) calls and LM calls: subclass :class:`Callback`.

Where callbacks come from, for one call:

* the callbacks in effect from the settings: ``configure(callbacks=[...])`` for the
  process, ``with context(callbacks=[...]):`` for a block (it *replaces* the list; add to
  it with ``context(callbacks=[*current_callbacks(), mine])``);
* the callbacks given to the predictor or LM object that makes the call; these see only
  that object's calls.

The predictors and LMs call the dispatch functions below: :func:`module_started` /
:func:`module_ended` around a predictor call, :func:`lm_requested` /
:func:`lm_responded` around an LM call (cache hits included: their completion says
``cached=True``). With no callback registered anywhere, a start function costs one
context-variable read and returns ``None``, and the matching end function returns at
once (``bench/callbacks_overhead.py`` measures it).

Each call gets an id; a module call started inside another one, or an LM call made
inside a module call, carries the enclosing module call's id as ``parent_id``. The
enclosing call is tracked in a :mod:`contextvars` variable, so it follows the code into
asyncio tasks and into threads run in a copied context (``asyncio.to_thread``,
``contextvars.copy_context().run``), and never leaks between unrelated threads or tasks.
Parent ids are tracked only while some callback observes module calls (when none does,
nothing is recorded at all).

A callback that raises never breaks the prediction: the exception is logged on the
``sigforge`` logger (with its traceback) and the remaining callbacks still run.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .settings import current_callbacks

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .messages import Completion, LMRequest

__all__ = [
    "Callback",
    "LMCall",
    "ModuleCall",
    "current_module_call_id",
    "lm_requested",
    "lm_responded",
    "module_ended",
    "module_started",
]

logger = logging.getLogger("sigforge")


class Callback:
    """Base class of callbacks: override the hooks you need; the others do nothing.

    Hooks run synchronously in the thread (or task) making the call, so keep them quick;
    they may be called from many threads at once.
    """

    def on_module_start(self, call: ModuleCall) -> None:
        """A predictor is about to run ``call.inputs``."""

    def on_module_end(
        self, call: ModuleCall, outputs: Any, error: BaseException | None
    ) -> None:
        """The predictor finished: ``outputs`` on success, else the ``error`` it raised.

        ``outputs`` is a predictor's outputs model, or what a user module's ``forward``
        returned (``None`` on error)."""

    def on_lm_request(self, call: LMCall) -> None:
        """An LM is about to answer ``call.request`` (from the cache or over the network)."""

    def on_lm_response(
        self, call: LMCall, completion: Completion | None, error: BaseException | None
    ) -> None:
        """The LM answered (``completion``; ``completion.cached`` for a cache hit) or failed."""


@dataclass(frozen=True, slots=True)
class ModuleCall:
    """One predictor call (or a user module's call), as callbacks see it."""

    call_id: str
    #: the predictor's name (its class name for generated predictors and user modules)
    predictor: str
    #: the signature's name; ``""`` for a user :class:`~sigforge.runtime.module.Module`
    signature: str
    #: the validated inputs model of a predictor; a user module's keyword arguments
    inputs: BaseModel | Mapping[str, Any]
    #: the id of the enclosing module call, ``None`` at the top level
    parent_id: str | None
    #: wall-clock start (``time.time()``)
    started: float
    #: the callbacks notified of this call (its end goes to the same ones)
    callbacks: tuple[Callback, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LMCall:
    """One LM call, as callbacks see it."""

    call_id: str
    #: the model as the LM names it, e.g. ``gpt-4o-mini``
    model: str
    #: ``openai``, ``anthropic``, ``gemini``, ...
    provider: str
    request: LMRequest
    #: the id of the module call that made it, ``None`` outside any module call
    parent_id: str | None
    #: wall-clock start (``time.time()``)
    started: float
    #: the callbacks notified of this call (its response goes to the same ones)
    callbacks: tuple[Callback, ...] = field(default=(), repr=False, compare=False)


# The innermost module call of the running code; set only while some callback observes.
_current_module: ContextVar[str | None] = ContextVar("sigforge_module_call", default=None)

# Ids: a per-process prefix and a counter (``next`` on a count is atomic under the GIL).
_id_prefix = f"{os.getpid():x}{int(time.time() * 1000) & 0xFFFFFF:06x}"
_id_counter = itertools.count(1)


def _new_id() -> str:
    return f"{_id_prefix}-{next(_id_counter):x}"


def current_module_call_id() -> str | None:
    """The id of the module call the running code is inside (``None`` if none is observed)."""
    return _current_module.get()


def _observers(registered: tuple[Callback, ...], own: Sequence[Callback]) -> tuple[Callback, ...]:
    """The settings' callbacks followed by the object's own, each once."""
    if not own:
        return registered
    if not registered:
        return tuple(own)
    merged = list(registered)
    merged.extend(cb for cb in own if not any(cb is seen for seen in registered))
    return tuple(merged)


def module_started(
    predictor: str,
    signature: str,
    inputs: BaseModel | Mapping[str, Any],
    callbacks: Sequence[Callback] = (),
) -> ModuleCall | None:
    """Announce a predictor call; returns the call to pass to :func:`module_ended`.

    ``callbacks`` are the predictor's own. Returns ``None`` (and does nothing else) when
    no callback is registered.
    """
    registered = current_callbacks()
    if not registered and not callbacks:
        return None
    call = ModuleCall(
        _new_id(),
        predictor,
        signature,
        inputs,
        _current_module.get(),
        time.time(),
        _observers(registered, callbacks),
    )
    _current_module.set(call.call_id)
    for callback in call.callbacks:
        try:
            callback.on_module_start(call)
        except Exception:
            _log_failure(callback, "on_module_start")
    return call


def module_ended(
    call: ModuleCall | None,
    outputs: Any = None,
    error: BaseException | None = None,
) -> None:
    """Announce the end of a call :func:`module_started` returned (``None``: nothing to do)."""
    if call is None:
        return
    if _current_module.get() == call.call_id:
        _current_module.set(call.parent_id)
    for callback in call.callbacks:
        try:
            callback.on_module_end(call, outputs, error)
        except Exception:
            _log_failure(callback, "on_module_end")


def lm_requested(
    model: str,
    provider: str,
    request: LMRequest,
    callbacks: Sequence[Callback] = (),
) -> LMCall | None:
    """Announce an LM call; returns the call to pass to :func:`lm_responded`.

    ``callbacks`` are the LM's own. Returns ``None`` when no callback is registered.
    """
    registered = current_callbacks()
    if not registered and not callbacks:
        return None
    call = LMCall(
        _new_id(),
        model,
        provider,
        request,
        _current_module.get(),
        time.time(),
        _observers(registered, callbacks),
    )
    for callback in call.callbacks:
        try:
            callback.on_lm_request(call)
        except Exception:
            _log_failure(callback, "on_lm_request")
    return call


def lm_responded(
    call: LMCall | None,
    completion: Completion | None = None,
    error: BaseException | None = None,
) -> None:
    """Announce the answer (or the error) of a call :func:`lm_requested` returned."""
    if call is None:
        return
    for callback in call.callbacks:
        try:
            callback.on_lm_response(call, completion, error)
        except Exception:
            _log_failure(callback, "on_lm_response")


def _log_failure(callback: Callback, hook: str) -> None:
    logger.exception(
        "callback %s.%s raised; the call goes on without it", type(callback).__name__, hook
    )
