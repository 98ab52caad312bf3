"""sigforge's runtime: the thin layer generated predictors link against.

Public API only; each name lives in a module with one job:
``lm`` (HTTP clients), ``settings`` (configure / context), ``cache``, ``history``,
``adapters`` (prompt formats), ``predictors`` (base classes of generated code),
``signature`` (field metadata carried by generated code), ``image`` (image inputs),
``tools`` (declared tools), ``errors``, ``callbacks`` (hooks around module and LM calls),
``pricing`` (prices and usage tracking), ``otel`` (OpenTelemetry spans), ``resilience``
(rate limiter, circuit breakers), ``trace`` (recorded predictor calls).

Imported on first use, so that a generated module's import stays cheap: ``module``
(user pipelines, program files), ``example`` and ``metrics`` (datasets and scores),
``evaluate``, ``optimizers``, ``modules`` (react, program_of_thought, ... and
``Parallel``), ``retrieval``, ``embeddings``, ``sandbox``, ``dspy_state`` (importing
DSPy-saved programs).
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .dspy_state import load_dspy
    from .embeddings import Embedder, SentenceTransformerEmbedder
    from .evaluate import (
        Evaluate,
        EvaluationError,
        EvaluationResult,
        ExampleResult,
        TooManyErrorsError,
    )
    from .example import DatasetError, Example, load_jsonl
    from .metrics import (
        FieldMetric,
        Metric,
        Score,
        answer_match,
        answer_match_on,
        exact_match,
        exact_match_on,
        f1_on,
        f1_score,
        normalize_text,
        passage_match,
        passage_match_on,
    )
    from .module import Module, Program, load_program, save_program
    from .modules import (
        AttemptsFailedError,
        BestOfN,
        MultiChainComparison,
        Parallel,
        ProgramOfThought,
        ProgramOfThoughtError,
        ReAct,
        Refine,
    )
    from .optimizers import (
        COPRO,
        GEPA,
        BootstrapFewShot,
        BootstrapFewShotWithRandomSearch,
        Ensemble,
        KNNFewShot,
        LabeledFewShot,
        MIPROv2,
        Optimizer,
        OptimizerError,
    )
    from .retrieval import (
        ChromaRetriever,
        ColBERTv2,
        Passage,
        Passages,
        RetrievalError,
        Retriever,
        SQLiteVecStore,
        VectorStore,
        retriever_from_url,
    )
    from .sandbox import Sandbox, SandboxLimits, SandboxResult

#: names imported on first use (PEP 562), so that importing a generated module stays cheap
_LAZY = {
    "DatasetError": "example",
    "Example": "example",
    "load_jsonl": "example",
    "Module": "module",
    "Program": "module",
    "load_program": "module",
    "save_program": "module",
    "Metric": "metrics",
    "Score": "metrics",
    "Evaluate": "evaluate",
    "EvaluationError": "evaluate",
    "EvaluationResult": "evaluate",
    "ExampleResult": "evaluate",
    "TooManyErrorsError": "evaluate",
    "FieldMetric": "metrics",
    "answer_match": "metrics",
    "answer_match_on": "metrics",
    "exact_match": "metrics",
    "exact_match_on": "metrics",
    "f1_on": "metrics",
    "f1_score": "metrics",
    "normalize_text": "metrics",
    "passage_match": "metrics",
    "passage_match_on": "metrics",
    "BootstrapFewShot": "optimizers",
    "BootstrapFewShotWithRandomSearch": "optimizers",
    "COPRO": "optimizers",
    "Ensemble": "optimizers",
    "GEPA": "optimizers",
    "KNNFewShot": "optimizers",
    "LabeledFewShot": "optimizers",
    "MIPROv2": "optimizers",
    "Optimizer": "optimizers",
    "OptimizerError": "optimizers",
    "AttemptsFailedError": "modules",
    "BestOfN": "modules",
    "MultiChainComparison": "modules",
    "Parallel": "modules",
    "ProgramOfThought": "modules",
    "ProgramOfThoughtError": "modules",
    "ReAct": "modules",
    "Refine": "modules",
    "ChromaRetriever": "retrieval",
    "ColBERTv2": "retrieval",
    "Passage": "retrieval",
    "Passages": "retrieval",
    "RetrievalError": "retrieval",
    "Retriever": "retrieval",
    "SQLiteVecStore": "retrieval",
    "VectorStore": "retrieval",
    "retriever_from_url": "retrieval",
    "Embedder": "embeddings",
    "SentenceTransformerEmbedder": "embeddings",
    "Sandbox": "sandbox",
    "SandboxLimits": "sandbox",
    "SandboxResult": "sandbox",
    "load_dspy": "dspy_state",
}

__all__ = [
    "COPRO",
    "GEPA",
    "LM",
    "Adapter",
    "AdapterPrompts",
    "AsyncPredictionStream",
    "AttemptsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "BadResponseError",
    "BaseLM",
    "BestOfN",
    "BootstrapFewShot",
    "BootstrapFewShotWithRandomSearch",
    "BreakerState",
    "Cache",
    "CacheError",
    "CacheStats",
    "Callback",
    "ChainOfThought",
    "ChatAdapter",
    "ChromaRetriever",
    "CircuitBreaker",
    "CircuitOpenError",
    "ColBERTv2",
    "Completion",
    "CompletionCache",
    "ConfigurationError",
    "ContextLengthError",
    "DatasetError",
    "Demo",
    "Embedder",
    "Ensemble",
    "Evaluate",
    "EvaluationError",
    "EvaluationResult",
    "Example",
    "ExampleResult",
    "FallbackLM",
    "FieldMetric",
    "FieldSpec",
    "GeneratedCodeVersionError",
    "HistoryEntry",
    "Image",
    "JSONAdapter",
    "KNNFewShot",
    "LMCall",
    "LMConnectionError",
    "LMError",
    "LMRequest",
    "LMTimeoutError",
    "LabeledFewShot",
    "MIPROv2",
    "Message",
    "Metric",
    "ModelUsage",
    "Module",
    "ModuleCall",
    "MultiChainComparison",
    "OTelCallback",
    "Optimizer",
    "OptimizerError",
    "OutputParseError",
    "Parallel",
    "Passage",
    "Passages",
    "Predict",
    "PredictionStream",
    "Price",
    "Program",
    "ProgramOfThought",
    "ProgramOfThoughtError",
    "RateLimitError",
    "RateLimiter",
    "ReAct",
    "RedisCache",
    "Refine",
    "RetrievalError",
    "Retriever",
    "SQLiteVecStore",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "Score",
    "SentenceTransformerEmbedder",
    "ServerError",
    "SigforgeError",
    "Signature",
    "StateError",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamRestart",
    "TextDelta",
    "Timeout",
    "TooManyErrorsError",
    "ToolSpec",
    "TruncatedOutputError",
    "Usage",
    "UsageTracker",
    "VectorStore",
    "__version__",
    "answer_match",
    "answer_match_on",
    "breaker_for",
    "check_generated_version",
    "configure",
    "context",
    "current_callbacks",
    "exact_match",
    "exact_match_on",
    "f1_on",
    "f1_score",
    "inspect_history",
    "instrument",
    "load_dspy",
    "load_jsonl",
    "load_program",
    "normalize_text",
    "passage_match",
    "passage_match_on",
    "price_for",
    "register_price",
    "retriever_from_url",
    "save_program",
    "track_usage",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
