"""Which LM, adapter, cache and callbacks predictors use when none is passed to them explicitly.

Two layers:

* process-wide defaults, changed by :func:`configure`;
* scoped overrides, set by ``with context(...)``. They live in a :mod:`contextvars`
  variable, so they belong to the thread or asyncio task that set them: a new thread
  starts from the process-wide defaults, and an asyncio task sees the overrides its
  creator had when it was created. Overrides never leak sideways.

Reading a setting looks at the innermost override first, then at the defaults.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, cast

from .cache import CACHE_DIR_ENV, Cache, CompletionCache
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .callbacks import Callback
    from .lm import BaseLM

__all__ = [
    "configure",
    "context",
    "current_adapter",
    "current_cache",
    "current_callbacks",
    "current_lm",
]


class _Unset(Enum):
    """Marks a keyword that was not given (``None`` and ``False`` are meaningful values)."""

    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET

#: what the ``cache`` setting may hold: a cache to use, ``False`` for no caching anywhere,
#: ``True`` for the default on-disk cache
CacheSetting: TypeAlias = CompletionCache | bool


@dataclass(frozen=True, slots=True)
class _Defaults:
    lm: BaseLM | None = None
    # The adapter classes live in ``runtime.adapters`` (which imports this package), so
    # they are stored as plain objects here; predictors check and interpret them.
    adapter: object | None = None
    cache: CacheSetting = True
    callbacks: tuple[Callback, ...] = ()


_defaults_lock = threading.Lock()
# Replaced wholesale under the lock; readers take the reference without locking.
_defaults = _Defaults()

_SettingName = Literal["lm", "adapter", "cache", "callbacks"]
_overrides: ContextVar[Mapping[_SettingName, object]] = ContextVar(
    "sigforge_settings_overrides", default=MappingProxyType({})
)


def configure(
    *,
    lm: BaseLM | _Unset | None = UNSET,
    adapter: object | _Unset | None = UNSET,
    cache: CacheSetting | _Unset = UNSET,
    callbacks: Iterable[Callback] | _Unset = UNSET,
) -> None:
    """Change the process-wide defaults; keywords not given keep their current value.

    ``lm=None`` / ``adapter=None`` remove the default. ``cache=False`` turns caching off
    everywhere, ``cache=Cache(...)`` (or any :class:`~sigforge.runtime.cache.CompletionCache`,
    e.g. a ``RedisCache``) uses that cache, ``cache=True`` goes back to the
    default on-disk cache. ``callbacks=[...]`` replaces the callbacks notified of every
    module and LM call (see :mod:`~sigforge.runtime.callbacks`). Overrides of an active
    ``with context(...)`` still win.
    """
    global _defaults
    changes = _checked(lm=lm, adapter=adapter, cache=cache, callbacks=callbacks)
    with _defaults_lock:
        current = _defaults
        _defaults = _Defaults(
            lm=current.lm if lm is UNSET else lm,
            adapter=current.adapter if adapter is UNSET else adapter,
            cache=current.cache if cache is UNSET else cache,
            callbacks=cast("tuple[Callback, ...]", changes.get("callbacks", current.callbacks)),
        )


@contextmanager
def context(
    *,
    lm: BaseLM | _Unset | None = UNSET,
    adapter: object | _Unset | None = UNSET,
    cache: CacheSetting | _Unset = UNSET,
    callbacks: Iterable[Callback] | _Unset = UNSET,
) -> Iterator[None]:
    """Override settings for the ``with`` block (and threads' or tasks' contexts copied in it).

    Takes the same keywords as :func:`configure`; blocks nest. ``callbacks=`` replaces the
    callbacks in effect for the block (pass ``[*current_callbacks(), extra]`` to add one).
    """
    changes = _checked(lm=lm, adapter=adapter, cache=cache, callbacks=callbacks)
    token = _overrides.set(MappingProxyType({**_overrides.get(), **changes}))
    try:
        yield
    finally:
        _overrides.reset(token)


def current_lm() -> BaseLM:
    """The LM in effect; raises :class:`ConfigurationError` when there is none."""
    overrides = _overrides.get()
    lm = overrides.get("lm", _defaults.lm)
    if lm is None:
        raise ConfigurationError(
            "No language model is configured. Configure one for the whole process with "
            "`sigforge.runtime.configure(lm=LM('openai/gpt-4o-mini'))`, for a block of code "
            "with `with sigforge.runtime.context(lm=...):`, or pass `lm=` to the predictor."
        )
    return cast("BaseLM", lm)  # its type was checked when it was set


def current_adapter() -> object | None:
    """The adapter in effect, or ``None`` (predictors then use their default format).

    Returned as ``object`` to avoid an import cycle with ``runtime.adapters``; the
    predictors check that it is an ``Adapter``.
    """
    overrides = _overrides.get()
    return overrides.get("adapter", _defaults.adapter)


def current_cache() -> CompletionCache | None:
    """The cache in effect, or ``None`` when caching is turned off.

    The default cache is created on first use (and touches no file until it is used) at
    :func:`~sigforge.runtime.cache.default_cache_path`, which follows the
    ``SIGFORGE_CACHE_DIR`` environment variable.
    """
    overrides = _overrides.get()
    setting = overrides.get("cache", _defaults.cache)
    if setting is False:
        return None
    if isinstance(setting, CompletionCache):
        return setting
    return _default_cache()


def current_callbacks() -> tuple[Callback, ...]:
    """The callbacks in effect (empty when none are registered): one context-variable read."""
    return _overrides.get().get("callbacks", _defaults.callbacks)  # type: ignore[return-value]


# -- the lazily created default cache -------------------------------------------------

_default_cache_lock = threading.Lock()
# The default cache and the SIGFORGE_CACHE_DIR value it was made for.
_default_cache_slot: tuple[str | None, Cache] | None = None


def _default_cache() -> Cache:
    """The shared default cache for the current ``SIGFORGE_CACHE_DIR``.

    The variable is re-read on every call so that changing it (as tests do) switches to
    a cache in the new place instead of writing to the old one.
    """
    global _default_cache_slot
    env = os.environ.get(CACHE_DIR_ENV)
    slot = _default_cache_slot
    if slot is not None and slot[0] == env:
        return slot[1]
    with _default_cache_lock:
        slot = _default_cache_slot
        if slot is None or slot[0] != env:
            if slot is not None:
                slot[1].close()  # it reopens if someone still holds it
            slot = _default_cache_slot = (env, Cache())
        return slot[1]


# -- validation ------------------------------------------------------------------------


def _checked(
    *,
    lm: BaseLM | _Unset | None,
    adapter: object | _Unset | None,
    cache: CacheSetting | _Unset,
    callbacks: Iterable[Callback] | _Unset = UNSET,
) -> dict[_SettingName, object]:
    """The given (not UNSET) settings, after checking their types."""
    from .callbacks import Callback
    from .lm import BaseLM

    changes: dict[_SettingName, object] = {}
    if lm is not UNSET:
        if lm is not None and not isinstance(lm, BaseLM):
            raise TypeError(f"lm must be a BaseLM (e.g. LM('openai/...')), not {type(lm).__name__}")
        changes["lm"] = lm
    if adapter is not UNSET:
        changes["adapter"] = adapter
    if cache is not UNSET:
        if not isinstance(cache, CompletionCache | bool):
            raise TypeError(
                f"cache must be a CompletionCache (Cache, RedisCache), True (default cache) "
                f"or False (no caching), "
                f"not {type(cache).__name__}"
            )
        changes["cache"] = cache
    if callbacks is not UNSET:
        if isinstance(callbacks, Callback | str | bytes) or not isinstance(callbacks, Iterable):
            raise TypeError(
                f"callbacks must be a list of Callback objects, not {type(callbacks).__name__}"
            )
        listed = tuple(callbacks)
        for callback in listed:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must be Callback objects (subclass "
                    f"sigforge.runtime.callbacks.Callback), not {type(callback).__name__}"
                )
        changes["callbacks"] = listed
    return changes
