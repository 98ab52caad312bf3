"""Google's native Gemini API (``models/{model}:generateContent``).

Bridged differences: messages are ``contents`` with roles ``user`` and ``model``, the
system prompt is ``systemInstruction``, sampling parameters live in
``generationConfig`` under camelCase names (``max_tokens`` is ``maxOutputTokens``), the
JSON format's ``response_format`` becomes ``responseMimeType`` plus
``responseJsonSchema``, images are ``inlineData`` (``data:`` URLs) or ``fileData``
parts, and streaming is ``:streamGenerateContent?alt=sse``, whose events are partial
responses without an end marker: a stream is complete once a ``finishReason`` arrived.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..messages import Completion, Message
from .base import (
    Provider,
    StreamState,
    WireFormatError,
    data_url_parts,
    integer,
    json_loads,
    seconds_value,
    split_system,
)

__all__ = ["GeminiProvider"]

#: OpenAI parameter names and their generationConfig counterparts
_GENERATION_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "seed": "seed",
    "n": "candidateCount",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


class GeminiProvider(Provider):
    name: ClassVar[str] = "gemini"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"

    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        if stream:
            return f"{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"{base_url}/v1beta/models/{model}:generateContent"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def body(
        self,
        model: str,
        messages: Sequence[Message],
        params: Mapping[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        system, turns = split_system(messages)
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if turn["role"] == "assistant" else "user",
                    "parts": _parts(turn["content"]),
                }
                for turn in turns
            ]
        }
        if system is not None:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict[str, Any] = {}
        for key, value in params.items():
            if key == "response_format":
                config.update(_response_config(value))
            elif key == "stop":
                config["stopSequences"] = [value] if isinstance(value, str) else list(value)
            else:
                config[_GENERATION_CONFIG.get(key) or _camel(key)] = value
        if config:
            body["generationConfig"] = config
        return body

    def completion(self, data: Any, model: str) -> Completion:
        state = StreamState(model)
        self._take(state, data)
        if state.finish_reason is None:
            state.finish_reason = "stop" if state.parts else None
        return state.completion()

    def feed(self, state: StreamState, event: str, data: str) -> str:
        before = len(state.parts)
        self._take(state, json_loads(data))
        state.done = state.finish_reason is not None
        return "".join(state.parts[before:])

    def _take(self, state: StreamState, data: Any) -> None:
        """Add one (partial) GenerateContentResponse to ``state``."""
        if not isinstance(data, dict):
            raise WireFormatError("the response is not a JSON object")
        if isinstance(data.get("modelVersion"), str):
            state.model = data["modelVersion"]
        usage = data.get("usageMetadata")
        if isinstance(usage, dict):
            state.prompt_tokens = integer(usage.get("promptTokenCount"))
            state.completion_tokens = integer(usage.get("candidatesTokenCount")) + integer(
                usage.get("thoughtsTokenCount")
            )
        candidates = data.get("candidates")
        if candidates is None:
            feedback = data.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                state.finish_reason = "content_filter"  # the prompt itself was blocked
                return
            if usage is not None:
                return  # a usage-only chunk
            raise WireFormatError("the response has no 'candidates'")
        if not isinstance(candidates, list) or not candidates:
            raise WireFormatError("'candidates' is empty")
        candidate = candidates[0]
        if not isinstance(candidate, dict):
            raise WireFormatError("candidates[0] is not an object")
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            for part in parts:
                # "thought" parts are the model's hidden reasoning, not its answer
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str) and not part.get("thought"):
                    state.parts.append(text)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason != "FINISH_REASON_UNSPECIFIED":
            state.finish_reason = _FINISH_REASONS.get(reason, reason.lower())

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        seconds = super().retry_after(headers, data)
        if seconds is not None:
            return seconds
        # Google puts a RetryInfo detail in the error body: {"retryDelay": "30s"}.
        error = data.get("error") if isinstance(data, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
                delay = detail.get("retryDelay")
                if isinstance(delay, str) and delay.endswith("s"):
                    return seconds_value(delay[:-1])
        return None


def _parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image_url":
            url = str(part["image_url"]["url"])
            inline = data_url_parts(url)
            if inline is not None:
                mime, data = inline
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            else:
                mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
        else:
            parts.append({"text": str(part.get("text", ""))})
    return parts


def _response_config(response_format: Any) -> dict[str, Any]:
    """OpenAI's ``response_format`` as generationConfig fields."""
    if not isinstance(response_format, dict):
        return {}
    kind = response_format.get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
        return config
    return {}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
