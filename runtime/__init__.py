"""sigforge's runtime: the thin layer generated predictors link against.

Public API only; each name lives in a module with one job:
``lm`` (HTTP clients), ``settings`` (configure / context), ``cache``, ``history``,
``adapters`` (prompt formats), ``predictors`` (base classes of generated code),
``signature`` (field metadata carried by generated code), ``image`` (image inputs),
``tools`` (declared tools), ``errors``, ``callbacks`` (hooks around module and LM calls),
``pricing`` (prices and usage tracking), ``otel`` (OpenTelemetry spans), ``resilience``
(rate limiter, circuit breakers).
"""

from ._version import __version__, check_generated_version
from .adapters import Adapter, ChatAdapter, JSONAdapter
from .cache import Cache, CacheError, CacheStats, CompletionCache
from .callbacks import Callback, LMCall, ModuleCall
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
from .otel import OTelCallback, instrument
from .predictors import ChainOfThought, Demo, Predict
from .pricing import ModelUsage, Price, UsageTracker, price_for, register_price, track_usage
from .redis_cache import RedisCache
from .resilience import BreakerState, CircuitBreaker, RateLimiter, breaker_for
from .settings import configure, context, current_callbacks
from .signature import AdapterPrompts, FieldSpec, Signature
from .streaming import AsyncPredictionStream, PredictionStream
from .tools import ToolSpec

__all__ = [
    "LM",
    "Adapter",
    "AdapterPrompts",
    "AsyncPredictionStream",
    "AuthenticationError",
    "BadRequestError",
    "BadResponseError",
    "BaseLM",
    "BreakerState",
    "Cache",
    "CacheError",
    "CacheStats",
    "Callback",
    "ChainOfThought",
    "ChatAdapter",
    "CircuitBreaker",
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
    "LMCall",
    "LMConnectionError",
    "LMError",
    "LMRequest",
    "LMTimeoutError",
    "Message",
    "ModelUsage",
    "ModuleCall",
    "OTelCallback",
    "OutputParseError",
    "Predict",
    "PredictionStream",
    "Price",
    "RateLimitError",
    "RateLimiter",
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
    "UsageTracker",
    "__version__",
    "breaker_for",
    "check_generated_version",
    "configure",
    "context",
    "current_callbacks",
    "inspect_history",
    "instrument",
    "price_for",
    "register_price",
    "track_usage",
]
