"""Wire formats of the LM providers sigforge speaks natively.

``LM("<prefix>/<model>")`` picks the provider by prefix: ``anthropic`` and ``gemini``
are native formats; ``openai`` and every preset in :data:`~.openai.PRESETS` (``groq``,
``together``, ``ollama``, ``vllm``, ...) speak OpenAI's chat completions.
"""

from __future__ import annotations

from .anthropic import AnthropicProvider
from .base import PresetInfo, Provider, StreamState, WireFormatError
from .gemini import GeminiProvider
from .openai import PRESETS, OpenAIProvider

__all__ = [
    "PRESETS",
    "AnthropicProvider",
    "GeminiProvider",
    "OpenAIProvider",
    "PresetInfo",
    "Provider",
    "StreamState",
    "WireFormatError",
    "provider_for",
]

_OPENAI = OpenAIProvider()
#: native providers by prefix
NATIVE: dict[str, Provider] = {"anthropic": AnthropicProvider(), "gemini": GeminiProvider()}


def provider_for(prefix: str) -> tuple[Provider, PresetInfo]:
    """The wire format and default location for a model prefix; ``KeyError`` if unknown."""
    native = NATIVE.get(prefix)
    if native is not None:
        return native, PresetInfo(native.default_base_url, native.api_key_env)
    return _OPENAI, PRESETS[prefix]
