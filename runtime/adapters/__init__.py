"""Prompt formats: field specs and values to chat messages, LM replies to typed outputs.

``ChatAdapter`` (``[[ ## name ## ]]`` sections) and ``JSONAdapter`` (a JSON object
reply) reproduce DSPy 3.4.1's prompts byte for byte; :meth:`Adapter.parse_reply` also
reports the repairs a sloppy reply needed (:data:`REPAIRS`, see docs/parsing.md).
:mod:`.prompts` holds each format's constant text (system message, output request) and
:mod:`.types` the helpers that describe annotations (``field_spec``,
``output_json_schema``): the compiler uses both at generation time, and neither imports
pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .prompts import PROMPT_FORMATS, PromptFormat, default_instructions
from .types import (
    annotation_name,
    constraints_text,
    field_spec,
    output_json_schema,
    response_format,
    type_note,
)

if TYPE_CHECKING:
    from .base import Adapter
    from .chat import ChatAdapter
    from .json_adapter import JSONAdapter
    from .parsing import REPAIRS, ParsedReply
    from .registry import ADAPTERS, adapter_for

__all__ = [
    "ADAPTERS",
    "PROMPT_FORMATS",
    "REPAIRS",
    "Adapter",
    "ChatAdapter",
    "JSONAdapter",
    "ParsedReply",
    "PromptFormat",
    "adapter_for",
    "annotation_name",
    "constraints_text",
    "default_instructions",
    "field_spec",
    "output_json_schema",
    "response_format",
    "type_note",
]

#: the names above that need the run-time stack (pydantic), by module: imported on first
#: use (PEP 562), so that the compiler, which needs only the constant prompt text
#: (:mod:`.prompts`) and the type descriptions (:mod:`.types`), does not load it
_LAZY = {
    "ADAPTERS": "registry",
    "adapter_for": "registry",
    "Adapter": "base",
    "ChatAdapter": "chat",
    "JSONAdapter": "json_adapter",
    "REPAIRS": "parsing",
    "ParsedReply": "parsing",
}


__getattr__ = lazy_attributes(__name__, globals(), _LAZY)
