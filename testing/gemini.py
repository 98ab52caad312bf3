"""A real, scripted server speaking the Gemini API's ``generateContent`` on 127.0.0.1.

.. code-block:: python

    with GeminiServer(["Paris."]) as server:
        response = httpx.post(
            f"{server.base_url}/v1beta/models/gemini-x:generateContent",
            headers={"x-goog-api-key": "test-key"},
            json={"contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}]},
        )
        assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "Paris."
        assert server.violations == []

Routes (``base_url`` is ``http://127.0.0.1:PORT``, as Google's clients are configured;
``/v1/`` is served like ``/v1beta/``):

* ``POST /v1beta/models/{model}:generateContent`` -- one ``GenerateContentResponse``;
* ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` -- server-sent events,
  each ``data: {GenerateContentResponse chunk}`` with ``\\r\\n`` line endings, as Google
  sends them: one chunk per piece of text, then a last chunk (its text empty) carrying
  ``finishReason`` and ``usageMetadata``; without ``alt=sse`` the same chunks arrive as
  one streamed JSON array. A mid-stream error is a chunk ``{"error": {...}}``.

Checks, following the documented REST format (both the JSON ``camelCase`` names and the
proto ``snake_case`` names are accepted, as the real API accepts both; giving both
spellings of one field is refused): an API key in the ``x-goog-api-key`` header or the
``key`` query parameter (missing: HTTP 403 ``PERMISSION_DENIED``; with ``api_key``
given, another key: HTTP 400 ``API key not valid``); ``content-type:
application/json``; ``contents`` a non-empty list of ``{role: "user"|"model", parts}``
with non-empty ``parts``, each holding exactly one of ``text``, ``inlineData``
(``mimeType`` + base64 ``data``), ``fileData`` (``fileUri``, optional ``mimeType``),
``functionCall``, ``functionResponse``, ``executableCode``, ``codeExecutionResult``;
optional ``systemInstruction`` (``{parts: [{text}]}``), ``generationConfig``
(``temperature`` 0-2, ``topP`` 0-1, ``topK``, ``maxOutputTokens`` >= 1,
``candidateCount`` 1-8, ``stopSequences`` up to 5, ``responseMimeType`` ``text/plain``,
``application/json`` or ``text/x.enum``, ``responseSchema`` *or*
``responseJsonSchema`` -- which need a JSON or enum ``responseMimeType`` --, ``seed``,
penalties, ``thinkingConfig``, ...), ``safetySettings``, ``tools``, ``toolConfig``,
``cachedContent``. Unknown fields are refused (``Unknown name "x": Cannot find field``),
as the real API does.

Violations are recorded in ``server.violations`` and answered with HTTP 400 and
Google's error shape ``{"error": {"code": 400, "message": ..., "status":
"INVALID_ARGUMENT"}}``; scripted errors use 403 ``PERMISSION_DENIED``, 404
``NOT_FOUND``, 429 ``RESOURCE_EXHAUSTED``, 500 ``INTERNAL``, 503 ``UNAVAILABLE`` and so
on; ``Reply(retry_after=...)`` adds a ``google.rpc.RetryInfo`` detail (``retryDelay``).

A success has ``candidateCount`` candidates (default 1) with the reply's text,
``finishReason`` (``STOP``, ``MAX_TOKENS``, ``SAFETY``, ... from
:attr:`Reply.finish_reason`), ``usageMetadata`` and ``modelVersion`` (the model of the
path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._checks import Field, Problems, check_fields
from ._core import Answer, Dialect, Event, Inspection, Reply, Responder, Route, ScriptedServer

__all__ = ["GeminiDialect", "GeminiServer"]

_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_UNKNOWN = '{where}{name}: Invalid JSON payload received. Unknown name "{name}": Cannot find field.'

_REQUEST: dict[str, Field] = {
    "contents": Field("list"),
    "systemInstruction": Field("object"),
    "generationConfig": Field("object"),
    "safetySettings": Field("list"),
    "tools": Field("list"),
    "toolConfig": Field("object"),
    "cachedContent": Field("str"),
}
_GENERATION_CONFIG: dict[str, Field] = {
    "temperature": Field("number", 0, 2),
    "topP": Field("number", 0, 1),
    "topK": Field("int", 1),
    "maxOutputTokens": Field("int", 1),
    "candidateCount": Field("int", 1, 8),
    "stopSequences": Field("str_list", max_items=5),
    "responseMimeType": Field("str", choices=("text/plain", "application/json", "text/x.enum")),
    "responseSchema": Field("object"),
    "responseJsonSchema": Field("object"),
    "responseModalities": Field("str_list"),
    "seed": Field("int"),
    "presencePenalty": Field("number"),
    "frequencyPenalty": Field("number"),
    "responseLogprobs": Field("bool"),
    "logprobs": Field("int", 0, 20),
    "enableEnhancedCivicAnswers": Field("bool"),
    "thinkingConfig": Field("object"),
    "speechConfig": Field("object"),
    "mediaResolution": Field("str"),
}
#: the fields of a part that hold its data: a part holds exactly one
_PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_PART: dict[str, Field] = {
    "text": Field("str"),
    "inlineData": Field("object"),
    "fileData": Field("object"),
    "functionCall": Field("object"),
    "functionResponse": Field("object"),
    "executableCode": Field("object"),
    "codeExecutionResult": Field("object"),
    "thought": Field("bool"),
    "thoughtSignature": Field("str"),
    "videoMetadata": Field("object"),
}


class GeminiDialect(Dialect):
    """The Gemini API's ``generateContent`` format (see the module docstring)."""

    name = "gemini"
    base_path = ""
    line_end = "\r\n"
    stream_content_type = "text/event-stream"

    def route(self, method: str, path: str, query: Mapping[str, str]) -> Route | None:
        match = _PATH.match(path)
        if method != "POST" or match is None:
            return None
        return Route(
            match.group(3), stream=match.group(3) == "streamGenerateContent", model=match.group(2)
        )

    def stream_array(self, route: Route, query: Mapping[str, str]) -> bool:
        return query.get("alt") != "sse"

    # -- checking ---------------------------------------------------------------------------

    def inspect(
        self, route: Route, headers: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> Inspection:
        problems = Problems()
        key = headers.get("x-goog-api-key") or query.get("key")
        if not key:
            problems.add(
                "Method doesn't allow unregistered callers: pass an API key in the "
                "x-goog-api-key header or the key query parameter",
                status=403,
            )
        elif self.api_key is not None and key != self.api_key:
            problems.add(
                "API key not valid. Please pass a valid API key.", status=400, violation=False
            )
        alt = query.get("alt")
        if alt is not None and alt not in ("sse", "json"):
            problems.add(f"alt: {alt!r} is not one of 'sse', 'json'")
        raw = self.json_object(headers, body, problems)
        inspection = Inspection(problems, stream=bool(route.stream), model=route.model)
        if raw is None:
            return inspection
        data = _camel_keys(problems, raw, "")
        check_fields(problems, data, _REQUEST, unknown=_UNKNOWN)
        texts = inspection.texts
        system = data.get("systemInstruction")
        if isinstance(system, dict):
            texts.append(_check_content(problems, system, "systemInstruction", system=True))
        contents = data.get("contents")
        if "contents" not in data:
            problems.add("contents: required")
        elif isinstance(contents, list):
            if not contents:
                problems.add("contents: must not be empty")
            for index, content in enumerate(contents):
                where = f"contents[{index}]"
                if isinstance(content, dict):
                    texts.append(_check_content(problems, content, where, system=False))
                else:
                    problems.add(f"{where}: expected an object")
        config = data.get("generationConfig")
        if isinstance(config, dict):
            _check_generation_config(problems, _camel_keys(problems, config, "generationConfig"))
        settings = data.get("safetySettings")
        if isinstance(settings, list):
            for index, setting in enumerate(settings):
                where = f"safetySettings[{index}]"
                if not isinstance(setting, dict):
                    problems.add(f"{where}: expected an object")
                    continue
                fields = {"category": Field("str"), "threshold": Field("str")}
                setting = _camel_keys(problems, setting, where)
                check_fields(problems, setting, fields, where, unknown=_UNKNOWN)
        return inspection

    # -- answering ---------------------------------------------------------------------------

    def completion(self, answer: Answer) -> dict[str, Any]:
        reply = answer.reply
        candidates = []
        for index in range(_candidate_count(answer)):
            candidate: dict[str, Any] = {}
            if reply.content is not None:
                candidate["content"] = {"role": "model", "parts": [{"text": reply.content}]}
            candidate.update(finishReason=_finish_reason(reply), index=index)
            candidates.append(candidate)
        return {
            "candidates": candidates,
            "usageMetadata": _usage(answer),
            "modelVersion": answer.model,
            "responseId": answer.id,
        }

    def stream_head(self, answer: Answer) -> list[Event]:
        return []

    def stream_piece(self, answer: Answer, piece: str, index: int) -> Event:
        return self._chunk(answer, piece, final=False)

    def stream_tail(self, answer: Answer) -> list[Event]:
        return [self._chunk(answer, "", final=True)]

    def _chunk(self, answer: Answer, text: str, *, final: bool) -> Event:
        candidates = []
        for index in range(_candidate_count(answer)):
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": [{"text": text}]},
            }
            if final:
                candidate["finishReason"] = _finish_reason(answer.reply)
            candidate["index"] = index
            candidates.append(candidate)
        chunk: dict[str, Any] = {"candidates": candidates}
        if final:
            chunk["usageMetadata"] = _usage(answer)
        chunk.update(modelVersion=answer.model, responseId=answer.id)
        return Event(json.dumps(chunk))

    def error_type(self, status: int) -> str:
        if status in _STATUSES:
            return _STATUSES[status]
        return "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"

    def error_body(
        self, status: int, message: str, error_type: str, retry_after: float | None
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"code": status, "message": message, "status": error_type}
        if retry_after is not None:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after:g}s",
                }
            ]
        return {"error": error}

    def error_headers(self, status: int, retry_after: float | None) -> dict[str, str]:
        return {}  # Google says when to retry in the body, not in a header


