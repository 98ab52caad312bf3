"""sigforge's runtime: the thin layer generated predictors link against.

Public API only; each name lives in a module with one job:
``lm`` (HTTP clients), ``settings`` (configure / context), ``cache``, ``history``,
``adapters`` (prompt formats), ``predictors`` (base classes of generated code),
``signature`` (field metadata carried by generated code), ``image`` (image inputs),
``tools`` (declared tools), ``errors``.
"""

from ._version import __version__, check_generated_version
from .adapters import Adapter, ChatAdapter, JSONAdapter
from .cache import Cache, CacheError, CacheStats, CompletionCache
from .errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    CircuitOpenError,
    ConfigurationError,
    ContextLengthError,
    GeneratedCodeVersionError,
    LMConnectionError,
    LMError,
    LMTimeoutError,
    OutputParseError,
    RateLimitError,
    ServerError,
    SigforgeError,
    StateError,
    StreamInterruptedError,
    TruncatedOutputError,
)
from .history import HistoryEntry, inspect_history
from .image import Image
from .lm import LM, BaseLM, FallbackLM, Timeout
from .messages import Completion, LMRequest, Message, StreamEvent, StreamRestart, TextDelta, Usage
from .predictors import ChainOfThought, Demo, Predict
from .redis_cache import RedisCache
from .settings import configure, context
from .signature import AdapterPrompts, FieldSpec, Signature
from .tools import ToolSpec

__all__ = [
    "LM",
    "Adapter",
    "AdapterPrompts",
    "AuthenticationError",
    "BadRequestError",
    "BadResponseError",
    "BaseLM",
    "Cache",
    "CacheError",
    "CacheStats",
    "ChainOfThought",
    "ChatAdapter",
    "CircuitOpenError",
    "Completion",
    "CompletionCache",
    "ConfigurationError",
    "ContextLengthError",
    "Demo",
    "FallbackLM",
    "FieldSpec",
    "GeneratedCodeVersionError",
    "HistoryEntry",
    "Image",
    "JSONAdapter",
    "LMConnectionError",
    "LMError",
    "LMRequest",
    "LMTimeoutError",
    "Message",
    "OutputParseError",
    "Predict",
    "RateLimitError",
    "RedisCache",
    "ServerError",
    "SigforgeError",
    "Signature",
    "StateError",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamRestart",
    "TextDelta",
    "Timeout",
    "ToolSpec",
    "TruncatedOutputError",
    "Usage",
    "__version__",
    "check_generated_version",
    "configure",
    "context",
    "inspect_history",
]
