"""A real, scripted server speaking Anthropic's Messages API on 127.0.0.1.

.. code-block:: python

    with AnthropicServer(["Paris."]) as server:
        response = httpx.post(
            f"{server.base_url}/v1/messages",
            headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
            json={"model": "claude-x", "max_tokens": 100,
                  "messages": [{"role": "user", "content": "Capital of France?"}]},
        )
        assert response.json()["content"][0]["text"] == "Paris."
        assert server.violations == []

It answers ``POST /v1/messages`` (``base_url`` is ``http://127.0.0.1:PORT``, the way
Anthropic's clients are configured) and checks each request against the documented
format:

* headers: ``x-api-key`` (missing: HTTP 401 ``authentication_error``; with ``api_key``
  given, any other key too), ``anthropic-version`` (``2023-06-01`` or ``2023-01-01``),
  ``content-type: application/json``;
* body: ``model`` (string), ``max_tokens`` (integer >= 1), ``messages`` (non-empty;
  roles ``user``/``assistant``, the first ``user``; a ``system`` role is refused and
  pointed to the top-level ``system``), each content a non-empty string or a non-empty
  list of blocks -- ``text`` (non-empty text), ``image`` with a ``source`` of type
  ``base64`` (``media_type`` image/jpeg, png, gif or webp, and valid base64 ``data``),
  ``url`` or ``file``; the documented ``document``, ``tool_use``, ``tool_result``,
  ``thinking`` and ``redacted_thinking`` blocks are accepted by type. A final assistant
  turn (a prefill) may not end in whitespace. Optional ``system`` (a string or a list of
  ``text`` blocks), ``temperature`` (0-1), ``top_p`` (0-1), ``top_k``,
  ``stop_sequences`` (strings), ``stream``, ``metadata``, ``tools``, ``tool_choice``,
  ``thinking``, ``service_tier``; any other field is refused, as Anthropic refuses
  extra inputs.

Violations are recorded in ``server.violations`` and answered with HTTP 400 and
Anthropic's error shape ``{"type": "error", "error": {"type": "invalid_request_error",
"message": ...}}``. Scripted errors use the status's type: 400
``invalid_request_error``, 401 ``authentication_error``, 403 ``permission_error``, 404
``not_found_error``, 413 ``request_too_large``, 429 ``rate_limit_error``, 500
``api_error``, 529 ``overloaded_error``; :func:`rate_limit_headers` builds Anthropic's
rate-limit headers for them.

A success is a ``message`` object with one ``text`` block, ``stop_reason`` (``end_turn``,
``max_tokens``, ``stop_sequence``, ... from :attr:`Reply.finish_reason`) and ``usage``.
With ``"stream": true`` the answer is the documented event sequence, each as ``event:
<name>`` + ``data: {...}``: ``message_start``, ``content_block_start``, ``ping``, one
``content_block_delta`` (``text_delta``) per piece, ``content_block_stop``,
``message_delta`` (``stop_reason``, ``usage.output_tokens``), ``message_stop``; a
mid-stream error is an ``error`` event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ._checks import Field, Problems, check_fields
from ._core import Answer, Dialect, Event, Inspection, Reply, Responder, Route, ScriptedServer

__all__ = ["ANTHROPIC_VERSIONS", "AnthropicDialect", "AnthropicServer", "rate_limit_headers"]

#: the ``anthropic-version`` header values the API accepts
ANTHROPIC_VERSIONS = ("2023-06-01", "2023-01-01")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
#: documented block types accepted without a closer look
_OTHER_BLOCKS = ("document", "tool_use", "tool_result", "thinking", "redacted_thinking")

_PARAMS: dict[str, Field] = {
    "model": Field("str"),
    "messages": Field("list"),
    "max_tokens": Field("int", 1),
    "system": Field("any"),
    "temperature": Field("number", 0, 1),
    "top_p": Field("number", 0, 1),
    "top_k": Field("int", 0),
    "stop_sequences": Field("str_list"),
    "stream": Field("bool"),
    "metadata": Field("object"),
    "tools": Field("list"),
    "tool_choice": Field("object"),
    "thinking": Field("object"),
    "service_tier": Field("str", choices=("auto", "standard_only")),
}


class AnthropicDialect(Dialect):
    """Anthropic's Messages format (see the module docstring)."""

    name = "anthropic"
    base_path = ""

    def route(self, method: str, path: str, query: Mapping[str, str]) -> Route | None:
        if method == "POST" and path == "/v1/messages":
            return Route("messages")
        return None

    # -- checking ---------------------------------------------------------------------------

    def inspect(
        self, route: Route, headers: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> Inspection:
        problems = Problems()
        key = headers.get("x-api-key")
        if not key:
            problems.add("x-api-key: header is required", status=401)
        elif self.api_key is not None and key != self.api_key:
            problems.add("invalid x-api-key", status=401, violation=False)
        version = headers.get("anthropic-version")
        if version is None:
            problems.add("anthropic-version: header is required")
        elif version not in ANTHROPIC_VERSIONS:
            problems.add(f"anthropic-version: {version!r} is not a valid version")
        data = self.json_object(headers, body, problems)
        if data is None:
            return Inspection(problems)
        check_fields(problems, data, _PARAMS, unknown="{name}: Extra inputs are not permitted")
        for required in ("model", "max_tokens", "messages"):
            if required not in data:
                problems.add(f"{required}: Field required")
        texts: list[str] = []
        _check_system(problems, data.get("system"), texts)
        messages = data.get("messages")
        if isinstance(messages, list):
            _check_messages(problems, messages, texts)
        model = data.get("model")
        return Inspection(
            problems,
            stream=data.get("stream") is True,
            model=model if isinstance(model, str) else None,
            texts=texts,
        )

    # -- answering ---------------------------------------------------------------------------

    def completion(self, answer: Answer) -> dict[str, Any]:
        reply = answer.reply
        content = [] if reply.content is None else [{"type": "text", "text": reply.content}]
        return {
            "id": f"msg_{answer.id}",
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": answer.model,
            "stop_reason": _stop_reason(reply),
            "stop_sequence": reply.stop_sequence,
            "usage": {
                "input_tokens": answer.prompt_tokens,
                "output_tokens": answer.completion_tokens,
            },
        }

    def stream_head(self, answer: Answer) -> list[Event]:
        message = self.completion(answer)
        message.update(content=[], stop_reason=None, stop_sequence=None)
        message["usage"] = {"input_tokens": answer.prompt_tokens, "output_tokens": 1}
        return [
            _event("message_start", message=message),
            _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            _event("ping"),
        ]

    def stream_piece(self, answer: Answer, piece: str, index: int) -> Event:
        return _event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})

    def stream_tail(self, answer: Answer) -> list[Event]:
        reply = answer.reply
        return [
            _event("content_block_stop", index=0),
            _event(
                "message_delta",
                delta={"stop_reason": _stop_reason(reply), "stop_sequence": reply.stop_sequence},
                usage={"output_tokens": answer.completion_tokens},
            ),
            _event("message_stop"),
        ]

    def stream_error(self, answer: Answer, status: int, message: str, error_type: str) -> Event:
        return _event("error", error={"type": error_type, "message": message})

    def error_type(self, status: int) -> str:
        if status in _ERROR_TYPES:
            return _ERROR_TYPES[status]
        return "api_error" if status >= 500 else "invalid_request_error"

    def error_body(
        self, status: int, message: str, error_type: str, retry_after: float | None
    ) -> dict[str, Any]:
        return {"type": "error", "error": {"type": error_type, "message": message}}


