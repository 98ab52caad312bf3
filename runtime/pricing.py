"""What LM calls cost: a price table, user prices, and per-run usage tracking.

Prices
------
:data:`PRICES_AS_OF` dates the built-in table: list prices in US dollars per million
tokens, standard (not batch, not priority) tier, for prompts within the providers'
base context tier (Gemini 2.5 Pro and 1.5 charge more for longer prompts). They were
written down from the providers' public pricing pages as the author knew them at that
date and have not been checked against those pages since; **prices change**, often
downwards, and cached-input discounts, batch discounts, long-context surcharges and
per-request fees are not modelled. Treat the cost as an estimate and override whatever
you rely on with :func:`register_price` (also the way to price fine-tuned, self-hosted
or OpenAI-compatible models, which have no built-in price).

:func:`price_for` matches a model name to the table: exactly, or a listed name followed
by a version suffix such as a date (``gpt-4o-mini-2024-07-18``,
``claude-3-5-sonnet-20241022``, ``claude-3-5-sonnet@20240620``), a short version number
(``gpt-4-0613``, ``gemini-1.5-flash-002``), ``-latest``, ``-preview``, ``-exp`` or
``-v2:0``. The longest listed name wins, and a suffix that names another model
(``-mini``, ``-8b``, ``-audio-preview``) never matches, so an unknown variant gets no
price rather than a wrong one. A leading ``<provider>/``, ``models/`` or ``anthropic.``
is ignored. User prices are looked up before the built-in ones.

Usage tracking
--------------
``with track_usage() as usage:`` registers a :class:`UsageTracker` callback for the
block (see :mod:`~sigforge.runtime.callbacks`) that adds up tokens and cost of every LM
call made inside it, including asyncio tasks and threads started in the block with a
copied context (``asyncio.to_thread``, ``contextvars.copy_context().run``); a plain
``threading.Thread`` starts from the process-wide settings and is not included. Cache
hits count as calls and as cached calls, with zero tokens and zero cost.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .callbacks import Callback, LMCall
from .messages import Completion, Usage
from .settings import context, current_callbacks

__all__ = [
    "PRICES_AS_OF",
    "ModelUsage",
    "Price",
    "UsageTracker",
    "clear_registered_prices",
    "price_for",
    "register_price",
    "track_usage",
]


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def __post_init__(self) -> None:
        if self.input < 0 or self.output < 0:
            raise ValueError(f"prices must not be negative: {self}")

    def cost(self, usage: Usage) -> float:
        """The cost in US dollars of ``usage``."""
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1e6


#: the date the built-in prices were written down (see the module docstring)
PRICES_AS_OF = "2025-11"

_BUILTIN: Mapping[str, Mapping[str, Price]] = MappingProxyType(
    {
        "openai": MappingProxyType(
            {
                "gpt-5": Price(1.25, 10.00),
                "gpt-5-mini": Price(0.25, 2.00),
                "gpt-5-nano": Price(0.05, 0.40),
                "gpt-4.1": Price(2.00, 8.00),
                "gpt-4.1-mini": Price(0.40, 1.60),
                "gpt-4.1-nano": Price(0.10, 0.40),
                "gpt-4o": Price(2.50, 10.00),
                "gpt-4o-2024-05-13": Price(5.00, 15.00),
                "chatgpt-4o-latest": Price(5.00, 15.00),
                "gpt-4o-mini": Price(0.15, 0.60),
                "gpt-4-turbo": Price(10.00, 30.00),
                "gpt-4": Price(30.00, 60.00),
                "gpt-3.5-turbo": Price(0.50, 1.50),
                "o1": Price(15.00, 60.00),
                "o1-mini": Price(1.10, 4.40),
                "o3": Price(2.00, 8.00),
                "o3-mini": Price(1.10, 4.40),
                "o4-mini": Price(1.10, 4.40),
            }
        ),
        "anthropic": MappingProxyType(
            {
                "claude-opus-4-5": Price(5.00, 25.00),
                "claude-opus-4-1": Price(15.00, 75.00),
                "claude-opus-4": Price(15.00, 75.00),
                "claude-sonnet-4-5": Price(3.00, 15.00),
                "claude-sonnet-4": Price(3.00, 15.00),
                "claude-haiku-4-5": Price(1.00, 5.00),
                "claude-3-7-sonnet": Price(3.00, 15.00),
                "claude-3-5-sonnet": Price(3.00, 15.00),
                "claude-3-5-haiku": Price(0.80, 4.00),
                "claude-3-opus": Price(15.00, 75.00),
                "claude-3-haiku": Price(0.25, 1.25),
            }
        ),
        "gemini": MappingProxyType(
            {
                "gemini-2.5-pro": Price(1.25, 10.00),
                "gemini-2.5-flash": Price(0.30, 2.50),
                "gemini-2.5-flash-lite": Price(0.10, 0.40),
                "gemini-2.0-flash": Price(0.10, 0.40),
                "gemini-2.0-flash-lite": Price(0.075, 0.30),
                "gemini-1.5-pro": Price(1.25, 5.00),
                "gemini-1.5-flash": Price(0.075, 0.30),
            }
        ),
    }
)

_PROVIDER_ALIASES = {"google": "gemini", "claude": "anthropic"}
_MODEL_PREFIXES = ("models/", "anthropic.")
# One or more version parts after a listed name: dates, 3-4 digit versions, tags.
_VERSION_SUFFIX = re.compile(
    r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|latest|preview(?:-\d{2}-\d{2})?|exp"
    r"|v\d+(?::\d+)?))+"
)

_registered_lock = threading.Lock()
# provider -> model -> price; replaced wholesale under the lock, read without it
_registered: Mapping[str, Mapping[str, Price]] = MappingProxyType({})


def _provider_key(provider: str) -> str:
    key = provider.strip().lower()
    return _PROVIDER_ALIASES.get(key, key)


def _model_key(provider: str, model: str) -> str:
    name = model.strip().lower()
    head, slash, rest = name.partition("/")
    if slash and _provider_key(head) == provider:  # "openai/gpt-4o", "google/gemini-..."
        name = rest
    for prefix in _MODEL_PREFIXES:
        name = name.removeprefix(prefix)
    return name


def _lookup(table: Mapping[str, Price], name: str) -> Price | None:
    price = table.get(name)
    if price is not None:
        return price
    best: str | None = None
    for listed in table:
        if (
            name.startswith(listed)
            and (best is None or len(listed) > len(best))
            and _VERSION_SUFFIX.fullmatch(name, len(listed))
        ):
            best = listed
    return table[best] if best is not None else None


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider`` (``openai``, ``anthropic``, ``gemini``), if known.

    User prices (:func:`register_price`) first, then the built-in table; see the module
    docstring for how names match. ``None`` when neither knows the model.
    """
    provider_key = _provider_key(provider)
    name = _model_key(provider_key, model)
    for source in (_registered, _BUILTIN):
        table = source.get(provider_key)
        if table is not None:
            price = _lookup(table, name)
            if price is not None:
                return price
    return None