class GeminiServer(ScriptedServer):
    """A scripted Gemini ``generateContent`` server on ``127.0.0.1`` (ephemeral port).

    Scripts, responders, ``default``, ``max_lifetime``, outages and streams work as for
    :class:`~sigforge.testing.server.OpenAICompatServer`. ``api_key``: the only key
    accepted (default: any non-empty key). ``base_url`` is ``http://127.0.0.1:PORT``.
    """

    dialect: GeminiDialect

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
            dialect=GeminiDialect(api_key=api_key),
            default=default,
            max_lifetime=max_lifetime,
        )

    def url(self, model: str, *, stream: bool = False) -> str:
        """The full URL of ``generateContent`` (or the SSE stream) for ``model``."""
        if stream:
            return f"{self.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"{self.base_url}/v1beta/models/{model}:generateContent"


# -- helpers ------------------------------------------------------------------------------------


_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def _camel(name: str) -> str:
    """The camelCase spelling of a snake_case name (other names stay as they are)."""
    if not _SNAKE.match(name):
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _camel_keys(problems: Problems, obj: dict[str, Any], where: str) -> dict[str, Any]:
    """``obj`` with snake_case keys spelled in camelCase; both spellings of one key
    are a problem."""
    result: dict[str, Any] = {}
    for key, value in obj.items():
        name = _camel(key)
        if name in result:
            prefix = f"{where}." if where else ""
            problems.add(f"{prefix}{name}: given twice (as {name} and as a snake_case name)")
        result[name] = value
    return result


