"""Anthropic's native Messages API (``POST /v1/messages``).

Differences from the OpenAI format that this module bridges: the system prompt is a
top-level ``system`` field, ``max_tokens`` is required (:data:`DEFAULT_MAX_TOKENS` when
the LM sets none), images are ``image`` content blocks with a ``base64`` or ``url``
source, ``stop`` is ``stop_sequences``, and OpenAI-only parameters (``response_format``,
``seed``, penalties, ...) are not sent -- the JSON format's prompt still asks for JSON.
Streams are typed events (``message_start`` ... ``message_stop``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import BadRequestError, LMError, RateLimitError, ServerError
from ..messages import Completion, Message, Usage
from .base import (
    Provider,
    StreamState,
    WireFormatError,
    data_url_parts,
    integer,
    json_loads,
    split_system,
)

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"
#: sent when the LM sets no ``max_tokens`` (the API requires a value)
DEFAULT_MAX_TOKENS = 4096

#: parameters of the OpenAI format that the Messages API does not accept
_OPENAI_ONLY = frozenset(
    {
        "response_format",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "n",
        "user",
        "stream_options",
    }
)
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
#: error types of stream ``error`` events, by the status the same error would have
_ERROR_EVENT_CLASSES: dict[str, type[LMError]] = {
    "rate_limit_error": RateLimitError,
    "overloaded_error": ServerError,
    "api_error": ServerError,
}
_LIMIT_KINDS = ("requests", "tokens", "input-tokens", "output-tokens")


class AnthropicProvider(Provider):
    name: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"

    def url(self, base_url: str, model: str, *, stream: bool) -> str:
        return f"{base_url}/v1/messages"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def static_headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION}

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
            "model": model,
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [
                {"role": turn["role"], "content": _content(turn["content"])} for turn in turns
            ],
        }
        if system is not None:
            body["system"] = system
        for key, value in params.items():
            if key in _OPENAI_ONLY:
                continue
            if key == "stop":
                body["stop_sequences"] = [value] if isinstance(value, str) else list(value)
            elif key == "max_completion_tokens":
                body["max_tokens"] = value
            else:
                body[key] = value
        if stream:
            body["stream"] = True
        return body

    def completion(self, data: Any, model: str) -> Completion:
        if not isinstance(data, dict) or data.get("type") != "message":
            raise WireFormatError("the body is not a message object")
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise WireFormatError("the message has no 'content' list")
        text = "".join(
            block["text"]
            for block in blocks
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        usage = data.get("usage")
        answered_by = data.get("model")
        return Completion(
            text=text,
            usage=_usage(usage if isinstance(usage, dict) else {}),
            model=answered_by if isinstance(answered_by, str) else model,
            finish_reason=_finish_reason(data.get("stop_reason")),
        )

    def feed(self, state: StreamState, event: str, data: str) -> str:
        payload = json_loads(data)
        if not isinstance(payload, dict):
            raise WireFormatError(f"the {event or 'unnamed'} event is not a JSON object")
        kind = payload.get("type", event)
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                if isinstance(message.get("model"), str):
                    state.model = message["model"]
                usage = message.get("usage")
                if isinstance(usage, dict):
                    counted = _usage(usage)
                    state.prompt_tokens = counted.prompt_tokens
                    state.completion_tokens = counted.completion_tokens
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    state.parts.append(text)
                    return text
        elif kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                state.finish_reason = _finish_reason(delta.get("stop_reason"))
            usage = payload.get("usage")
            if isinstance(usage, dict) and "output_tokens" in usage:
                state.completion_tokens = integer(usage.get("output_tokens"))
        elif kind == "message_stop":
            state.done = True
        elif kind == "error":
            error = payload.get("error")
            error_type = error.get("type") if isinstance(error, dict) else None
            message = self.error_message(payload) or "error event in the stream"
            cls = _ERROR_EVENT_CLASSES.get(str(error_type), BadRequestError)
            raise cls(f"the stream reported {error_type}: {message}", provider=self.name)
        # ping, content_block_start/stop and unknown future events add nothing
        return ""

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        seconds = super().retry_after(headers, data)
        if seconds is not None:
            return seconds
        # When a budget is used up, its reset time says how long to wait.
        waits = []
        for kind in _LIMIT_KINDS:
            if headers.get(f"anthropic-ratelimit-{kind}-remaining") == "0":
                reset = _rfc3339(headers.get(f"anthropic-ratelimit-{kind}-reset"))
                if reset is not None:
                    waits.append(max(0.0, reset - time.time()))
        return max(waits) if waits else None


def _content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """OpenAI content parts as Anthropic content blocks."""
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image_url":
            url = str(part["image_url"]["url"])
            inline = data_url_parts(url)
            if inline is not None:
                mime, data = inline
                source = {"type": "base64", "media_type": mime, "data": data}
            else:
                source = {"type": "url", "url": url}
            blocks.append({"type": "image", "source": source})
        else:
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
    return blocks


def _usage(usage: Mapping[str, Any]) -> Usage:
    # Prompt tokens read from or written to the prompt cache are billed input too.
    prompt = sum(
        integer(usage.get(key))
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Usage(prompt, integer(usage.get("output_tokens")))


def _finish_reason(reason: object) -> str | None:
    if not isinstance(reason, str):
        return None
    return _STOP_REASONS.get(reason, reason)


def _rfc3339(text: str | None) -> float | None:
    if not text:
        return None
    import datetime

    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