class AnthropicServer(ScriptedServer):
    """A scripted Anthropic Messages server on ``127.0.0.1`` (ephemeral port).

    Scripts, responders, ``default``, ``max_lifetime``, outages and streams work as for
    :class:`~sigforge.testing.server.OpenAICompatServer`. ``api_key``: the only key
    accepted (default: any non-empty key). ``base_url`` is ``http://127.0.0.1:PORT``.
    """

    dialect: AnthropicDialect

    def __init__(
        self,
        replies: Iterable[str | Reply] | Responder = (),
        *,
        default: str | Reply | None = None,
        max_lifetime: float | None = 120.0,
        api_key: str | None = None,
    ) -> None:
        super().__init__(
            replies,
            dialect=AnthropicDialect(api_key=api_key),
            default=default,
            max_lifetime=max_lifetime,
        )


def rate_limit_headers(
    *,
    retry_after: float | None = None,
    requests_limit: int | None = None,
    requests_remaining: int | None = None,
    requests_reset: datetime | float | None = None,
    tokens_limit: int | None = None,
    tokens_remaining: int | None = None,
    tokens_reset: datetime | float | None = None,
) -> dict[str, str]:
    """Anthropic's rate-limit response headers, for ``Reply(headers=...)``.

    ``retry_after`` is seconds (``retry-after``); the ``*_reset`` values are a datetime
    or seconds from now, sent as RFC 3339 times in UTC
    (``anthropic-ratelimit-requests-reset: 2025-01-01T00:00:30Z``).
    """
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    for kind, limit, remaining, reset in (
        ("requests", requests_limit, requests_remaining, requests_reset),
        ("tokens", tokens_limit, tokens_remaining, tokens_reset),
    ):
        if limit is not None:
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        if remaining is not None:
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
        if reset is not None:
            headers[f"anthropic-ratelimit-{kind}-reset"] = _rfc3339(reset)
    return headers


def _rfc3339(when: datetime | float) -> str:
    if not isinstance(when, datetime):
        when = datetime.now(UTC) + timedelta(seconds=when)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(kind: str, **fields: Any) -> Event:
    return Event(json.dumps({"type": kind, **fields}), name=kind)


