"""OpenAI's ``/chat/completions`` format, spoken by OpenAI and most other servers.

The same wire format serves OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio,
Together, Groq, Fireworks, DeepSeek, OpenRouter, Mistral and xAI; :data:`PRESETS` knows
where each lives and which environment variable usually holds its key, so
``LM("groq/llama-3.3-70b-versatile")`` needs nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import LMError, ServerError
from ..messages import Completion, Message, Usage
from .base import PresetInfo, Provider, StreamState, WireFormatError, integer, json_loads

__all__ = ["PRESETS", "OpenAIProvider"]

OPENAI_BASE_URL = "https://api.openai.com/v1"

#: OpenAI-compatible services by model prefix: ``LM("<prefix>/<model>")``
PRESETS: Mapping[str, PresetInfo] = {
    "openai": PresetInfo(OPENAI_BASE_URL, "OPENAI_API_KEY"),
    "together": PresetInfo("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "groq": PresetInfo("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "fireworks": PresetInfo("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "deepseek": PresetInfo("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "openrouter": PresetInfo("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "mistral": PresetInfo("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "xai": PresetInfo("https://api.x.ai/v1", "XAI_API_KEY"),
    # Servers people run themselves: no key unless one is passed.
    "vllm": PresetInfo("http://localhost:8000/v1", None),
    "ollama": PresetInfo("http://localhost:11434/v1", None),
    "lmstudio": PresetInfo("http://localhost:1234/v1", None),
    "llamacpp": PresetInfo("http://localhost:8080/v1", None),
}

# OpenAI's x-ratelimit-reset-* headers hold Go-style durations such as "1s", "6m0s", "20ms".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class OpenAIProvider(Provider):
    """Chat completions as OpenAI documents them; messages and parameters pass as they are."""

    name: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = OPENAI_BASE_URL
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"

    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        return f"{base_url}/chat/completions"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def body(
        self,
        model: str,
        messages: Sequence[Message],
        params: Mapping[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": list(messages), **params}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def completion(self, data: Any, model: str) -> Completion:
        if not isinstance(data, dict):
            raise WireFormatError("the body is not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise WireFormatError("it has no 'choices'")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise WireFormatError("choices[0] has no 'message'")
        content = message.get("content")
        if content is None:  # e.g. a refusal or a tool call: no text
            content = ""
        if not isinstance(content, str):
            raise WireFormatError("choices[0].message.content is not a string")
        finish_reason = choices[0].get("finish_reason")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        answered_by = data.get("model")
        return Completion(
            text=content,
            usage=Usage(integer(usage.get("prompt_tokens")), integer(usage.get("completion_tokens"))),
            model=answered_by if isinstance(answered_by, str) else model,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        )

    def feed(self, state: StreamState, event: str, data: str) -> str:
        if data.strip() == "[DONE]":
            state.done = True
            return ""
        chunk = json_loads(data)
        if not isinstance(chunk, dict):
            raise WireFormatError("a stream chunk is not a JSON object")
        if "error" in chunk:
            raise self.stream_error(chunk)
        if isinstance(chunk.get("model"), str):
            state.model = chunk["model"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            state.prompt_tokens = integer(usage.get("prompt_tokens"))
            state.completion_tokens = integer(usage.get("completion_tokens"))
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return ""  # the usage chunk, or a keep-alive
        choice = choices[0]
        if not isinstance(choice, dict):
            raise WireFormatError("a stream chunk's choice is not an object")
        if isinstance(choice.get("finish_reason"), str):
            state.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if not isinstance(text, str) or not text:
            return ""
        state.parts.append(text)
        return text

    def stream_error(self, chunk: Mapping[str, Any]) -> LMError:
        message = self.error_message(chunk) or "error event in the stream"
        return ServerError(f"the stream reported an error: {message}", provider=self.name)

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        seconds = super().retry_after(headers, data)
        if seconds is not None:
            return seconds
        # Without Retry-After, OpenAI says when the exhausted budget resets.
        waits = [
            _duration(headers.get(name))
            for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        ]
        known = [wait for wait in waits if wait is not None]
        return max(known) if known else None


def _duration(text: str | None) -> float | None:
    """A Go-style duration (``"6m0s"``, ``"1.5s"``, ``"20ms"``) in seconds, else ``None``."""
    if not text:
        return None
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
