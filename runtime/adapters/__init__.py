"""Prompt formats: field specs and values to chat messages, LM replies to typed outputs.

``ChatAdapter`` (``[[ ## name ## ]]`` sections) and ``JSONAdapter`` (a JSON object
reply) reproduce DSPy 3.4.1's prompts byte for byte; :meth:`Adapter.parse_reply` also
reports the repairs a sloppy reply needed (:data:`REPAIRS`, see docs/parsing.md).
:mod:`.types` holds the build-time helpers that describe annotations (``field_spec``,
``output_json_schema``).
"""

from __future__ import annotations

from ..errors import ConfigurationError
from .base import Adapter, default_instructions
from .chat import ChatAdapter
from .json_adapter import JSONAdapter
from .parsing import REPAIRS, ParsedReply
from .types import (
    annotation_name,
    constraints_text,
    field_spec,
    output_json_schema,
    response_format,
    type_note,
)

__all__ = [
    "ADAPTERS",
    "REPAIRS",
    "Adapter",
    "ChatAdapter",
    "JSONAdapter",
    "ParsedReply",
    "adapter_for",
    "annotation_name",
    "constraints_text",
    "default_instructions",
    "field_spec",
    "output_json_schema",
    "response_format",
    "type_note",
]

#: one shared instance per format, by ``Adapter.name``
ADAPTERS: dict[str, Adapter] = {adapter.name: adapter for adapter in (ChatAdapter(), JSONAdapter())}


def adapter_for(name: str) -> Adapter:
    """The shared adapter instance for a format name ("chat" or "json")."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigurationError(f"unknown adapter {name!r}; known adapters: {known}") from None