def _stop_reason(reply: Reply) -> str:
    return _STOP_REASONS.get(reply.finish_reason, reply.finish_reason)


# -- checks of the parts ------------------------------------------------------------------------


def _check_system(problems: Problems, system: Any, texts: list[str]) -> None:
    if system is None:
        return
    if isinstance(system, str):
        texts.append(system)
        return
    if not isinstance(system, list):
        problems.add("system: expected a string or a list of text blocks")
        return
    pieces: list[str] = []
    for index, block in enumerate(system):
        where = f"system[{index}]"
        if not isinstance(block, dict) or block.get("type") != "text":
            problems.add(f"{where}: system blocks must be text blocks")
            continue
        _check_text_block(problems, block, where, pieces)
    texts.append("".join(pieces))


def _check_messages(problems: Problems, messages: list[Any], texts: list[str]) -> None:
    if not messages:
        problems.add("messages: at least one message is required")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            problems.add(f"{where}: expected an object")
            continue
        for key in message:
            if key not in ("role", "content"):
                problems.add(f"{where}.{key}: Extra inputs are not permitted")
        role = message.get("role")
        if role == "system":
            problems.add(
                f"{where}.role: 'system' is not a valid role; put the system prompt in the "
                "top-level 'system' parameter"
            )
        elif role not in ("user", "assistant"):
            problems.add(f"{where}.role: expected 'user' or 'assistant', got {role!r}")
        elif index == 0 and role != "user":
            problems.add(f"{where}.role: the first message must use the 'user' role")
        if "content" not in message:
            problems.add(f"{where}.content: Field required")
            continue
        text = _check_content(problems, message["content"], f"{where}.content")
        texts.append(text)
        last = index == len(messages) - 1
        if last and role == "assistant" and text and text != text.rstrip():
            problems.add(f"{where}: final assistant content cannot end with trailing whitespace")


def _check_content(problems: Problems, content: Any, where: str) -> str:
    """Check one message's content; returns its text."""
    if isinstance(content, str):
        if not content:
            problems.add(f"{where}: text content must be non-empty")
        return content
    if not isinstance(content, list):
        problems.add(f"{where}: expected a string or a list of content blocks")
        return ""
    if not content:
        problems.add(f"{where}: the list of content blocks must not be empty")
    pieces: list[str] = []
    for index, block in enumerate(content):
        block_where = f"{where}[{index}]"
        if not isinstance(block, dict):
            problems.add(f"{block_where}: expected an object")
            continue
        kind = block.get("type")
        if kind == "text":
            _check_text_block(problems, block, block_where, pieces)
        elif kind == "image":
            _check_image_block(problems, block, block_where)
        elif kind not in _OTHER_BLOCKS:
            problems.add(f"{block_where}.type: unknown content block type {kind!r}")
    return "".join(pieces)


def _check_text_block(
    problems: Problems, block: dict[str, Any], where: str, texts: list[str]
) -> None:
    check_fields(
        problems,
        block,
        {
            "type": Field("str"),
            "text": Field("str"),
            "cache_control": Field("object"),
            "citations": Field("any"),
        },
        where,
        unknown="{where}{name}: Extra inputs are not permitted",
    )
    text = block.get("text")
    if "text" not in block:
        problems.add(f"{where}.text: Field required")
    elif isinstance(text, str):
        if not text:
            problems.add(f"{where}.text: text content blocks must be non-empty")
        texts.append(text)


def _check_image_block(problems: Problems, block: dict[str, Any], where: str) -> None:
    for key in block:
        if key not in ("type", "source", "cache_control"):
            problems.add(f"{where}.{key}: Extra inputs are not permitted")
    source = block.get("source")
    if not isinstance(source, dict):
        problems.add(f"{where}.source: required (an object)")
        return
    kind = source.get("type")
    where = f"{where}.source"
    if kind == "base64":
        allowed = {"type", "media_type", "data"}
        media_type = source.get("media_type")
        if media_type not in _MEDIA_TYPES:
            problems.add(
                f"{where}.media_type: expected one of {', '.join(_MEDIA_TYPES)}, got {media_type!r}"
            )
        problems.base64(source.get("data"), f"{where}.data")
    elif kind == "url":
        allowed = {"type", "url"}
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.add(f"{where}.url: expected an http(s) URL")
    elif kind == "file":
        allowed = {"type", "file_id"}
        if not isinstance(source.get("file_id"), str):
            problems.add(f"{where}.file_id: required (a string)")
    else:
        problems.add(f"{where}.type: expected 'base64', 'url' or 'file', got {kind!r}")
        return
    for key in source:
        if key not in allowed:
            problems.add(f"{where}.{key}: Extra inputs are not permitted")
