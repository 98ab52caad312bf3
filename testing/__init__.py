"""Test helpers for sigforge programs: scripted provider servers, fault injection, a scripted LM.

Real HTTP servers on 127.0.0.1, each checking requests against one provider's documented
wire format and answering exactly in it (JSON bodies and server-sent event streams):

* :class:`OpenAICompatServer` -- OpenAI chat completions (``/v1/chat/completions``);
* :class:`AnthropicServer` -- Anthropic Messages (``/v1/messages``);
* :class:`GeminiServer` -- Gemini ``generateContent`` / ``streamGenerateContent``.

All three take a script of :class:`Reply` items (or a responder callable), record every
request (:class:`RecordedRequest`) and every wire-format violation
(``server.violations``), measure their own CPU time (``server.stats()``), can be taken
down and brought back up, and stop themselves after ``max_lifetime``.
:class:`FaultInjector` is a responder that injects errors, stalls, garbage, truncation
and dropped connections, deterministically per seed. ``ScriptedLM`` answers in-process,
for fast unit tests. Each server is the shared ``ScriptedServer`` plus one provider
``Dialect`` (``OpenAIDialect``, ``AnthropicDialect``, ``GeminiDialect``). See
docs/testing.md.
"""

from __future__ import annotations

from ._core import Dialect, RecordedRequest, Reply, Responder, ScriptedServer, ServerStats
from .anthropic import ANTHROPIC_VERSIONS, AnthropicDialect, AnthropicServer, rate_limit_headers
from .colbert import ColBERTv2Dialect, ColBERTv2Server
from .faults import FAULT_KINDS, FaultInjector, Injection
from .gemini import GeminiDialect, GeminiServer
from .rag import RAGWorld, Relation
from .scripted import ScriptedLM, ScriptExhaustedError, Streamed
from .server import EmbeddingFunction, OpenAICompatServer, OpenAIDialect, hashing_embedding

__all__ = [
    "ANTHROPIC_VERSIONS",
    "FAULT_KINDS",
    "AnthropicDialect",
    "AnthropicServer",
    "ColBERTv2Dialect",
    "ColBERTv2Server",
    "Dialect",
    "EmbeddingFunction",
    "FaultInjector",
    "GeminiDialect",
    "GeminiServer",
    "Injection",
    "OpenAICompatServer",
    "OpenAIDialect",
    "RAGWorld",
    "RecordedRequest",
    "Relation",
    "Reply",
    "Responder",
    "ScriptExhaustedError",
    "ScriptedLM",
    "ScriptedServer",
    "ServerStats",
    "Streamed",
    "hashing_embedding",
    "rate_limit_headers",
]
