"""Test helpers for sigforge programs: a scripted OpenAI-compatible server and a scripted LM.

``OpenAICompatServer`` is a real HTTP server on 127.0.0.1 for end-to-end tests through
:class:`~sigforge.runtime.lm.LM`; ``ScriptedLM`` answers in-process, for fast unit tests.
"""

from __future__ import annotations

from .scripted import ScriptedLM, ScriptExhaustedError
from .server import OpenAICompatServer, RecordedRequest, Reply

__all__ = ["OpenAICompatServer", "RecordedRequest", "Reply", "ScriptExhaustedError", "ScriptedLM"]
