"""The shared adapter instances, by format name."""

from __future__ import annotations

from ..errors import ConfigurationError
from .base import Adapter
from .chat import ChatAdapter
from .json_adapter import JSONAdapter

__all__ = ["ADAPTERS", "adapter_for"]

#: one shared instance per format, by ``Adapter.name`` (the formats of
#: :data:`~.prompts.PROMPT_FORMATS`, with their per-call parts)
ADAPTERS: dict[str, Adapter] = {adapter.name: adapter for adapter in (ChatAdapter(), JSONAdapter())}


def adapter_for(name: str) -> Adapter:
    """The shared adapter instance for a format name ("chat" or "json")."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigurationError(f"unknown adapter {name!r}; known adapters: {known}") from None