def _check_content(problems: Problems, content: dict[str, Any], where: str, *, system: bool) -> str:
    """Check one ``Content``; returns its text."""
    content = _camel_keys(problems, content, where)
    check_fields(
        problems, content, {"role": Field("str"), "parts": Field("list")}, where, unknown=_UNKNOWN
    )
    role = content.get("role")
    if not system and "role" in content and role not in ("user", "model"):
        problems.add(f"{where}.role: {role!r}: Please use a valid role: user, model.")
    parts = content.get("parts")
    if "parts" not in content:
        problems.add(f"{where}.parts: required")
        return ""
    if not isinstance(parts, list):
        return ""
    if not parts:
        problems.add(f"{where}.parts: contents.parts must not be empty")
    texts: list[str] = []
    for index, part in enumerate(parts):
        part_where = f"{where}.parts[{index}]"
        if not isinstance(part, dict):
            problems.add(f"{part_where}: expected an object")
            continue
        part = _camel_keys(problems, part, part_where)
        check_fields(problems, part, _PART, part_where, unknown=_UNKNOWN)
        data = [name for name in _PART_DATA if name in part]
        if len(data) != 1:
            found = ", ".join(data) if data else "none"
            problems.add(
                f"{part_where}: a part holds exactly one of {', '.join(_PART_DATA)} "
                f"(found: {found})"
            )
        if system and data != ["text"]:
            problems.add(f"{part_where}: a system instruction holds text parts only")
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        _check_part_data(problems, part, part_where)
    return "".join(texts)


