"""A real, scripted OpenAI-compatible HTTP server on 127.0.0.1, for testing LM pipelines.

.. code-block:: python

    with OpenAICompatServer(replies=["Paris", Reply(status=429, headers={"Retry-After": "0"})]) as server:
        lm = LM("openai/test", base_url=server.base_url, api_key="sk-test")
        ...
        assert server.requests[0].json["messages"][0]["role"] == "system"
        assert server.violations == []

The server runs in a daemon thread, answers ``POST /v1/chat/completions`` (and
``/chat/completions``) over HTTP/1.1 with keep-alive, records every request, and shuts
itself down after ``max_lifetime`` seconds in case a test forgets to stop it.

Requests are checked against OpenAI's documented chat-completions format: ``model`` and
a non-empty ``messages`` list are required; each message has a known ``role``
(``system``, ``developer``, ``user``, ``assistant``, ``tool``, ``function``), content as
a string or a list of parts of the types that role may send (``text``, ``image_url``
with an ``http(s)://`` or ``data:image/...;base64,`` URL, ``input_audio``, ``file``),
and no unknown keys; the common parameters have their documented types and ranges
(``temperature`` 0-2, ``top_p`` 0-1, ``max_tokens`` >= 1, ``stop`` up to 4 strings,
``response_format`` of type ``text``/``json_object``/``json_schema`` with a named
schema, ``stream_options`` only with ``stream``). Unknown top-level parameters are
accepted, as OpenAI-compatible servers accept extensions; ``strict=True`` refuses them,
as OpenAI itself does. Violations are recorded in ``server.violations`` and answered
with HTTP 400 (``invalid_request_error``). No API key is required unless ``api_key`` is
given (local OpenAI-compatible servers need none); then any other key gets HTTP 401.

With ``"stream": true`` the answer is ``text/event-stream``: ``chat.completion.chunk``
events as ``data: {...}`` lines -- the first delta carries the role, then one delta per
piece of text (see :class:`Reply` for how the text is split, delayed and broken), then
a chunk with ``finish_reason``, a usage chunk with ``choices: []`` when
``stream_options.include_usage`` is true (the other chunks then carry ``"usage":
null``), and ``data: [DONE]``. A mid-stream error is ``data: {"error": {...}}``.

Embeddings: ``POST /v1/embeddings`` (and ``/embeddings``) is checked against OpenAI's
documented request -- ``model`` (a non-empty string) and ``input`` (a non-empty string,
or a list of up to 2048 non-empty strings, or token arrays) are required;
``encoding_format`` is ``float`` or ``base64``; ``dimensions`` an integer >= 1;
``user`` a string -- and answered ``{"object": "list", "data": [{"object":
"embedding", "index": i, "embedding": [...]}], "model", "usage": {"prompt_tokens",
"total_tokens"}}``, the vectors as JSON numbers or, for ``base64``, little-endian
float32 bytes. The vectors come from ``embedder`` (a function of one text), by default
:func:`hashing_embedding`: deterministic, unit length, ``embedding_dimensions`` long,
and similar for texts that share words. ``dimensions`` shortens them as OpenAI's
``text-embedding-3`` models do (the first ``dimensions`` values, renormalized); more
than the model has is an HTTP 400, and so is an input longer than ``max_input_tokens``
words (OpenAI's "maximum context length" error). Embedding requests do not use the
chat script: ``embedding_replies`` (a sequence of :class:`Reply` items answered first,
in order, or a responder) scripts their errors, delays and raw bodies; a 2xx reply
without a ``body`` is answered with the vectors.

The machinery (lifecycle, script, outages, streams, accounting) is shared with the
Anthropic and Gemini servers; see :mod:`sigforge.testing._core`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._checks import Field, Problems, check_fields, is_int
from ._core import (
    Answer,
    Dialect,
    Event,
    Inspection,
    RecordedRequest,
    Reply,
    Responder,
    Route,
    ScriptedServer,
    ServerStats,
    rough_tokens,
)

__all__ = [
    "EmbeddingFunction",
    "OpenAICompatServer",
    "OpenAIDialect",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ServerStats",
    "hashing_embedding",
]

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
EMBEDDING_PATHS = frozenset({"/v1/embeddings", "/embeddings"})

#: computes the (full-length) embedding of one text
EmbeddingFunction = Callable[[str], Sequence[float]]

#: most inputs one embeddings request may carry (OpenAI's documented limit)
MAX_EMBEDDING_INPUTS = 2048

_EMBEDDING_PARAMS: dict[str, Field] = {
    "model": Field("str"),
    "input": Field("any"),
    "encoding_format": Field("str", choices=("float", "base64")),
    "dimensions": Field("int", 1),
    "user": Field("str"),
}

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
#: the content part types each role may send
_PART_TYPES: dict[str, tuple[str, ...]] = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
    "function": ("text",),
}
_MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "content", "name", "tool_calls", "function_call", "refusal", "audio"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}

_PARAMS: dict[str, Field] = {
    "model": Field("str"),
    "messages": Field("list"),
    "temperature": Field("number", 0, 2),
    "top_p": Field("number", 0, 1),
    "max_tokens": Field("int", 1),
    "max_completion_tokens": Field("int", 1),
    "n": Field("int", 1, 128),
    "stream": Field("bool"),
    "stream_options": Field("object"),
    "stop": Field("any"),
    "seed": Field("int"),
    "presence_penalty": Field("number", -2, 2),
    "frequency_penalty": Field("number", -2, 2),
    "logprobs": Field("bool"),
    "top_logprobs": Field("int", 0, 20),
    "logit_bias": Field("object"),
    "response_format": Field("object"),
    "tools": Field("list"),
    "tool_choice": Field("any"),
    "parallel_tool_calls": Field("bool"),
    "functions": Field("list"),
    "function_call": Field("any"),
    "user": Field("str"),
    "metadata": Field("object"),
    "store": Field("bool"),
    "reasoning_effort": Field("str"),
    "service_tier": Field("str"),
    "modalities": Field("str_list"),
    "audio": Field("object"),
    "prediction": Field("object"),
    "web_search_options": Field("object"),
    "verbosity": Field("str"),
    "prompt_cache_key": Field("str"),
    "safety_identifier": Field("str"),
}


class OpenAIDialect(Dialect):
    """OpenAI's chat-completions format (see the module docstring)."""

    name = "openai"
    base_path = "/v1"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        strict: bool = False,
        embedder: EmbeddingFunction | None = None,
        embedding_dimensions: int = 64,
        max_input_tokens: int = 8192,
    ) -> None:
        super().__init__(api_key=api_key)
        if embedding_dimensions < 1 or max_input_tokens < 1:
            raise ValueError("embedding_dimensions and max_input_tokens must be >= 1")
        #: refuse unknown top-level parameters, as OpenAI does
        self.strict = strict
        self.embedding_dimensions = embedding_dimensions
        self.max_input_tokens = max_input_tokens
        self.embedder: EmbeddingFunction = embedder or (
            lambda text: hashing_embedding(text, self.embedding_dimensions)
        )

    def route(self, method: str, path: str, query: Mapping[str, str]) -> Route | None:
        if method == "POST" and path in CHAT_PATHS:
            return Route("chat.completions")
        if method == "POST" and path in EMBEDDING_PATHS:
            return Route("embeddings", stream=False)
        return None

    # -- checking ---------------------------------------------------------------------------

    def inspect(
        self, route: Route, headers: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> Inspection:
        problems = Problems()
        self._check_key(headers, problems)
        data = self.json_object(headers, body, problems)
        if data is None:
            return Inspection(problems)
        if route.name == "embeddings":
            return self._inspect_embeddings(problems, data)
        unknown = "{name}: unrecognized request argument" if self.strict else None
        check_fields(problems, data, _PARAMS, unknown=unknown)
        model = data.get("model")
        if "model" not in data:
            problems.add("model: required")
        elif isinstance(model, str) and not model:
            problems.add("model: must not be empty")
        messages = data.get("messages")
        texts: list[str] = []
        if "messages" not in data:
            problems.add("messages: required")
        elif isinstance(messages, list):
            if not messages:
                problems.add("messages: must hold at least one message")
            for index, message in enumerate(messages):
                _check_message(problems, message, f"messages[{index}]", texts)
        stream = data.get("stream") is True
        _check_options(problems, data, stream)
        return Inspection(
            problems, stream=stream, model=model if isinstance(model, str) else None, texts=texts
        )

    def _inspect_embeddings(self, problems: Problems, data: dict[str, Any]) -> Inspection:
        unknown = "{name}: unrecognized request argument" if self.strict else None
        check_fields(problems, data, _EMBEDDING_PARAMS, unknown=unknown)
        model = data.get("model")
        if "model" not in data:
            problems.add("model: required")
        elif isinstance(model, str) and not model:
            problems.add("model: must not be empty")
        texts = _embedding_inputs(problems, data)
        for index, text in enumerate(texts):
            tokens = rough_tokens(text)
            if tokens > self.max_input_tokens:
                problems.add(
                    f"This model's maximum context length is {self.max_input_tokens} tokens, "
                    f"however you requested {tokens} tokens (input {index}). Please reduce "
                    "your prompt; or completion length.",
                    violation=False,
                )
                break
        dimensions = data.get("dimensions")
        if isinstance(dimensions, int) and is_int(dimensions) and texts:
            available = len(self.embedder(texts[0]))
            if dimensions > available:
                problems.add(
                    f"dimensions: {dimensions} is more than the model's {available} dimensions",
                    violation=False,
                )
        return Inspection(problems, model=model if isinstance(model, str) else None, texts=texts)

    def _check_key(self, headers: Mapping[str, str], problems: Problems) -> None:
        authorization = headers.get("authorization")
        if authorization is not None and not authorization.startswith("Bearer "):
            problems.add("authorization: expected 'Bearer <API key>'", status=401)
        elif self.api_key is not None:
            if authorization is None:
                problems.add(
                    "You didn't provide an API key (authorization: Bearer <key>)",
                    status=401,
                    violation=False,
                )
            elif authorization != f"Bearer {self.api_key}":
                problems.add("Incorrect API key provided", status=401, violation=False)

    # -- answering ---------------------------------------------------------------------------

    def completion(self, answer: Answer) -> dict[str, Any]:
        if answer.request.path in EMBEDDING_PATHS:
            return self.embeddings(answer)
        reply = answer.reply
        return {
            "id": f"chatcmpl-{answer.id}",
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": _usage(answer),
        }

    def embeddings(self, answer: Answer) -> dict[str, Any]:
        """The answer to an embeddings request: one vector per input, in order."""
        body = answer.request.json if isinstance(answer.request.json, dict) else {}
        dimensions = body.get("dimensions")
        base64_format = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(answer.request.texts):
            vector = [float(x) for x in self.embedder(text)]
            if is_int(dimensions):
                vector = _unit(vector[:dimensions])
            encoded: Any = _base64_floats(vector) if base64_format else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return {
            "object": "list",
            "data": data,
            "model": answer.model,
            "usage": {"prompt_tokens": answer.prompt_tokens, "total_tokens": answer.prompt_tokens},
        }

    def stream_head(self, answer: Answer) -> list[Event]:
        return [self._chunk(answer, {"role": "assistant", "content": ""})]

    def stream_piece(self, answer: Answer, piece: str, index: int) -> Event:
        return self._chunk(answer, {"content": piece})

    def stream_tail(self, answer: Answer) -> list[Event]:
        events = [self._chunk(answer, {}, answer.reply.finish_reason)]
        if _include_usage(answer.request):
            usage = self._chunk(answer, {})
            data = json.loads(usage.data)
            data["choices"] = []
            data["usage"] = _usage(answer)
            events.append(Event(json.dumps(data, separators=(",", ":"))))
        events.append(Event("[DONE]"))
        return events

    def _chunk(
        self, answer: Answer, delta: dict[str, Any], finish_reason: str | None = None
    ) -> Event:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-{answer.id}",
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if _include_usage(answer.request):
            chunk["usage"] = None
        return Event(json.dumps(chunk, separators=(",", ":")))

    def error_type(self, status: int) -> str:
        if status == 429:
            return "rate_limit_exceeded"
        if status in (401, 403):
            return "authentication_error"
        if status >= 500:
            return "server_error"
        return "invalid_request_error"

    def error_body(
        self, status: int, message: str, error_type: str, retry_after: float | None
    ) -> dict[str, Any]:
        return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


class OpenAICompatServer(ScriptedServer):
    """A scripted chat-completions server on ``127.0.0.1`` (ephemeral port).

    ``replies`` is either a sequence consumed in order (``str`` items are the content of
    successful completions, :class:`Reply` items anything else) or a responder callable
    that computes each reply from the :class:`RecordedRequest`. Once a sequence is used
    up, ``default`` answers (by default: HTTP 500 saying the script ran out).
    ``api_key``: the only key accepted (default: any key or none). ``strict``: refuse
    unknown top-level parameters. ``base_url`` is ``http://127.0.0.1:PORT/v1``.

    ``/v1/embeddings`` (see the module docstring): ``embedder`` computes a text's vector
    (default: :func:`hashing_embedding` of ``embedding_dimensions`` values);
    ``embedding_replies`` script those requests (a sequence answered first, or a
    responder); inputs over ``max_input_tokens`` words are refused.

    Start and stop it with ``with``, or with :meth:`start` / :meth:`stop`.
    """

    dialect: OpenAIDialect

    def __init__(
        self,
        replies: Iterable[str | Reply] | Responder = (),
        *,
        default: str | Reply | None = None,
        max_lifetime: float | None = 120.0,
        api_key: str | None = None,
        strict: bool = False,
        embedder: EmbeddingFunction | None = None,
        embedding_dimensions: int = 64,
        embedding_replies: Iterable[Reply] | Responder = (),
        max_input_tokens: int = 8192,
    ) -> None:
        self._embedding_responder: Responder | None = None
        self._embedding_script: deque[Reply] = deque()
        if callable(embedding_replies):
            self._embedding_responder = embedding_replies
        else:
            self._embedding_script.extend(embedding_replies)
        self._embedding_lock = threading.Lock()
        super().__init__(
            replies,
            dialect=OpenAIDialect(
                api_key=api_key,
                strict=strict,
                embedder=embedder,
                embedding_dimensions=embedding_dimensions,
                max_input_tokens=max_input_tokens,
            ),
            default=default,
            max_lifetime=max_lifetime,
        )

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """The embeddings requests received so far, in order."""
        return [r for r in self.requests if r.path in EMBEDDING_PATHS]

    def _reply_for(self, request: RecordedRequest) -> Reply:
        if request.path not in EMBEDDING_PATHS:
            return super()._reply_for(request)
        responder = self._embedding_responder
        if responder is not None:
            try:
                item = responder(request)
            except Exception as exc:
                with self._lock:
                    self._errors.append(exc)
                return Reply(
                    status=500, error_message=f"responder raised {type(exc).__name__}: {exc}"
                )
            return Reply(content=item) if isinstance(item, str) else item
        with self._embedding_lock:
            return self._embedding_script.popleft() if self._embedding_script else Reply()


def hashing_embedding(text: str, dimensions: int = 64) -> list[float]:
    """A deterministic unit vector for ``text``: its lower-cased words hashed into
    ``dimensions`` signed buckets (the "hashing trick"), so texts sharing words point
    alike. A text without words gets one bucket chosen by the whole text."""
    import hashlib
    import re

    vector = [0.0] * dimensions
    words = re.findall(r"\w+", text.lower()) or [text]
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        vector[number % dimensions] += 1.0 if (number >> 63) & 1 else -1.0
    return _unit(vector) if any(vector) else [1.0] + [0.0] * (dimensions - 1)


# -- checks of the parts ------------------------------------------------------------------------


def _check_message(problems: Problems, message: Any, where: str, texts: list[str]) -> None:
    if not isinstance(message, dict):
        problems.add(f"{where}: expected an object")
        return
    role = message.get("role")
    if role not in _ROLES:
        if "role" not in message:
            problems.add(f"{where}.role: required")
        else:
            problems.add(f"{where}.role: {role!r} is not one of {', '.join(_ROLES)}")
        return
    for key in message:
        if key not in _MESSAGE_KEYS[role]:
            problems.add(f"{where}: unexpected key {key!r} in a {role} message")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        problems.add(f"{where}.tool_call_id: required (a string) in a tool message")
    if "name" in message and not isinstance(message["name"], str):
        problems.add(f"{where}.name: expected a string")
    content = message.get("content")
    if content is None:
        calls = message.get("tool_calls") or message.get("function_call")
        if role != "assistant" or not calls:
            problems.add(f"{where}.content: required (null only beside tool_calls)")
        return
    if isinstance(content, str):
        texts.append(content)
        return
    if not isinstance(content, list):
        problems.add(f"{where}.content: expected a string or a list of content parts")
        return
    if not content:
        problems.add(f"{where}.content: the list of content parts must not be empty")
    pieces: list[str] = []
    for index, part in enumerate(content):
        _check_part(problems, part, f"{where}.content[{index}]", _PART_TYPES[role], pieces)
    texts.append("".join(pieces))


def _check_part(
    problems: Problems, part: Any, where: str, allowed: tuple[str, ...], texts: list[str]
) -> None:
    if not isinstance(part, dict):
        problems.add(f"{where}: expected an object")
        return
    kind = part.get("type")
    if kind not in allowed:
        problems.add(f"{where}.type: {kind!r} is not allowed here (allowed: {', '.join(allowed)})")
        return
    for key in part:
        if key not in ("type", kind):
            problems.add(f"{where}: unexpected key {key!r} in a {kind} part")
    value = part.get(kind)
    if kind in ("text", "refusal"):
        if not isinstance(value, str):
            problems.add(f"{where}.{kind}: required (a string)")
        else:
            texts.append(value)
        return
    if not isinstance(value, dict):
        problems.add(f"{where}.{kind}: required (an object)")
        return
    if kind == "image_url":
        url = value.get("url")
        if not isinstance(url, str):
            problems.add(f"{where}.image_url.url: required (a string)")
        elif not url.startswith(("http://", "https://", "data:image/")):
            problems.add(f"{where}.image_url.url: expected an http(s) URL or a data:image/ URI")
        elif url.startswith("data:") and ";base64," not in url:
            problems.add(f"{where}.image_url.url: a data URI must be base64 (';base64,')")
        check_fields(
            problems,
            value,
            {"url": Field("str"), "detail": Field("str", choices=("auto", "low", "high"))},
            f"{where}.image_url",
        )
    elif kind == "input_audio":
        check_fields(
            problems,
            value,
            {"data": Field("str"), "format": Field("str", choices=("wav", "mp3"))},
            f"{where}.input_audio",
        )
        for key in ("data", "format"):
            if key not in value:
                problems.add(f"{where}.input_audio.{key}: required")
    else:  # file
        check_fields(
            problems,
            value,
            {"file_id": Field("str"), "file_data": Field("str"), "filename": Field("str")},
            f"{where}.file",
        )
        if "file_id" not in value and "file_data" not in value:
            problems.add(f"{where}.file: needs file_id or file_data")


def _check_options(problems: Problems, data: dict[str, Any], stream: bool) -> None:
    stop = data.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not (isinstance(stop, list) and all(isinstance(item, str) for item in stop)):
            problems.add("stop: expected a string or a list of strings")
        elif len(stop) > 4:
            problems.add(f"stop: at most 4 sequences are allowed, got {len(stop)}")
    options = data.get("stream_options")
    if options is not None:
        if not stream:
            problems.add("stream_options: only allowed when stream is true")
        if isinstance(options, dict):
            check_fields(
                problems,
                options,
                {"include_usage": Field("bool"), "include_obfuscation": Field("bool")},
                "stream_options",
            )
    if "top_logprobs" in data and data.get("logprobs") is not True:
        problems.add("top_logprobs: requires logprobs to be true")
    response_format = data.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            problems.add(
                f"response_format.type: {kind!r} is not one of 'text', 'json_object', 'json_schema'"
            )
        elif kind == "json_schema":
            schema = response_format.get("json_schema")
            if not isinstance(schema, dict):
                problems.add("response_format.json_schema: required (an object)")
            else:
                if not isinstance(schema.get("name"), str) or not schema.get("name"):
                    problems.add("response_format.json_schema.name: required (a string)")
                check_fields(
                    problems,
                    schema,
                    {
                        "name": Field("str"),
                        "description": Field("str"),
                        "schema": Field("object"),
                        "strict": Field("bool"),
                    },
                    "response_format.json_schema",
                )


def _include_usage(request: RecordedRequest) -> bool:
    options = request.json.get("stream_options") if isinstance(request.json, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


# -- embeddings ---------------------------------------------------------------------------------


def _embedding_inputs(problems: Problems, data: dict[str, Any]) -> list[str]:
    """The texts of an embeddings request's ``input`` (token arrays read as their numbers)."""
    if "input" not in data:
        problems.add("input: required")
        return []
    value = data["input"]
    if isinstance(value, str):
        if not value:
            problems.add("input: must not be an empty string")
        return [value]
    if not isinstance(value, list) or not value:
        problems.add("input: expected a string or a non-empty list of strings or token arrays")
        return []
    if len(value) > MAX_EMBEDDING_INPUTS:
        problems.add(f"input: at most {MAX_EMBEDDING_INPUTS} inputs are allowed, got {len(value)}")
    if all(is_int(item) for item in value):  # one token array
        return [" ".join(str(item) for item in value)]
    texts: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            if not item:
                problems.add(f"input[{index}]: must not be an empty string")
            texts.append(item)
        elif isinstance(item, list) and item and all(is_int(token) for token in item):
            texts.append(" ".join(str(token) for token in item))
        else:
            problems.add(f"input[{index}]: expected a non-empty string or token array")
    return texts


def _unit(vector: list[float]) -> list[float]:
    import math

    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _base64_floats(vector: list[float]) -> str:
    """``vector`` as base64 of little-endian float32 values (OpenAI's ``base64`` format)."""
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