def register_price(provider: str, model: str, *, input: float, output: float) -> Price:
    """Price ``model`` at ``provider`` (USD per million input / output tokens); returns it.

    Overrides the built-in price of the same name; dated versions of ``model`` match it
    as they match built-in names. Any provider name may be used (e.g. ``"vllm"``).
    """
    global _registered
    price = Price(input, output)
    provider_key = _provider_key(provider)
    name = _model_key(provider_key, model)
    with _registered_lock:
        tables = dict(_registered)
        tables[provider_key] = MappingProxyType({**tables.get(provider_key, {}), name: price})
        _registered = MappingProxyType(tables)
    return price


def clear_registered_prices() -> None:
    """Forget every :func:`register_price` (the built-in table stays)."""
    global _registered
    with _registered_lock:
        _registered = MappingProxyType({})


# ------------------------------------------------------------------------------------------
# Usage tracking
# ------------------------------------------------------------------------------------------


_NO_USAGE: Final = Usage()


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What the calls to one model used."""

    #: answered calls, cache hits included
    calls: int = 0
    #: calls answered from the cache (no tokens, no cost)
    cached_calls: int = 0
    #: calls that ended in an error (not counted in ``calls``; their usage is unknown)
    failed_calls: int = 0
    usage: Usage = _NO_USAGE
    #: US dollars, for the calls whose model had a price
    cost: float = 0.0
    #: answered, uncached calls whose model had no price (their cost is not in ``cost``)
    unpriced_calls: int = 0


class UsageTracker(Callback):
    """Sums the tokens and cost of the LM calls it observes, per model; thread-safe.

    Use it through :func:`track_usage`, or register it yourself (``configure(callbacks=
    [tracker])`` tracks the whole process). The per-model key is the model the LM was
    asked for; the price is looked up for the model the response names (a dated
    version), falling back to the requested one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelUsage] = {}

    def on_lm_response(
        self, call: LMCall, completion: Completion | None, error: BaseException | None
    ) -> None:
        if completion is None:
            self._add(call.model, failed_calls=1)
        elif completion.cached:
            self._add(call.model, calls=1, cached_calls=1)
        else:
            price = price_for(call.provider, completion.model or call.model)
            if price is None and completion.model:
                price = price_for(call.provider, call.model)
            self._add(
                call.model,
                calls=1,
                usage=completion.usage,
                cost=price.cost(completion.usage) if price is not None else 0.0,
                unpriced_calls=int(price is None),
            )

    def _add(
        self,
        model: str,
        *,
        calls: int = 0,
        cached_calls: int = 0,
        failed_calls: int = 0,
        usage: Usage = _NO_USAGE,
        cost: float = 0.0,
        unpriced_calls: int = 0,
    ) -> None:
        with self._lock:
            old = self._models.get(model, ModelUsage())
            self._models[model] = ModelUsage(
                old.calls + calls,
                old.cached_calls + cached_calls,
                old.failed_calls + failed_calls,
                old.usage + usage,
                old.cost + cost,
                old.unpriced_calls + unpriced_calls,
            )

    @property
    def by_model(self) -> dict[str, ModelUsage]:
        """Per requested model, a snapshot."""
        with self._lock:
            return dict(self._models)

    @property
    def total(self) -> ModelUsage:
        """All models together, a snapshot."""
        total = ModelUsage()
        for part in self.by_model.values():
            total = ModelUsage(
                total.calls + part.calls,
                total.cached_calls + part.cached_calls,
                total.failed_calls + part.failed_calls,
                total.usage + part.usage,
                total.cost + part.cost,
                total.unpriced_calls + part.unpriced_calls,
            )
        return total

    @property
    def usage(self) -> Usage:
        """Tokens of all observed calls (cache hits count zero)."""
        return self.total.usage

    @property
    def cost(self) -> float:
        """US dollars of all observed calls whose model had a price."""
        return self.total.cost

    @property
    def calls(self) -> int:
        return self.total.calls

    @property
    def cached_calls(self) -> int:
        return self.total.cached_calls

    @property
    def unpriced_models(self) -> list[str]:
        """Models that had calls without a price (their cost is missing from ``cost``)."""
        return sorted(m for m, part in self.by_model.items() if part.unpriced_calls)

    def __repr__(self) -> str:
        total = self.total
        return (
            f"UsageTracker(calls={total.calls}, cached_calls={total.cached_calls}, "
            f"prompt_tokens={total.usage.prompt_tokens}, "
            f"completion_tokens={total.usage.completion_tokens}, cost=${total.cost:.6f})"
        )


@contextmanager
def track_usage() -> Iterator[UsageTracker]:
    """Track the LM calls of the ``with`` block: ``with track_usage() as usage: ...``.

    Adds a :class:`UsageTracker` to the callbacks in effect for the block (the others
    keep running); read ``usage.usage``, ``usage.cost``, ``usage.by_model`` during or
    after it. Blocks nest: an inner block's calls count in the outer one too.
    """
    tracker = UsageTracker()
    with context(callbacks=[*current_callbacks(), tracker]):
        yield tracker