def _check_part_data(problems: Problems, part: dict[str, Any], where: str) -> None:
    inline = part.get("inlineData")
    if isinstance(inline, dict):
        inline_where = f"{where}.inlineData"
        inline = _camel_keys(problems, inline, inline_where)
        fields = {"mimeType": Field("str"), "data": Field("any")}
        check_fields(problems, inline, fields, inline_where, unknown=_UNKNOWN)
        if not isinstance(inline.get("mimeType"), str) or not inline.get("mimeType"):
            problems.add(f"{inline_where}.mimeType: required")
        problems.base64(inline.get("data"), f"{inline_where}.data")
    file_data = part.get("fileData")
    if isinstance(file_data, dict):
        file_where = f"{where}.fileData"
        file_data = _camel_keys(problems, file_data, file_where)
        fields = {"mimeType": Field("str"), "fileUri": Field("str")}
        check_fields(problems, file_data, fields, file_where, unknown=_UNKNOWN)
        if not isinstance(file_data.get("fileUri"), str) or not file_data.get("fileUri"):
            problems.add(f"{file_where}.fileUri: required")


def _check_generation_config(problems: Problems, config: dict[str, Any]) -> None:
    check_fields(problems, config, _GENERATION_CONFIG, "generationConfig", unknown=_UNKNOWN)
    has_schema = "responseSchema" in config
    has_json_schema = "responseJsonSchema" in config
    if has_schema and has_json_schema:
        problems.add("generationConfig: give responseSchema or responseJsonSchema, not both")
    mime_type = config.get("responseMimeType")
    if has_json_schema and mime_type != "application/json":
        problems.add(
            "generationConfig.responseMimeType: must be application/json with responseJsonSchema"
        )
    elif has_schema and mime_type not in ("application/json", "text/x.enum"):
        problems.add(
            "generationConfig.responseMimeType: must be application/json or text/x.enum "
            "with responseSchema"
        )


def _candidate_count(answer: Answer) -> int:
    body = answer.request.json
    if not isinstance(body, dict):
        return 1
    config = body.get("generationConfig", body.get("generation_config"))
    if not isinstance(config, dict):
        return 1
    count = config.get("candidateCount", config.get("candidate_count", 1))
    return count if isinstance(count, int) and 1 <= count <= 8 else 1


def _finish_reason(reply: Reply) -> str:
    return _FINISH_REASONS.get(reply.finish_reason, reply.finish_reason)


def _usage(answer: Answer) -> dict[str, int]:
    candidates = answer.completion_tokens * _candidate_count(answer)
    return {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": answer.prompt_tokens + candidates,
    }
